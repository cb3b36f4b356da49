// Local mode's pool agent: what userdata/bluegreen-apply is on a host, inside `npm start`. It polls
// each pool's desired state (pools/<pool>.json) and, for an idle pool whose desired state changed,
// restarts that pool's process with the new release and env, waits for /healthz, moves the pool to
// its next generation in nginx (switch-pool.sh --fresh), smoke-tests /version on the pool's own port,
// and writes what it did to pools/<pool>.applied.json. It never restarts the active pool: it writes a
// refusal instead.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { PrePromoteResult, ReleaseStep } from '../core/release-record';
import { tailOutput, TIMEOUT_EXIT } from '../core/pre-promote';
import {
  AppliedPool,
  LocalDesiredPool,
  LocalPrePromoteRequest,
  readApplied,
  readDesired,
  readPrePromoteRequest,
  readLocalRecord,
  readPrePromoteResult,
  writeApplied,
  writeDesired,
  writePrePromoteResult,
} from './release-store';
import { APP_ENTRY } from './paths';
import { Pool, POOLS } from '../core/pools';
import { optionSeconds, serializePoolOptions } from '../core/pool-options';
import { gateWaitSeconds, poolHealth } from '../core/pool-health';
import { describePinned } from '../core/secrets';
import { resolveLocalSecrets } from './secret-store';
import { formatStepLine } from '../core/step-line';
import { header, httpRequest } from '../support/http';

/** What the agent needs from the stack (LocalStack has it all). */
export interface AgentStack {
  /** `secrets`: pinned secrets' values, for the process's environment only. */
  restartPool(
    pool: Pool,
    run: { release: string; env?: Record<string, string>; secrets?: Record<string, string>; drainSeconds?: number },
  ): Promise<void>;
  activePool(): Pool | Promise<Pool>;
  poolUrl(pool: Pool): string;
  poolRun(pool: Pool): { release: string; env: Record<string, string> } | undefined;
  /** switch-pool.sh --fresh: nginx judges the new process from a clean passive health state. */
  fresh(pool: Pool): Promise<{ code: number; stdout: string; stderr: string }>;
  /** switch-pool.sh --preview off <pool>: a redeployed pool's preview ends (its token was for the old release). */
  endPreview?(pool: Pool): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The environment the pool's process runs with (a release phase runs with the same). */
  poolEnv?(pool: Pool): NodeJS.ProcessEnv | undefined;
}

/** What the agent keeps of a release phase's output while it runs (the record takes the last lines). */
const PRE_PROMOTE_BUFFER_BYTES = 64 * 1024;

export interface PoolAgentOptions {
  stateDir: string;
  stack: AgentStack;
  out: (line: string) => void;
  pollMs?: number;
  /** How long a restarted pool has to answer /healthz 200. */
  healthTimeoutMs?: number;
  /** Smoke attempts on /version (a release may fail some requests on purpose; one answer must be right). */
  smokeAttempts?: number;
}

export const DEFAULT_HEALTH_TIMEOUT_MS = 10_000;
const HOST = 'local';

const envKey = (env: Record<string, string> | undefined) =>
  JSON.stringify(Object.entries(env ?? {}).sort(([a], [b]) => a.localeCompare(b)));
const keyOf = (d: LocalDesiredPool) =>
  `${d.release}\n${envKey(d.env)}\n${serializePoolOptions(d.options)}\n${d.request ?? ''}`;

const optionsOf = (d: LocalDesiredPool) =>
  d.options && serializePoolOptions(d.options) !== '{}' ? { options: d.options } : {};

export class PoolAgent {
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> = Promise.resolve();
  /** The desired state (with its request) each pool was last reconciled for: acted on once. */
  private readonly handled = new Map<Pool, string>();

  constructor(private readonly options: PoolAgentOptions) {}

  /**
   * Records what the pools run now as their desired and applied state (a fresh `npm start` runs the
   * releases it was started with: a desired state left by an earlier run is history), then polls.
   */
  start(): void {
    const at = new Date().toISOString();
    for (const pool of POOLS) {
      const run = this.options.stack.poolRun(pool);
      if (!run) continue;
      const desired: LocalDesiredPool = { release: run.release, env: run.env, request: 'start', at };
      writeDesired(this.options.stateDir, pool, desired);
      writeApplied(this.options.stateDir, pool, {
        release: run.release,
        env: run.env,
        ok: true,
        at,
        request: 'start',
        steps: [{ at, step: 'start', ok: true, detail: 'started by npm start', host: HOST }],
      });
      this.handled.set(pool, keyOf(desired));
    }
    this.timer = setInterval(() => {
      this.busy = this.busy
        .then(() => this.poll())
        .catch((err) => this.options.out(`[agent] error: ${(err as Error).message}`));
    }, this.options.pollMs ?? 200);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.busy;
  }

