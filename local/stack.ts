// A local data plane: real nginx (the repo's nginx.conf, rendered by the repo's renderer) in front
// of the two pool apps as child processes. Used by `npm start`, the e2e tests and bench/.
import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { APP_ENTRY, NGINX_DIR } from './paths';
import { ChaosMode, Pool, POOLS } from '../core/pools';
import { httpRequest } from '../support/http';
import { findNginx } from './nginx-binary';
import { assertPortFree, freePort } from './ports';
import { readActivePool, readCanaryPercent, renderUpstream, ScriptResult, setCanary, switchPool } from './switch';
import { stopLeftoverNginx } from './leftover-nginx';
import { groupAlive, signalGroup, waitUntil } from './process-groups';
import { newStackState, poolUrl, removeStackState, StackPorts, StackState, writeStackState } from './stack-state';

export { poolUrl, readStackState, STATE_FILE, supervisorRunning } from './stack-state';
export type { StackPorts, StackState } from './stack-state';

export interface StackOptions {
  /** Where conf/, logs/, run/ and tmp/ go; also nginx's -p prefix. */
  stateDir: string;
  host?: string;
  /** 0 picks a free port; defaults to 0 for every port (tests, bench). */
  ports?: Partial<StackPorts>;
  /** Names of the settings the ports came from, for "port in use" messages. */
  portSources?: Partial<Record<keyof StackPorts, string>>;
  /** Written to the switch dir at start; omitted, the switch dir's pool stays (blue when none). */
  activePool?: Pool;
  /** Canary share written at start (default 0: a canary left by an earlier run is not resumed). */
  canaryPercent?: number;
  releases?: Partial<Record<Pool, string>>;
  /** A proxy-failover.conf other than the repo's (bench reference settings). */
  failoverConf?: string;
  /**
   * Rewrites the rendered routes.conf before nginx first starts: bench reference settings that the
   * renderer refuses on purpose (a retry window shorter than one attempt). A later apply-upstream.sh
   * renders it afresh, without this.
   */
  routesOverride?: (routesConf: string) => string;
  /**
   * Extra renderer inputs, e.g. { MAX_FAILS: '2', FAIL_TIMEOUT: '5s' } for bench references, or
   * proxySettingsEnv(...) (timeouts, SLOW_PATHS); kept in state.json for later applies.
   */
  upstreamEnv?: Record<string, string>;
  /** Receives every line the children print. */
  onOutput?: (source: string, line: string) => void;
  readyTimeoutMs?: number;
  /**
   * A child exited on its own (not through stop() or killPool()): a crash the caller should hear of.
   * A pool: at once. nginx: the stack stops its workers and restarts it (NGINX_RESTARTS times, said
   * through onOutput as a 'supervisor' line); this is called only when it cannot be brought back
   * (it exited again, or the restart failed), with its workers already stopped.
   */
  onUnexpectedExit?: (name: Pool | 'nginx', reason: string) => void;
}

export interface PoolRun {
  release: string;
  /** Extra environment for the pool app, e.g. { FAULT_RATE: '0.2' }. */
  env: Record<string, string>;
}

/** Tries a pool gets when its port is briefly in use (100 ms apart). */
const PORT_BUSY_ATTEMPTS = 30;

