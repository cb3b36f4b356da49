// The pool app contract (DESIGN.md "Pool app") over a real socket.
import { AddressInfo } from 'node:net';
import { httpRequest } from '../../local/http';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createApp, configFromEnv } = require('../../app/server.js') as typeof import('../../app/server.js');

let base: string;
let server: ReturnType<typeof createApp>;
beforeEach(async () => {
  server = createApp({ pool: 'green', release: 'g-7', port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const get = (path: string, method = 'GET', timeoutMs = 2000) => httpRequest(`${base}${path}`, { method, agent: false, timeoutMs });

test('GET /version: 200 JSON with pool and release, and the pool headers', async () => {
  const res = await get('/version');
  expect(res.status).toBe(200);
  expect(res.headers['x-app-pool']).toBe('green');
  expect(res.headers['x-release-id']).toBe('g-7');
  expect(JSON.parse(res.body)).toMatchObject({ pool: 'green', release: 'g-7' });
});

test('GET /healthz: 200 when healthy; every answer, even a 404, carries the pool headers', async () => {
  expect((await get('/healthz')).status).toBe(200);
  const missing = await get('/nope');
  expect(missing.status).toBe(404);
  expect(missing.headers['x-app-pool']).toBe('green');
});

test('error chaos: every other request answers 500, chaos endpoints still answer, stop heals', async () => {
  expect((await get('/chaos/start?mode=error', 'POST')).status).toBe(200);
  for (const path of ['/version', '/healthz', '/']) expect((await get(path)).status).toBe(500);
  expect((await get('/chaos/stop', 'POST')).status).toBe(200);
  expect((await get('/version')).status).toBe(200);
});

test('timeout chaos: requests hang; /chaos/stop answers and releases them', async () => {
  expect((await get('/chaos/start?mode=timeout', 'POST')).status).toBe(200);
  await expect(get('/version', 'GET', 300)).rejects.toThrow(/no answer within 300 ms/);
  const held = get('/version', 'GET', 5000);
  const stop = await get('/chaos/stop', 'POST');
  expect(stop.status).toBe(200);
  // The held request is released (connection closed), not answered late with a stale 200.
  await expect(held).rejects.toThrow(/socket hang up|ECONNRESET/);
  expect((await get('/version')).status).toBe(200);
});

test('chaos input is validated', async () => {
  expect((await get('/chaos/start?mode=explode', 'POST')).status).toBe(400);
  expect((await get('/chaos/start?mode=error', 'GET')).status).toBe(405);
  expect((await get('/version')).status).toBe(200);
});

test('configuration is validated with the variable named', () => {
  expect(configFromEnv({ APP_POOL: 'blue', PORT: '3000', RELEASE_ID: 'r1' })).toEqual({ pool: 'blue', release: 'r1', port: 3000, host: '0.0.0.0' });
  expect(() => configFromEnv({ APP_POOL: 'red' })).toThrow('APP_POOL must be one of blue|green, got "red"');
  expect(() => configFromEnv({ PORT: 'http' })).toThrow('PORT must be an integer 0-65535, got "http"');
});
