// `npm start` and the operator commands as a user runs them: real processes, real signals.
import { ChildProcess, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../local/ports';
import { npmStart as startNpm, Started } from '../helpers/npm-start';
import { REPO_ROOT } from '../../local/paths';
import { httpRequest } from '../../support/http';
import { waitFor } from '../helpers/stack';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');

let stateDir: string;
let started: Started | undefined;

beforeEach(() => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-local-'));
});
afterEach(async () => {
  await started?.stop();
  started = undefined;
  rmSync(stateDir, { recursive: true, force: true });
});

const npmStart = (extraEnv: NodeJS.ProcessEnv = {}) => startNpm(stateDir, extraEnv);

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) =>
    child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code)),
  );

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('npm start serves through nginx, prints the log path and a ready line, and SIGTERM leaves no process behind', async () => {
  started = await npmStart({ ACTIVE_POOL: 'green', RELEASE_ID_GREEN: 'g-42' });
  await waitFor(() => started!.output().includes('ready:'), 'the ready line', 30_000);
  const out = started.output();
  expect(out).toContain(`access log: ${path.join(stateDir, 'logs', 'access.log')}`);
  expect(out).toContain(`ready: http://127.0.0.1:${started.ports.nginx}`);

  const res = await httpRequest(`http://127.0.0.1:${started.ports.nginx}/version`, { agent: false });
  expect(res.status).toBe(200);
  expect(res.headers['x-app-pool']).toBe('green');
  expect(res.headers['x-release-id']).toBe('g-42');

  const nginxPid = Number(readFileSync(path.join(stateDir, 'run', 'nginx.pid'), 'utf8'));
  const workers = (await run('ps', ['-o', 'pid=', '--ppid', String(nginxPid)])).stdout
    .split('\n')
    .filter((s) => s.trim())
    .map(Number);
  expect(alive(nginxPid)).toBe(true);
  expect(workers.length).toBeGreaterThan(0);

  started.child.kill('SIGTERM');
  expect(await exited(started.child)).toBe(0);
  await waitFor(() => ![nginxPid, ...workers].some(alive), 'nginx master and workers to exit');
  // The pools are gone too: nothing listens on their ports.
  for (const port of [started.ports.blue, started.ports.green, started.ports.nginx]) {
    await expect(httpRequest(`http://127.0.0.1:${port}/healthz`, { agent: false, timeoutMs: 2000 })).rejects.toThrow(
      /ECONNREFUSED/,
    );
  }
  expect(existsSync(path.join(stateDir, 'state.json'))).toBe(false);
});

test('flip, chaos and check work against the running local stack through the CLI', async () => {
  started = await npmStart();
  await waitFor(() => started!.output().includes('ready:'), 'the ready line', 30_000);
  const cli = (...args: string[]) => run(process.execPath, [BIN, ...args], { env: started!.env, cwd: REPO_ROOT });

  const flip = await cli('flip', 'green');
  expect(flip.stdout).toContain('switch-pool: active pool is now green (nginx reads it per request; no reload)');
  expect(flip.stdout).toMatch(/confirmed: .* is answered by green \(\d+ ms after the switch\)/);
  // The flip is the switch dir's flag file, where state.json says it is.
  const state = JSON.parse(readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as { switchDir: string };
  expect(state.switchDir).toBe(path.join(stateDir, 'switch'));
  expect(existsSync(path.join(state.switchDir, 'green-active'))).toBe(true);
  const again = await cli('flip', 'green');
  expect(again.stdout).toContain('switch-pool: green is already the active pool; nothing changed');

  const bad = await cli('flip', 'purple').catch((e: { code: number; stdout: string }) => e);
  expect(bad).toMatchObject({ code: 2 });
  expect((bad as { stdout: string }).stdout).toContain(
    "switch-pool: the pool must be blue or green, got 'purple'; nothing changed",
  );
  expect(existsSync(path.join(state.switchDir, 'green-active'))).toBe(true);

  const check = await cli('check', '--duration', '3');
  expect(check.stdout).toMatch(/^PASS failover: .* 0 failed, (9\d|100)\.\d% served by blue/m);

  const chaos = await cli('chaos', 'blue', 'error');
  expect(chaos.stdout).toContain('"chaos":"error"');
  const failing = await cli('check', '--duration', '2').catch((e: { code: number; stdout: string }) => e);
  // The backup is broken by hand: whether the baseline or the chaos phase sees it first, check
  // must say FAIL and exit 1.
  expect(failing).toMatchObject({ code: 1 });
  expect((failing as { stdout: string }).stdout).toMatch(/^FAIL (baseline|failover): /m);
  await cli('chaos', 'blue', 'stop');
});

test('a port already in use is one clear line and exit 2', async () => {
  const blocker = net.createServer();
  const port = await freePort();
  await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
  try {
    started = await npmStart({ BLUE_PORT: String(port) });
    expect(await exited(started.child)).toBe(2);
    expect(started.output().trim()).toBe(
      `bluegreen start: port ${port} (BLUE_PORT) on 127.0.0.1 is already in use: stop what listens there or set BLUE_PORT to another port`,
    );
  } finally {
    blocker.close();
  }
});

test('a missing nginx is one clear line with the install hint', async () => {
  started = await npmStart({ NGINX_BIN: '/nonexistent/nginx' });
  expect(await exited(started.child)).toBe(2);
  expect(started.output().trim()).toMatch(
    /^bluegreen start: nginx not found at NGINX_BIN=\/nonexistent\/nginx: install it with `sudo apt-get install nginx` \(Debian\/Ubuntu\) or `brew install nginx` \(macOS\)/,
  );
});

test('a bad setting names the variable', async () => {
  started = await npmStart({ ACTIVE_POOL: 'purple' });
  expect(await exited(started.child)).toBe(2);
  expect(started.output().trim()).toBe('bluegreen start: ACTIVE_POOL must be one of blue|green, got "purple"');
});

test('SLOW_PATHS and the timeouts from the environment: npm start serves a listed 3 s route, and says what it runs with', async () => {
  started = await npmStart({ SLOW_PATHS: '/slow/:10s', PROXY_READ_TIMEOUT: '2s', PROXY_NEXT_UPSTREAM_TIMEOUT: '5s' });
  await waitFor(() => started!.output().includes('ready:'), 'the ready line', 30_000);
  expect(started.output()).toContain('timeouts: 2s per read, failover within 5s; slow paths: /slow/ 10s');
  const res = await httpRequest(`http://127.0.0.1:${started.ports.nginx}/slow/report?ms=3000`, {
    agent: false,
    timeoutMs: 15_000,
  });
  expect(res.status).toBe(200);
  expect(res.headers['x-app-pool']).toBe('blue');
});

test('a bad SLOW_PATHS names the variable and starts nothing', async () => {
  started = await npmStart({ SLOW_PATHS: '/reports/:30s;' });
  expect(await exited(started.child)).toBe(2);
  expect(started.output().trim()).toBe(
    "bluegreen start: SLOW_PATHS timeout of '/reports/' must be an nginx time like 1s or 500ms, from 1ms to 300s, got '30s;'",
  );
  expect(existsSync(path.join(stateDir, 'state.json'))).toBe(false);
});