function onLines(stream: NodeJS.ReadableStream, fn: (line: string) => void) {
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      fn(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  });
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Ends every process of an nginx started in its own group (master, workers, cache processes):
 * SIGTERM (nginx's fast shutdown), SIGKILL to whatever is left after `graceMs`. Signalling the
 * group, not the master, is what reaches workers whose master is gone (killed with SIGKILL, the
 * workers go on serving on the port). The group id is the master's pid; Linux does not hand that
 * number to a new process while any member of the group lives, so the signal cannot hit a stranger.
 */
async function stopNginxGroup(pgid: number, graceMs: number): Promise<void> {
  if (!groupAlive(pgid)) return;
  signalGroup(pgid, 'SIGTERM');
  if (await waitUntil(() => !groupAlive(pgid), graceMs)) return;
  signalGroup(pgid, 'SIGKILL');
  await waitUntil(() => !groupAlive(pgid), 2000);
}

/** How many times the stack restarts an nginx that exited on its own before it reports the exit (Compose's unless-stopped, bounded). */
export const NGINX_RESTARTS = 1;

export class LocalStack {
  private readonly children = new Map<string, ChildProcess>();
  private readonly killOnExit = () => {
    for (const [name, child] of this.children) {
      if (name === 'nginx' && child.pid) signalGroup(child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    }
  };
  private stopping = false;
  /** Release and extra env per pool, so a pool restarted after killPool runs what it ran. */
  private readonly poolRuns = new Map<Pool, PoolRun>();
  /** Children this class is stopping on purpose, so their exit is not reported as a crash. */
  private readonly expectedExits = new Set<ChildProcess>();
  /** nginx restarts done after it exited on its own (at most NGINX_RESTARTS). */
  private nginxRestarts = 0;
  /** Stopping the workers of an nginx that exited on its own, and restarting it; never rejects. */
  private nginxRecovery: Promise<void> = Promise.resolve();

  private constructor(
    readonly state: StackState,
    private readonly options: StackOptions,
  ) {
    process.on('exit', this.killOnExit);
  }

  get url(): string {
    return this.state.url;
  }

  get ports(): StackPorts {
    return this.state.ports;
  }

  poolUrl(pool: Pool): string {
    return poolUrl(this.state, pool);
  }

  static async start(options: StackOptions): Promise<LocalStack> {
    const host = options.host ?? '127.0.0.1';
    const stateDir = path.resolve(options.stateDir);
    const nginxBin = findNginx();
    // Before the port checks: workers orphaned by a killed master hold the nginx port.
    const leftover = await stopLeftoverNginx(stateDir);
    if (leftover > 0) {
      options.onOutput?.('supervisor', `stopped an nginx left running by an earlier run in this directory (${leftover} process${leftover === 1 ? '' : 'es'})`);
    }
    const wanted: StackPorts = { nginx: 0, blue: 0, green: 0, ...options.ports };
    const ports: StackPorts = { ...wanted };
    for (const key of ['nginx', 'blue', 'green'] as const) {
      if (wanted[key] === 0) ports[key] = await freePort(host);
      else await assertPortFree(wanted[key], host, options.portSources?.[key] ?? `${key} port`);
    }

    const confDir = path.join(stateDir, 'conf');
    for (const dir of ['conf', 'logs', 'run', 'tmp', 'switch']) mkdirSync(path.join(stateDir, dir), { recursive: true });
    chmodSync(path.join(stateDir, 'switch'), 0o755);
    // Links, not copies: local mode runs the very files the host runs.
    const link = (name: string, target: string) => {
      const file = path.join(confDir, name);
      rmSync(file, { force: true });
      symlinkSync(target, file);
    };
    link('nginx.conf', path.join(NGINX_DIR, 'nginx.conf'));
    link('proxy-failover.conf', options.failoverConf ?? path.join(NGINX_DIR, 'proxy-failover.conf'));
    link('canary-buckets.conf', path.join(NGINX_DIR, 'canary-buckets.conf'));
    writeFileSync(path.join(confDir, 'listen.conf'), `# Written by local mode.\nlisten ${host}:${ports.nginx};\n`);

    const state = newStackState(stateDir, host, ports, nginxBin, options.upstreamEnv);
    // Through switch-pool.sh, so local mode writes the switch dir exactly as the host does.
    for (const result of [
      options.activePool ? await switchPool(state, options.activePool) : undefined,
      await setCanary(state, options.canaryPercent ?? 0),
    ]) {
      if (result && result.code !== 0) throw new Error(result.stderr.trim());
    }
    writeFileSync(path.join(confDir, 'upstream.conf'), await renderUpstream(state));
    const routes = await renderUpstream(state, 'routes');
    writeFileSync(path.join(confDir, 'routes.conf'), options.routesOverride ? options.routesOverride(routes) : routes);

    const stack = new LocalStack(state, options);
    try {
      for (const pool of POOLS) await stack.startPool(pool);
      await stack.startNginx();
    } catch (err) {
      await stack.stop();
      throw err;
    }
    writeStackState(state);
    return stack;
  }

  private output(source: string, line: string) {
    this.options.onOutput?.(source, line);
  }

  private watch(name: Pool | 'nginx', child: ChildProcess) {
    this.children.set(name, child);
    child.once('exit', (code, signal) => {
      if (this.stopping || this.expectedExits.has(child)) return;
      const reason = signal ? `killed by ${signal}` : `exit code ${code}`;
      if (name === 'nginx') this.nginxRecovery = this.nginxRecovery.then(() => this.recoverNginx(child, reason));
      else this.options.onUnexpectedExit?.(name, reason);
    });
  }

  /**
   * nginx exited on its own. Its workers may not have (a master killed with SIGKILL leaves them
   * serving on the port): stop its process group, then restart it once, as Compose's
   * `restart: unless-stopped` would; a second exit (or a restart that fails) goes to the caller.
   */
  private async recoverNginx(child: ChildProcess, reason: string): Promise<void> {
    if (child.pid) await stopNginxGroup(child.pid, 2000);
    if (this.stopping) return;
    if (this.nginxRestarts >= NGINX_RESTARTS) {
      const times = `${this.nginxRestarts} restart${this.nginxRestarts === 1 ? '' : 's'}`;
      this.options.onUnexpectedExit?.('nginx', `${reason} again after ${times}; its workers were stopped`);
      return;
    }
    this.nginxRestarts += 1;
    try {
      await this.startNginx();
    } catch (err) {
      if (this.stopping) return;
      this.options.onUnexpectedExit?.('nginx', `${reason}; its workers were stopped; the restart failed: ${(err as Error).message}`);
      return;
    }
    this.output('supervisor', `nginx exited (${reason}); its workers were stopped; restarted nginx (${this.nginxRestarts} of ${NGINX_RESTARTS})`);
  }

  /** Stops the current nginx and every process of its group (workers included). */
  private async stopNginx(graceMs: number): Promise<void> {
    const nginx = this.children.get('nginx');
    if (!nginx?.pid) return;
    this.expectedExits.add(nginx);
    await stopNginxGroup(nginx.pid, graceMs);
    await waitExit(nginx, 1000);
  }

  private kill(child: ChildProcess, signal: NodeJS.Signals) {
    this.expectedExits.add(child);
    child.kill(signal);
  }

  /**
   * Starts a pool app on its port; resolves once it listens, rejects with the reason (its stderr)
   * when it exits first or does not listen in time. Without `run`: what the pool ran last (after
   * killPool), else the release it was started with.
   */
  async startPool(pool: Pool, run?: PoolRun): Promise<void> {
    const wanted = run ?? this.poolRuns.get(pool) ?? { release: this.options.releases?.[pool] ?? `${pool}-local`, env: {} };
    // A pool restarted on its fixed port can find it briefly taken: between the old process's exit
    // and the new listen, the kernel may hand the same number out as the source port of an
    // outgoing connection (loopback ports come from the same range). That passes within moments.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.spawnPool(pool, wanted);
      } catch (err) {
        if (attempt >= PORT_BUSY_ATTEMPTS || !/EADDRINUSE/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private async spawnPool(pool: Pool, wanted: PoolRun): Promise<void> {
    const child = spawn(process.execPath, [APP_ENTRY], {
      env: {
        ...process.env,
        ...wanted.env,
        APP_POOL: pool,
        RELEASE_ID: wanted.release,
        PORT: String(this.state.ports[pool]),
        HOST: this.state.host,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let listening = false;
    // Registered before watch(): a pool that never came up is this call's rejection, not a crash report.
    child.once('exit', () => {
      if (!listening) this.expectedExits.add(child);
    });
    this.watch(pool, child);
    const timeoutMs = this.options.readyTimeoutMs ?? 15_000;
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      const timer = setTimeout(() => {
        this.kill(child, 'SIGKILL');
        reject(new Error(`${pool} pool did not listen within ${timeoutMs} ms: ${stderr.trim()}`));
      }, timeoutMs);
      onLines(child.stdout!, (line) => {
        this.output(pool, line);
        if (line.includes('"listening"')) {
          listening = true;
          clearTimeout(timer);
          resolve();
        }
      });
      onLines(child.stderr!, (line) => {
        stderr += `${line}\n`;
        this.output(pool, line);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${pool} pool exited before listening (${signal ?? `exit code ${code}`}): ${stderr.trim()}`));
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    this.poolRuns.set(pool, { release: wanted.release, env: { ...wanted.env } });
  }

  /**
   * Replaces a pool's process with one running `release` and `env` (on top of the supervisor's
   * environment), on the same port. The old one gets SIGTERM and finishes what it is answering;
   * nginx sends new requests for that pool to the other one until the new process listens.
   */
  async restartPool(pool: Pool, run: { release: string; env?: Record<string, string> }): Promise<void> {
    const child = this.children.get(pool);
    if (child) {
      this.kill(child, 'SIGTERM');
      await waitExit(child, 5000);
      this.children.delete(pool);
    }
    await this.startPool(pool, { release: run.release, env: run.env ?? {} });
  }

  /** What a pool process runs (or ran last): its release id and the extra env it was given. */
  poolRun(pool: Pool): PoolRun | undefined {
    const run = this.poolRuns.get(pool);
    return run && { release: run.release, env: { ...run.env } };
  }

  private async startNginx(): Promise<void> {
    const { nginxBin, prefix, confDir } = this.state;
    // nginx workers stat the switch dir on every request. Started as root, nginx runs them as
    // nobody, who cannot see into a 0700 state dir (mkdtemp, a root home): they would take every
    // request for blue. Local mode is one user's processes, so root's workers stay root; nginx
    // keeps -g settings across reloads.
    const globals = process.getuid?.() === 0 ? 'daemon off; user root;' : 'daemon off;';
    if (this.stopping) throw new Error('the stack is stopping');
    // Its own process group (still our child: not unref'd), so stopping it can signal the group and
    // reach workers whose master is gone; Ctrl-C in the terminal reaches the supervisor, which stops it.
    const child = spawn(nginxBin, ['-p', prefix, '-c', path.join(confDir, 'nginx.conf'), '-g', globals], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let ready = false;
    // Registered before watch(): an nginx that never came up is this call's rejection, not a crash report.
    child.once('exit', () => {
      if (!ready) this.expectedExits.add(child);
    });
    this.watch('nginx', child);
    let stderr = '';
    onLines(child.stderr!, (line) => {
      stderr += `${line}\n`;
      this.output('nginx', line);
    });
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code, signal) => {
        const log = existsSync(this.state.errorLog) ? readFileSync(this.state.errorLog, 'utf8').trim().split('\n').slice(-3).join('\n') : '';
        reject(new Error(`nginx exited during start-up (${signal ?? code}): ${(stderr.trim() || log).trim()}`));
      });
      child.once('error', reject);
    });
    exited.catch(() => undefined);
    try {
      await Promise.race([exited, this.waitReady(this.options.readyTimeoutMs ?? 15_000)]);
      this.assertSwitchDirVisible();
    } catch (err) {
      // Workers an nginx that failed its start left behind must not keep the port.
      this.expectedExits.add(child);
      if (child.pid) await stopNginxGroup(child.pid, 2000);
      throw err;
    }
    ready = true;
  }

  /**
   * nginx treats a flag it cannot stat as absent (blue, no canary) and only logs it, so a
   * permission problem would be a silent flip: refuse to run instead.
   */
  private assertSwitchDirVisible(): void {
    const log = existsSync(this.state.errorLog) ? readFileSync(this.state.errorLog, 'utf8') : '';
    for (const line of log.split('\n')) {
      const denied = line.includes(`stat() "${this.state.switchDir}/`) && /failed \(((?:13|20): [^)]*)\)/.exec(line);
      if (denied) {
        throw new Error(
          `nginx workers cannot look into the switch dir ${this.state.switchDir} (${denied[1]}): ` +
            'make it and every directory above it searchable by the nginx worker user (chmod o+x)',
        );
      }
    }
  }

  /** Resolves when GET /version through nginx answers 200: the stack serves end to end. */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const res = await httpRequest(`${this.url}/version`, { timeoutMs: 1000, agent: false });
        if (res.status === 200) return;
        last = `status ${res.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${this.url}/version did not answer 200 within ${timeoutMs} ms (last: ${last})`);
  }

  /** Flips the active pool through switch-pool.sh (a flag file; no reload). */
  flip(pool: Pool | string): Promise<ScriptResult> {
    return switchPool(this.state, pool);
  }

  /** Sets the share of requests (0-99) whose first try goes to the idle pool, through switch-pool.sh. */
  canary(percent: number | string): Promise<ScriptResult> {
    return setCanary(this.state, percent);
  }

  /** The pool nginx treats as active on the next request (the switch dir's flag file). */
  activePool(): Pool {
    return readActivePool(this.state);
  }

  canaryPercent(): number {
    return readCanaryPercent(this.state);
  }

  async chaos(pool: Pool, mode: ChaosMode | 'stop'): Promise<void> {
    const target = mode === 'stop' ? '/chaos/stop' : `/chaos/start?mode=${mode}`;
    const res = await httpRequest(`${this.poolUrl(pool)}${target}`, { method: 'POST', timeoutMs: 5000, agent: false });
    if (res.status !== 200) throw new Error(`chaos ${mode} on ${pool}: status ${res.status} ${res.body}`);
  }

  /** Kills a pool app (SIGKILL by default: no goodbye, as a crash would). */
  async killPool(pool: Pool, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.children.get(pool);
    if (!child) return;
    this.kill(child, signal);
    await waitExit(child, 5000);
    this.children.delete(pool);
  }

  pid(name: Pool | 'nginx'): number | undefined {
    return this.children.get(name)?.pid;
  }

  /** Stops nginx first (no request reaches a stopped pool), then the pools. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.stopNginx(5000);
    // A restart under way sees `stopping` before it spawns, or its nginx was the one just stopped.
    await this.nginxRecovery;
    await this.stopNginx(5000);
    await Promise.all(
      POOLS.map(async (pool) => {
        const child = this.children.get(pool);
        if (!child) return;
        this.kill(child, 'SIGTERM');
        await waitExit(child, 3000);
      }),
    );
    this.children.clear();
    process.off('exit', this.killOnExit);
    removeStackState(this.state);
  }
}
