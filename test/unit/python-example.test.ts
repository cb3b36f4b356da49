// The Python example app (examples/python-app/server.py) keeps the pool contract app/server.js
// keeps: /version with the release, /healthz 200, the pool headers, PORT, one log line per request,
// and a graceful SIGTERM (no new connections, idle keep-alives closed, the request in flight
// answered, exit 0). Run as a real process on a loopback port.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { freePort } from '../../local/ports';
import { httpRequest } from '../../support/http';

const SERVER = path.join(REPO_ROOT, 'examples', 'python-app', 'server.py');
const python = spawnSync('python3', ['--version']).status === 0;
const describePython = python ? describe : describe.skip;
if (!python) process.stderr.write('test/unit/python-example.test.ts: skipped: no python3 on PATH\n');

interface App {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  exited: Promise<number | null>;
}

async function startApp(env: Record<string, string>): Promise<App> {
  const port = await freePort();
  const child = spawn('python3', [SERVER], {
    env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  for (let i = 0; i < 100 && !out.includes('"listening"'); i++) await new Promise((r) => setTimeout(r, 50));
  if (!out.includes('"listening"')) throw new Error(`the python app did not start: ${out}`);
  return { child, port, stdout: () => out, exited };
}

describePython('the Python example app keeps the pool contract', () => {
  let app: App | undefined;
  afterEach(() => {
    if (app && app.child.exitCode === null) app.child.kill('SIGKILL');
    app = undefined;
  });

  test('/version answers JSON with RELEASE_ID, /healthz 200, every answer carries X-App-Pool and X-Release-Id; one log line per request', async () => {
    app = await startApp({ APP_POOL: 'green', RELEASE_ID: 'py-7' });
    const base = `http://127.0.0.1:${app.port}`;
    const version = await httpRequest(`${base}/version`, { agent: false, timeoutMs: 2000 });
    expect(version.status).toBe(200);
    expect(version.headers['content-type']).toBe('application/json');
    expect(JSON.parse(version.body)).toMatchObject({ pool: 'green', release: 'py-7' });
    expect(version.headers['x-app-pool']).toBe('green');
    expect(version.headers['x-release-id']).toBe('py-7');
    const health = await httpRequest(`${base}/healthz`, { agent: false, timeoutMs: 2000 });
    expect(health.status).toBe(200);
    const missing = await httpRequest(`${base}/nope`, { agent: false, timeoutMs: 2000 });
    expect(missing.status).toBe(404);
    expect(missing.headers['x-release-id']).toBe('py-7');
    // The log lines come through a pipe: wait for them, not for the answers.
    for (let i = 0; i < 40 && (app.stdout().match(/"request"/g) ?? []).length < 3; i++)
      await new Promise((r) => setTimeout(r, 50));
    const requests = app
      .stdout()
      .split('\n')
      .filter((l) => l.includes('"request"'))
      .map((l) => JSON.parse(l) as { path: string; status: number });
    expect(requests.map((r) => `${r.path} ${r.status}`)).toEqual(['/version 200', '/healthz 200', '/nope 404']);
  });

  test('a bad APP_POOL is refused with one line naming it (exit 2)', () => {
    const r = spawnSync('python3', [SERVER], { env: { PATH: process.env.PATH, APP_POOL: 'red' }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('pool app: APP_POOL must be one of blue|green, got "red"');
  });

  test('SIGTERM: no new connections, the idle keep-alive closed, the request in flight answered (Connection: close), exit 0', async () => {
    app = await startApp({ APP_POOL: 'blue', RELEASE_ID: 'py-8' });
    const port = app.port;
    const connect = () =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', reject);
      });
    const received = (s: net.Socket) => {
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      const closed = new Promise<void>((r) => s.on('close', () => r()));
      return { text: () => data, closed };
    };
    // An idle keep-alive connection (one answered request, then nothing).
    const idle = await connect();
    const idleSeen = received(idle);
    idle.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    while (!idleSeen.text().includes('"ok"')) await new Promise((r) => setTimeout(r, 20));
    // A request in flight: its request line and half its headers are in, the rest comes after SIGTERM.
    const busy = await connect();
    const busySeen = received(busy);
    busy.write('GET /version HTTP/1.1\r\nHost: x\r\n');
    await new Promise((r) => setTimeout(r, 200));
    app.child.kill('SIGTERM');
    await idleSeen.closed; // the idle connection ends at once
    // No new connections: the listener closes once serve_forever has returned (its poll is 0.2 s).
    let refused = '';
    for (let i = 0; i < 50 && !refused; i++) {
      refused = await connect().then(
        (s) => (s.destroy(), ''),
        (e: Error) => e.message,
      );
      if (!refused) await new Promise((r) => setTimeout(r, 100));
    }
    expect(refused).toMatch(/ECONNREFUSED/);
    busy.write('Accept: */*\r\n\r\n');
    await busySeen.closed;
    expect(busySeen.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(busySeen.text()).toMatch(/\r\nConnection: close\r\n/i);
    expect(busySeen.text()).toMatch(/"release": "py-8"/);
    expect(await app.exited).toBe(0);
    expect(app.stdout()).toMatch(/"msg": "stopped"/);
  });
});
