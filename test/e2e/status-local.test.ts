// `bluegreen status` as an operator runs it: without a stage it describes the local stack (real
// `npm start`, the CLI as a real process); with a stage but no AWS region or credentials it is one
// line and exit 2, never a stack trace.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../local/paths';
import { readStackState } from '../../local/stack';
import { setCanary } from '../../local/switch';
import { npmStart, Started } from '../helpers/npm-start';
import { waitFor } from '../helpers/stack';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');

let stateDir: string;
let started: Started | undefined;

beforeEach(() => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-status-'));
});
afterEach(async () => {
  await started?.stop();
  started = undefined;
  rmSync(stateDir, { recursive: true, force: true });
});

/** A machine without AWS configuration: no region, no profile, an empty config file, no credentials. */
function noAwsEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('AWS_') || key === 'BLUEGREEN_STAGE') delete env[key];
  const config = path.join(stateDir, 'aws-config');
  writeFileSync(config, '');
  return {
    ...env,
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: path.join(stateDir, 'no-credentials'),
    // No instance metadata to ask on a laptop: do not wait for its timeouts.
    AWS_EC2_METADATA_DISABLED: 'true',
    // The SDK warns on Node < 22 that later versions will need 22: unrelated to the line under test.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    BLUEGREEN_STATE_DIR: stateDir,
    ...extra,
  };
}

async function cli(
  env: NodeJS.ProcessEnv,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env, cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** The value of one `key  value` row of status's output. */
function row(stdout: string, key: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith(`${key} `));
  if (line === undefined) throw new Error(`no "${key}" row in:\n${stdout}`);
  return line.slice(key.length).trim();
}

test('status without a stage describes the running local stack; after a flip it shows the new pool', async () => {
  started = await npmStart(stateDir, noAwsEnv({ RELEASE_ID_BLUE: 'b-7', RELEASE_ID_GREEN: 'g-9' }));
  await waitFor(() => started!.output().includes('ready:'), 'the ready line', 30_000);
  const env = started.env;
  const { ports } = started;

  const first = await cli(env, 'status');
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  expect(row(first.stdout, 'stack')).toBe(`local (${stateDir})`);
  expect(row(first.stdout, 'active pool')).toBe('blue');
  expect(row(first.stdout, 'canary')).toBe('0% (none)');
  expect(row(first.stdout, 'blue pool')).toBe(
    `release b-7, healthy (GET /healthz 200), http://127.0.0.1:${ports.blue}`,
  );
  expect(row(first.stdout, 'green pool')).toBe(
    `release g-9, healthy (GET /healthz 200), http://127.0.0.1:${ports.green}`,
  );
  expect(row(first.stdout, 'maintenance')).toBe('off');
  expect(row(first.stdout, 'last release')).toBe('none');
  expect(row(first.stdout, 'access log')).toBe(path.join(stateDir, 'logs', 'access.log'));
  expect(row(first.stdout, 'public URL')).toBe(`http://127.0.0.1:${ports.nginx}`);
  expect(row(first.stdout, 'endpoint now')).toMatch(/^200 from blue \(release b-7\) in \d+ ms$/);

  // A release to the idle pool (not promoted), then the flip: status follows both.
  expect((await cli(env, 'release', '--release', 'v2', '--no-promote')).code).toBe(0);
  expect((await cli(env, 'maintenance', 'on')).code).toBe(0);
  // A canary share left set (by hand, or a frozen canary): the flip ends it, since it would now send
  // that share to blue, the pool just left.
  expect((await setCanary(readStackState(stateDir)!, 10)).code).toBe(0);
  const waiting = await cli(env, 'status');
  expect(row(waiting.stdout, 'canary')).toBe('10% of requests try green first');
  expect(row(waiting.stdout, 'preview')).toMatch(/^on: requests carrying \S+-green-v2's token go to green only/);
  const flip = await cli(env, 'flip', 'green');
  expect(flip.code).toBe(0);
  expect(flip.stdout).toMatch(/canary share is now 0% \(was 10%\)/);
  const flipped = await cli(env, 'status');
  expect(flipped.code).toBe(0);
  expect(row(flipped.stdout, 'canary')).toBe('0% (none)');
  expect(row(flipped.stdout, 'preview')).toBe('none');
  expect(row(flipped.stdout, 'active pool')).toBe('green');
  // The release's figures: deployed idle and flipped by hand, so no promoted release to count.
  const stats = await cli(env, 'history', '--stats', '--since', '1d');
  expect(stats.code).toBe(0);
  expect(row(stats.stdout, 'releases')).toBe('1 started, 0 promoted, 0 reached users');
  expect(row(stats.stdout, 'change failure rate')).toBe('none reached users');
  expect(row(flipped.stdout, 'green pool')).toBe(
    `release v2, healthy (GET /healthz 200), http://127.0.0.1:${ports.green}`,
  );
  expect(row(flipped.stdout, 'maintenance')).toMatch(/^on\b/);
  expect(row(flipped.stdout, 'last release')).toMatch(/^\S+-green-v2: release v2 to green, deployed, \d{4}-\d\d-\d\dT/);
  expect(row(flipped.stdout, 'endpoint now')).toMatch(/^200 from green \(release v2\) in \d+ ms$/);

  // The active pool broken: status says so per pool; the entry still answers (failover), exit 0.
  expect((await cli(env, 'chaos', 'green', 'error')).code).toBe(0);
  const broken = await cli(env, 'status');
  expect(row(broken.stdout, 'green pool')).toBe(
    `release v2 (as the pool agent applied it; GET /version: status 500), unhealthy (GET /healthz 500), http://127.0.0.1:${ports.green}`,
  );
  expect(row(broken.stdout, 'endpoint now')).toMatch(/^200 from blue \(release b-7\) in \d+ ms$/);
  expect(broken.code).toBe(0);

  // Both broken: the entry answers 502, status exits 1.
  expect((await cli(env, 'chaos', 'blue', 'error')).code).toBe(0);
  const down = await cli(env, 'status');
  expect(row(down.stdout, 'blue pool')).toMatch(/unhealthy \(GET \/healthz 500\)/);
  expect(row(down.stdout, 'endpoint now')).toMatch(/^5\d\d /);
  expect(down.code).toBe(1);
}, 120_000);

test('status with no local stack running: one line, exit 2', async () => {
  const result = await cli(noAwsEnv(), 'status');
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim()).toBe(
    `bluegreen status: no local stack is running (no ${stateDir}/state.json): start one with npm start`,
  );
});

