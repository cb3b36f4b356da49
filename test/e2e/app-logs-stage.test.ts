// `bluegreen logs --stage S` against CloudWatch Logs on moto_server: the stage's app log group with
// streams named as the awslogs driver on a host names them (<pool>/<release>/<host>). The CLI runs
// as a real process; --follow runs in-process with an abort signal (it polls until stopped).
import { CloudWatchLogsClient, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { appLogStreamName, AppLogSource } from '../../core/app-log';
import { logGroupNames, parameterNames } from '../../core/names';
import { REPO_ROOT } from '../../local/paths';
import { printStageAppLog } from '../../ops/app-logs';
import { createLogGroup, Moto, putParameters, startMoto } from '../helpers/moto';
import { waitFor } from '../helpers/stack';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');
const STAGE = 'logs';
const GROUP = logGroupNames(STAGE).app;

let moto: Moto;
let logs: CloudWatchLogsClient;

beforeAll(async () => {
  moto = await startMoto();
  logs = new CloudWatchLogsClient({
    endpoint: moto.endpoint,
    region: moto.env.AWS_REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  await createLogGroup(moto, GROUP);
  await putParameters(moto, { [parameterNames(STAGE).activePool]: 'green' });
}, 60_000);
afterAll(async () => {
  logs?.destroy();
  await moto?.stop();
});

const created = new Set<string>();
/** What the awslogs driver does for a container: its stream (once), then its lines. */
async function ship(source: AppLogSource, ...messages: Array<[number, string]>): Promise<void> {
  const logStreamName = appLogStreamName(source);
  if (!created.has(logStreamName)) {
    await logs.send(new CreateLogStreamCommand({ logGroupName: GROUP, logStreamName }));
    created.add(logStreamName);
  }
  await logs.send(
    new PutLogEventsCommand({
      logGroupName: GROUP,
      logStreamName,
      logEvents: messages.map(([timestamp, message]) => ({ timestamp, message })),
    }),
  );
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'logs', '--stage', STAGE, ...args], {
      env: { ...process.env, ...moto.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      cwd: REPO_ROOT,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const lines = (s: string) => s.split('\n').filter(Boolean);
const now = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();

test('prints each line with time, pool, release and host from its stream; narrows by pool, release and text', async () => {
  const blue = { pool: 'blue', release: 'r-41', host: 'i-0aaa' } as const;
  const green = { pool: 'green', release: 'r-42', host: 'i-0bbb' } as const;
  const greenOther = { pool: 'green', release: 'r-42', host: 'i-0ccc' } as const;
  await ship(blue, [now - 120_000, 'blue says hello'], [now - 60_000, 'blue: GET /version']);
  await ship(green, [now - 90_000, 'green: TypeError: boom']);
  await ship(greenOther, [now - 30_000, 'green on another host']);

  const all = await cli();
  expect(all.stderr).toBe('');
  expect(all.code).toBe(0);
  expect(lines(all.stdout)).toEqual([
    `${iso(now - 120_000)} blue r-41 i-0aaa blue says hello`,
    `${iso(now - 90_000)} green r-42 i-0bbb green: TypeError: boom`,
    `${iso(now - 60_000)} blue r-41 i-0aaa blue: GET /version`,
    `${iso(now - 30_000)} green r-42 i-0ccc green on another host`,
  ]);

  // active = green (the stage's active-pool parameter), on every host.
  const active = await cli('--pool', 'active');
  expect(lines(active.stdout).map((l) => l.split(' ').slice(1, 4).join(' '))).toEqual([
    'green r-42 i-0bbb',
    'green r-42 i-0ccc',
  ]);
  const idle = await cli('--pool', 'idle', '--release', 'r-41');
  expect(lines(idle.stdout)).toHaveLength(2);
  const release = await cli('--release', 'r-42', '--grep', 'TypeError');
  expect(lines(release.stdout)).toEqual([`${iso(now - 90_000)} green r-42 i-0bbb green: TypeError: boom`]);
  const recent = await cli('--since', '45s');
  expect(lines(recent.stdout)).toEqual([`${iso(now - 30_000)} green r-42 i-0ccc green on another host`]);
});

test('--follow prints new lines as they arrive (a late batch of another host too), each once, until stopped', async () => {
  const source = { pool: 'blue', release: 'r-50', host: 'i-0ddd' } as const;
  await ship(source, [now - 5000, 'before follow']);
  const printed: string[] = [];
  const abort = new AbortController();
  const following = printStageAppLog(
    { logs, logGroup: GROUP, pool: 'blue', release: 'r-50', startMs: now - 60_000 },
    (l) => printed.push(l),
    { signal: abort.signal, pollMs: 100 },
  );
  await waitFor(() => printed.length === 1, 'the line already there', 10_000);
  await ship(source, [now - 1000, 'after follow 1'], [now - 500, 'after follow 2']);
  await waitFor(() => printed.length === 3, 'the two new lines', 10_000);
  // Another host's batch arrives late, with a time before the newest line printed: still printed.
  await ship({ ...source, host: 'i-0eee' }, [now - 3000, 'late batch of another host']);
  await waitFor(() => printed.length === 4, 'the late line', 10_000);
  // A few more polls: nothing printed twice.
  await new Promise((r) => setTimeout(r, 400));
  abort.abort();
  await following;
  expect(printed.map((l) => l.split(' ').slice(3).join(' '))).toEqual([
    'i-0ddd before follow',
    'i-0ddd after follow 1',
    'i-0ddd after follow 2',
    'i-0eee late batch of another host',
  ]);
});

test('bad input: one line, exit 2, before any AWS call', async () => {
  const { code, stdout, stderr } = await cli('--pool', 'purple');
  expect(code).toBe(2);
  expect(stdout).toBe('');
  expect(lines(stderr)).toEqual(['bluegreen logs: --pool must be blue, green, active or idle, got "purple"']);
});