  /** One reconcile pass over both pools (exported for tests). */
  async poll(): Promise<void> {
    for (const pool of POOLS) {
      const desired = readDesired(this.options.stateDir, pool);
      if (!desired || typeof desired.release !== 'string') continue;
      const key = keyOf(desired);
      if (this.handled.get(pool) === key) continue;
      this.handled.set(pool, key);
      await this.reconcile(pool, desired);
    }
    // In the same pass (the agent's one lock): a release phase never runs while a pool restarts.
    const phase = readPrePromoteRequest(this.options.stateDir);
    if (phase && readPrePromoteResult(this.options.stateDir)?.request !== phase.request) {
      const result = await this.prePromote(phase);
      writePrePromoteResult(this.options.stateDir, { ...result, request: phase.request });
    }
  }

  /**
   * The release phase: `sh -c CMD` in app/ with the new pool's env, once, only on the idle pool
   * running the release that passed its gate; killed (its process group) at its timeout.
   */
  private async prePromote(phase: LocalPrePromoteRequest): Promise<PrePromoteResult> {
    const { stack, out, stateDir } = this.options;
    const base = { command: phase.command, host: HOST, output: '' };
    const refuse = (reason: string): PrePromoteResult => {
      out(`[agent] ${formatStepLine({ step: 'pre-promote', pool: phase.pool, ok: false, detail: reason })}`);
      return { ...base, ok: false, reason };
    };
    // Only for the release in progress that asked for it, between its gate and its traffic: a request
    // left by a CLI or an agent that died is never run by a later agent.
    const record = readLocalRecord(stateDir);
    if (!record || phase.request !== `${record.id}:pre-promote` || record.state !== 'verifying')
      return refuse(
        `not the release in progress between its gate and its traffic (${record ? `${record.id} is ${record.state}` : 'no release record'})`,
      );
    if ((await stack.activePool()) === phase.pool)
      return refuse(`${phase.pool} is the active pool: a release phase runs on the idle pool only`);
    const applied = readApplied(stateDir, phase.pool);
    if (!applied?.ok || applied.release !== phase.release)
      return refuse(`${phase.pool} does not run ${phase.release} (it runs ${applied?.release ?? 'unknown'})`);
    const env = stack.poolEnv?.(phase.pool) ?? process.env;
    const started = Date.now();
    // One stream for both, as on the host: two pipes read apart lose the order the command wrote in.
    const child = spawn('sh', ['-c', 'exec sh -c "$1" 2>&1', 'sh', phase.command], {
      cwd: path.dirname(APP_ENTRY),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = Buffer.alloc(0);
    const keep = (chunk: Buffer) => {
      output = Buffer.concat([output, chunk]);
      if (output.length > PRE_PROMOTE_BUFFER_BYTES) output = output.subarray(output.length - PRE_PROMOTE_BUFFER_BYTES);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, phase.timeoutMs);
    const code = await new Promise<number | null>((resolve) => {
      child.once('error', (err) => {
        keep(Buffer.from(`\n${err.message}\n`));
        resolve(null);
      });
      child.once('close', (c) => resolve(c));
    });
    clearTimeout(timer);
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    const ok = !timedOut && code === 0;
    const result: PrePromoteResult = {
      ...base,
      ok,
      ...(timedOut ? { timedOut: true, exitCode: TIMEOUT_EXIT } : code === null ? {} : { exitCode: code }),
      seconds,
      output: tailOutput(output.toString('utf8')),
      ...(timedOut ? { reason: `killed after its timeout of ${phase.timeoutMs / 1000} s` } : {}),
    };
    out(
      `[agent] ${formatStepLine({ step: 'pre-promote', pool: phase.pool, ok, detail: timedOut ? 'timed out' : `exit ${code ?? '?'} in ${seconds} s` })}`,
    );
    return result;
  }

  private async reconcile(pool: Pool, desired: LocalDesiredPool): Promise<void> {
    const { stack, out, stateDir } = this.options;
    const env = desired.env ?? {};
    const steps: ReleaseStep[] = [];
    const step = (name: string, ok: boolean, detail: string) => {
      steps.push({ at: new Date().toISOString(), step: name, ok, detail, host: HOST });
      out(`[agent] ${formatStepLine({ step: name, pool, ok, detail })}`);
    };
    // The options it was asked to run with (a refusal reports what runs instead: refused = true).
    const write = (applied: Omit<AppliedPool, 'at' | 'steps' | 'request'>, refused = false) =>
      writeApplied(stateDir, pool, {
        ...applied,
        ...(refused ? {} : optionsOf(desired)),
        at: new Date().toISOString(),
        steps,
        ...(desired.request ? { request: desired.request } : {}),
      });

    const active = await stack.activePool();
    if (pool === active) {
      const running = stack.poolRun(pool);
      const reason = `${pool} is the active pool: the agent never restarts it (flip first, or release to the idle pool)`;
      step('refuse', false, reason);
      write({ release: running?.release ?? 'unknown', env: running?.env ?? {}, ok: false, reason }, true);
      return;
    }

    // Like bluegreen-apply: the preview of the release this pool ran ends before it is replaced.
    const preview = await stack.endPreview?.(pool);
    if (preview && !/no preview/.test(preview.stdout))
      step('preview', preview.code === 0, (preview.stdout || preview.stderr).trim().replace(/^switch-pool: /, ''));

    // The pinned secrets' values, from the local store: into the process's environment, nowhere else.
    let secrets: Record<string, string>;
    try {
      secrets = resolveLocalSecrets(stateDir, desired.options?.secrets ?? {});
      const names = Object.keys(secrets);
      if (names.length) step('secrets', true, `${names.length} pinned: ${describePinned(desired.options?.secrets)}`);
    } catch (err) {
      const reason = `secrets: ${(err as Error).message}`;
      step('secrets', false, reason);
      write({ release: desired.release, env, ok: false, reason });
      return;
    }
    const started = Date.now();
    try {
      await stack.restartPool(pool, {
        release: desired.release,
        env,
        secrets,
        drainSeconds: optionSeconds(desired.options, 'drainSeconds'),
      });
      step('restart', true, `${pool} restarted with release ${desired.release} in ${Date.now() - started} ms`);
    } catch (err) {
      const reason = `restart failed: ${(err as Error).message}`;
      step('restart', false, reason);
      write({ release: desired.release, env, ok: false, reason });
      return;
    }

    const base = stack.poolUrl(pool);
    const health = await this.healthGate(`${base}/healthz`, desired);
    step('health', health.ok, health.detail);
    if (!health.ok) {
      write({ release: desired.release, env, ok: false, reason: `health gate: ${health.detail}` });
      return;
    }
    // Once the new process is healthy, not before: a request nginx tried while it was still starting
    // would mark the fresh generation failed too. Before the smoke test, whatever it finds: the smoke
    // test goes to the pool's own port, not through nginx, and the process is new either way (a
    // failed gate restores the previous release with a restart of its own, freshened again).
    const fresh = await stack.fresh(pool);
    const freshDetail = (fresh.code === 0 ? fresh.stdout : fresh.stderr || `exit ${fresh.code}`)
      .trim()
      .replace(/^switch-pool: /, '');
    step('fresh', fresh.code === 0, freshDetail);
    if (fresh.code !== 0) {
      write({ release: desired.release, env, ok: false, reason: `fresh: ${freshDetail}` });
      return;
    }
    const smoke = await this.smoke(`${base}/version`, desired.release);
    step('smoke', smoke.ok, smoke.detail);
    write({ release: desired.release, env, ok: smoke.ok, ...(smoke.ok ? {} : { reason: `smoke: ${smoke.detail}` }) });
  }

  /**
   * GET /healthz every 100 ms until 200. A release with a start period or probe timeout of its own
   * (--health-start-period, --health-timeout) is waited for as the host's gate waits
   * (gateWaitSeconds), at least the agent's own bound; else the agent's bound alone.
   */
  private async healthGate(url: string, desired: LocalDesiredPool): Promise<{ ok: boolean; detail: string }> {
    const own = this.options.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
    const o = desired.options;
    const h = poolHealth(o);
    const timeoutMs =
      o?.healthStartPeriodSeconds !== undefined || o?.healthTimeoutSeconds !== undefined
        ? Math.max(own, gateWaitSeconds(h.startPeriodSeconds, h.timeoutSeconds) * 1000)
        : own;
    const probeMs = o?.healthTimeoutSeconds !== undefined ? h.timeoutSeconds * 1000 : 2000;
    const started = Date.now();
    let last = 'no answer';
    while (Date.now() - started < timeoutMs) {
      try {
        const res = await httpRequest(url, { timeoutMs: probeMs, agent: false });
        if (res.status === 200) return { ok: true, detail: `GET /healthz 200 after ${Date.now() - started} ms` };
        last = `status ${res.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { ok: false, detail: `GET /healthz did not answer 200 within ${timeoutMs / 1000} s (last: ${last})` };
  }

  private async smoke(url: string, release: string): Promise<{ ok: boolean; detail: string }> {
    const attempts = this.options.smokeAttempts ?? 5;
    let last = 'no answer';
    for (let i = 1; i <= attempts; i++) {
      try {
        const res = await httpRequest(url, { timeoutMs: 2000, agent: false });
        if (res.status === 200) {
          let answered: unknown;
          try {
            answered = (JSON.parse(res.body) as { release?: unknown }).release;
          } catch {
            answered = undefined;
          }
          const headerRelease = header(res, 'x-release-id');
          if (answered === release && headerRelease === release)
            return { ok: true, detail: `GET /version answers release ${release}${i > 1 ? ` (attempt ${i})` : ''}` };
          // A wrong release is not noise: the pool runs something else.
          return {
            ok: false,
            detail: `GET /version answers release ${String(answered ?? headerRelease)}, expected ${release}`,
          };
        }
        last = `status ${res.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
    }
    return { ok: false, detail: `GET /version did not answer 200 in ${attempts} attempts (last: ${last})` };
  }
}
