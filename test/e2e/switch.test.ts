// Pool switch with the real scripts and real nginx: switch-pool.sh flips and sets the canary share
// through the switch dir with no reload; apply-upstream.sh is the tested, restorable reload path
// for real config changes.
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LogEntry, logEntryFor, readAccessLog, startTestStack, waitFor, workerPids } from '../helpers/stack';
import { startLoad, STRICT_CLIENT, TEST_LOAD } from '../helpers/load';
import { runLoad, summarize } from '../../local/load';
import { httpRequest } from '../../support/http';
import { NGINX_DIR } from '../../local/paths';
import { LocalStack } from '../../local/stack';
import { applyUpstream, runScript, switchEnv } from '../../local/switch';

let stack: LocalStack;
afterEach(async () => {
  await stack?.stop();
});

const SWITCH = path.join(NGINX_DIR, 'switch-pool.sh');
const upstreamConf = () => readFileSync(path.join(stack.state.confDir, 'upstream.conf'), 'utf8');
/** Everything in the switch dir, links with their targets: "nothing changed" is this, unchanged. */
const switchDirState = () =>
  readdirSync(stack.state.switchDir, { withFileTypes: true })
    .map((e) =>
      e.isSymbolicLink() ? `${e.name} -> ${readlinkSync(path.join(stack.state.switchDir, e.name))}` : e.name,
    )
    .sort();

async function servedBy(pool: string) {
  const res = await httpRequest(`${stack.url}/version`, { agent: false });
  return res.status === 200 && res.headers['x-app-pool'] === pool;
}

