// The release phase (--pre-promote) and --irreversible end to end in local mode: `npm start` (real
// nginx, two pool processes, the pool agent and the guard in the supervisor, Slack a real local HTTP
// server) and the release CLI as a real process, under full-speed keep-alive load from a client that
// never re-sends. The cases run in order on one stack; each says where it leaves the active pool.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ReleaseRecord } from '../../core/release-record';
import { LoadResult, summarize } from '../../local/load';
import { readActivePool } from '../../local/switch';
import { readApplied, readDesired, readLocalRecord } from '../../local/release-store';
import { startLoad } from '../helpers/load';
import { cliAgainst, npmStart, Started } from '../helpers/npm-start';
import { startSlackReceiver, SlackReceiver } from '../helpers/slack-receiver';
import { waitFor } from '../helpers/stack';

jest.setTimeout(90_000);

let stateDir: string;
let started: Started;
let url: string;
let slack: SlackReceiver;

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-release-phase-'));
  slack = await startSlackReceiver();
  started = await npmStart(stateDir, {
    RELEASE_ID_BLUE: 'r1',
    RELEASE_ID_GREEN: 'g1',
    RELEASE_HEALTH_TIMEOUT_SECONDS: '3',
    ACTIVE_POOL: 'blue',
    SLACK_WEBHOOK_URL: slack.url,
  });
  await waitFor(() => started.output().includes('ready:'), 'npm start to be ready', 30_000);
  url = `http://127.0.0.1:${started.ports.nginx}`;
}, 60_000);

