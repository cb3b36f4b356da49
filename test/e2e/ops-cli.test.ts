// The operator CLI against a "deployed" stage: SSM and Logs on moto_server, the public endpoint a
// real local stack, and the host's part played by the real bluegreen-apply, run when the parameter
// changes (as EventBridge → Run Command does on AWS). Every command runs as a real process.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CloudWatchLogsClient, CreateLogGroupCommand } from '@aws-sdk/client-cloudwatch-logs';
import { REPO_ROOT } from '../../local/paths';
import { LocalStack } from '../../local/stack';
import { runScript, switchEnv } from '../../local/switch';
import { parameterNames } from '../../core/names';
import { Moto, startMoto } from '../helpers/moto';
import { startTestStack } from '../helpers/stack';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');
const STAGE = 'ops';
const names = parameterNames(STAGE);

let moto: Moto;
let ssm: SSMClient;
let stack: LocalStack;
const hostStateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-ops-host-'));
beforeAll(async () => {
  moto = await startMoto();
  const config = {
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  ssm = new SSMClient(config);
  await new CloudWatchLogsClient(config).send(
    new CreateLogGroupCommand({ logGroupName: `/bluegreen/${STAGE}/nginx/access` }),
  );
  stack = await startTestStack({ activePool: 'blue' });
  const put = (Name: string, Value: string) =>
    ssm.send(new PutParameterCommand({ Name, Value, Type: 'String', Overwrite: true }));
  await put(names.activePool, 'blue');
  await put(names.maintenance, 'off');
  await put(names.canaryPercent, '0');
  await put(names.publicUrl, stack.url);
  await put(names.instanceId, 'i-0123456789abcdef0');
  await put(
    names.alertState,
    JSON.stringify({ hosts: {}, lastPosted: { 'failover:i-0123456789abcdef0': Date.parse('2026-11-22T10:00:00Z') } }),
  );
});
afterAll(async () => {
  await stack?.stop();
  await moto?.stop();
});

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...moto.env },
      cwd: REPO_ROOT,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** bluegreen-apply as the host runs it, minus the containers (this "host" is the local stack). */
const hostEnv = () => ({
  ...moto.env,
  ...switchEnv(stack.state),
  STAGE,
  BLUEGREEN_HOME: REPO_ROOT,
  BLUEGREEN_ENV_FILE: '/nonexistent',
  BLUEGREEN_MANAGE_POOLS: 'no',
  BLUEGREEN_STATE_DIR: hostStateDir,
});

/** The host: applies the parameter whenever it changes, like the EventBridge → Run Command path. */
function simulateHost() {
  let last = 'blue';
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const value = (await ssm.send(new GetParameterCommand({ Name: names.activePool }))).Parameter?.Value;
      if (value && value !== last) {
        last = value;
        await runScript(path.join(REPO_ROOT, 'userdata', 'bluegreen-apply.sh'), [], hostEnv());
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

test('flip --stage: writes SSM, the host applies it, the CLI confirms it on the public endpoint; a canary share left set ends', async () => {
  // Left by a frozen canary, say: after the flip it would send 10% to blue, the pool just left.
  await ssm.send(new PutParameterCommand({ Name: names.canaryPercent, Value: '10', Type: 'String', Overwrite: true }));
  const stopHost = simulateHost();
  try {
    const result = await cli('flip', 'green', '--stage', STAGE, '--timeout', '30');
    expect(result.stdout).toContain(`${names.activePool}: blue → green`);
    expect(result.stdout).toContain(`${names.canaryPercent}: 10 → 0 (after a flip the share would go to blue)`);
    expect((await ssm.send(new GetParameterCommand({ Name: names.canaryPercent }))).Parameter?.Value).toBe('0');
    expect(result.stdout).toMatch(
      new RegExp(`confirmed: ${stack.url.replace(/[.]/g, '\\.')} is answered by green after [\\d.]+ s`),
    );
    expect(result.code).toBe(0);
  } finally {
    await stopHost();
  }
});

test('status --stage: parameter, maintenance, host, what the endpoint answers, last alerts', async () => {
  const result = await cli('status', '--stage', STAGE);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/^stage\s+ops$/m);
  expect(result.stdout).toMatch(/^active pool\s+(blue|green)$/m);
  expect(result.stdout).toMatch(/^maintenance\s+off$/m);
  expect(result.stdout).toMatch(/^host\s+i-0123456789abcdef0$/m);
  expect(result.stdout).toMatch(/^endpoint now\s+200 from (blue|green) \(release (blue|green)-r1\) in \d+ ms$/m);
  expect(result.stdout).toMatch(/^last alerts\s+failover:i-0123456789abcdef0 at 2026-11-22T10:00:00.000Z$/m);
});

test('flip --stage without a host applying it: not confirmed, exit 1, says why', async () => {
  const result = await cli('flip', 'blue', '--stage', STAGE, '--timeout', '3');
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/flip not confirmed: not confirmed within 3 s: .* does not answer from blue/);
  // Put things back for the next tests.
  await runScript(path.join(REPO_ROOT, 'userdata', 'bluegreen-apply.sh'), [], hostEnv());
});

test('maintenance on|off --stage sets the parameter', async () => {
  expect((await cli('maintenance', 'on', '--stage', STAGE)).stdout).toContain(`${names.maintenance} = on`);
  expect((await ssm.send(new GetParameterCommand({ Name: names.maintenance }))).Parameter?.Value).toBe('on');
  await cli('maintenance', 'off', '--stage', STAGE);
  expect((await ssm.send(new GetParameterCommand({ Name: names.maintenance }))).Parameter?.Value).toBe('off');
});

test('insights --stage runs the saved query through StartQuery/GetQueryResults', async () => {
  const result = await cli('insights', 'traffic-by-release', '--since', '1h', '--stage', STAGE);
  expect(result.code).toBe(0);
  expect(result.stdout.trim()).toBe('(no rows)');
});

test.each([
  [['flip', 'purple', '--stage', STAGE], 'bluegreen flip: pool must be one of blue|green, got "purple"'],
  [['insights', 'nope', '--stage', STAGE], 'bluegreen insights: unknown query "nope"; one of: error-rate-by-pool'],
  [
    ['insights', 'latency-by-pool', '--since', 'yesterday', '--stage', STAGE],
    'bluegreen insights: --since must look like 30m, 1h or 2d',
  ],
  [['status', '--stage', 'Bad_Stage'], 'bluegreen status: --stage must be a stage name like prod'],
  [
    ['maintenance', 'maybe', '--stage', STAGE],
    'bluegreen maintenance: usage: bluegreen maintenance <on|off> --stage S',
  ],
])('bad input %p: exit 2 and one line', async (args, message) => {
  const result = await cli(...args);
  expect(result.code).toBe(2);
  expect(result.stderr).toContain(message);
});

test.each(['start', 'flip', 'status', 'maintenance', 'insights', 'chaos', 'check'])(
  '%s --help prints its usage, exit 0',
  async (command) => {
    const result = await cli(command, '--help');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: bluegreen /);
  },
);
