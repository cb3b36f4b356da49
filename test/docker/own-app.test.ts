// "Your own app on it", end to end on the Docker Engine harness (README "Your own app"): one stage
// (the host's real Compose set, its pool state in moto_server, the release CLI's own code, the
// alert function's own code as the guard, a local HTTP server as Slack), users' full-speed keep-alive
// load from a client that never re-sends, and:
//   1. the Python example app built by `release --build` (pushed to the harness's registry, pulled by
//      the host), given a secret set with `bluegreen secret set`, with a `--pre-promote` step:
//      promoted, 0 failed; the secret's value is inside the container and on no other surface;
//      `bluegreen logs --stage` shows a line the app printed;
//   2. a `--no-promote` release: a request carrying its preview token is answered by the new pool
//      while every user request is answered by the active one;
//   3. a failing `--pre-promote`: exit 1, 0 failed, the active pool unchanged;
//   4. an `--irreversible` bad release: frozen by the guard, not flipped back, paged on Slack.
import { ECRClient } from '@aws-sdk/client-ecr';
import { CloudWatchLogsClient, FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { logGroupNames, parameterNames } from '../../core/names';
import { PREVIEW_HEADER } from '../../core/preview';
import { summarize } from '../../local/load';
import { REPO_ROOT } from '../../local/paths';
import { formatHistory, historyRows } from '../../ops/release/history';
import { releaseCommand } from '../../ops/release/release-commands';
import { secretCommand } from '../../ops/secrets/commands';
import { httpRequest } from '../../support/http';
import { filesUnder } from '../helpers/files';
import { SlackReceiver } from '../helpers/slack-receiver';
import { FULL_SPEED_LOAD, startLoad } from '../helpers/load';
import { putParameters } from '../helpers/moto';
import { ledgerItems } from '../helpers/ledger';
import { waitFor } from '../helpers/stack';
import { ComposeSet, describeWithDocker, startComposeSet } from './compose-set';
import { DockerStage, slackForStage, startDockerStage } from './release-stage';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');
const EXAMPLE = path.join(REPO_ROOT, 'examples', 'python-app');
const REGISTRY_FILE = path.join(
  process.env.BLUEGREEN_HARNESS_CACHE ?? '/var/cache/bluegreen-harness',
  'registry-address',
);

const describeDocker = describeWithDocker(__filename);

const LOAD = { ...FULL_SPEED_LOAD, durationMs: 200_000 } as const;
// A value nothing else in the project would print by accident.
const DB_PASSWORD = 'pw-own-app-4Kd9-Vx2q-Mn7t';

describeDocker('your own app on the host Compose set: build, secret, release phase, preview, irreversible', () => {
  let set: ComposeSet;
  let stage: DockerStage;
  let ecr: ECRClient;
  let logs: CloudWatchLogsClient;
  let slack: SlackReceiver;
  const slackBodies = () => slack.received.map((r) => JSON.stringify(r.body));
  let registry: string;
  let repository: string;
  let dockerConfig: string;
  const cliLines: string[] = [];
  const awsEnv = () => ({ ...process.env, ...set.moto.env });

  beforeAll(async () => {
    if (!existsSync(REGISTRY_FILE))
      throw new Error(`no harness registry (${REGISTRY_FILE}): run test/docker/harness.sh again`);
    registry = readFileSync(REGISTRY_FILE, 'utf8').trim();
    dockerConfig = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-docker-config-'));
    set = await startComposeSet({ active: 'blue', releases: { blue: 'v1', green: 'v0' } });
    stage = await startDockerStage(set);
    // The CLI's SDK clients read the endpoint, region and credentials from the process environment.
    Object.assign(process.env, set.moto.env);
    const aws = {
      endpoint: set.moto.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    ecr = new ECRClient(aws);
    logs = new CloudWatchLogsClient(aws);
    repository = `${registry}/bluegreen-ownapp-${process.pid}`;
    const names = parameterNames(set.stage);
    await putParameters(set.moto, {
      [names.ecrRepository]: repository,
      [names.imagePlatform]: `linux/${process.arch === 'arm64' ? 'arm64' : 'amd64'}`,
    });
    slack = await slackForStage(stage);
  }, 240_000);
  afterAll(async () => {
    ecr?.destroy();
    logs?.destroy();
    await stage?.stop();
    await set?.down();
    await slack?.close();
    spawnSync('sh', ['-c', `docker images -q '${repository}' | xargs -r docker rmi -f`], { stdio: 'ignore' });
    if (dockerConfig) rmSync(dockerConfig, { recursive: true, force: true });
  }, 60_000);

  /** `bluegreen release --stage <stage> ARGS`: the command's own code, with this stage's parts. */
  const release = async (args: string[]) => {
    const lines: string[] = [];
    const code = await releaseCommand(
      ['--stage', set.stage, ...args],
      {},
      (l) => lines.push(l),
      () => {
        throw new Error('a stage is named: local mode is never asked');
      },
      undefined,
      {
        backend: stage.backend,
        imageBuild: (out) => ({
          ssm: stage.ssm,
          ecr,
          stage: set.stage,
          out,
          env: { ...process.env, DOCKER_CONFIG: dockerConfig },
        }),
      },
    );
    cliLines.push(...lines);
    return { code, lines, text: lines.join('\n') };
  };
  const secret = (args: string[], stdin = '') =>
    secretCommand(
      [...args, '--stage', set.stage],
      awsEnv(),
      (l) => cliLines.push(l),
      () => {
        throw new Error('no local store here');
      },
      { stdin: async () => stdin, stdinIsTerminal: false },
    );
  const activePool = async () =>
    (await stage.ssm.send(new GetParameterCommand({ Name: parameterNames(set.stage).activePool }))).Parameter?.Value;

  test('1. the Python example, built with --build, with a secret and a --pre-promote step: promoted, 0 failed; the secret only inside the container; bluegreen logs shows the app', async () => {
    expect(await secret(['set', 'DB_PASSWORD'], `${DB_PASSWORD}\n`)).toBe(0);
    const load = startLoad({ url: `${set.url}/version`, ...LOAD });
    await load.after(2_000, 'before the release');
    const { code, text } = await release([
      '--release',
      'py1',
      '--build',
      EXAMPLE,
      '--secret',
      'DB_PASSWORD',
      '--pre-promote',
      `python3 -c 'import os; print("migrated; the password has", len(os.environ["DB_PASSWORD"]), "characters")'`,
      '--bake',
      '10s',
    ]);
    await load.after(2_000, 'after the release');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    process.stdout.write(
      `own app py1 (--build, secret, pre-promote): ${summary.requests} requests, ${summary.failed} failed, by pool ${JSON.stringify(summary.byPool)}\n${text}\n`,
    );
    expect(code).toBe(0);
    expect(summary.failures).toEqual({});
    expect(await activePool()).toBe('green');
    const record = (await stage.backend.readRecord())!;
    expect(record).toMatchObject({ release: 'py1', image: `${repository}:py1`, pool: 'green', state: 'promoted' });
    expect(record.options?.secrets).toEqual({ DB_PASSWORD: '1' });
    expect(record.prePromote).toMatchObject({ ok: true, exitCode: 0 });
    expect(record.prePromote!.output).toBe(`migrated; the password has ${DB_PASSWORD.length} characters`);
    // The registry holds what the host pulled.
    const manifest = await httpRequest(`http://${registry}/v2/bluegreen-ownapp-${process.pid}/manifests/py1`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      agent: false,
      timeoutMs: 3_000,
    });
    expect(manifest.status).toBe(200);

    // The value: inside the new pool's container...
    const green = set.containerId('green');
    expect(execFileSync('docker', ['exec', green, 'env'], { encoding: 'utf8' })).toContain(
      `DB_PASSWORD=${DB_PASSWORD}\n`,
    );
    // ...and on no other surface.
    const recordVersions = await ledgerItems(set.moto, set.stage);
    // Every event of a group (the app logs a line per request: tens of thousands, several pages).
    const cloudWatch = async (group: string) => {
      const texts: string[] = [];
      let nextToken: string | undefined;
      for (let page = 0; page < 100; page++) {
        const res = await logs.send(new FilterLogEventsCommand({ logGroupName: group, nextToken }));
        for (const e of res.events ?? []) texts.push(`${e.logStreamName} ${e.message}`);
        nextToken = res.nextToken;
        if (!nextToken) break;
      }
      return texts.join('\n');
    };
    // The app's lines reach CloudWatch within the driver's 5 s flush.
    await waitFor(async () => (await cloudWatch(logGroupNames(set.stage).app)).includes('py1'), 'py1 app log', 30_000);
    const surfaces: Record<string, string> = {
      'release record, every stored version (the ledger: head, releases, events)': JSON.stringify(recordVersions),
      'bluegreen history': formatHistory(historyRows(await stage.backend.history(), Date.now())),
      'the CLI output (secret set, release)': cliLines.join('\n'),
      'Slack messages': slackBodies().join('\n'),
      'bluegreen-apply output (Run Command output)': stage.applyOutputs.join('\n'),
      'CloudWatch: the app log group': await cloudWatch(logGroupNames(set.stage).app),
      'docker logs of the three containers': ['blue', 'green', 'nginx']
        .map((p) =>
          execFileSync('docker', ['logs', set.containerId(p as 'blue')], { encoding: 'utf8', maxBuffer: 1 << 28 }),
        )
        .join('\n'),
    };
    for (const dir of [set.home, set.stateDir, set.logDir])
      for (const file of filesUnder(dir))
        surfaces[`file ${path.relative(path.dirname(set.home), file)}`] = readFileSync(file, 'latin1');
    const found = Object.entries(surfaces)
      .filter(([, t]) => t.includes(DB_PASSWORD))
      .map(([n]) => n);
    expect(found).toEqual([]);
    process.stdout.write(`the secret searched on ${Object.keys(surfaces).length} surfaces: found on none\n`);

    // A line the app printed, through `bluegreen logs --stage` (the CLI as a real process).
    let logLine = '';
    await waitFor(
      async () => {
        const { stdout } = await run(
          process.execPath,
          [BIN, 'logs', '--stage', set.stage, '--pool', 'active', '--release', 'py1', '--grep', 'request'],
          { env: { ...awsEnv(), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }, cwd: REPO_ROOT },
        );
        logLine = stdout.split('\n').find((l) => l.includes('"msg": "request"') || l.includes('"msg":"request"')) ?? '';
        return logLine !== '';
      },
      'bluegreen logs shows the app',
      45_000,
    );
    expect(logLine.split(' ').slice(1, 3)).toEqual(['green', 'py1']);
  }, 420_000);

  test("2. preview: with --no-promote, the token's requests are answered by the new pool, every user request by the active one", async () => {
    const load = startLoad({ url: `${set.url}/version`, ...LOAD });
    await load.after(2_000, 'before the release');
    const { code, text } = await release(['--release', 'py2', '--build', EXAMPLE, '--no-promote']);
    expect(code).toBe(0);
    const token = text.match(new RegExp(`${PREVIEW_HEADER}: ([A-Za-z0-9_-]{32})`))?.[1];
    expect(token).toBeDefined();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const previews: Array<{ status: number; pool?: string; release?: string }> = [];
    try {
      for (let i = 0; i < 50; i++) {
        const r = await httpRequest(`${set.url}/version`, {
          headers: { [PREVIEW_HEADER]: token! },
          agent,
          timeoutMs: 3_000,
        });
        previews.push({
          status: r.status,
          pool: r.headers['x-app-pool'] as string,
          release: r.headers['x-release-id'] as string,
        });
      }
    } finally {
      agent.destroy();
    }
    await load.after(1_000, 'after the previews');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    process.stdout.write(
      `own app py2 (--no-promote, preview): ${summary.requests} user requests, ${summary.failed} failed, by pool ${JSON.stringify(summary.byPool)}; 50 preview requests\n${text}\n`,
    );
    expect(summary.failures).toEqual({});
    expect(previews.every((p) => p.status === 200 && p.pool === 'blue' && p.release === 'py2')).toBe(true);
    expect(Object.keys(summary.byPool)).toEqual(['green']);
    expect(await activePool()).toBe('green');
  }, 300_000);

  test('3. a failing --pre-promote: exit 1, 0 failed, the active pool unchanged, nothing promoted', async () => {
    const greenId = set.containerId('green');
    const load = startLoad({ url: `${set.url}/version`, ...LOAD });
    await load.after(2_000, 'before the release');
    const { code, text } = await release([
      '--release',
      'py3',
      '--build',
      EXAMPLE,
      '--pre-promote',
      'echo "ALTER TABLE failed: lock timeout" >&2; exit 3',
    ]);
    await load.after(2_000, 'after the release');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    process.stdout.write(
      `own app py3 (failing pre-promote): ${summary.requests} requests, ${summary.failed} failed, by pool ${JSON.stringify(summary.byPool)}\n${text}\n`,
    );
    expect(code).toBe(1);
    expect(summary.failures).toEqual({});
    expect(Object.keys(summary.byPool)).toEqual(['green']);
    expect(await activePool()).toBe('green');
    expect(set.containerId('green')).toBe(greenId);
    const record = (await stage.backend.readRecord())!;
    expect(record).toMatchObject({ release: 'py3', state: 'failed' });
    expect(record.prePromote).toMatchObject({ ok: false, exitCode: 3, output: 'ALTER TABLE failed: lock timeout' });
  }, 300_000);

  test('4. an --irreversible bad release is frozen by the guard, not flipped back, and paged', async () => {
    const load = startLoad({ url: `${set.url}/version`, ...LOAD });
    await load.after(2_000, 'before the release');
    // The demo app (the host's own image) with a fifth of its answers failing.
    const { code, text } = await release([
      '--release',
      'v9-contract',
      '--env',
      'FAULT_RATE=0.2',
      '--irreversible',
      '--bake',
      '60s',
    ]);
    await load.after(2_000, 'after the release');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    process.stdout.write(
      `own app v9-contract (--irreversible, FAULT_RATE=0.2): ${summary.requests} requests, ${summary.failed} failed, by pool ${JSON.stringify(summary.byPool)}\n${text}\n`,
    );
    expect(code).toBe(4);
    expect(summary.failures).toEqual({});
    const record = (await stage.backend.readRecord())!;
    expect(record).toMatchObject({ release: 'v9-contract', pool: 'blue', state: 'frozen', irreversible: true });
    // Not flipped back: the frozen release stays the active pool (its failures retried on green).
    expect(await activePool()).toBe('blue');
    expect(stage.guardActions.map((g) => g.action)).not.toContain('rollback');
    await waitFor(() => slackBodies().some((b) => /frozen/i.test(b) && b.includes('v9-contract')), 'the page', 30_000);
  }, 300_000);
});
