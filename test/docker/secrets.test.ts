// Secrets on the Docker Engine harness (README "Secrets"): `bluegreen secret set --stage` (the CLI's
// own command code against moto_server's SSM), a Secrets Manager reference, then `bluegreen release
// --stage` under full-speed keep-alive load from a client that never re-sends: 0 failed, and the new
// pool's container has both values in its environment. Each value is then searched for on every
// other surface an operator or a log reader sees, and found on none:
//   1. the release record (every item of the stage's ledger: its head, each release, every event)
//      and `bluegreen history`'s output;
//   2. everything the CLI printed (secret set / list, the release's lines);
//   3. the Slack messages the alert function posted (a local HTTP server stands in for Slack);
//   4. bluegreen-apply's output, stdout and stderr (what Run Command returns to the CLI);
//   5. every log: nginx's access and error logs, the containers' logs (docker logs);
//   6. every file under the host's dirs: BLUEGREEN_HOME (the Compose .env, conf/), the state dir
//      (pools/<pool>.env, .applied), the log dir.
// The one place it is, besides the container: the pool's env file on the tmpfs
// (BLUEGREEN_SECRETS_DIR), mode 0600, which Compose reads; and `docker inspect` shows it to root.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { summarize } from '../../local/load';
import { secretCommand } from '../../ops/secrets/commands';
import { formatHistory, historyRows } from '../../ops/release/history';
import { filesUnder } from '../helpers/files';
import { SlackReceiver } from '../helpers/slack-receiver';
import { FULL_SPEED_LOAD, startLoad } from '../helpers/load';
import { ledgerItems } from '../helpers/ledger';
import { ComposeSet, describeWithDocker, startComposeSet, stepLines } from './compose-set';
import { DockerStage, slackForStage, startDockerStage } from './release-stage';

const describeDocker = describeWithDocker(__filename);

// Values no other part of the test (or the project) would print by accident.
const DB_PASSWORD = 'pw-7Qx9-Zk2m-Lr8v-secret-value';
const API_KEY = 'ak-Hn4t-Wc6y-Pq1s-from-secrets-manager';

