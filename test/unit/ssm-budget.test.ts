// The stage's Parameter Store requests (core/ssm-budget.ts) on the largest fleet while a
// release runs: the busiest second stays under half the account's budget, as modelled from the
// cadences the code itself uses.
import { limit, MAX_FLEET_HOSTS } from '../../core/aws-limits';
import { RECORD_MAX_AGE_MS as FUNCTION_RECORD_MAX_AGE_MS } from '../../lambda/alert/runtime';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import {
  AGENT_FLUSH_SECONDS,
  BUDGET_SHARE,
  CLI_RECORD_POLL_MS,
  fanOutBurst,
  HOST_TIMER,
  parameterStoreLoad,
  previousReleaseSources,
  RECORD_MAX_AGE_MS,
  releaseSources,
  STAGE_BUDGET_PER_SECOND,
} from '../../core/ssm-budget';
import { hostReadParameterNames } from '../../core/names';
import { AwsReleaseBackend } from '../../ops/release/aws-backend';
import { RECORD_REFRESH_MS } from '../../ops/release/orchestrator';
import { SSMClient } from '@aws-sdk/client-ssm';

test(`at ${MAX_FLEET_HOSTS} hosts during a release: the busiest second is under half of Parameter Store's ${limit('parameterStoreThroughput')} requests a second`, () => {
  const load = parameterStoreLoad(releaseSources(MAX_FLEET_HOSTS));
  expect(STAGE_BUDGET_PER_SECOND).toBe(limit('parameterStoreThroughput') * BUDGET_SHARE);
  expect(load.busiestSecond).toBeLessThanOrEqual(STAGE_BUDGET_PER_SECOND);
  // For the record (DECISIONS.md "Parameter Store's budget"): today's figures.
  expect({ average: Number(load.averagePerSecond.toFixed(2)), busiest: load.busiestSecond }).toEqual({
    average: 4.96,
    busiest: 19,
  });
});

test('before the budget model (timers within 5 s, a state save per batch, the CLI polling every 250 ms) the same fleet went past the whole budget', () => {
  const before = parameterStoreLoad(previousReleaseSources(MAX_FLEET_HOSTS));
  expect(before.busiestSecond).toBeGreaterThan(limit('parameterStoreThroughput'));
  const timers = (l: ReturnType<typeof parameterStoreLoad>) =>
    l.bySource.find((s) => s.name === "hosts' timers")!.busiestSecond;
  expect(timers(before)).toBeGreaterThan(3 * timers(parameterStoreLoad(releaseSources(MAX_FLEET_HOSTS))));
});

test('every fleet size synth accepts stays under half the budget', () => {
  for (let hosts = 2; hosts <= MAX_FLEET_HOSTS; hosts++)
    expect(parameterStoreLoad(releaseSources(hosts)).busiestSecond).toBeLessThanOrEqual(STAGE_BUDGET_PER_SECOND);
});

test("the model counts the code's own cadences", () => {
  expect(FUNCTION_RECORD_MAX_AGE_MS).toBe(RECORD_MAX_AGE_MS);
  expect(new AwsReleaseBackend({ ssm: new SSMClient({ region: 'us-east-1' }), stage: 'x' }).recordPollMs).toBe(
    CLI_RECORD_POLL_MS,
  );
  const cli = releaseSources().find((s) => s.name === 'release CLI: record refresh')!;
  expect(cli.everySeconds * 1000).toBe(RECORD_REFRESH_MS);
  // One GetParameters a timer run: the host's parameters fit one call.
  expect(hostReadParameterNames('prod').length).toBeLessThanOrEqual(limit('getParametersNames'));
  expect(HOST_TIMER.randomizedDelaySeconds + HOST_TIMER.accuracySeconds).toBeLessThanOrEqual(HOST_TIMER.periodSeconds);
  // The function's batches: one per host per agent flush.
  const agent = JSON.parse(readFileSync(path.join(REPO_ROOT, 'userdata', 'cloudwatch-agent.json'), 'utf8')) as {
    logs: { force_flush_interval: number };
  };
  expect(agent.logs.force_flush_interval).toBe(AGENT_FLUSH_SECONDS);
});

test('a Run Command to every host at once is the one burst past the budget: retried, with backoff, by every caller', () => {
  expect(fanOutBurst(MAX_FLEET_HOSTS)).toBeGreaterThan(limit('parameterStoreThroughput'));
});
