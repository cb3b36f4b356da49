// The pool app contract (README "How it works", `app/`) over a real socket.
import { spawn, spawnSync } from 'node:child_process';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { APP_ENTRY as APP } from '../../local/paths';
import { httpRequest } from '../../support/http';

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

const get = (path: string, method = 'GET', timeoutMs = 2000) =>
  httpRequest(`${base}${path}`, { method, agent: false, timeoutMs });

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

test('GET /slow/<path>?ms=N: a legitimately slow route (for SLOW_PATHS) answers 200 after N ms; a bad or huge N is a 400 at once', async () => {
  const res = await get('/slow/report?ms=50');
  expect(res.status).toBe(200);
  expect(res.headers['x-app-pool']).toBe('green');
  expect(JSON.parse(res.body)).toMatchObject({ pool: 'green', path: '/slow/report', waitedMs: 50 });
  for (const ms of ['abc', '-1', '60001', '1e9']) {
    const bad = await get(`/slow/report?ms=${ms}`);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ error: 'ms must be a whole number of milliseconds 0-60000', got: ms });
  }
  // A client that gives up ends the wait: the server closes without waiting for it.
  await expect(get('/slow/report?ms=60000', 'GET', 100)).rejects.toThrow();
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
  expect(configFromEnv({ APP_POOL: 'blue', PORT: '3000', RELEASE_ID: 'r1' })).toEqual({
    pool: 'blue',
    release: 'r1',
    port: 3000,
    host: '0.0.0.0',
    faultRate: 0,
    delayMs: 0,
    failHealthz: false,
    startDelayMs: 0,
  });
  expect(() => configFromEnv({ APP_POOL: 'red' })).toThrow('APP_POOL must be one of blue|green, got "red"');
  expect(() => configFromEnv({ PORT: 'http' })).toThrow('PORT must be an integer 0-65535, got "http"');
});

