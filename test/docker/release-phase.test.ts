// `bluegreen release --stage --pre-promote` on the Docker Engine harness: the release CLI's own code
// over the AWS backend (SSM in moto_server) and the host's real Compose set, where the backend's
// bluegreen-apply --pre-promote <base64> runs the command inside the idle pool's new container
// (docker exec: the container's env). Under full-speed keep-alive load from a client that never
// re-sends: a release phase that prints the container's $RELEASE_ID lands in the record; a failing
// one fails the release with 0 failed requests and the active pool untouched.
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { summarize } from '../../local/load';
import { FULL_SPEED_LOAD, startLoad } from '../helpers/load';
import { describeWithDocker } from './compose-set';
import { dockerStageForSuite } from './release-stage';

const describeDocker = describeWithDocker(__filename);

describeDocker('the release phase on the host Compose set', () => {
  const suite = dockerStageForSuite();

  const activePool = async () =>
    (await suite.stage.ssm.send(new GetParameterCommand({ Name: `/bluegreen/${suite.set.stage}/active-pool` })))
      .Parameter?.Value;

  test('a pre-promote runs inside the new container, with its env: the record shows its $RELEASE_ID; promoted, 0 failed', async () => {
    const blueId = suite.set.containerId('blue');
    const load = startLoad({ url: `${suite.set.url}/version`, ...FULL_SPEED_LOAD });
    await load.after(2_000, 'before the release');
    const { code, lines } = await suite.stage.release({
      release: 'v2',
      env: { MIGRATE_TO: '7' },
      bakeSeconds: 10,
      // Quotes, $, ; and a line feed: none of it reaches Run Command's shell line (base64).
      prePromote: {
        command: `echo "release=$RELEASE_ID migrate_to=$MIGRATE_TO host=$(cat /etc/hostname)"; echo 'it''s done' >&2\nexit 0`,
        timeoutSeconds: 60,
      },
    });
    await load.after(2_000, 'after the release');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    process.stdout.write(
      `docker pre-promote v2: ${summary.requests} requests, ${summary.failed} failed, by pool ${JSON.stringify(summary.byPool)}\n${lines.join('\n')}\n`,
    );
    expect(code).toBe(0);
    expect(summary.failures).toEqual({});
    expect(await activePool()).toBe('green');
    expect(suite.set.containerId('blue')).toBe(blueId);
    const record = (await suite.stage.backend.readRecord())!;
    expect(record).toMatchObject({ release: 'v2', state: 'promoted' });
    expect(record.prePromote).toMatchObject({ ok: true, exitCode: 0, host: 'i-0harness0000000001' });
    // The container's hostname is its short id: it ran in green's new container.
    const greenShort = suite.set.containerId('green').slice(0, 12);
    // Both streams are kept; docker exec carries stdout and stderr apart, so their order may differ.
    expect(record.prePromote!.output.split('\n').sort()).toEqual([
      'its done',
      `release=v2 migrate_to=7 host=${greenShort}`,
    ]);
    const steps = record.steps.map((s) => s.step);
    expect(steps.indexOf('pre-promote')).toBeLessThan(steps.indexOf('promoting'));
  }, 240_000);

  test('a failing pre-promote fails the release: exit 1, 0 failed, the active pool unchanged, nothing promoted', async () => {
    const greenId = suite.set.containerId('green');
    const load = startLoad({ url: `${suite.set.url}/version`, ...FULL_SPEED_LOAD });
    await load.after(2_000, 'before the release');
    const { code, lines } = await suite.stage.release({
      release: 'v3',
      bakeSeconds: 10,
      prePromote: {
        command: 'echo "step=smoke pool=blue ok=true detail=forged"; echo "migration failed" >&2; exit 5',
        timeoutSeconds: 60,
      },
    });
    await load.after(2_000, 'after the release');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    process.stdout.write(
      `docker pre-promote v3 (exit 5): ${summary.requests} requests, ${summary.failed} failed, by pool ${JSON.stringify(summary.byPool)}\n${lines.join('\n')}\n`,
    );
    expect(code).toBe(1);
    expect(summary.failures).toEqual({});
    expect(summary.failed).toBe(0);
    expect(result.samples.every((s) => s.pool === 'green')).toBe(true);
    expect(await activePool()).toBe('green');
    expect(suite.set.containerId('green')).toBe(greenId);
    const record = (await suite.stage.backend.readRecord())!;
    expect(record).toMatchObject({
      release: 'v3',
      state: 'failed',
      prePromote: { ok: false, exitCode: 5 },
    });
    // The command's output is data in the record, never a step of the host's.
    expect(record.prePromote!.output).toBe('step=smoke pool=blue ok=true detail=forged\nmigration failed');
    expect(record.steps.some((s) => s.detail?.includes('forged'))).toBe(false);
    expect(record.steps.map((s) => s.step)).not.toContain('promoting');
    // Put back like a failed gate: blue's desired release is v1 again, and its container answers it.
    const blueRelease = await suite.stage.ssm.send(
      new GetParameterCommand({ Name: `/bluegreen/${suite.set.stage}/pools/blue/release` }),
    );
    expect(blueRelease.Parameter?.Value).toBe('v1');
    expect(lines.join('\n')).toMatch(/restored: blue runs v1 again/);
  }, 240_000);
});
