// Pool generations (switch-pool.sh --fresh), with real nginx and real pool processes: a pool nginx
// marked failed (max_fails=1) and then redeployed is tried at once on its next generation, while
// without --fresh its requests go straight to the backup for fail_timeout; and a --fresh under
// keep-alive load fails no request (no reload).
import * as http from 'node:http';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { logEntryFor, readAccessLog, startTestStack, workerPids } from '../helpers/stack';
import { startLoad, STRICT_CLIENT, TEST_LOAD } from '../helpers/load';
import { summarize } from '../../local/load';
import { header, httpRequest } from '../../support/http';
import { LocalStack } from '../../local/stack';

let stack: LocalStack;
let agent: http.Agent | undefined;
afterEach(async () => {
  agent?.destroy();
  agent = undefined;
  await stack?.stop();
});

test('a redeployed pool nginx marked failed: without --fresh the backup answers, after --fresh the very next request is answered by it', async () => {
  // A fail_timeout far longer than the test: "still marked" never depends on how fast the machine is.
  stack = await startTestStack({ activePool: 'blue', upstreamEnv: { FAIL_TIMEOUT: '120s' } });
  // One kept-alive connection: every request reaches the same nginx worker, and passive health
  // state is per worker.
  agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = async () => {
    const res = await httpRequest(`${stack.url}/version`, { agent });
    return { res, entry: await logEntryFor(stack, res) };
  };
  const first = await get();
  expect(first.entry).toMatchObject({ pool: 'blue', upstream_status: '200', upstream_block: 'bluegreen_blue_a' });

  // The bad release: blue fails a request, nginx retries it on green and marks blue failed.
  await stack.chaos('blue', 'error');
  const failed = await get();
  expect(failed.res.reusedSocket).toBe(true);
  expect(failed.entry).toMatchObject({
    status: 200,
    pool: 'green',
    primary_pool: 'blue',
    upstream_status: '500, 200',
    upstream_block: 'bluegreen_blue_a',
  });

  // A good release replaces blue's process: healthy on its own port.
  await stack.restartPool('blue', { release: 'blue-r2' });
  expect(header(await httpRequest(`${stack.poolUrl('blue')}/version`, { agent: false }), 'x-release-id')).toBe(
    'blue-r2',
  );

  // Without --fresh: nginx still holds blue failed in this block, so the request is not even tried
  // on blue (one attempt, answered by green): the bug a guard would blame on the good release.
  const stale = await get();
  expect(stale.res.reusedSocket).toBe(true);
  expect(stale.entry).toMatchObject({
    pool: 'green',
    primary_pool: 'blue',
    upstream_status: '200',
    upstream_addr: `127.0.0.1:${stack.ports.green}`,
    upstream_block: 'bluegreen_blue_a',
  });

  const fresh = await stack.fresh('blue');
  expect(fresh).toMatchObject({ code: 0, stderr: '' });
  expect(fresh.stdout.trim()).toBe(
    'switch-pool: blue is now on generation b (was a): its requests go through upstream bluegreen_blue_b, the block it left longest ago, so what nginx marked failed on its old process stays behind (no reload)',
  );
  expect(readdirSync(stack.state.switchDir).filter((f) => f.startsWith('generation-'))).toEqual(['generation-blue-b']);

  // The very next request, same connection and worker: tried on blue, answered by the new release.
  const next = await get();
  expect(next.res.reusedSocket).toBe(true);
  expect(next.entry).toMatchObject({
    status: 200,
    pool: 'blue',
    release: 'blue-r2',
    primary_pool: 'blue',
    upstream_status: '200',
    upstream_addr: `127.0.0.1:${stack.ports.blue}`,
    upstream_block: 'bluegreen_blue_b',
  });
  // Green's generation is its own: untouched.
  expect(existsSync(path.join(stack.state.switchDir, 'generation-green-b'))).toBe(false);
});

test('the generation belongs to the pool, not to the active role: a canary request to a fresh idle pool uses its generation', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  expect((await stack.fresh('green')).code).toBe(0);
  expect((await stack.fresh('green')).code).toBe(0);
  expect((await stack.canary(99)).code).toBe(0);
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const res = await httpRequest(`${stack.url}/version`, { agent: false });
    const entry = await logEntryFor(stack, res);
    seen.add(`${entry.primary_pool} ${entry.upstream_block}`);
  }
  // 99 buckets of 100 go to green first (its third generation), the rest to blue (still its first).
  expect([...seen].every((s) => s === 'green bluegreen_green_c' || s === 'blue bluegreen_blue_a')).toBe(true);
  expect(seen.has('green bluegreen_green_c')).toBe(true);
});

test('--fresh under keep-alive load, on the active pool and the idle one, round the whole cycle: 0 failed, no reload', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const workers = workerPids(stack);
  const load = startLoad({ url: `${stack.url}/version`, ...TEST_LOAD, ...STRICT_CLIENT });
  await load.after(50, 'before the first --fresh');
  // Five on blue: a → b → c → d → a → b, each while requests are in flight on kept-alive connections.
  for (let i = 0; i < 5; i++) {
    const result = await stack.fresh('blue');
    expect(result.code).toBe(0);
    expect((await stack.fresh('green')).code).toBe(0);
    await load.after(60, `after --fresh number ${i + 1}`);
  }
  const result = await load.finish();
  const summary = summarize(result.samples, result.durationMs);
  expect(summary.failures).toEqual({});
  expect(summary.failed).toBe(0);
  expect(result.staleSocketRetries).toBe(0);
  expect(summary.byPool).toEqual({ blue: summary.requests });
  expect(workerPids(stack)).toEqual(workers);
  const { entries, malformed } = readAccessLog(stack);
  expect(malformed).toEqual([]);
  const served = entries.filter((e) => e.uri === '/version');
  // Every generation of blue served, every request by blue on its first attempt.
  expect(new Set(served.map((e) => e.upstream_block))).toEqual(
    new Set(['bluegreen_blue_a', 'bluegreen_blue_b', 'bluegreen_blue_c', 'bluegreen_blue_d']),
  );
  expect(served.filter((e) => e.pool !== 'blue' || e.upstream_status !== '200')).toEqual([]);
  expect(readdirSync(stack.state.switchDir).filter((f) => f.startsWith('generation-'))).toEqual([
    'generation-blue-b',
    'generation-green-b',
  ]);
});

test('--fresh refuses anything but a pool (exit 2); stray flags are cleaned up without changing what nginx sees', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  for (const arg of ['x', '', 'blue green', 'blue\n']) {
    const result = await stack.fresh(arg);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^switch-pool: [\s\S]*nothing changed\n$/);
  }
  expect(readdirSync(stack.state.switchDir).filter((f) => f.startsWith('generation-'))).toEqual([]);

  // Two flags (a run killed half-way, a hand edit): nginx takes the last generation found, d.
  for (const g of ['b', 'd']) writeFileSync(path.join(stack.state.switchDir, `generation-blue-${g}`), '');
  const before = await logEntryFor(stack, await httpRequest(`${stack.url}/version`, { agent: false }));
  expect(before.upstream_block).toBe('bluegreen_blue_d');
  const result = await stack.fresh('blue');
  expect(result.stdout).toContain('blue is now on generation a (was d)');
  expect(readdirSync(stack.state.switchDir).filter((f) => f.startsWith('generation-'))).toEqual([]);
  const after = await logEntryFor(stack, await httpRequest(`${stack.url}/version`, { agent: false }));
  expect(after).toMatchObject({ pool: 'blue', upstream_block: 'bluegreen_blue_a' });
});
