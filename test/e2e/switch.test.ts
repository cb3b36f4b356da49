// Pool switch with the real switch script and real nginx: graceful, validated, idempotent.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { logEntryFor, readAccessLog, startTestStack, waitFor } from '../helpers/stack';
import { startLoad, TEST_LOAD } from '../helpers/load';
import { summarize } from '../../local/load';
import { httpRequest } from '../../local/http';
import { LocalStack } from '../../local/stack';
import { switchPool } from '../../local/switch';

let stack: LocalStack;
afterEach(async () => {
  await stack?.stop();
});

const upstreamConf = () => readFileSync(path.join(stack.state.confDir, 'upstream.conf'), 'utf8');
const workerPids = () =>
  execFileSync('ps', ['-o', 'pid=', '--ppid', String(stack.pid('nginx'))], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
    .sort();

async function servedBy(pool: string) {
  const res = await httpRequest(`${stack.url}/version`, { agent: false });
  return res.status === 200 && res.headers['x-app-pool'] === pool;
}

test('flip blue → green → blue under concurrent load: zero failed requests', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const load = startLoad({ url: `${stack.url}/version`, ...TEST_LOAD });
  const lastAre = (pool: string) => () => load.samples.length > 20 && load.samples.slice(-20).every((s) => s.pool === pool);
  await load.after(50, 'before the first flip');

  expect((await stack.flip('green')).code).toBe(0);
  await waitFor(lastAre('green'), 'traffic on green');
  expect((await stack.flip('blue')).code).toBe(0);
  await waitFor(lastAre('blue'), 'traffic back on blue');
  const result = await load.finish();

  const summary = summarize(result.samples, result.durationMs);
  expect(summary.failures).toEqual({});
  expect(summary.byPool.green).toBeGreaterThan(0);
  // A reload closes idle keep-alive connections; a request that crossed such a close is re-sent
  // on a fresh connection (RFC 9110 §9.2.2), at most once per connection per reload.
  expect(result.staleSocketRetries).toBeLessThanOrEqual(TEST_LOAD.connections * 2);
  // Every request during the switch was answered by the pool nginx had as active: a planned
  // switch, never a failover (no attempt failed).
  const { entries, malformed } = readAccessLog(stack);
  expect(malformed).toEqual([]);
  const served = entries.filter((e) => e.uri === '/version');
  expect(served.every((e) => e.pool === e.active_pool && e.upstream_status === '200')).toBe(true);
  const order = served.map((e) => e.active_pool).filter((p, i, all) => i === 0 || all[i - 1] !== p);
  expect(order).toEqual(['blue', 'green', 'blue']);
});

test('an invalid pool is refused and the running config keeps serving', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const before = upstreamConf();
  const result = await stack.flip('purple');
  expect(result.code).toBe(2);
  expect(result.stderr).toContain("ACTIVE_POOL must be blue or green, got 'purple'");
  expect(result.stderr).toContain('nginx keeps serving its current config');
  expect(upstreamConf()).toBe(before);
  expect(await servedBy('blue')).toBe(true);
});

test('a config nginx -t rejects is rolled back and the running config keeps serving', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const before = upstreamConf();
  // keepalive 0 passes the renderer's checks but nginx refuses it: a failing `nginx -t`.
  const broken = { ...stack.state, upstreamEnv: { ...stack.state.upstreamEnv, UPSTREAM_KEEPALIVE: '0' } };
  const result = await switchPool(broken, 'green');
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/invalid value "0" in "keepalive" directive/);
  expect(result.stderr).toContain('nginx -t rejected the config');
  expect(upstreamConf()).toBe(before);
  expect(await servedBy('blue')).toBe(true);
  // Nothing left behind: the next good switch goes through.
  expect((await stack.flip('green')).code).toBe(0);
  await waitFor(() => servedBy('green'), 'green after a good flip');
});

test('switching to the pool already active changes nothing and does not reload', async () => {
  stack = await startTestStack({ activePool: 'green' });
  const workers = workerPids();
  const result = await stack.flip('green');
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('green is already the active pool; nothing changed, no reload');
  expect(workerPids()).toEqual(workers);
});

test('two flips at once are serialized and leave a consistent config', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const results = await Promise.all([stack.flip('green'), stack.flip('green')]);
  expect(results.map((r) => r.code)).toEqual([0, 0]);
  expect(upstreamConf()).toContain('# active_pool=green');
  await waitFor(() => servedBy('green'), 'green after concurrent flips');
  const res = await httpRequest(`${stack.url}/version`, { agent: false });
  expect((await logEntryFor(stack, res)).active_pool).toBe('green');
});
