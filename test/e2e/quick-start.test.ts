// README's quick start, run as written: the block after "In another terminal" line by line against
// `npm start` (its own free ports and state dir; `127.0.0.1:8080` and `npx bluegreen` point at them),
// `&` lines in the background. Then the bad-release line once more without traffic: held, not promoted.
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { readLocalRecord } from '../../local/release-store';
import { npmStart, Started } from '../helpers/npm-start';
import { startSlackReceiver, SlackReceiver } from '../helpers/slack-receiver';
import { waitFor } from '../helpers/stack';

jest.setTimeout(12 * 60_000);

const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');

/** The quick start's second block: the commands a user types in another terminal. */
function quickStartLines(): string[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const from = readme.indexOf('In another terminal:');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(from))![1];
  return block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
}

let stateDir: string;
let started: Started;
let slack: SlackReceiver;

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-quickstart-'));
  slack = await startSlackReceiver();
  started = await npmStart(stateDir, { SLACK_WEBHOOK_URL: slack.url });
  await waitFor(() => started.output().includes('ready:'), 'npm start to be ready', 30_000);
}, 60_000);

afterAll(async () => {
  await started?.stop();
  await slack?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

interface Ran {
  line: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** One line as a shell runs it, with the README's port and `npx bluegreen` pointed at this stack. */
function sh(line: string): Ran {
  const command = line
    .replace(/&$/, '')
    .replace(/127\.0\.0\.1:8080/g, `127.0.0.1:${started.ports.nginx}`)
    .replace(/^npx bluegreen /, `"${process.execPath}" "${BIN}" `);
  const env = { ...started.env };
  delete env.BLUEGREEN_STAGE;
  const child = spawn('sh', ['-c', `exec ${command}`], { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { line, child, output: () => output, exited };
}

const BAD_RELEASE = /^npx bluegreen release --release v3 --env FAULT_RATE=0\.2 --bake 30s$/;

test('the quick start as written: every line does what its comment says; the bad release is rolled back, never PROMOTED', async () => {
  const lines = quickStartLines();
  expect(lines.some((l) => BAD_RELEASE.test(l))).toBe(true);
  const background: Ran[] = [];
  const ran: Array<{ line: string; code: number | null; out: string }> = [];
  for (const line of lines) {
    const r = sh(line);
    if (line.endsWith('&')) {
      background.push(r);
      continue;
    }
    ran.push({ line, code: await r.exited, out: r.output() });
  }
  for (const b of background) b.child.kill('SIGINT');
  const load = await Promise.all(background.map(async (b) => ({ code: await b.exited, out: b.output() })));

  const of = (re: RegExp) => ran.find((r) => re.test(r.line))!;
  for (const r of ran.filter((x) => !BAD_RELEASE.test(x.line)))
    expect({ line: r.line, code: r.code }).toEqual({ line: r.line, code: 0 });
  expect(of(/release --release v2$/).out).toMatch(/PROMOTED: v2 on blue/);
  const bad = of(BAD_RELEASE);
  expect({ code: bad.code, out: bad.out }).toEqual({
    code: 1,
    out: expect.stringContaining('ROLLED BACK by the guard'),
  });
  expect(bad.out).not.toContain('PROMOTED');
  expect(of(/history/).out).toMatch(/v3\s+all-at-once\s+rolled-back/);
  // The load line kept sending through both releases, and no request failed.
  expect(load).toHaveLength(1);
  expect(load[0].out).toMatch(/load: \d+ requests, 0 failed;/);
  expect(load[0].code).toBe(0);
});

test('the bad-release line without traffic: held (exit 3, paged in Slack), neither promoted nor rolled back', async () => {
  const line = quickStartLines().find((l) => BAD_RELEASE.test(l))!;
  const r = sh(line);
  const code = await r.exited;
  const out = r.output();
  expect(out).not.toContain('PROMOTED');
  expect(code).toBe(3);
  const record = readLocalRecord(stateDir)!;
  expect(record).toMatchObject({ release: 'v3', state: 'held', pool: 'green' });
  expect(out).toMatch(/HELD: v3 on green: inconclusive: 0 of the 50 requests the gate needs reached green/);
  expect(out).toContain(`bluegreen release promote ${record.id}`);
  expect(out).toContain('bluegreen flip blue');
  // The guard extended the 30 s bake to its maximum (4 × 30 s) before it held the release.
  expect(record.steps.map((s) => s.step)).toEqual(expect.arrayContaining(['bake-extended', 'held']));
  expect(Date.parse(record.maxBakeUntil!) - Date.parse(record.bakeUntil!)).toBe(90_000);
  await waitFor(
    () => slack.received.some((m) => JSON.stringify(m.body).includes('Release held')),
    'the page in Slack',
    10_000,
  );
});
