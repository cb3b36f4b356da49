// `bluegreen release` end to end in local mode: `npm start` (real nginx, two pool processes, the pool
// agent and the release guard in the supervisor) and the release CLI as a real process, under
// full-speed keep-alive load from a client that never re-sends. One stack for the file; the cases
// run in order and each leaves the stack in a known state (active pool, releases) for the next.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAccessLogLine, AccessLogEntry } from '../../core/access-log';
import type { ReleaseRecord } from '../../core/release-record';
import { header, httpRequest } from '../../support/http';
import { LoadResult, summarize } from '../../local/load';
import { readActivePool } from '../../local/switch';
import { readApplied, readDesired, readLocalRecord } from '../../local/release-store';
import { startLoad } from '../helpers/load';
import { cliAgainst, npmStart, Started } from '../helpers/npm-start';
import { waitFor } from '../helpers/stack';

jest.setTimeout(90_000);

let stateDir: string;
let started: Started;
let url: string;

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-release-'));
  started = await npmStart(stateDir, {
    RELEASE_ID_BLUE: 'r1',
    RELEASE_ID_GREEN: 'g1',
    RELEASE_HEALTH_TIMEOUT_SECONDS: '3',
    ACTIVE_POOL: 'blue',
  });
  await waitFor(() => started.output().includes('ready:'), 'npm start to be ready', 30_000);
  url = `http://127.0.0.1:${started.ports.nginx}`;
}, 60_000);