afterAll(async () => {
  await started?.stop();
  await slack?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

const cli = (...args: string[]) => cliAgainst(started, ...args);
const record = () => readLocalRecord(stateDir)!;
const active = () => readActivePool({ switchDir: path.join(stateDir, 'switch') });
const stepNames = (r: ReleaseRecord) => r.steps.map((s) => s.step);

/** Full-speed keep-alive load without retries while `run` runs, plus 200 requests after it. */
async function underLoad<T>(run: () => Promise<T>): Promise<{ value: T; load: LoadResult }> {
  const load = startLoad({ url: `${url}/`, connections: 8, durationMs: 60_000, retryStaleSockets: false });
  await load.after(200, 'before the release');
  const value = await run();
  await load.after(200, 'after the release');
  return { value, load: await load.finish() };
}

function expectNoFailures(load: LoadResult) {
  const summary = summarize(load.samples, load.durationMs);
  expect(summary.failures).toEqual({});
  expect(summary.failed).toBe(0);
  expect(load.staleSocketRetries).toBe(0);
  expect(summary.requests).toBeGreaterThan(1000);
  return summary;
}

async function release(...args: string[]) {
  const c = cli('release', ...args);
  return { code: await c.exited, out: c.output() };
}

test('(a) a pre-promote that succeeds: run once in app/ with the new pool env, before the flip; its output in the record; promoted, 0 failed', async () => {
  const { value, load } = await underLoad(() =>
    release(
      '--release',
      'p2',
      '--env',
      'MIGRATE_TO=7',
      '--bake',
      '3s',
      '--pre-promote',
      'echo "migrating to $MIGRATE_TO for $RELEASE_ID on $APP_POOL in $(basename "$PWD")"; echo "applied: 3" >&2',
    ),
  );
  expect(value.out).toContain('PROMOTED: p2 on green');
  expect(value.code).toBe(0);
  expectNoFailures(load);
  const r = record();
  expect(r).toMatchObject({ release: 'p2', state: 'promoted', pool: 'green' });
  expect(r.prePromote).toMatchObject({ ok: true, exitCode: 0, host: 'local' });
  expect(r.prePromote!.output).toBe('migrating to 7 for p2 on green in app\napplied: 3');
  const steps = stepNames(r);
  expect(steps.indexOf('pre-promote')).toBeGreaterThan(steps.indexOf('gate'));
  expect(steps.indexOf('pre-promote')).toBeLessThan(steps.indexOf('promoting'));
  // Ran before the flip: the flip came after the command's step.
  const at = (step: string) => Date.parse(r.steps.find((s) => s.step === step)!.at);
  expect(at('promoting')).toBeGreaterThanOrEqual(at('pre-promote'));
  expect(value.out).toContain('    | migrating to 7 for p2 on green in app');
  expect(value.out).toMatch(/pre-promote ok: exit 0/);
  // history shows it
  const history = cli('history');
  expect(await history.exited).toBe(0);
  expect(history.output()).toMatch(
    /p2 .*promoted .*pre-promote exit 0 after [\d.]+ s on local, last line "applied: 3"/,
  );
  expect(active()).toBe('green');
});

test('(b) a failing pre-promote: exit 1, 0 failed requests, the active pool unchanged, nothing promoted, the idle pool put back', async () => {
  const { value, load } = await underLoad(() =>
    release(
      '--release',
      'p3-bad-migration',
      '--bake',
      '3s',
      '--pre-promote',
      'echo "ERROR: column exists" >&2; exit 3',
    ),
  );
  expect(value.code).toBe(1);
  expect(value.out).toContain('RUNBOOK.md#release-failed');
  expect(value.out).toContain('    | ERROR: column exists');
  const summary = expectNoFailures(load);
  // Nothing reached the new release: every request was answered by the active pool.
  expect(summary.byPool.blue ?? 0).toBe(0);
  expect(load.samples.every((s) => s.pool === 'green')).toBe(true);
  const r = record();
  expect(r).toMatchObject({
    release: 'p3-bad-migration',
    state: 'failed',
    pool: 'blue',
    prePromote: { ok: false, exitCode: 3, output: 'ERROR: column exists' },
  });
  expect(r.reason).toMatch(/^pre-promote failed \(exit 3/);
  expect(stepNames(r)).not.toContain('promoting');
  expect(stepNames(r)).not.toContain('canary');
  expect(active()).toBe('green');
  // Put back like a failed gate: blue runs what it ran before (r1).
  expect(readDesired(stateDir, 'blue')).toMatchObject({ release: 'r1' });
  expect(readApplied(stateDir, 'blue')).toMatchObject({ release: 'r1', ok: true });
});

test('(c) a pre-promote past its --pre-promote-timeout is killed and fails the release', async () => {
  const began = Date.now();
  const { code, out } = await release(
    '--release',
    'p4-slow',
    '--pre-promote',
    'echo started; sleep 60',
    '--pre-promote-timeout',
    '2s',
  );
  expect(code).toBe(1);
  expect(Date.now() - began).toBeLessThan(30_000);
  expect(record()).toMatchObject({ state: 'failed', prePromote: { ok: false, timedOut: true, output: 'started' } });
  expect(out).toMatch(/pre-promote failed \(timed out/);
  expect(active()).toBe('green');
});

test('(d) --irreversible and FAULT_RATE=0.2: frozen, not rolled back; exit 4; paged in Slack with the figures; 0 failed', async () => {
  const { value, load } = await underLoad(() =>
    release('--release', 'p5-one-way', '--irreversible', '--env', 'FAULT_RATE=0.2', '--bake', '30s'),
  );
  expect(value.code).toBe(4);
  expect(value.out).toContain('FROZEN by the guard');
  expect(value.out).toContain('RUNBOOK.md#release-frozen');
  expect(value.out).toContain('Fix forward');
  expectNoFailures(load);
  const r = record();
  expect(r).toMatchObject({ release: 'p5-one-way', state: 'frozen', pool: 'blue', irreversible: true });
  expect(r.figures!.rate).toBeGreaterThan(0.02);
  expect(r.figures!.usersSaw5xx).toBe(0);
  expect(stepNames(r)).not.toContain('rollback');
  // Never flipped back: the irreversible release stays active.
  expect(active()).toBe('blue');
  await waitFor(
    () => slack.received.some((m) => /FROZEN/.test(JSON.stringify(m.body))),
    'the frozen page to reach Slack',
    10_000,
  );
  const page = slack.received.find((m) => /FROZEN/.test(JSON.stringify(m.body)))!;
  const text = JSON.stringify(page.body);
  expect(page.body.attachments?.[0]?.color).toBe('#d32f2f');
  expect(text).toContain('p5-one-way');
  expect(text).toMatch(/blue failed \d+ of \d+ requests first sent to it/);
  expect(text).toMatch(/Fix forward: release the fix to the idle pool green/);
  expect(started.output()).toMatch(/CRITICAL release_frozen/);
  // history lists it as frozen
  const history = cli('history');
  expect(await history.exited).toBe(0);
  expect(history.output()).toMatch(/p5-one-way\s+\S+\s+frozen\s+\S+\s+irreversible; gate crossed/);
});