describeDocker('secrets on the host Compose set', () => {
  let set: ComposeSet;
  let stage: DockerStage;
  let slack: SlackReceiver;
  const slackBodies = () => slack.received.map((r) => JSON.stringify(r.body));
  const cliLines: string[] = [];
  let apiKey: { ARN: string; VersionId: string };
  const aws = (...args: string[]) =>
    JSON.parse(
      execFileSync('aws', [...args, '--output', 'json'], {
        env: { ...process.env, ...set.moto.env },
        encoding: 'utf8',
      }),
    ) as { ARN: string; VersionId: string };
  beforeAll(async () => {
    set = await startComposeSet({ active: 'blue', releases: { blue: 'v1', green: 'v0' } });
    stage = await startDockerStage(set);
    // The CLI's SDK clients read the endpoint, region and credentials from the process environment.
    Object.assign(process.env, set.moto.env);
    slack = await slackForStage(stage);
  }, 240_000);
  afterAll(async () => {
    await stage?.stop();
    await set?.down();
    await slack?.close();
  }, 60_000);

  const cli = (args: string[], stdin = '') =>
    secretCommand(
      [...args, '--stage', set.stage],
      { ...process.env, ...set.moto.env },
      (l) => cliLines.push(l),
      () => {
        throw new Error('no local store here');
      },
      { stdin: async () => stdin, stdinIsTerminal: false },
    );

  test('secret set, then a release under load: 0 failed; the container has the values; no other surface has them', async () => {
    expect(await cli(['set', 'DB_PASSWORD'], `${DB_PASSWORD}\n`)).toBe(0);
    // A Secrets Manager secret (JSON with a key), tagged for the stage as the host role requires.
    const created = aws(
      'secretsmanager',
      'create-secret',
      '--name',
      `dock/api-${process.pid}`,
      '--secret-string',
      JSON.stringify({ key: API_KEY, other: 'x' }),
      '--tags',
      `Key=BluegreenStage,Value=${set.stage}`,
    );
    apiKey = created;
    expect(await cli(['set', 'API_KEY', '--from-secrets-manager', `${created.ARN}:key`])).toBe(0);
    expect(await cli(['list'])).toBe(0);
    expect(cliLines.join('\n')).toMatch(/DB_PASSWORD\s+v1\s+parameter-store/);

    const greenBefore = set.containerId('green');
    const load = startLoad({ url: `${set.url}/version`, ...FULL_SPEED_LOAD });
    await load.after(2_000, 'before the release');
    const { code, lines } = await stage.release({ release: 'v2', bakeSeconds: 10 });
    cliLines.push(...lines);
    await load.after(2_000, 'after the release');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    process.stdout.write(
      `docker secrets release v2: ${summary.requests} requests, ${summary.failed} failed\n${lines.join('\n')}\n`,
    );
    expect(code).toBe(0);
    expect(summary.failures).toEqual({});
    expect(summary.failed).toBe(0);

    // Inside the new pool's container.
    const green = set.containerId('green');
    expect(green).not.toBe(greenBefore);
    const containerEnv = execFileSync('docker', ['exec', green, 'env'], { encoding: 'utf8' });
    expect(containerEnv).toContain(`DB_PASSWORD=${DB_PASSWORD}\n`);
    expect(containerEnv).toContain(`API_KEY=${API_KEY}\n`);

    // The record pins names and versions only: the Secrets Manager secret at the version that was
    // current when the release started.
    const record = (await stage.backend.readRecord())!;
    expect(record.options?.secrets).toEqual({ API_KEY: `${created.ARN}:key::${created.VersionId}`, DB_PASSWORD: '1' });

    // The one file that holds them: on the tmpfs, 0600.
    const secretsFile = path.join(set.env.BLUEGREEN_SECRETS_DIR, 'green.env');
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    expect(execFileSync('stat', ['-f', '-c', '%T', set.env.BLUEGREEN_SECRETS_DIR], { encoding: 'utf8' }).trim()).toBe(
      'tmpfs',
    );

    // Every other surface.
    const history = await ledgerItems(set.moto, set.stage);
    const surfaces: Record<string, string> = {
      'release record versions (the ledger: head, releases, events)': JSON.stringify(history),
      'bluegreen history': formatHistory(historyRows(await stage.backend.history(), Date.now())),
      'CLI output': cliLines.join('\n'),
      'Slack messages': slackBodies().join('\n'),
      'bluegreen-apply output': stage.applyOutputs.join('\n'),
      'container logs': ['blue', 'green', 'nginx']
        .map((p) => execFileSync('docker', ['logs', set.containerId(p as 'blue')], { encoding: 'utf8' }))
        .join('\n'),
    };
    for (const dir of [set.home, set.stateDir, set.logDir])
      for (const file of filesUnder(dir)) surfaces[file] = readFileSync(file, 'latin1');
    expect(stage.applyOutputs.join('\n')).toContain('step=secrets pool=green ok=true');
    const found = Object.entries(surfaces)
      .filter(([, text]) => text.includes(DB_PASSWORD) || text.includes(API_KEY))
      .map(([name]) => name);
    expect(found).toEqual([]);
    process.stdout.write(
      `searched ${Object.keys(surfaces).length} surfaces (${slack.received.length} Slack messages, ${stage.applyOutputs.length} bluegreen-apply runs)\n`,
    );
  }, 300_000);

  test('rotation: secret set v2 and a new Secrets Manager version, a release that fails its gate puts the pool back without them (its previous secrets file), a good one gives the new pool both while the previous pool keeps its pins, even when restarted without a release', async () => {
    const ROTATED = 'pw-rotated-Vb3n-Ty5u-second-value';
    const API_ROTATED = 'ak-rotated-Mm2k-Jh7g-second-version';
    expect(await cli(['set', 'DB_PASSWORD'], ROTATED)).toBe(0);
    const rotated = aws(
      'secretsmanager',
      'put-secret-value',
      '--secret-id',
      apiKey.ARN,
      '--secret-string',
      JSON.stringify({ key: API_ROTATED }),
    );
    expect(rotated.VersionId).not.toBe(apiKey.VersionId);
    const blueFile = path.join(set.env.BLUEGREEN_SECRETS_DIR, 'blue.env');
    const bad = await stage.release({ release: 'v3-bad', env: { FAIL_HEALTHZ: '1' }, bakeSeconds: 10 });
    expect(bad.code).toBe(1);
    expect(readFileSync(blueFile, 'utf8')).toBe('');
    const blueEnv = () => execFileSync('docker', ['exec', set.containerId('blue'), 'env'], { encoding: 'utf8' });
    expect(blueEnv()).not.toContain('DB_PASSWORD=');
    expect(blueEnv()).toContain('RELEASE_ID=v1\n');

    // Under load: the gate needs requests to judge the bake (without them the release is held).
    const load = startLoad({ url: `${set.url}/version`, ...FULL_SPEED_LOAD, connections: 4 });
    await load.after(1_000, 'before the release');
    const good = await stage.release({ release: 'v4', bakeSeconds: 5 });
    await load.after(1_000, 'after the release');
    const result = await load.finish();
    expect(good.code).toBe(0);
    expect(summarize(result.samples, result.durationMs).failed).toBe(0);
    expect(blueEnv()).toContain(`DB_PASSWORD=${ROTATED}\n`);
    expect(blueEnv()).toContain(`API_KEY=${API_ROTATED}\n`);
    const greenEnv = () => execFileSync('docker', ['exec', set.containerId('green'), 'env'], { encoding: 'utf8' });
    expect(greenEnv()).toContain(`DB_PASSWORD=${DB_PASSWORD}\n`);
    expect(greenEnv()).toContain(`API_KEY=${API_KEY}\n`);
    expect((await stage.backend.readRecord())!.options?.secrets).toEqual({
      API_KEY: `${apiKey.ARN}:key::${rotated.VersionId}`,
      DB_PASSWORD: '2',
    });

    // Green (idle, on v1's pins) loses its container; the per-minute run starts it again on what
    // it runs: the versions its release pinned, not the rotated ones.
    execFileSync('docker', ['rm', '-f', set.containerId('green')]);
    const restarted = await set.apply('--no-deploy');
    expect(restarted.stdout).toContain('step=secrets pool=green ok=true');
    expect(greenEnv()).toContain(`DB_PASSWORD=${DB_PASSWORD}\n`);
    expect(greenEnv()).toContain(`API_KEY=${API_KEY}\n`);
    const printed = [
      ...bad.lines,
      ...good.lines,
      ...stage.applyOutputs,
      restarted.stdout,
      restarted.stderr,
      ...cliLines,
    ].join('\n');
    for (const value of [ROTATED, DB_PASSWORD, API_KEY, API_ROTATED]) expect(printed).not.toContain(value);
  }, 300_000);
  // Last: it takes the set down and boots it again, as a reboot does (the tmpfs is empty then).
  test('a reboot whose first secrets fetch fails (the network or the credentials not up yet): the boot run tries again, both pools start with their pinned versions', async () => {
    const ROTATED = 'pw-rotated-Vb3n-Ty5u-second-value';
    const API_ROTATED = 'ak-rotated-Mm2k-Jh7g-second-version';
    await set.compose('down', '--timeout', '5');
    for (const pool of ['blue', 'green']) rmSync(path.join(set.env.BLUEGREEN_SECRETS_DIR, `${pool}.env`));
    // An aws CLI whose first decrypting call fails, as one does before the instance profile answers.
    const shim = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-aws-shim-'));
    const realAws = execFileSync('sh', ['-c', 'command -v aws'], { encoding: 'utf8' }).trim();
    writeFileSync(
      path.join(shim, 'aws'),
      `#!/bin/sh
case "$*" in
  *--with-decryption*)
    if [ ! -f "${shim}/failed" ]; then
      : > "${shim}/failed"
      echo 'Unable to locate credentials. You can configure credentials by running "aws configure".' >&2
      exit 253
    fi ;;
esac
exec ${realAws} "$@"
`,
      { mode: 0o755 },
    );
    try {
      const boot = await set.applyWith(
        { PATH: `${shim}:${process.env.PATH}`, BOOT_SECRETS_RETRY_SECONDS: '1 1' },
        '--no-reload',
      );
      await set.compose('up', '-d', '--wait', '--wait-timeout', '120');
      expect(boot.stdout).toMatch(
        /secrets of blue not fetched \(try 1\): .*Unable to locate credentials.*; trying again in 1 s/,
      );
      expect(stepLines(boot.stdout).filter((l) => l.step === 'secrets')).toEqual([
        expect.objectContaining({
          pool: 'blue',
          ok: true,
          detail: expect.stringMatching(/^fetched API_KEY@secrets-manager:[\w-]{8}, DB_PASSWORD@v2 into .* at try 2$/),
        }),
        expect.objectContaining({
          pool: 'green',
          ok: true,
          detail: expect.stringMatching(
            /^fetched API_KEY@secrets-manager:[\w-]{8}, DB_PASSWORD@v1 into \S+ \(tmpfs\)$/,
          ),
        }),
      ]);
      const env = (pool: 'blue' | 'green') =>
        execFileSync('docker', ['exec', set.containerId(pool), 'env'], { encoding: 'utf8' });
      expect(env('blue')).toContain(`DB_PASSWORD=${ROTATED}\n`);
      expect(env('blue')).toContain(`API_KEY=${API_ROTATED}\n`);
      expect(env('green')).toContain(`DB_PASSWORD=${DB_PASSWORD}\n`);
      expect(env('green')).toContain(`API_KEY=${API_KEY}\n`);
      const printed = `${boot.stdout}\n${boot.stderr}`;
      for (const value of [ROTATED, DB_PASSWORD, API_KEY, API_ROTATED]) expect(printed).not.toContain(value);
    } finally {
      rmSync(shim, { recursive: true, force: true });
    }
  }, 300_000);
});
