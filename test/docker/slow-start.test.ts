// Slow starts and drains on the host Compose set (Docker Engine harness): `bluegreen release`'s own
// code over the AWS backend (release-stage.ts) and the real bluegreen-apply. A release that needs 40 s
// to start (the demo app's START_DELAY_MS: /healthz answers 503 until then) fails the gate with the
// default start period and passes with `--health-start-period 60s`, both under load from a client
// that never re-sends (0 failed). A pool recreated while a slow request is in flight on its own port
// lets that request finish within its drain (`--drain`, Compose's stop_grace_period).
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { parameterNames } from '../../core/names';
import type { ReleaseRecord } from '../../core/release-record';
import { summarize } from '../../local/load';
import { parseReleaseArgs } from '../../ops/release/args';
import { httpRequest } from '../../support/http';
import { FULL_SPEED_LOAD, startLoad } from '../helpers/load';
import { describeWithDocker, stepLines } from './compose-set';
import { dockerStageForSuite } from './release-stage';

const describeDocker = describeWithDocker(__filename);

const LOAD = { ...FULL_SPEED_LOAD, connections: 4, ratePerSec: 200 } as const;
/** Longer than the default start period's whole gate (10 s + 3 checks of 5 s + 3 s: 34 s). */
const START_DELAY_MS = 40_000;

describeDocker('slow starts and drains on the host Compose set', () => {
  const suite = dockerStageForSuite();

  /** `bluegreen release <args>` as the CLI parses them, under load; the outcome and the load's figures. */
  const release = async (args: string[]) => {
    const load = startLoad({ url: `${suite.set.url}/version`, ...LOAD });
    await load.after(1_000, 'before the release');
    const { code, lines } = await suite.stage.release(parseReleaseArgs(args).options);
    await load.after(1_000, 'after the release');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    process.stdout.write(
      `${args.join(' ')}: exit ${code}, ${summary.requests} requests, ${summary.failed} failed\n${lines.join('\n')}\n`,
    );
    return { code, lines, summary, record: (await suite.stage.backend.readRecord())! };
  };
  const gateStep = (record: ReleaseRecord) => record.steps.find((s) => s.host && s.step === 'health')!;

  test('an app that needs 40 s to start fails the gate with the default start period: exit 1, the previous release back, 0 failed', async () => {
    const { code, summary, record } = await release([
      '--release',
      'v2-slow',
      '--env',
      `START_DELAY_MS=${START_DELAY_MS}`,
    ]);
    expect(code).toBe(1);
    expect(summary.failures).toEqual({});
    expect(record).toMatchObject({ release: 'v2-slow', pool: 'green', state: 'failed' });
    // Docker's verdict (unhealthy after the start period and 3 failed checks) or the gate's own bound.
    expect(gateStep(record)).toMatchObject({ ok: false });
    expect(gateStep(record).detail).toMatch(/Docker reports it unhealthy|did not answer 200 within 34 s/);
    expect(record.steps.find((s) => s.host && s.step === 'restore')).toMatchObject({ ok: true });
    expect(
      JSON.parse((await httpRequest(`${suite.set.poolUrl('green')}/version`, { agent: false })).body),
    ).toMatchObject({
      release: 'v0',
    });
  }, 240_000);

  test('the same app with --health-start-period 60s passes the gate and is promoted: exit 0, 0 failed', async () => {
    const { code, summary, record } = await release([
      '--release',
      'v3-slow',
      '--env',
      `START_DELAY_MS=${START_DELAY_MS}`,
      '--health-start-period',
      '60s',
      '--bake',
      '5s',
    ]);
    expect(code).toBe(0);
    expect(summary.failures).toEqual({});
    expect(record).toMatchObject({
      release: 'v3-slow',
      pool: 'green',
      state: 'promoted',
      options: { healthStartPeriodSeconds: 60 },
    });
    // Passed once the app answered, about 40 s in: probed every 200 ms, not at Docker's next check.
    expect(gateStep(record)).toMatchObject({ ok: true });
    expect(gateStep(record).detail).toMatch(
      /healthz answers 200 after \d+ ms \(probed every 200 ms, start period 60 s\)/,
    );
  }, 240_000);

  test("a pool recreated while a slow request is in flight on its own port: the request is answered within the pool's drain, then the pool runs the new release", async () => {
    // Blue is idle now (green was promoted). Its options: a 25 s drain.
    const names = parameterNames(suite.set.stage).pools.blue;
    await suite.stage.ssm.send(
      new PutParameterCommand({ Name: names.options, Value: '{"drainSeconds":25}', Type: 'String', Overwrite: true }),
    );
    await suite.set.setPool('blue', { release: 'd1', env: {} });
    const first = await suite.set.apply();
    expect(stepLines(first.stdout).filter((s) => s.pool === 'blue' && !s.ok)).toEqual([]);
    // 15 s: longer than the default drain (10 s), within this pool's.
    const slow = httpRequest(`${suite.set.poolUrl('blue')}/slow/report?ms=15000`, { agent: false, timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 500));
    await suite.set.setPool('blue', { release: 'd2' });
    const second = await suite.set.apply();
    const res = await slow;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ release: 'd1', waitedMs: 15_000 });
    expect(second.code).toBe(0);
    expect(stepLines(second.stdout).find((s) => s.pool === 'blue' && s.step === 'smoke')).toMatchObject({ ok: true });
  }, 180_000);
});