describe('a bad release on purpose: FAULT_RATE and FAIL_HEALTHZ', () => {
  test.each([
    ['0', 0],
    ['0.2', 0.2],
    ['.5', 0.5],
    ['1', 1],
    ['', 0],
  ])('FAULT_RATE=%p is the share %p', (value, rate) => {
    expect(configFromEnv({ FAULT_RATE: value }).faultRate).toBe(rate);
  });

  test.each(['1.5', '-0.1', '20%', 'abc', '1e-1', ' ', '.'])(
    'FAULT_RATE=%p is refused, naming the variable',
    (value) => {
      expect(() => configFromEnv({ FAULT_RATE: value })).toThrow(
        `FAULT_RATE must be a number from 0 to 1 (share of requests answered 500), got "${value}"`,
      );
    },
  );

  test('FAIL_HEALTHZ takes 1 or 0 and nothing else', () => {
    expect(configFromEnv({ FAIL_HEALTHZ: '1' }).failHealthz).toBe(true);
    expect(configFromEnv({ FAIL_HEALTHZ: '0' }).failHealthz).toBe(false);
    for (const value of ['yes', 'true', '2']) {
      expect(() => configFromEnv({ FAIL_HEALTHZ: value })).toThrow(
        `FAIL_HEALTHZ must be 1 (/healthz answers 503) or 0, got "${value}"`,
      );
    }
  });

  test('an invalid value stops the process with exit 2 and the variable named', () => {
    const result = spawnSync(process.execPath, [APP], {
      env: { ...process.env, FAULT_RATE: '2', PORT: '0' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe(
      'pool app: FAULT_RATE must be a number from 0 to 1 (share of requests answered 500), got "2"',
    );
    const healthz = spawnSync(process.execPath, [APP], {
      env: { ...process.env, FAIL_HEALTHZ: 'yes', PORT: '0' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(healthz.status).toBe(2);
    expect(healthz.stderr).toContain('FAIL_HEALTHZ must be 1');
  });

  /** mulberry32: a seeded generator, so the share below is the same on every run. */
  function seeded(seed: number) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  async function faulty(
    config: { faultRate?: number; failHealthz?: boolean; startDelayMs?: number },
    random?: () => number,
  ) {
    const app = createApp({ pool: 'blue', release: 'b-bad', port: 0, host: '127.0.0.1', ...config }, { random });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    const close = async () => {
      app.closeAllConnections();
      await new Promise((r) => app.close(r));
    };
    return { url, close };
  }

  test('FAULT_RATE=0.2: about a fifth of ordinary requests answer 500; /healthz and /chaos/* never do', async () => {
    const app = await faulty({ faultRate: 0.2 }, seeded(42));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 500; i++) {
        const res = await httpRequest(`${app.url}${i % 2 ? '/version' : '/'}`, { agent: false });
        statuses.push(res.status);
        if (res.status === 500) {
          expect(JSON.parse(res.body)).toMatchObject({
            error: 'injected fault (FAULT_RATE)',
            pool: 'blue',
            release: 'b-bad',
          });
          expect(res.headers['x-release-id']).toBe('b-bad');
        }
      }
      expect(new Set(statuses)).toEqual(new Set([200, 500]));
      const share = statuses.filter((s) => s === 500).length / statuses.length;
      // 500 draws at p = 0.2: the standard deviation is 1.8 points, and the seed fixes the draws.
      expect(share).toBeGreaterThan(0.15);
      expect(share).toBeLessThan(0.25);
      for (let i = 0; i < 50; i++) expect((await httpRequest(`${app.url}/healthz`, { agent: false })).status).toBe(200);
      expect((await httpRequest(`${app.url}/chaos/stop`, { method: 'POST', agent: false })).status).toBe(200);
      expect((await httpRequest(`${app.url}/chaos/start?mode=explode`, { method: 'POST', agent: false })).status).toBe(
        400,
      );
    } finally {
      await app.close();
    }
  });

  test('FAULT_RATE=1 fails every ordinary request, 0 none; /version says which rate runs', async () => {
    const all = await faulty({ faultRate: 1 });
    try {
      for (const path of ['/', '/version', '/nope'])
        expect((await httpRequest(`${all.url}${path}`, { agent: false })).status).toBe(500);
    } finally {
      await all.close();
    }
    const none = await faulty({ faultRate: 0 }, () => {
      throw new Error('no randomness is drawn without a fault rate');
    });
    try {
      const version = await httpRequest(`${none.url}/version`, { agent: false });
      expect(version.status).toBe(200);
      expect(JSON.parse(version.body)).toMatchObject({ faultRate: 0, failHealthz: false });
    } finally {
      await none.close();
    }
  });

  test('FAIL_HEALTHZ=1: /healthz answers 503, everything else is served', async () => {
    const app = await faulty({ failHealthz: true });
    try {
      const health = await httpRequest(`${app.url}/healthz`, { agent: false });
      expect(health.status).toBe(503);
      expect(health.headers['x-app-pool']).toBe('blue');
      expect(JSON.parse(health.body)).toMatchObject({ status: 'failing', reason: 'FAIL_HEALTHZ=1' });
      const version = await httpRequest(`${app.url}/version`, { agent: false });
      expect(version.status).toBe(200);
      expect(JSON.parse(version.body)).toMatchObject({ release: 'b-bad', failHealthz: true });
    } finally {
      await app.close();
    }
  });
});

describe('a slow start on purpose: START_DELAY_MS', () => {
  test('takes whole milliseconds 0-600000 and nothing else', () => {
    expect(configFromEnv({ START_DELAY_MS: '90000' }).startDelayMs).toBe(90_000);
    expect(configFromEnv({}).startDelayMs).toBe(0);
    for (const value of ['-1', '1.5', '90s', '600001'])
      expect(() => configFromEnv({ START_DELAY_MS: value })).toThrow(
        `START_DELAY_MS must be a whole number of milliseconds from 0 to 600000, got "${value}"`,
      );
  });

  test('/healthz and ordinary requests answer 503 "starting" until the delay is over, then 200', async () => {
    const server = createApp({ pool: 'blue', release: 'b-slow', port: 0, host: '127.0.0.1', startDelayMs: 400 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const early = await httpRequest(`${url}/healthz`, { agent: false });
      expect(early.status).toBe(503);
      expect(JSON.parse(early.body)).toMatchObject({ status: 'starting', pool: 'blue' });
      expect((await httpRequest(`${url}/version`, { agent: false })).status).toBe(503);
      await new Promise((r) => setTimeout(r, 450));
      expect((await httpRequest(`${url}/healthz`, { agent: false })).status).toBe(200);
      expect((await httpRequest(`${url}/version`, { agent: false })).status).toBe(200);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

test('SIGTERM is graceful and prompt: idle keep-alive connections are closed, the process exits 0', async () => {
  const child = spawn(process.execPath, [APP], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(JSON.parse(d.toString().split('\n')[0]).port));
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const agent = new http.Agent({ keepAlive: true });
    expect((await httpRequest(`http://127.0.0.1:${port}/version`, { agent })).status).toBe(200);
    const started = Date.now();
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // An idle kept-alive connection does not hold the exit.
    expect(Date.now() - started).toBeLessThan(1500);
    agent.destroy();
  } finally {
    child.kill('SIGKILL');
  }
});

test('SIGTERM drains: a request in flight on a kept-alive connection is answered (then that connection closes), and only then the process exits 0', async () => {
  const child = spawn(process.execPath, [APP], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(JSON.parse(d.toString().split('\n')[0]).port));
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const agent = new http.Agent({ keepAlive: true });
    let exitedFirst = false;
    const exited = new Promise<number | null>((r) =>
      child.once('exit', (code) => {
        exitedFirst = !answered;
        r(code);
      }),
    );
    let answered = false;
    const slow = httpRequest(`http://127.0.0.1:${port}/slow/report?ms=2500`, { agent, timeoutMs: 10_000 }).then(
      (res) => {
        answered = true;
        return res;
      },
    );
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    const res = await slow;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ waitedMs: 2500 });
    expect(res.headers.connection).toBe('close');
    expect(await exited).toBe(0);
    expect(exitedFirst).toBe(false);
    agent.destroy();
  } finally {
    child.kill('SIGKILL');
  }
});
