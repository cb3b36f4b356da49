// `bluegreen logs` without a stage: the local stack's pool processes (real `npm start`) write their
// stdout/stderr to <state dir>/app-logs/<pool>.log with pool, release and host; the CLI (a real
// process) prints a line the app printed with its pool and release, narrows by pool (active/idle
// too), release and text, and refuses a bad flag in one line with exit 2.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../local/paths';
import { npmStart, Started } from '../helpers/npm-start';
import { waitFor } from '../helpers/stack';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');

let stateDir: string;
let started: Started | undefined;

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-app-logs-'));
  const env: NodeJS.ProcessEnv = { ...process.env, RELEASE_ID_BLUE: 'b-7', RELEASE_ID_GREEN: 'g-9' };
  delete env.BLUEGREEN_STAGE;
  started = await npmStart(stateDir, env);
  await waitFor(() => started!.output().includes('ready:'), 'the ready line', 30_000);
}, 60_000);
afterAll(async () => {
  await started?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

async function logs(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'logs', ...args], {
      env: started!.env,
      cwd: REPO_ROOT,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const lines = (stdout: string) => stdout.split('\n').filter(Boolean);
/** time pool release host text: the CLI's line. */
const LINE = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (blue|green) (\S+) (\S+) (.*)$/;

test("a line each pool app printed shows up with its pool, release and this host's name", async () => {
  const { code, stdout, stderr } = await logs();
  expect(stderr).toBe('');
  expect(code).toBe(0);
  const parsed = lines(stdout).map((l) => LINE.exec(l));
  expect(parsed.every(Boolean)).toBe(true);
  const listening = parsed.filter((m) => m![5].includes('"msg":"listening"'));
  expect(listening.map((m) => [m![2], m![3], m![4]]).sort()).toEqual([
    ['blue', 'b-7', os.hostname()],
    ['green', 'g-9', os.hostname()],
  ]);
  // The text is what the app printed, as it printed it.
  expect(JSON.parse(listening.find((m) => m![2] === 'blue')![5])).toMatchObject({
    msg: 'listening',
    pool: 'blue',
    release: 'b-7',
  });
});

test('--pool idle, --release and --grep narrow the lines', async () => {
  const idle = await logs('--pool', 'idle');
  expect(idle.code).toBe(0);
  expect(lines(idle.stdout).length).toBeGreaterThan(0);
  expect(lines(idle.stdout).every((l) => LINE.exec(l)![2] === 'green')).toBe(true);

  const release = await logs('--release', 'b-7', '--grep', '"listening"', '--since', '1h');
  expect(lines(release.stdout)).toHaveLength(1);
  expect(release.stdout).toMatch(/ blue b-7 /);

  const none = await logs('--grep', 'no app ever printed this');
  expect(none).toEqual({ code: 0, stdout: '', stderr: '' });
});

test("a release's new pool process logs under its own release id", async () => {
  const release = await new Promise<{ code: number | null; out: string }>((resolve) => {
    execFile(
      process.execPath,
      [BIN, 'release', '--release', 'g-10', '--no-promote'],
      { env: started!.env, cwd: REPO_ROOT },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
  expect(release.out).toContain('g-10');
  expect(release.code).toBe(0);
  const { stdout } = await logs('--release', 'g-10', '--pool', 'idle');
  const listening = lines(stdout).filter((l) => l.includes('"msg":"listening"'));
  expect(listening).toHaveLength(1);
  expect(LINE.exec(listening[0])!.slice(2, 4)).toEqual(['green', 'g-10']);
}, 90_000);

test.each([
  [['--pool', 'red'], /^bluegreen logs: --pool must be blue, green, active or idle, got "red"$/],
  [['--since', 'yesterday'], /^bluegreen logs: --since must be a duration/],
  [['--release', 'a b'], /^bluegreen logs: --release must be a release id/],
  [['--tail'], /^bluegreen logs: Unknown option '--tail'/],
])('bad input %j: one line, exit 2', async (args, message) => {
  const { code, stdout, stderr } = await logs(...args);
  expect(code).toBe(2);
  expect(stdout).toBe('');
  expect(lines(stderr)).toHaveLength(1);
  expect(stderr.trim()).toMatch(message);
});
