// Per-stage timeouts and slow paths (SLOW_PATHS), with real nginx and real pool processes: a route
// that legitimately answers in 3 s succeeds when its prefix is listed, and without that fails over
// and ends as nginx's clean JSON 504, bounded; everything else keeps the default path's failover.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { httpRequest, HttpResponse } from '../../support/http';
import { LocalStack } from '../../local/stack';
import { applyUpstream } from '../../local/switch';
import { logEntryFor, startTestStack, waitFor, workerPids } from '../helpers/stack';

let stack: LocalStack;
afterEach(async () => {
  await stack?.stop();
});

/** Generous: a request must end well inside this, never hang (a loaded 2-core machine). */
const NO_HANG_MS = 15_000;
const get = (p: string): Promise<HttpResponse> =>
  httpRequest(`${stack.url}${p}`, { agent: false, timeoutMs: NO_HANG_MS });
const routesConf = () => readFileSync(path.join(stack.state.confDir, 'routes.conf'), 'utf8');

test('a route answering in 3 s succeeds when its prefix is listed: 200 from the primary, one attempt, no failover', async () => {
  stack = await startTestStack({ activePool: 'blue', upstreamEnv: { SLOW_PATHS: '/slow/:10s' } });
  const res = await get('/slow/report?ms=3000');
  expect(res.status).toBe(200);
  expect(res.headers['x-app-pool']).toBe('blue');
  expect(JSON.parse(res.body)).toMatchObject({ pool: 'blue', path: '/slow/report', waitedMs: 3000 });
  const entry = await logEntryFor(stack, res);
  expect(entry.upstream_status).toBe('200');
  expect(entry).toMatchObject({ pool: 'blue', active_pool: 'blue', primary_pool: 'blue', status: 200 });
  // The server-level headers apply to slow paths too.
  expect(res.headers['x-active-pool']).toBe('blue');
  expect(res.headers['x-request-id']).toBe(entry.request_id);
});

test('the same route without the setting: tried on both pools, then the clean JSON 504, no hang', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const res = await get('/slow/report?ms=3000');
  expect(res.status).toBe(504);
  expect(JSON.parse(res.body)).toMatchObject({
    error: 'gateway_timeout',
    status: 504,
    active_pool: 'blue',
    primary_pool: 'blue',
    upstream_status: '504, 504',
  });
  const entry = await logEntryFor(stack, res);
  expect(entry.upstream_status).toBe('504, 504');
  expect(entry.upstream_addr.split(', ').sort()).toEqual(
    [`127.0.0.1:${stack.ports.blue}`, `127.0.0.1:${stack.ports.green}`].sort(),
  );
  // Bounded by the default path's window: two attempts of connect + 1 s read, not 3 s each.
  expect(entry.request_time).toBeLessThan(3.5);
});

test('longest prefix wins; a slow request that times out is not re-run on the other pool; other paths keep their failover', async () => {
  stack = await startTestStack({ activePool: 'blue', upstreamEnv: { SLOW_PATHS: '/slow/:10s,/slow/strict/:4s' } });
  // /slow/strict/ has its own 4 s: a 4.5 s answer times out there, once, and is not retried on green.
  const strict = await get('/slow/strict/x?ms=4500');
  expect(strict.status).toBe(504);
  const strictEntry = await logEntryFor(stack, strict);
  expect(strictEntry.upstream_status).toBe('504');
  expect(strictEntry.upstream_addr).toBe(`127.0.0.1:${stack.ports.blue}`);
  // /slow/ has 10 s: the same wait succeeds (on green: blue sits out fail_timeout after its timeout).
  const slow = await get('/slow/x?ms=4500');
  expect(slow.status).toBe(200);
  expect((await logEntryFor(stack, slow)).upstream_status).toMatch(/^200$/);
  const version = await get('/version');
  expect(version.status).toBe(200);
});

test('a slow path keeps failover for quick failures: a 5xx on the primary is answered by the backup', async () => {
  stack = await startTestStack({ activePool: 'blue', upstreamEnv: { SLOW_PATHS: '/slow/:10s' } });
  await stack.chaos('blue', 'error');
  const res = await get('/slow/x?ms=100');
  expect(res.status).toBe(200);
  expect(res.headers['x-app-pool']).toBe('green');
  expect((await logEntryFor(stack, res)).upstream_status).toBe('500, 200');
});

test('the public port still refuses /chaos, and a flip moves slow paths too (no reload)', async () => {
  stack = await startTestStack({ activePool: 'blue', upstreamEnv: { SLOW_PATHS: '/slow/:10s,/chaos/:10s' } });
  expect((await httpRequest(`${stack.url}/chaos/start?mode=error`, { method: 'POST', agent: false })).status).toBe(403);
  const workers = workerPids(stack);
  expect((await stack.flip('green')).code).toBe(0);
  const res = await get('/slow/x?ms=100');
  expect(res.headers['x-app-pool']).toBe('green');
  expect(res.headers['x-active-pool']).toBe('green');
  expect(workerPids(stack)).toEqual(workers);
});

test('apply-upstream.sh: a new SLOW_PATHS is tested and reloaded; the same again changes nothing; a bad one is refused, the running config kept', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const before = routesConf();
  const workers = workerPids(stack);

  // A prefix that would close the location line and add a directive: refused before nginx sees it.
  const bad = await applyUpstream(stack.state, { SLOW_PATHS: '/slow/;return:10s' });
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain(
    "render-upstream: SLOW_PATHS prefix '/slow/;return' must start with / and hold only letters, digits and ._~/@+-",
  );
  expect(bad.stderr).toContain('apply-upstream: not applied: nginx keeps serving its current config');
  expect(routesConf()).toBe(before);
  expect(workerPids(stack)).toEqual(workers);

  const applied = await applyUpstream(stack.state, { SLOW_PATHS: '/slow/:10s' });
  expect(applied.code).toBe(0);
  expect(applied.stdout.trim()).toBe('apply-upstream: routes.conf updated (config tested, nginx reloaded gracefully)');
  expect(routesConf()).toContain('location /slow/ {');
  await waitFor(() => workerPids(stack).every((pid) => !workers.includes(pid)), 'new nginx workers after the reload');
  expect((await get('/slow/x?ms=3000')).status).toBe(200);

  const workersAfter = workerPids(stack);
  const again = await applyUpstream(stack.state, { SLOW_PATHS: '/slow/:10s' });
  expect(again).toMatchObject({ code: 0, stderr: '' });
  expect(again.stdout.trim()).toBe('apply-upstream: upstream.conf and routes.conf are unchanged; no reload');
  expect(workerPids(stack)).toEqual(workersAfter);
});
