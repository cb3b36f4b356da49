// The stage's Parameter Store requests (core/ssm-budget.ts) on the largest fleet while a
// release runs: the busiest second stays under half the account's budget, as modelled from the
// cadences the code itself uses.
import { limit, MAX_FLEET_HOSTS } from '../../core/aws-limits';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import {
  AGENT_FLUSH_SECONDS,
  BUDGET_SHARE,
  fanOutBurst,
  HOST_TIMER,
  parameterStoreLoad,
  previousReleaseSources,
  releaseSources,
  STAGE_BUDGET_PER_SECOND,
} from '../../core/ssm-budget';
import { hostReadParameterNames } from '../../core/names';

test(`at ${MAX_FLEET_HOSTS} hosts during a release: the busiest second is under half of Parameter Store's ${limit('parameterStoreThroughput')} requests a second`, () => {
  const load = parameterStoreLoad(releaseSources(MAX_FLEET_HOSTS));
  expect(STAGE_BUDGET_PER_SECOND).toBe(limit('parameterStoreThroughput') * BUDGET_SHARE);
  expect(load.busiestSecond).toBeLessThanOrEqual(STAGE_BUDGET_PER_SECOND);
  // For the record (DECISIONS.md "Parameter Store's budget"): today's figures.
  expect({ average: Number(load.averagePerSecond.toFixed(2)), busiest: load.busiestSecond }).toEqual({
    average: 0.9,
    busiest: 9,
  });
});

test("before the budget model (timers within 5 s, a state save per batch) the same fleet went past the stage's share", () => {
  const before = parameterStoreLoad(previousReleaseSources(MAX_FLEET_HOSTS));
  // Past the whole budget then, with the record's reads and writes in Parameter Store too (DECISIONS).
  expect(before.busiestSecond).toBeGreaterThan(STAGE_BUDGET_PER_SECOND);
  const timers = (l: ReturnType<typeof parameterStoreLoad>) =>
    l.bySource.find((s) => s.name === "hosts' timers")!.busiestSecond;
  expect(timers(before)).toBeGreaterThan(3 * timers(parameterStoreLoad(releaseSources(MAX_FLEET_HOSTS))));
});

test('every fleet size synth accepts stays under half the budget', () => {
  for (let hosts = 2; hosts <= MAX_FLEET_HOSTS; hosts++)
    expect(parameterStoreLoad(releaseSources(hosts)).busiestSecond).toBeLessThanOrEqual(STAGE_BUDGET_PER_SECOND);
});

test("the model counts the code's own cadences", () => {
  // The release record is in the ledger (DynamoDB): no source of the model reads or writes it.
  expect(releaseSources().filter((s) => /record|join/.test(s.name))).toEqual([]);
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
