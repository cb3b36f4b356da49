// The public entry's contract: headers, the JSON access log, /chaos refused, retry policy by method.
import { logEntryFor, readAccessLog, startTestStack, waitFor, workerPids } from '../helpers/stack';
import { ACCESS_LOG_FIELDS } from '../../core/access-log';
import { httpRequest } from '../../support/http';
import { LocalStack } from '../../local/stack';

let stack: LocalStack;
beforeEach(async () => {
  stack = await startTestStack({ activePool: 'blue', releases: { blue: 'blue-2026.11.1', green: 'green-2026.11.2' } });
});
afterEach(async () => {
  await stack?.stop();
});

test('pool headers reach the client unchanged and nginx hides its version', async () => {
  for (const pool of ['blue', 'green'] as const) {
    if (pool === 'green') expect((await stack.flip('green')).code).toBe(0);
    await waitFor(
      async () => (await httpRequest(`${stack.url}/version`, { agent: false })).headers['x-app-pool'] === pool,
      pool,
    );
    const direct = await httpRequest(`${stack.poolUrl(pool)}/version`, { agent: false });
    const proxied = await httpRequest(`${stack.url}/version`, { agent: false });
    expect(proxied.headers['x-app-pool']).toBe(direct.headers['x-app-pool']);
    expect(proxied.headers['x-release-id']).toBe(direct.headers['x-release-id']);
    expect(proxied.headers['x-release-id']).toBe(pool === 'blue' ? 'blue-2026.11.1' : 'green-2026.11.2');
    expect(JSON.parse(proxied.body)).toMatchObject({ pool, release: proxied.headers['x-release-id'] });
    expect(proxied.headers.server).toBe('nginx');
    expect(proxied.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    // What the flip path confirms a promotion by (even when the other pool answered).
    expect(proxied.headers['x-active-pool']).toBe(pool);
  }
});

test('every access-log line is one JSON object with every field and the right values', async () => {
  const ok = await httpRequest(`${stack.url}/version?x="quote"`, {
    agent: false,
    headers: { 'User-Agent': 'test "agent" \\ x' },
  });
  const missing = await httpRequest(`${stack.url}/no-such-page`, { agent: false });
  const blocked = await httpRequest(`${stack.url}/chaos/start?mode=error`, { method: 'POST', agent: false });
  await stack.chaos('blue', 'error');
  const failedOver = await httpRequest(`${stack.url}/version`, { agent: false });

  const okEntry = await logEntryFor(stack, ok);
  await logEntryFor(stack, failedOver);
  const { entries, malformed } = readAccessLog(stack);
  expect(malformed).toEqual([]);
  for (const entry of entries) {
    for (const field of ACCESS_LOG_FIELDS) expect(entry).toHaveProperty(field);
    expect(entry.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
    expect(entry.active_pool).toBe('blue');
    // No canary: every request's first try is the active pool, even the failed-over one.
    expect(entry.primary_pool).toBe('blue');
  }
  expect(okEntry).toMatchObject({
    method: 'GET',
    uri: '/version?x=%22quote%22',
    status: 200,
    pool: 'blue',
    release: 'blue-2026.11.1',
    active_pool: 'blue',
    primary_pool: 'blue',
    upstream_status: '200',
    upstream_addr: `127.0.0.1:${stack.ports.blue}`,
    remote_addr: '127.0.0.1',
    user_agent: 'test "agent" \\ x',
    request_id: ok.headers['x-request-id'],
  });
  expect(okEntry.body_bytes_sent).toBe(Buffer.byteLength(ok.body));
  expect(okEntry.request_time).toBeGreaterThanOrEqual(0);
  expect(okEntry.upstream_response_time).toMatch(/^\d+\.\d{3}$/);
  expect(okEntry.upstream_connect_time).toMatch(/^\d+\.\d{3}$/);
  expect(await logEntryFor(stack, missing)).toMatchObject({ status: 404, pool: 'blue', upstream_status: '404' });
  expect(await logEntryFor(stack, blocked)).toMatchObject({
    status: 403,
    method: 'POST',
    pool: '',
    upstream_status: '',
    active_pool: 'blue',
  });
  expect(await logEntryFor(stack, failedOver)).toMatchObject({
    status: 200,
    pool: 'green',
    release: 'green-2026.11.2',
    active_pool: 'blue',
    primary_pool: 'blue',
    upstream_status: '500, 200',
    upstream_addr: `127.0.0.1:${stack.ports.blue}, 127.0.0.1:${stack.ports.green}`,
  });
});

test('active_pool and primary_pool follow the switch dir request by request, with no reload', async () => {
  const workers = workerPids(stack);
  const before = await httpRequest(`${stack.url}/version`, { agent: false });
  expect((await stack.flip('green')).code).toBe(0);
  const after = await httpRequest(`${stack.url}/version`, { agent: false });
  expect((await stack.canary(99)).code).toBe(0);
  // 99 of 100 buckets: find a canary request (first try on the idle pool, blue) among a few.
  const canary = await waitFor(async () => {
    const res = await httpRequest(`${stack.url}/version`, { agent: false });
    const entry = await logEntryFor(stack, res);
    return entry.primary_pool === 'blue' ? { res, entry } : undefined;
  }, 'a canary request');
  expect(await logEntryFor(stack, before)).toMatchObject({ active_pool: 'blue', primary_pool: 'blue', pool: 'blue' });
  expect(await logEntryFor(stack, after)).toMatchObject({ active_pool: 'green', primary_pool: 'green', pool: 'green' });
  expect(canary.entry).toMatchObject({
    active_pool: 'green',
    primary_pool: 'blue',
    pool: 'blue',
    release: 'blue-2026.11.1',
    upstream_status: '200',
  });
  expect(canary.res.headers['x-app-pool']).toBe('blue');
  expect(workerPids(stack)).toEqual(workers);
});

test('the JSON error page names the pools the request was routed by', async () => {
  await stack.killPool('blue');
  await stack.killPool('green');
  const res = await httpRequest(`${stack.url}/version`, { agent: false });
  expect(res.status).toBe(502);
  expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
  expect(res.headers['x-active-pool']).toBe('blue');
  expect(JSON.parse(res.body)).toMatchObject({
    error: 'bad_gateway',
    active_pool: 'blue',
    primary_pool: 'blue',
    request_id: res.headers['x-request-id'],
  });
  expect(await logEntryFor(stack, res)).toMatchObject({ status: 502, active_pool: 'blue', primary_pool: 'blue' });
});

test.each([
  ['POST', '/chaos/start?mode=error'],
  ['POST', '/chaos/start?mode=timeout'],
  ['POST', '/chaos/stop'],
  ['GET', '/chaos'],
  ['POST', '//chaos/start?mode=error'],
  ['POST', '/%63haos/start?mode=error'],
  ['POST', '/./chaos/start?mode=error'],
  ['POST', '/x/../chaos/start?mode=error'],
])('%s %s is refused on the public port and never reaches a pool', async (method, target) => {
  const res = await httpRequest(`${stack.url}${target}`, { method, agent: false });
  expect(res.status).toBe(403);
  expect(JSON.parse(res.body)).toMatchObject({ error: 'forbidden' });
  expect(res.headers['x-app-pool']).toBeUndefined();
  // The pools are untouched: both still answer normally.
  for (const pool of ['blue', 'green'] as const) {
    expect((await httpRequest(`${stack.poolUrl(pool)}/version`, { agent: false })).status).toBe(200);
  }
});

test('chaos endpoints answer on the pool port, even while chaos is on', async () => {
  const start = await httpRequest(`${stack.poolUrl('blue')}/chaos/start?mode=timeout`, {
    method: 'POST',
    agent: false,
  });
  expect(start.status).toBe(200);
  const stop = await httpRequest(`${stack.poolUrl('blue')}/chaos/stop`, {
    method: 'POST',
    agent: false,
    timeoutMs: 2000,
  });
  expect(JSON.parse(stop.body)).toMatchObject({ pool: 'blue', chaos: null });
});

describe('non-idempotent requests (DECISIONS.md: retried only when they never reached the primary)', () => {
  test('a POST the primary answered with 500 is not replayed on the backup', async () => {
    await stack.chaos('blue', 'error');
    const res = await httpRequest(`${stack.url}/`, { method: 'POST', agent: false });
    expect(res.status).toBe(500);
    expect(await logEntryFor(stack, res)).toMatchObject({ upstream_status: '500', pool: 'blue' });
  });

  test('a POST the primary never received (pool gone) goes to the backup', async () => {
    await stack.killPool('blue');
    const res = await httpRequest(`${stack.url}/`, { method: 'POST', agent: false });
    expect(res.status).toBe(200);
    expect(res.headers['x-app-pool']).toBe('green');
  });
});