describe('flips (switch-pool.sh <pool>): a flag file, no reload', () => {
  test('blue → green → blue under concurrent load: 0 failed for a client that never re-sends, no reload, every line names its pools', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    const workers = workerPids(stack);
    const load = startLoad({ url: `${stack.url}/version`, ...TEST_LOAD, ...STRICT_CLIENT });
    const lastAre = (pool: string) => () =>
      load.samples.length > 20 && load.samples.slice(-20).every((s) => s.pool === pool);
    await load.after(50, 'before the first flip');

    const flips: Array<{ from: number; to: number }> = [];
    let before = Date.now();
    const toGreen = await stack.flip('green');
    flips.push({ from: before, to: Date.now() });
    expect(toGreen).toMatchObject({ code: 0, stderr: '' });
    expect(toGreen.stdout.trim()).toBe('switch-pool: active pool is now green (nginx reads it per request; no reload)');
    expect(stack.activePool()).toBe('green');
    await waitFor(lastAre('green'), 'traffic on green');
    await load.after(100, 'on green');
    before = Date.now();
    expect((await stack.flip('blue')).code).toBe(0);
    flips.push({ from: before, to: Date.now() });
    expect(stack.activePool()).toBe('blue');
    await waitFor(lastAre('blue'), 'traffic back on blue');
    await load.after(100, 'back on blue');
    const result = await load.finish();

    const summary = summarize(result.samples, result.durationMs);
    expect(summary.failures).toEqual({});
    expect(summary.byPool.green).toBeGreaterThan(0);
    expect(result.staleSocketRetries).toBe(0);
    // The same nginx workers served before, during and after: no reload, so no keep-alive
    // connection was closed under a client.
    expect(workerPids(stack)).toEqual(workers);
    // Every request was answered by the pool that was active for it: a planned switch, never a
    // failover; and each line's primary is its active pool (no canary).
    const { entries, malformed } = readAccessLog(stack);
    expect(malformed).toEqual([]);
    const served = entries.filter((e) => e.uri === '/version');
    expect(
      served.filter(
        (e) => !(e.pool === e.active_pool && e.primary_pool === e.active_pool && e.upstream_status === '200'),
      ),
    ).toEqual([]);
    // Each request names the pool active when it came in (lines are written when requests end, so
    // the log's own order interleaves around a flip): judged by start time, outside each flip's
    // window (plus nginx's cached-clock slack), blue before, green between, blue after.
    const SLACK_MS = 50;
    const startedAt = (e: (typeof served)[number]) => (e.msec ?? 0) * 1000 - e.request_time * 1000;
    const phase = (t: number) =>
      t < flips[0].from - SLACK_MS
        ? 0
        : t > flips[0].to + SLACK_MS && t < flips[1].from - SLACK_MS
          ? 1
          : t > flips[1].to + SLACK_MS
            ? 2
            : undefined;
    const byPhase: Array<typeof served> = [[], [], []];
    for (const e of served) {
      const p = phase(startedAt(e));
      if (p !== undefined) byPhase[p].push(e);
    }
    for (const [p, pool] of ['blue', 'green', 'blue'].entries()) {
      expect(byPhase[p].length).toBeGreaterThan(5);
      expect(byPhase[p].filter((e) => e.active_pool !== pool)).toEqual([]);
    }
  });

  test('12 flips under full-speed keep-alive load: 0 failed for a client that never re-sends', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    const workers = workerPids(stack);
    const load = runLoad({ url: `${stack.url}/version`, connections: 16, durationMs: 4_000, ...STRICT_CLIENT });
    const flipTimes: number[] = [];
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const result = await stack.flip(i % 2 === 0 ? 'green' : 'blue');
      expect(result.code).toBe(0);
      flipTimes.push(Date.now());
    }
    const result = await load;
    const summary = summarize(result.samples, result.durationMs);
    expect(summary.failures).toEqual({});
    expect(summary.failed).toBe(0);
    expect(result.staleSocketRetries).toBe(0);
    expect(workerPids(stack)).toEqual(workers);
    // Full speed, and the load was running across every flip (not before or after it).
    expect(summary.requests).toBeGreaterThan(2_000);
    const sentTimes = result.samples.map((s) => result.startedAt + s.sentAt);
    expect(Math.min(...sentTimes)).toBeLessThan(flipTimes[0]);
    expect(Math.max(...sentTimes)).toBeGreaterThan(flipTimes[flipTimes.length - 1]);
    expect(summary.byPool.blue).toBeGreaterThan(0);
    expect(summary.byPool.green).toBeGreaterThan(0);
  });

  test('an invalid pool is refused (exit 2), nothing changes and the active pool keeps serving', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    const before = switchDirState();
    for (const args of [['purple'], ['Green'], ['green', 'extra'], []]) {
      const result = await runScript(SWITCH, args, switchEnv(stack.state));
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('nothing changed');
    }
    const purple = await stack.flip('purple');
    expect(purple.stderr.trim()).toBe(
      "switch-pool: the pool must be blue or green, got 'purple'; nothing changed, nginx keeps serving as before",
    );
    expect(switchDirState()).toEqual(before);
    expect(await servedBy('blue')).toBe(true);
  });

  test('a missing or unset SWITCH_DIR is refused (exit 2)', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    const unset = await runScript(SWITCH, ['green'], { ...switchEnv(stack.state), SWITCH_DIR: '' });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('SWITCH_DIR is not set');
    // Under the stack's own state dir: a fixed path like /nonexistent/switch is shared by every run on
    // the machine, and anything that once created it (as root) turns this check into a flip.
    const absent = path.join(stack.state.prefix, 'no-such-switch-dir');
    const missing = await runScript(SWITCH, ['green'], { ...switchEnv(stack.state), SWITCH_DIR: absent });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`SWITCH_DIR '${absent}' is not a directory`);
    expect(await servedBy('blue')).toBe(true);
  });

  test('switching to the pool already active: "already", exit 0, nothing changed', async () => {
    stack = await startTestStack({ activePool: 'green' });
    const before = switchDirState();
    const result = await stack.flip('green');
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe('switch-pool: green is already the active pool; nothing changed');
    expect(switchDirState()).toEqual(before);
    expect((await stack.flip('blue')).code).toBe(0);
    expect((await stack.flip('blue')).stdout).toContain('blue is already the active pool');
  });

  test('two flips at once leave a consistent state', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    const results = await Promise.all([stack.flip('green'), stack.flip('green')]);
    expect(results.map((r) => r.code)).toEqual([0, 0]);
    expect(switchDirState()).toContain('green-active');
    expect(switchDirState().filter((name) => name.startsWith('.green-active'))).toEqual([]);
    await waitFor(() => servedBy('green'), 'green after concurrent flips');
    const res = await httpRequest(`${stack.url}/version`, { agent: false });
    expect(await logEntryFor(stack, res)).toMatchObject({ active_pool: 'green', primary_pool: 'green', pool: 'green' });
  });
});

