// A local data plane: real nginx (the repo's nginx.conf, rendered by the repo's renderer) in front
// of the two pool apps as child processes. Used by `npm start`, the e2e tests and bench/.
// The parts: the state file (stack-state.ts), nginx's configuration (nginx-config.ts) and process
// (nginx-process.ts), the pool apps (pool-apps.ts), all under one ChildSupervisor (child-supervisor.ts);
// an nginx left by an earlier run is stopped first (leftover-nginx.ts).
import * as path from 'node:path';
import { ChaosMode, Pool, POOLS } from '../core/pools';
import { ChildSupervisor } from './child-supervisor';
import { stopLeftoverNginx } from './leftover-nginx';
import { writeNginxConfig } from './nginx-config';
import { findNginx } from './nginx-binary';
import { NginxProcess, waitServing } from './nginx-process';
import { PoolApps, PoolRun } from './pool-apps';
import { assertPortFree, freePort } from './ports';
import { newStackState, poolUrl, removeStackState, StackPorts, StackState, writeStackState } from './stack-state';
import {
  freshPool,
  readActivePool,
  readCanaryPercent,
  ScriptResult,
  setCanary,
  setPreview,
  switchPool,
} from './switch';

export { NGINX_RESTARTS } from './nginx-process';
export type { PoolRun } from './pool-apps';
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

/** The ports asked for (0: a free one), each checked free. */
async function choosePorts(host: string, options: Pick<StackOptions, 'ports' | 'portSources'>): Promise<StackPorts> {
  const wanted: StackPorts = { nginx: 0, blue: 0, green: 0, ...options.ports };
  const ports: StackPorts = { ...wanted };
  for (const key of ['nginx', 'blue', 'green'] as const) {
    if (wanted[key] === 0) ports[key] = await freePort(host);
    else await assertPortFree(wanted[key], host, options.portSources?.[key] ?? `${key} port`);
  }
  return ports;
}

export class LocalStack {
  private readonly supervisor = new ChildSupervisor<Pool | 'nginx'>();
  private readonly nginx: NginxProcess;
  private readonly pools: PoolApps;

  private constructor(
    readonly state: StackState,
    options: StackOptions,
  ) {
    const output = (source: string, line: string) => options.onOutput?.(source, line);
    const { readyTimeoutMs, onUnexpectedExit } = options;
    this.nginx = new NginxProcess(state, this.supervisor, { readyTimeoutMs, output, onUnexpectedExit });
    this.pools = new PoolApps(state, this.supervisor, {
      releases: options.releases,
      readyTimeoutMs,
      output,
      onUnexpectedExit,
      appLogStateDir: state.prefix,
    });
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
      options.onOutput?.(
        'supervisor',
        `stopped an nginx left running by an earlier run in this directory (${leftover} process${leftover === 1 ? '' : 'es'})`,
      );
    }
    const ports = await choosePorts(host, options);
    const state = newStackState(stateDir, host, ports, nginxBin, options.upstreamEnv);
    await writeNginxConfig(state, options);

    const stack = new LocalStack(state, options);
    try {
      for (const pool of POOLS) await stack.startPool(pool);
      await stack.nginx.start();
    } catch (err) {
      await stack.stop();
      throw err;
    }
    writeStackState(state);
    return stack;
  }

  /**
   * Starts a pool app on its port; resolves once it listens, rejects with the reason (its stderr)
   * when it exits first or does not listen in time. Without `run`: what the pool ran last (after
   * killPool), else the release it was started with.
   */
  startPool(pool: Pool, run?: PoolRun): Promise<void> {
    return this.pools.start(pool, run);
  }

  /**
   * Replaces a pool's process with one running `release` and `env` (on top of the supervisor's
   * environment), on the same port. The old one gets SIGTERM and finishes what it is answering;
   * nginx sends new requests for that pool to the other one until the new process listens.
   */
  restartPool(
    pool: Pool,
    run: { release: string; env?: Record<string, string>; secrets?: Record<string, string>; drainSeconds?: number },
  ): Promise<void> {
    return this.pools.restart(pool, run);
  }

  /** What a pool process runs (or ran last): its release id and the extra env it was given. */
  poolRun(pool: Pool): PoolRun | undefined {
    return this.pools.run(pool);
  }

  /** The environment the pool's process runs with now; undefined when it never ran. */
  poolEnv(pool: Pool): NodeJS.ProcessEnv | undefined {
    const run = this.pools.run(pool);
    return run && this.pools.processEnv(pool, run);
  }

  /** Resolves when GET /version through nginx answers 200: the stack serves end to end. */
  waitReady(timeoutMs: number): Promise<void> {
    return waitServing(this.url, timeoutMs);
  }

  /** Flips the active pool through switch-pool.sh (a flag file; no reload). */
  flip(pool: Pool | string): Promise<ScriptResult> {
    return switchPool(this.state, pool);
  }

  /**
   * Sets the share of requests (0-99) whose first try goes to the idle pool, through switch-pool.sh;
   * sticky on a key (`cookie:NAME` / `header:NAME`, one of the stack's STICKY_KEYS) when given.
   */
  canary(percent: number | string, sticky?: string): Promise<ScriptResult> {
    return setCanary(this.state, percent, sticky);
  }

  /**
   * Starts the pool's next generation of upstream blocks (switch-pool.sh --fresh; no reload): what
   * nginx marked failed on the pool's previous process no longer sends its requests to the backup.
   */
  fresh(pool: Pool | string): Promise<ScriptResult> {
    return freshPool(this.state, pool);
  }

  /**
   * Opens the preview of the idle `pool` for `token` (switch-pool.sh --preview; no reload), or ends
   * it (`undefined`): a request carrying the token goes to that pool alone, no fallback.
   */
  preview(preview: { pool: Pool | string; token: string } | undefined): Promise<ScriptResult> {
    return setPreview(this.state, preview);
  }

  /** Ends the preview of `pool` only (the pool agent, before it replaces the pool's process). */
  endPreview(pool: Pool): Promise<ScriptResult> {
    return setPreview(this.state, undefined, pool);
  }

  /** The pool nginx treats as active on the next request (the switch dir's flag file). */
  activePool(): Pool {
    return readActivePool(this.state);
  }

  canaryPercent(): number {
    return readCanaryPercent(this.state);
  }

  chaos(pool: Pool, mode: ChaosMode | 'stop'): Promise<void> {
    return this.pools.chaos(pool, mode);
  }

  /** Kills a pool app (SIGKILL by default: no goodbye, as a crash would). */
  killPool(pool: Pool, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.pools.stop(pool, signal, 5000);
  }

  pid(name: Pool | 'nginx'): number | undefined {
    return this.supervisor.get(name)?.pid;
  }

  /** Stops nginx first (no request reaches a stopped pool), then the pools. */
  async stop(): Promise<void> {
    if (!this.supervisor.beginStopAll()) return;
    await this.nginx.stop(5000);
    // A restart under way sees `stopping` before it spawns, or its nginx was the one just stopped.
    await this.nginx.settled();
    await this.nginx.stop(5000);
    await Promise.all(POOLS.map((pool) => this.pools.stop(pool, 'SIGTERM', 3000)));
    this.supervisor.release();
    removeStackState(this.state);
  }
}
