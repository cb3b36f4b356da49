// `bluegreen release --stage` on the Docker Engine harness: the release CLI's own code over the AWS
// backend (SSM in moto_server), the host's real Compose set and bluegreen-apply, and the alert
// function's own code as the server-side guard reading nginx's access log (release-stage.ts). Under
// full-speed keep-alive load from a client that never re-sends: a good release is promoted and a
// bad one is rolled back by the guard, both with 0 failed requests; the active pool's container is
// never touched by a deploy step.
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { summarize } from '../../local/load';
import { FULL_SPEED_LOAD, startLoad } from '../helpers/load';
import { waitFor } from '../helpers/stack';
import { describeWithDocker } from './compose-set';
import { dockerStageForSuite } from './release-stage';

const describeDocker = describeWithDocker(__filename);

describeDocker('bluegreen release on the host Compose set', () => {
  const suite = dockerStageForSuite();

  const activePool = async () =>
    (await suite.stage.ssm.send(new GetParameterCommand({ Name: `/bluegreen/${suite.set.stage}/active-pool` })))
      .Parameter?.Value;

  test('a good release goes to the idle pool, is promoted and baked: exit 0, 0 failed, the old pool untouched', async () => {
    const blueId = suite.set.containerId('blue');
    const load = startLoad({ url: `${suite.set.url}/version`, ...FULL_SPEED_LOAD });
    await load.after(2_000, 'before the release');
    const { code, lines } = await suite.stage.release({ release: 'v2', bakeSeconds: 10 });
    await load.after(2_000, 'after the release');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    process.stdout.write(
      `docker release v2: ${summary.requests} requests, ${summary.failed} failed, by pool ${JSON.stringify(summary.byPool)}\n${lines.join('\n')}\n`,
    );
    expect(code).toBe(0);
    expect(summary.failures).toEqual({});
    expect(await activePool()).toBe('green');
    expect(suite.set.containerId('blue')).toBe(blueId); // the previous release still runs, untouched
    const record = (await suite.stage.backend.readRecord())!;
    expect(record).toMatchObject({ release: 'v2', pool: 'green', state: 'promoted', previousRelease: 'v1' });
    expect(record.steps.filter((s) => s.host).map((s) => `${s.step}:${s.ok}`)).toEqual(
      expect.arrayContaining(['recreate:true', 'health:true', 'smoke:true']),
    );
    expect(result.samples.slice(-200).every((s) => s.pool === 'green')).toBe(true);
  }, 240_000);

  test('a bad release (FAULT_RATE=0.2) is rolled back by the guard within the bake: exit 1, 0 failed, the previous release serves again', async () => {
    const greenId = suite.set.containerId('green');
    const load = startLoad({ url: `${suite.set.url}/version`, ...FULL_SPEED_LOAD });
    await load.after(2_000, 'before the release');
    const { code, lines } = await suite.stage.release({ release: 'v3', env: { FAULT_RATE: '0.2' }, bakeSeconds: 60 });
    // Rolled back → traffic back on green, which still runs v2.
    await waitFor(() => load.samples.slice(-200).every((s) => s.pool === 'green'), 'traffic back on green', 30_000);
    await load.after(2_000, 'after the rollback');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    process.stdout.write(
      `docker release v3 (FAULT_RATE=0.2): ${summary.requests} requests, ${summary.failed} failed, by pool ${JSON.stringify(summary.byPool)}\n${lines.join('\n')}\n`,
    );
    expect(code).toBe(1);
    expect(lines.join('\n')).toMatch(/ROLLED BACK by the guard/);
    expect(summary.failures).toEqual({});
    expect(await activePool()).toBe('green');
    expect(suite.set.containerId('green')).toBe(greenId);
    const record = (await suite.stage.backend.readRecord())!;
    expect(record).toMatchObject({
      release: 'v3',
      pool: 'blue',
      state: 'rolled-back',
      previousPool: 'green',
      previousRelease: 'v2',
    });
    expect(record.figures!.rate).toBeGreaterThan(0.02);
    expect(record.figures!.usersSaw5xx).toBe(0);
    expect(suite.stage.guardActions.map((g) => g.action)).toContain('rollback');
    // Within the bake: the rollback came long before the 60 s were over.
    expect(Date.parse(record.finishedAt!) - Date.parse(record.bakeUntil!)).toBeLessThan(-30_000);
  }, 240_000);
});