test('status with a state.json left by a supervisor that has exited: no local stack, exit 2', async () => {
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = child.pid!;
  await new Promise((r) => child.once('exit', r));
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(
    path.join(stateDir, 'state.json'),
    JSON.stringify({
      supervisorPid: pid,
      host: '127.0.0.1',
      ports: { nginx: 1, blue: 2, green: 3 },
      url: 'http://127.0.0.1:1',
    }),
  );
  const result = await cli(noAwsEnv(), 'status');
  expect(result.code).toBe(2);
  expect(result.stderr.trim()).toBe(
    `bluegreen status: no local stack is running (${stateDir}/state.json was left by process ${pid}, which has exited): start one with npm start`,
  );
});

test('status --region without a stage is bad input, not a silent local answer', async () => {
  const result = await cli(noAwsEnv(), 'status', '--region', 'eu-west-1');
  expect(result.code).toBe(2);
  expect(result.stderr.trim()).toBe(
    'bluegreen status: status takes no arguments without --stage, got "--region eu-west-1" (--region and --profile need --stage S or $BLUEGREEN_STAGE)',
  );
});

test.each([
  [['status', '--stage', 'x']],
  [['flip', 'green', '--stage', 'x']],
  [['maintenance', 'on', '--stage', 'x']],
  [['insights', 'traffic-by-release', '--stage', 'x']],
  [['history', '--stage', 'x']],
  [['release', '--release', 'v2', '--stage', 'x']],
])('%p with no AWS region: one line, exit 2, no stack trace', async (args) => {
  const result = await cli(noAwsEnv(), ...args);
  expect(result.stderr.trim()).toBe(
    `bluegreen ${args[0]}: no AWS region: pass --region or set AWS_REGION (or a region in the --profile's config)`,
  );
  expect(result.code).toBe(2);
});

test('$BLUEGREEN_STAGE names the stage too: status goes to AWS, no region is the same one line', async () => {
  const result = await cli(noAwsEnv({ BLUEGREEN_STAGE: 'x' }), 'status');
  expect(result.stderr.trim()).toBe(
    "bluegreen status: no AWS region: pass --region or set AWS_REGION (or a region in the --profile's config)",
  );
  expect(result.code).toBe(2);
});

test('status --stage with a region but no credentials: one line, exit 2', async () => {
  const result = await cli(noAwsEnv(), 'status', '--stage', 'x', '--region', 'us-east-1');
  expect(result.stderr.trim()).toMatch(
    /^bluegreen status: no AWS credentials: .+ \(pass --profile, or run aws configure \/ aws sso login\)$/,
  );
  expect(result.stderr).not.toMatch(/^\s+at /m);
  expect(result.code).toBe(2);
});