// ---- canary ---------------------------------------------------------------------------------

/** nginx's ngx_murmur_hash2 (seed 0), what split_clients hashes $request_id with. */
function murmurHash2(text: string): number {
  const data = Buffer.from(text);
  let len = data.length;
  let h = len >>> 0;
  let i = 0;
  const M = 0x5bd1e995;
  while (len >= 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
    i += 4;
    len -= 4;
  }
  if (len === 3) h ^= data[i + 2] << 16;
  if (len >= 2) h ^= data[i + 1] << 8;
  if (len >= 1) {
    h ^= data[i];
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h >>> 0;
}

/** The bucket canary-buckets.conf gives a request id: 100 parts of 1% (the last takes the rest). */
function bucketOf(requestId: string): number {
  const part = Math.floor((100 * 0xffffffff) / 10000);
  return Math.min(99, Math.floor(murmurHash2(requestId) / part));
}

describe('canary (switch-pool.sh --canary N): a share of requests tries the idle pool first', () => {
  test('the share is right, request by request: exactly the requests in buckets 00…N-1 go to the idle pool first', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    const workers = workerPids(stack);
    const set = await stack.canary(20);
    expect(set).toMatchObject({ code: 0, stderr: '' });
    expect(set.stdout.trim()).toBe(
      'switch-pool: canary share is now 20% (was 0%): that share of requests tries the idle pool first, the active pool is its backup',
    );
    expect(stack.canaryPercent()).toBe(20);
    expect(readlinkSync(path.join(stack.state.switchDir, 'canary'))).toBe('.canary-20');
    expect(readdirSync(path.join(stack.state.switchDir, '.canary-20')).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => String(i).padStart(2, '0')),
    );

    const N = 2000;
    const result = await runLoad({
      url: `${stack.url}/version`,
      connections: 8,
      durationMs: 30_000,
      maxRequests: N,
      ...STRICT_CLIENT,
    });
    const summary = summarize(result.samples, result.durationMs);
    expect(summary.failed).toBe(0);
    const entries = await waitFor(() => {
      const lines = readAccessLog(stack).entries.filter((e) => e.uri === '/version');
      // The last N: the load's requests, not the start-up check's (sent before the canary was set).
      return lines.length > N ? lines.slice(-N) : undefined;
    }, `${N} access-log lines`);

    // Which requests are canary requests is fixed by their ids (split_clients is a hash), so the
    // expected share is computed from the ids and the check holds on every run.
    const canary = entries.filter((e) => bucketOf(e.request_id) < 20);
    expect(entries.filter((e) => e.primary_pool !== (bucketOf(e.request_id) < 20 ? 'green' : 'blue'))).toEqual([]);
    for (const e of entries) {
      expect(e.active_pool).toBe('blue');
      expect(e.pool).toBe(e.primary_pool);
    }
    // And the hash spreads the random ids evenly: 2000 draws at p = 0.2 have a standard deviation
    // of 0.9 points; 5 of them is a bound that a correct setup misses about once in 3 million runs.
    const share = canary.length / entries.length;
    expect(Math.abs(share - 0.2)).toBeLessThan(5 * Math.sqrt((0.2 * 0.8) / entries.length));
    expect(summary.byPool.green).toBe(canary.length);
    expect(workerPids(stack)).toEqual(workers);

    // Back to 0: every request tries the active pool first again.
    expect((await stack.canary(0)).stdout).toContain('canary share is now 0% (was 20%)');
    const after = await runLoad({
      url: `${stack.url}/version`,
      connections: 4,
      durationMs: 10_000,
      maxRequests: 200,
      ...STRICT_CLIENT,
    });
    expect(summarize(after.samples, after.durationMs).byPool).toEqual({ blue: 200 });
  });

  test('canary requests fail over to the active pool inside the request when the canary pool fails', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    expect((await stack.canary(50)).code).toBe(0);
    await stack.chaos('green', 'error');
    const result = await runLoad({
      url: `${stack.url}/version`,
      connections: 4,
      durationMs: 20_000,
      maxRequests: 400,
      ...STRICT_CLIENT,
    });
    const summary = summarize(result.samples, result.durationMs);
    expect(summary.failures).toEqual({});
    expect(summary.byPool).toEqual({ blue: 400 });
    await waitFor(
      () => readAccessLog(stack).entries.filter((e) => e.uri === '/version').length > 400,
      'the access-log lines',
    );
    const entries = readAccessLog(stack)
      .entries.filter((e) => e.uri === '/version')
      .slice(-400);
    const canary = entries.filter((e) => e.primary_pool === 'green');
    expect(canary.length).toBeGreaterThan(100);
    // Served by the active pool although green was their primary: the primary failed them.
    for (const e of canary) expect(e).toMatchObject({ status: 200, pool: 'blue', active_pool: 'blue' });
    // The first ones tried green and got its 500; once nginx marked green down (for canary requests
    // only), the rest went straight to the backup.
    expect(canary.filter((e) => e.upstream_status === '500, 200').length).toBeGreaterThan(0);
    // Requests whose primary is the active pool never touched green.
    for (const e of entries.filter((x) => x.primary_pool === 'blue')) expect(e.upstream_status).toBe('200');
  });

  test('a killed canary pool: canary requests answer from the active pool, 0 failed', async () => {
    stack = await startTestStack({ activePool: 'green' });
    expect((await stack.canary(30)).code).toBe(0);
    await stack.killPool('blue');
    const result = await runLoad({
      url: `${stack.url}/version`,
      connections: 4,
      durationMs: 20_000,
      maxRequests: 300,
      ...STRICT_CLIENT,
    });
    expect(summarize(result.samples, result.durationMs)).toMatchObject({ failed: 0, byPool: { green: 300 } });
  });

  test('bad shares are refused (exit 2) and change nothing; the same share again is "already"', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    expect((await stack.canary(10)).code).toBe(0);
    const before = switchDirState();
    for (const value of ['100', '-1', 'ten', '05', '1.5', '']) {
      const result = await stack.canary(value);
      expect(result.code).toBe(2);
      expect(result.stderr.trim()).toBe(
        `switch-pool: the canary share must be a whole number 0-99, got '${value}'; nothing changed`,
      );
    }
    const missing = await runScript(SWITCH, ['--canary'], switchEnv(stack.state));
    expect(missing.code).toBe(2);
    expect(switchDirState()).toEqual(before);
    expect((await stack.canary(10)).stdout.trim()).toBe('switch-pool: canary share is already 10%; nothing changed');
    expect(switchDirState()).toEqual(before);
  });

  test('a damaged bucket dir is rebuilt, and 99 works', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    expect((await stack.canary(99)).code).toBe(0);
    expect(readdirSync(path.join(stack.state.switchDir, '.canary-99'))).toHaveLength(99);
    expect((await stack.canary(5)).code).toBe(0);
    // A stray bucket file would make bucket 50 a canary bucket too.
    writeFileSync(path.join(stack.state.switchDir, '.canary-5', '50'), '');
    expect(readdirSync(path.join(stack.state.switchDir, '.canary-5'))).toHaveLength(6);
    expect((await stack.canary(0)).code).toBe(0);
    expect((await stack.canary(5)).code).toBe(0);
    expect(readdirSync(path.join(stack.state.switchDir, '.canary-5')).sort()).toEqual(['00', '01', '02', '03', '04']);
  });

  test('a flip with a canary on: the canary share goes to the new idle pool', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    expect((await stack.canary(50)).code).toBe(0);
    expect((await stack.flip('green')).code).toBe(0);
    const result = await runLoad({
      url: `${stack.url}/version`,
      connections: 4,
      durationMs: 20_000,
      maxRequests: 200,
      ...STRICT_CLIENT,
    });
    expect(summarize(result.samples, result.durationMs).failed).toBe(0);
    await waitFor(
      () => readAccessLog(stack).entries.filter((e) => e.uri === '/version').length > 200,
      'the access-log lines',
    );
    // The last 200: the load's requests, not the start-up check's.
    const entries: LogEntry[] = readAccessLog(stack)
      .entries.filter((e) => e.uri === '/version')
      .slice(-200);
    for (const e of entries) {
      expect(e.active_pool).toBe('green');
      expect(e.primary_pool).toBe(bucketOf(e.request_id) < 50 ? 'blue' : 'green');
    }
  });
});

