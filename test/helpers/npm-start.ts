// `npm start` as a user runs it, on free ports and its own state dir, with its output captured.
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { freePort } from '../../local/ports';
import { waitFor } from './stack';

export interface Started {
  child: ChildProcess;
  output: () => string;
  env: NodeJS.ProcessEnv;
  ports: { nginx: number; blue: number; green: number };
  /** SIGTERM, and resolves once npm start has exited. */
  stop(): Promise<void>;
}

export async function npmStart(stateDir: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Started> {
  const ports = { nginx: await freePort(), blue: await freePort(), green: await freePort() };
  const env = {
    ...process.env,
    BLUEGREEN_STATE_DIR: stateDir,
    NGINX_PORT: String(ports.nginx),
    BLUE_PORT: String(ports.blue),
    GREEN_PORT: String(ports.green),
    ...extraEnv,
  };
  const child = spawn('npm', ['start', '--silent'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
  return { child, output: () => output, env, ports, stop };
}

export interface CliRun {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `bluegreen <args>` as a real process against the stack `started` (never a stage), output captured. */
export function cliAgainst(started: Started, ...args: string[]): CliRun {
  const env = { ...started.env };
  delete env.BLUEGREEN_STAGE;
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'bluegreen.cjs'), ...args], {
    env,
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** One `npm start` for a test file: started before its tests (ready), stopped and removed after. */
export interface FileStack {
  readonly started: Started;
  readonly stateDir: string;
  /** `bluegreen <args>` against it (cliAgainst). */
  cli(...args: string[]): CliRun;
}

export function localStackForFile(prefix: string, extraEnv: NodeJS.ProcessEnv = {}): FileStack {
  let started: Started | undefined;
  let stateDir: string | undefined;
  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(os.tmpdir(), `bluegreen-${prefix}-`));
    started = await npmStart(stateDir, extraEnv);
    await waitFor(() => started!.output().includes('ready:'), 'npm start to be ready', 30_000);
  }, 60_000);
  afterAll(async () => {
    await started?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the local stack is not started (used outside a test?)');
    return value;
  };
  return {
    get started() {
      return ready(started);
    },
    get stateDir() {
      return ready(stateDir);
    },
    cli: (...args: string[]) => cliAgainst(ready(started), ...args),
  };
}
