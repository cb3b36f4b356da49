// The pools' app log on the real Compose set: the harness's dockerd ships each pool container's
// stdout/stderr with the awslogs driver to the set's moto_server (awslogs-endpoint), and
// `bluegreen logs --stage` (the CLI as a real process, its CloudWatch code path) prints a line the
// app printed with its pool, release and host. A release on a pool starts a stream of its own;
// `docker logs` keeps working (Docker's dual logging cache).
import { execFile, execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { APP_LOG_DRIVER, appLogStreamName } from '../../core/app-log';
import { logGroupNames } from '../../core/names';
import { REPO_ROOT } from '../../local/paths';
import { ComposeSet, describeWithDocker, startComposeSet } from './compose-set';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');

const describeDocker = describeWithDocker(__filename);

/** `bluegreen logs --stage <the set's stage> ...args`: stdout lines. */
async function stageLogs(set: ComposeSet, ...args: string[]): Promise<string[]> {
  const { stdout } = await run(process.execPath, [BIN, 'logs', '--stage', set.stage, ...args], {
    env: { ...process.env, ...set.moto.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    cwd: REPO_ROOT,
  });
  return stdout.split('\n').filter(Boolean);
}

/** Polls `bluegreen logs --stage` until a line matches (the driver sends a batch every 5 s). */
async function waitForLine(set: ComposeSet, match: RegExp, args: string[], timeoutMs = 45_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  for (;;) {
    last = await stageLogs(set, ...args);
    const hit = last.find((l) => match.test(l));
    if (hit) return hit;
    if (Date.now() > deadline)
      throw new Error(`no line matching ${match} within ${timeoutMs} ms; got:\n${last.join('\n')}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describeDocker('the pools app log on the Compose set (awslogs driver -> moto_server)', () => {
  let set: ComposeSet;
  beforeAll(async () => {
    set = await startComposeSet({ active: 'blue', releases: { blue: 'b-3', green: 'g-4' } });
  }, 240_000);
  afterAll(async () => {
    await set?.down();
  }, 60_000);

  test('each pool container logs with the awslogs driver, non-blocking, to its <pool>/<release>/<host> stream', () => {
    for (const [pool, release] of [
      ['blue', 'b-3'],
      ['green', 'g-4'],
    ] as const) {
      const config = JSON.parse(
        execFileSync('docker', ['inspect', '-f', '{{json .HostConfig.LogConfig}}', set.containerId(pool)], {
          encoding: 'utf8',
        }),
      ) as { Type: string; Config: Record<string, string> };
      expect(config).toEqual({
        Type: 'awslogs',
        Config: {
          'awslogs-group': logGroupNames(set.stage).app,
          'awslogs-stream': appLogStreamName({ pool, release, host: set.project }),
          'awslogs-region': set.env.AWS_REGION,
          'awslogs-endpoint': set.moto.endpoint,
          mode: APP_LOG_DRIVER.mode,
          'max-buffer-size': APP_LOG_DRIVER.maxBufferSize,
        },
      });
    }
  });

  test('bluegreen logs --stage prints the line the app printed, with its pool, release and host', async () => {
    const line = await waitForLine(set, /"msg":"listening"/, ['--pool', 'blue']);
    const m = /^(\S+) (\S+) (\S+) (\S+) (.*)$/.exec(line)!;
    expect(m.slice(2, 5)).toEqual(['blue', 'b-3', set.project]);
    expect(JSON.parse(m[5])).toMatchObject({ msg: 'listening', pool: 'blue', release: 'b-3' });
    // docker logs still answers from the dual logging cache.
    const local = execFileSync('docker', ['logs', set.containerId('blue')], { encoding: 'utf8' });
    expect(local).toContain('"msg":"listening"');
  }, 60_000);

  test("a release's container writes to a stream of its own: --release finds its lines", async () => {
    await set.setPool('green', { release: 'g-5' });
    const applied = await set.apply();
    expect(applied.code).toBe(0);
    const line = await waitForLine(set, /"msg":"listening"/, ['--release', 'g-5']);
    expect(line.split(' ').slice(1, 4)).toEqual(['green', 'g-5', set.project]);
    // The earlier release's lines stay in theirs.
    const before = await stageLogs(set, '--release', 'g-4');
    expect(before.every((l) => l.split(' ')[2] === 'g-4')).toBe(true);
    expect(before.length).toBeGreaterThan(0);
  }, 120_000);
});