// ---- apply-upstream.sh: real config changes, tested and restorable ----------------------------

describe('apply-upstream.sh: render, compare, nginx -t, reload; restore on failure', () => {
  test('unchanged config: exit 0, no reload', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    const workers = workerPids(stack);
    const result = await applyUpstream(stack.state);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout.trim()).toBe('apply-upstream: upstream.conf and routes.conf are unchanged; no reload');
    expect(workerPids(stack)).toEqual(workers);
  });

  test('a changed setting is tested and reloaded; the active pool and canary are untouched', async () => {
    stack = await startTestStack({ activePool: 'green' });
    expect((await stack.canary(10)).code).toBe(0);
    const workers = workerPids(stack);
    const result = await applyUpstream(stack.state, { MAX_FAILS: '3' });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(
      'apply-upstream: upstream.conf updated (config tested, nginx reloaded gracefully)',
    );
    expect(upstreamConf()).toContain('max_fails=3');
    await waitFor(() => workerPids(stack).every((pid) => !workers.includes(pid)), 'new nginx workers after the reload');
    expect(stack.activePool()).toBe('green');
    expect(stack.canaryPercent()).toBe(10);
    const res = await httpRequest(`${stack.url}/version`, { agent: false });
    expect(res.status).toBe(200);
    expect((await logEntryFor(stack, res)).active_pool).toBe('green');
  });

  test('a config nginx -t rejects is restored (exit 1) and the running config keeps serving', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    const before = upstreamConf();
    const workers = workerPids(stack);
    // keepalive 0 passes the renderer's checks but nginx refuses it: a failing `nginx -t`.
    const result = await applyUpstream(stack.state, { UPSTREAM_KEEPALIVE: '0' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/invalid value "0" in "keepalive" directive/);
    expect(result.stderr).toContain(
      'nginx -t rejected the new upstream.conf; restored the previous one, nginx keeps serving it',
    );
    expect(upstreamConf()).toBe(before);
    expect(workerPids(stack)).toEqual(workers);
    expect(await servedBy('blue')).toBe(true);
    // Nothing left behind: no lock, no temp files, and the next good apply goes through.
    expect(readdirSync(stack.state.confDir).filter((f) => f.startsWith('.'))).toEqual([]);
    expect((await applyUpstream(stack.state, { MAX_FAILS: '2' })).code).toBe(0);
    expect(upstreamConf()).toContain('max_fails=2');
  });

  test('bad input: exit 2, upstream.conf untouched, no reload', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    const before = upstreamConf();
    const workers = workerPids(stack);
    const bad = await applyUpstream(stack.state, { GREEN_UPSTREAM: 'green' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("render-upstream: GREEN_UPSTREAM must be host:port, got 'green'");
    expect(bad.stderr).toContain('apply-upstream: not applied: nginx keeps serving its current config');
    const args = await runScript(path.join(NGINX_DIR, 'apply-upstream.sh'), ['green'], switchEnv(stack.state));
    expect(args.code).toBe(2);
    expect(args.stderr).toContain('takes no arguments (flip pools with switch-pool.sh)');
    expect(upstreamConf()).toBe(before);
    expect(workerPids(stack)).toEqual(workers);
  });

  test('two applies at once are serialized and leave a consistent config', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    const results = await Promise.all([
      applyUpstream(stack.state, { MAX_FAILS: '4' }),
      applyUpstream(stack.state, { MAX_FAILS: '4' }),
    ]);
    expect(results.map((r) => r.code)).toEqual([0, 0]);
    expect(results.map((r) => r.stdout.trim()).sort()).toEqual([
      'apply-upstream: upstream.conf and routes.conf are unchanged; no reload',
      'apply-upstream: upstream.conf updated (config tested, nginx reloaded gracefully)',
    ]);
    expect(upstreamConf()).toContain('max_fails=4');
    await waitFor(() => servedBy('blue'), 'blue after concurrent applies');
  });
});