afterAll(async () => {
  await started?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const cli = (...args: string[]) => cliAgainst(started, ...args);

const record = () => readLocalRecord(stateDir);
const active = () => readActivePool({ switchDir: path.join(stateDir, 'switch') });

function logEntries(): AccessLogEntry[] {
  return readFileSync(path.join(stateDir, 'logs', 'access.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => parseAccessLogLine(l))
    .flatMap((p) => (p.ok ? [p.entry] : []));
}

const stepAt = (r: ReleaseRecord, step: string) => Date.parse(r.steps.find((s) => s.step === step)!.at);

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

async function versionThroughNginx() {
  const res = await httpRequest(`${url}/version`, { agent: false });
  return { pool: header(res, 'x-app-pool'), release: header(res, 'x-release-id') };
}

test('(a) a good release, all at once, under full-speed load: exit 0, promoted, 0 failed, traffic on the new release', async () => {
  const { value, load } = await underLoad(async () => {
    const c = cli('release', '--release', 'r2', '--bake', '3s');
    return { code: await c.exited, out: c.output() };
  });
  expect(value.out).toContain('PROMOTED: r2 on green');
  expect(value.code).toBe(0);
  const summary = expectNoFailures(load);
  expect(record()).toMatchObject({
    pool: 'green',
    release: 'r2',
    state: 'promoted',
    previousPool: 'blue',
    previousRelease: 'r1',
    replacedRelease: 'g1',
  });
  expect(active()).toBe('green');
  expect(await versionThroughNginx()).toEqual({ pool: 'green', release: 'r2' });
  // The last requests of the run went to the new pool.
  expect(load.samples.slice(-100).every((s) => s.pool === 'green')).toBe(true);
  expect(summary.byPool.green).toBeGreaterThan(100);
  // One timestamped line per step.
  for (const step of ['deploy:', 'ok   restart', 'ok   health', 'ok   smoke', 'gate passed', 'promoted:', 'bake:'])
    expect(value.out).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z {2,}.*${step}`, 'm'));
});

test('(b) canary 10% then full: exit 0, promoted, 0 failed, about a tenth of the requests first sent to the canary', async () => {
  const { value, load } = await underLoad(async () => {
    const c = cli(
      'release',
      '--release',
      'r3',
      '--strategy',
      'canary',
      '--canary-percent',
      '10',
      '--canary-duration',
      '4s',
      '--bake',
      '3s',
    );
    return { code: await c.exited, out: c.output() };
  });
  expect(value.out).toContain('canary: 10% of requests go to blue first');
  expect(value.code).toBe(0);
  expectNoFailures(load);
  const r = record()!;
  expect(r).toMatchObject({ pool: 'blue', release: 'r3', state: 'promoted', strategy: 'canary', canaryPercent: 10 });
  expect(active()).toBe('blue');
  // The canary share as nginx logged it: requests while green was active, first sent to blue.
  const from = stepAt(r, 'canary') + 200;
  const to = stepAt(r, 'promote') - 300;
  const during = logEntries().filter((e) => e.msec! * 1000 > from && e.msec! * 1000 < to && e.active_pool === 'green');
  expect(during.length).toBeGreaterThan(500);
  const share = during.filter((e) => e.primary_pool === 'blue').length / during.length;
  expect(share).toBeGreaterThan(0.06);
  expect(share).toBeLessThan(0.14);
  // Canary requests were answered by the canary (r3), not failed over.
  expect(during.filter((e) => e.primary_pool === 'blue').every((e) => e.pool === 'blue' && e.release === 'r3')).toBe(
    true,
  );
});

test('(d) FAIL_HEALTHZ=1: never promoted, failed at the health gate, the idle pool restored to its previous release, 0 failed', async () => {
  const { value, load } = await underLoad(async () => {
    const c = cli('release', '--release', 'r4-nohealth', '--env', 'FAIL_HEALTHZ=1', '--bake', '3s');
    return { code: await c.exited, out: c.output() };
  });
  expect(value.code).toBe(1);
  expect(value.out).toContain('RUNBOOK.md#release-failed');
  expectNoFailures(load);
  const r = record()!;
  expect(r).toMatchObject({ pool: 'green', release: 'r4-nohealth', state: 'failed' });
  expect(r.reason).toMatch(/health gate/);
  expect(r.steps.find((s) => s.step === 'health')).toMatchObject({ ok: false, host: 'local' });
  expect(r.steps.some((s) => s.step === 'promote')).toBe(false);
  expect(active()).toBe('blue');
  expect(load.samples.every((s) => s.pool === 'blue')).toBe(true);
  // Restored: green runs what it ran before (r2, from case a), desired and applied.
  expect(readDesired(stateDir, 'green')).toMatchObject({ release: 'r2', env: {} });
  expect(readApplied(stateDir, 'green')).toMatchObject({ release: 'r2', ok: true });
  const res = await httpRequest(`http://127.0.0.1:${started.ports.green}/version`, { agent: false });
  expect(header(res, 'x-release-id')).toBe('r2');
});

test('(c) FAULT_RATE=0.2: promoted, then rolled back by the guard within the bake; 0 failed client requests; exit 1 with the figures', async () => {
  const began = Date.now();
  const { value, load } = await underLoad(async () => {
    const c = cli('release', '--release', 'r5-bad', '--env', 'FAULT_RATE=0.2', '--bake', '30s');
    return { code: await c.exited, out: c.output() };
  });
  expect(value.code).toBe(1);
  expect(value.out).toContain('ROLLED BACK by the guard');
  expect(value.out).toContain('RUNBOOK.md#release-rolled-back');
  expect(Date.now() - began).toBeLessThan(25_000);
  expectNoFailures(load);
  const r = record()!;
  expect(r).toMatchObject({ pool: 'green', release: 'r5-bad', state: 'rolled-back', previousPool: 'blue' });
  expect(r.figures!.requests).toBeGreaterThanOrEqual(20);
  expect(r.figures!.rate).toBeGreaterThan(0.02);
  expect(r.figures!.usersSaw5xx).toBe(0);
  expect(Date.parse(r.finishedAt!)).toBeLessThan(Date.parse(r.bakeUntil!));
  expect(active()).toBe('blue');
  expect(started.output()).toContain('release_rolled_back');
});

test('(e) the CLI SIGKILLed mid-bake of a bad release: the guard in npm start still rolls it back', async () => {
  // No traffic while the CLI runs, so the bake is still on when it dies.
  const c = cli('release', '--release', 'r6-bad', '--env', 'FAULT_RATE=0.2', '--bake', '60s');
  // Baking with the flip confirmed (the 'promote' step; 'promoting' is written before the flip).
  await waitFor(
    () =>
      record()?.release === 'r6-bad' &&
      record()?.state === 'baking' &&
      record()!.steps.some((s) => s.step === 'promote'),
    'the release to bake',
    30_000,
  );
  c.child.kill('SIGKILL');
  await c.exited;
  expect(active()).toBe('green');
  const load = startLoad({ url: `${url}/`, connections: 8, durationMs: 30_000, retryStaleSockets: false });
  await waitFor(() => record()?.state === 'rolled-back', 'the guard to roll back', 20_000);
  await load.after(1000, 'after the rollback');
  const result = await load.finish();
  expectNoFailures(result);
  expect(active()).toBe('blue');
  expect(record()).toMatchObject({ release: 'r6-bad', state: 'rolled-back' });
  expect(record()!.figures!.rate).toBeGreaterThan(0.02);
  expect((await versionThroughNginx()).pool).toBe('blue');
});

test('(f) the active pool, or a second release while one runs: exit 2 and nothing changed; history newest first', async () => {
  const files = () =>
    [readLocalRecord(stateDir), readDesired(stateDir, 'blue'), readDesired(stateDir, 'green')].map((x) =>
      JSON.stringify(x),
    );
  const before = files();
  const named = cli('release', '--release', 'r7', '--pool', 'blue');
  expect(await named.exited).toBe(2);
  expect(named.output()).toMatch(/--pool blue is the active pool/);
  expect(files()).toEqual(before);

  const first = cli(
    'release',
    '--release',
    'r8',
    '--strategy',
    'canary',
    '--canary-percent',
    '5',
    '--canary-duration',
    '6s',
    '--bake',
    '2s',
  );
  // Once the canary runs, the first release writes nothing for 6 s: what the second one must not touch.
  await waitFor(
    () =>
      record()?.release === 'r8' && record()?.state === 'verifying' && record()!.steps.some((s) => s.step === 'canary'),
    'the first release to run its canary',
    30_000,
  );
  const during = files();
  const second = cli('release', '--release', 'r9');
  expect(await second.exited).toBe(2);
  expect(second.output()).toMatch(/release .*-green-r8 is in progress/);
  expect(files()).toEqual(during);
  // Nobody sent r8 a request: no verdict without evidence. Its bake (2 s) was extended to 4 × 2 s,
  // then held: exit 3, neither promoted nor rolled back, the ways out printed.
  expect(await first.exited).toBe(3);
  expect(record()).toMatchObject({ release: 'r8', state: 'held' });
  // (The flip's own confirmation, a few requests through nginx, may be all it saw.)
  expect(record()!.figures!.judged).toBeLessThan(50);
  expect(record()!.figures!.minRequests).toBe(50);
  expect(first.output()).toContain('bake extended: bake extended until');
  expect(first.output()).toMatch(
    /HELD: r8 on green: inconclusive: \d+ of the 50 requests the gate needs reached green/,
  );
  expect(first.output()).toContain(`bluegreen release promote ${record()!.id}`);
  expect(started.output()).toMatch(/CRITICAL release_held: Release r8 HELD on green/);
  expect(active()).toBe('green');

  const history = cli('history');
  expect(await history.exited).toBe(0);
  const rows = history.output().trim().split('\n');
  expect(rows[0]).toMatch(/^ID\s+POOL\s+RELEASE\s+STRATEGY\s+OUTCOME\s+DURATION\s+REASON/);
  expect(rows.slice(1).map((l) => l.split(/\s+/)[2])).toEqual(['r8', 'r6-bad', 'r5-bad', 'r4-nohealth', 'r3', 'r2']);
  expect(
    rows.slice(1).map((l) => l.split(/\s+/).find((w) => ['promoted', 'rolled-back', 'failed', 'held'].includes(w))),
  ).toEqual(['held', 'rolled-back', 'rolled-back', 'failed', 'promoted', 'promoted']);

  // While r8 is held on the active pool, a new release is refused; flipping back is one way out.
  const refused = cli('release', '--release', 'r9');
  expect(await refused.exited).toBe(2);
  expect(refused.output()).toMatch(/is held .*bluegreen flip blue/);
  const flip = cli('flip', 'blue');
  expect(await flip.exited).toBe(0);
  expect(active()).toBe('blue');
});

test('(g) a bad release rolled back, then at once a good release to the same pool under load: promoted, 0 failed', async () => {
  // nginx marks green failed on the bad release's failures (max_fails=1, fail_timeout=5s, per
  // worker) and still holds it failed when the good release is promoted a few seconds later: those
  // requests go straight to blue and are not the good release's failures.
  const { value, load } = await underLoad(async () => {
    const bad = cli('release', '--release', 'r10-bad', '--env', 'FAULT_RATE=0.3', '--bake', '30s');
    const badCode = await bad.exited;
    const rolledBackAt = Date.now();
    const good = cli('release', '--release', 'r11', '--bake', '4s');
    return { badCode, bad: bad.output(), code: await good.exited, out: good.output(), rolledBackAt };
  });
  expect(value.badCode).toBe(1);
  expect(value.bad).toContain('ROLLED BACK by the guard');
  expect(value.out).toContain('PROMOTED: r11 on green');
  expect(value.code).toBe(0);
  expectNoFailures(load);
  const r = record()!;
  expect(r).toMatchObject({ release: 'r11', state: 'promoted', pool: 'green' });
  expect(r.figures!.failed).toBe(0);
  expect(r.figures!.judged).toBeGreaterThanOrEqual(50);
  // The promotion came within nginx's fail_timeout of the rollback: the scenario the gate once lost.
  expect(stepAt(r, 'promote') - value.rolledBackAt).toBeLessThan(30_000);
  expect(active()).toBe('green');
});

test('(h) DELAY_MS=600 (100× slower, inside the 1 s read timeout) under load: rolled back for latency, 0 failed', async () => {
  const { value, load } = await underLoad(async () => {
    const c = cli('release', '--release', 'r12-slow', '--env', 'DELAY_MS=600', '--bake', '30s');
    return { code: await c.exited, out: c.output() };
  });
  expect(value.code).toBe(1);
  expect(value.out).toContain('ROLLED BACK by the guard');
  expect(value.out).toMatch(/p99 6\d\d ms is \d+(\.\d)?× the previous release's/);
  expectNoFailures(load);
  const r = record()!;
  expect(r).toMatchObject({ release: 'r12-slow', state: 'rolled-back', pool: 'blue' });
  expect(r.figures!.failed).toBe(0);
  expect(r.figures!.latency!.p99Ms).toBeGreaterThanOrEqual(600);
  expect(r.figures!.baseline!.release).toBe('r11');
  expect(r.figures!.baseline!.p99Ms).toBeLessThan(200);
  expect(active()).toBe('green');
});
