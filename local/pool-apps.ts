// The two pool apps (app/) of a local stack as supervised children: each on its fixed port, with the
// release and extra environment it was last started with, so a restart runs what it ran.
import { spawn } from 'node:child_process';
import { ChaosMode, Pool } from '../core/pools';
import { optionSeconds } from '../core/pool-options';
import { httpRequest } from '../support/http';
import { ChildSupervisor, onLines } from './child-supervisor';
import { AppLogWriter } from './app-logs';
import { APP_ENTRY } from './paths';
import { poolUrl, StackState } from './stack-state';

export interface PoolRun {
  release: string;
  /** Extra environment for the pool app, e.g. { FAULT_RATE: '0.2' }. */
  env: Record<string, string>;
  /** Its pinned secrets' values: in the process's environment only (run() never returns them). */
  secrets?: Record<string, string>;
  /** How long it may finish in-flight requests after SIGTERM when replaced (its release's --drain). */
  drainSeconds?: number;
}

/** Tries a pool gets when its port is briefly in use (100 ms apart). */
const PORT_BUSY_ATTEMPTS = 30;

export interface PoolAppsOptions {
  /** The release each pool starts with when nothing else was asked for (default `<pool>-local`). */
  releases?: Partial<Record<Pool, string>>;
  readyTimeoutMs?: number;
  output: (source: string, line: string) => void;
  /** A pool exited on its own (not through stop()): reported at once. */
  onUnexpectedExit?: (name: Pool, reason: string) => void;
  /** The state dir whose app-logs/<pool>.log gets each pool's stdout/stderr (local/app-logs.ts); none: not kept. */
  appLogStateDir?: string;
}

export class PoolApps {
  /** Release and extra env per pool, so a pool restarted after stop() runs what it ran. */
  private readonly runs = new Map<Pool, PoolRun>();

  constructor(
    private readonly state: Pick<StackState, 'host' | 'ports'>,
    private readonly supervisor: ChildSupervisor<Pool | 'nginx'>,
    private readonly options: PoolAppsOptions,
  ) {}

  /**
   * Starts a pool app on its port; resolves once it listens, rejects with the reason (its stderr)
   * when it exits first or does not listen in time. Without `run`: what the pool ran last (after
   * it was stopped), else the release it was started with.
   */
  async start(pool: Pool, run?: PoolRun): Promise<void> {
    const wanted = run ?? this.runs.get(pool) ?? { release: this.options.releases?.[pool] ?? `${pool}-local`, env: {} };
    // A pool restarted on its fixed port can find it briefly taken: between the old process's exit
    // and the new listen, the kernel may hand the same number out as the source port of an
    // outgoing connection (loopback ports come from the same range). That passes within moments.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.spawn(pool, wanted);
      } catch (err) {
        if (attempt >= PORT_BUSY_ATTEMPTS || !/EADDRINUSE/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** The environment a pool's process runs with (a release phase's command gets the same). */
  processEnv(pool: Pool, wanted: PoolRun): NodeJS.ProcessEnv {
    return {
      ...process.env,
      ...wanted.env,
      // Its pinned secrets' values: in the process's environment only (README "Secrets").
      ...wanted.secrets,
      APP_POOL: pool,
      RELEASE_ID: wanted.release,
      PORT: String(this.state.ports[pool]),
      HOST: this.state.host,
    };
  }

  private async spawn(pool: Pool, wanted: PoolRun): Promise<void> {
    const child = spawn(process.execPath, [APP_ENTRY], {
      env: this.processEnv(pool, wanted),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let listening = false;
    // Every line the process prints, with its pool, release and host (`bluegreen logs` reads them).
    const appLog = this.options.appLogStateDir
      ? new AppLogWriter(this.options.appLogStateDir, pool, wanted.release)
      : undefined;
    child.once('close', () => appLog?.end());
    // Registered before watch(): a pool that never came up is this call's rejection, not a crash report.
    child.once('exit', () => {
      if (!listening) this.supervisor.expect(child);
    });
    this.supervisor.watch(pool, child, (reason) => this.options.onUnexpectedExit?.(pool, reason));
    const timeoutMs = this.options.readyTimeoutMs ?? 15_000;
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      const timer = setTimeout(() => {
        this.supervisor.kill(child, 'SIGKILL');
        reject(new Error(`${pool} pool did not listen within ${timeoutMs} ms: ${stderr.trim()}`));
      }, timeoutMs);
      onLines(child.stdout!, (line) => {
        appLog?.line(line);
        this.options.output(pool, line);
        if (line.includes('"listening"')) {
          listening = true;
          clearTimeout(timer);
          resolve();
        }
      });
      onLines(child.stderr!, (line) => {
        stderr += `${line}\n`;
        appLog?.line(line);
        this.options.output(pool, line);
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
    this.runs.set(pool, {
      release: wanted.release,
      env: { ...wanted.env },
      secrets: { ...wanted.secrets },
      ...(wanted.drainSeconds === undefined ? {} : { drainSeconds: wanted.drainSeconds }),
    });
  }

  /**
   * Replaces a pool's process with one running `release` and `env` (on top of the supervisor's
   * environment), on the same port. The old one gets SIGTERM and finishes what it is answering.
   */
  async restart(
    pool: Pool,
    run: { release: string; env?: Record<string, string>; secrets?: Record<string, string>; drainSeconds?: number },
  ): Promise<void> {
    // The drain is the stopped process's (the release that started it), as on a host: SIGKILL after it.
    const drainSeconds = this.runs.get(pool)?.drainSeconds ?? optionSeconds(undefined, 'drainSeconds');
    await this.supervisor.stop(pool, 'SIGTERM', drainSeconds * 1000);
    await this.start(pool, {
      release: run.release,
      env: run.env ?? {},
      secrets: run.secrets ?? {},
      ...(run.drainSeconds === undefined ? {} : { drainSeconds: run.drainSeconds }),
    });
  }

  /** Stops a pool app with `signal` (SIGKILL after `timeoutMs`); start() brings back what it ran. */
  stop(pool: Pool, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    return this.supervisor.stop(pool, signal, timeoutMs);
  }

  /** What a pool process runs (or ran last): its release id and the extra env it was given. */
  run(pool: Pool): PoolRun | undefined {
    const run = this.runs.get(pool);
    return run && { release: run.release, env: { ...run.env } };
  }

  /** Starts or stops a chaos mode in a pool app (its /chaos endpoints). */
  async chaos(pool: Pool, mode: ChaosMode | 'stop'): Promise<void> {
    const target = mode === 'stop' ? '/chaos/stop' : `/chaos/start?mode=${mode}`;
    const res = await httpRequest(`${poolUrl(this.state, pool)}${target}`, {
      method: 'POST',
      timeoutMs: 5000,
      agent: false,
    });
    if (res.status !== 200) throw new Error(`chaos ${mode} on ${pool}: status ${res.status} ${res.body}`);
  }
}
