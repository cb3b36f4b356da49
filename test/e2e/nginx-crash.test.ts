// Issue 9 item 14: an nginx master killed with SIGKILL must not leave its workers serving (and
// holding the port); the stack stops the whole process group, restarts nginx once, and reports a
// second exit. Real nginx on loopback, real signals.
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { httpRequest } from '../../support/http';
import { LocalStack } from '../../local/stack';
import { npmStart, Started } from '../helpers/npm-start';
import { startTestStack, waitFor, workerPids } from '../helpers/stack';

/** A process that runs (a zombie, exited but not yet reaped by init, holds no port: it does not). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * nginx processes of one state dir, found independently of the stack's own bookkeeping: a worker's
 * command line is "nginx: worker process" whatever its prefix, but it holds the state dir's logs open.
 */
function nginxOf(stateDir: string): number[] {
  const logs = path.join(stateDir, 'logs') + path.sep;
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e) && running(Number(e)))
    .filter((e) => {
      try {
        if (!readFileSync(`/proc/${e}/cmdline`, 'utf8').startsWith('nginx')) return false;
        return readdirSync(`/proc/${e}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${e}/fd/${fd}`).startsWith(logs);
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function status(url: string): Promise<number | string> {
  try {
    return (await httpRequest(`${url}/version`, { agent: false, timeoutMs: 1000 })).status;
  } catch (err) {
    return (err as Error).message;
  }
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) =>
    child.exitCode !== null || child.signalCode !== null
      ? resolve(child.exitCode)
      : child.once('exit', (code) => resolve(code)),
  );

let stacks: LocalStack[] = [];
let started: Started | undefined;
let stateDir: string | undefined;
afterEach(async () => {
  for (const stack of stacks) await stack.stop();
  stacks = [];
  await started?.stop();
  started = undefined;
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  stateDir = undefined;
});

test('SIGKILL of the nginx master: its workers are stopped, nginx is restarted once, a second SIGKILL is reported, and stop() leaves nothing on the port', async () => {
  const supervisor: string[] = [];
  const unexpected: string[] = [];
  const stack = await startTestStack({
    onOutput: (source, line) => source === 'supervisor' && supervisor.push(line),
    onUnexpectedExit: (name, reason) => unexpected.push(`${name}: ${reason}`),
  });
  stacks.push(stack);
  const dir = stack.state.prefix;
  expect(await status(stack.url)).toBe(200);

  // First crash: restarted, and the old master's workers are gone (not left serving on the port).
  const master1 = stack.pid('nginx')!;
  const workers1 = workerPids(stack).map(Number);
  expect(workers1.length).toBeGreaterThan(0);
  process.kill(master1, 'SIGKILL');
  await waitFor(() => supervisor.some((l) => l.includes('restarted nginx')), 'the restart line', 8000);
  const master2 = stack.pid('nginx')!;
  expect(master2).not.toBe(master1);
  expect(running(master2)).toBe(true);
  await waitFor(() => workers1.every((pid) => !running(pid)), "the killed master's workers to exit", 5000);
  expect(await status(stack.url)).toBe(200);
  expect(supervisor.filter((l) => l.includes('restarted nginx'))).toEqual([
    'nginx exited (killed by SIGKILL); its workers were stopped; restarted nginx (1 of 1)',
  ]);
  expect(unexpected).toEqual([]);
  // Every nginx process of this state dir belongs to the new master.
  const workers2 = workerPids(stack).map(Number);
  expect(nginxOf(dir).sort()).toEqual([master2, ...workers2].sort());

  // Second crash: not restarted again; reported to the caller, with the workers already stopped.
  process.kill(master2, 'SIGKILL');
  await waitFor(() => unexpected.length > 0, 'the unexpected-exit report', 8000);
  expect(unexpected).toEqual(['nginx: killed by SIGKILL again after 1 restart; its workers were stopped']);
  expect(workers2.filter(running)).toEqual([]);
  expect(nginxOf(dir)).toEqual([]);
  expect(supervisor.filter((l) => l.includes('restarted nginx'))).toHaveLength(1);

  const port = stack.ports.nginx;
  await stack.stop();
  stacks = [];
  expect(nginxOf(dir)).toEqual([]);
  // The port is free: a new stack listens on it and serves.
  const next = await startTestStack({ ports: { nginx: port } });
  stacks.push(next);
  expect(await status(next.url)).toBe(200);
});

test('stop() right after a crash (before or during the restart) leaves no nginx of the state dir behind', async () => {
  const stack = await startTestStack();
  stacks.push(stack);
  const dir = stack.state.prefix;
  process.kill(stack.pid('nginx')!, 'SIGKILL');
  await stack.stop();
  stacks = [];
  expect(nginxOf(dir)).toEqual([]);
});

test('npm start: a killed nginx master is restarted once and said so; a second kill stops the supervisor, and the next npm start gets the port', async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-crash-'));
  started = await npmStart(stateDir);
  await waitFor(() => started!.output().includes('ready:'), 'the ready line', 30_000);
  const url = `http://127.0.0.1:${started.ports.nginx}`;
  const pidFile = path.join(stateDir, 'run', 'nginx.pid');
  const master1 = Number(readFileSync(pidFile, 'utf8'));

  process.kill(master1, 'SIGKILL');
  await waitFor(() => started!.output().includes('restarted nginx'), 'the restart line', 8000);
  expect(started.output()).toContain(
    '[supervisor] nginx exited (killed by SIGKILL); its workers were stopped; restarted nginx (1 of 1)',
  );
  expect(await status(url)).toBe(200);
  const master2 = Number(readFileSync(pidFile, 'utf8'));
  expect(master2).not.toBe(master1);
  expect(nginxOf(stateDir)).toContain(master2);
  expect(nginxOf(stateDir).length).toBeGreaterThan(1);

  process.kill(master2, 'SIGKILL');
  expect(await exited(started.child)).toBe(1);
  expect(started.output()).toContain(
    '[supervisor] nginx exited (killed by SIGKILL again after 1 restart; its workers were stopped); see the error log: stopping nginx and the pools',
  );
  expect(nginxOf(stateDir)).toEqual([]);
  expect(await status(url)).toMatch(/ECONNREFUSED/);
  expect(existsSync(path.join(stateDir, 'state.json'))).toBe(false);

  // The next npm start on the same port and state dir comes up (no "port ... is already in use").
  const ports = started.ports;
  started = await npmStart(stateDir, { NGINX_PORT: String(ports.nginx) });
  await waitFor(
    () => started!.output().includes('ready:') || started!.child.exitCode !== null,
    'the second npm start',
    30_000,
  );
  expect(started.output()).not.toContain('already in use');
  expect(await status(url)).toBe(200);
});

test('start stops workers an earlier run left orphaned in the state dir (master killed, port still held) before it checks the port', async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-orphans-'));
  const first = await LocalStack.start({ stateDir });
  const port = first.ports.nginx;
  await first.stop();
  // An nginx on this state dir's config whose master dies with SIGKILL, as a supervisor of the
  // previous code left it: the workers go on holding the port.
  const { nginxBin, prefix, confDir } = first.state;
  const globals = process.getuid?.() === 0 ? 'daemon off; user root;' : 'daemon off;';
  const nginx = spawn(nginxBin, ['-p', prefix, '-c', path.join(confDir, 'nginx.conf'), '-g', globals], {
    stdio: 'ignore',
  });
  await waitFor(
    async () => typeof (await status(`http://127.0.0.1:${port}`)) === 'number',
    'the hand-started nginx to listen',
    10_000,
  );
  nginx.kill('SIGKILL');
  await exited(nginx);
  const orphans = nginxOf(stateDir);
  expect(orphans.length).toBeGreaterThan(0);
  expect(await status(`http://127.0.0.1:${port}`)).toBe(502);

  const supervisor: string[] = [];
  const stack = await LocalStack.start({
    stateDir,
    ports: { nginx: port },
    onOutput: (source, line) => source === 'supervisor' && supervisor.push(line),
  });
  stacks.push(stack);
  expect(supervisor).toEqual([
    `stopped an nginx left running by an earlier run in this directory (${orphans.length} process${orphans.length === 1 ? '' : 'es'})`,
  ]);
  expect(orphans.filter(running)).toEqual([]);
  expect(await status(stack.url)).toBe(200);
});
