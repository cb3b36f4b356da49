// The release backend for the local stack (`npm start`): state files in the state dir (contract
// section 4), the switch dir through nginx/switch-pool.sh, and the pool agent inside the supervisor
// (local/pool-agent.ts) that restarts the idle pool when its desired state changes.
import type { SecretStore } from '../core/secrets';
import { LocalSecretStore } from './secret-store';
import { isEmptyPoolOptions, PoolOptions } from '../core/pool-options';
import { ConfigError } from '../core/config-error';
import { parseStickyKeys, stickyKeyText } from '../core/canary';
import { PROXY_SETTINGS } from '../core/proxy-settings';
import { Pool } from '../core/pools';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { header, httpRequest } from '../support/http';
import { readStackState, StackState, supervisorRunning } from './stack';
import { readActivePool, readCanaryPercent, setCanary, setPreview, switchPool } from './switch';
import type { DesiredPool, PrePromoteResult, ReleaseRecord } from '../core/release-record';
import { DeployOptions, DeployReport, FlipResult, PrePromoteOptions, ReleaseBackend } from '../core/release-backend';
import {
  readPrePromoteResult,
  writePrePromoteRequest,
  readApplied,
  readDesired,
  readLocalHistory,
  readLocalRecord,
  writeDesired,
  writeLocalRecord,
} from './release-store';
import { LOCAL_STATE_DIR } from './paths';

export class LocalReleaseBackend implements ReleaseBackend {
  readonly target = 'local';
  readonly supportsImages = false;

  constructor(
    readonly stateDir: string,
    private readonly pollMs = 100,
  ) {}

  /** The running stack's state.json; throws when npm start is not running here. */
  stack(): StackState {
    const state = readStackState(this.stateDir);
    if (!state || !supervisorRunning(state)) {
      throw new ConfigError(`no local stack is running in ${this.stateDir} (start one with npm start)`);
    }
    return state;
  }

  async readRecord(): Promise<ReleaseRecord | undefined> {
    return readLocalRecord(this.stateDir);
  }

  async writeRecord(record: ReleaseRecord, basis: ReleaseRecord | undefined): Promise<ReleaseRecord> {
    return writeLocalRecord(this.stateDir, record, basis);
  }

  async history(): Promise<ReleaseRecord[]> {
    return readLocalHistory(this.stateDir);
  }

  /** The local user: local mode has no principal. */
  async actor(): Promise<string | undefined> {
    return `local user ${userInfo().username}`;
  }

  async activePool(): Promise<Pool> {
    return readActivePool(this.stack());
  }

  async desiredPool(pool: Pool): Promise<DesiredPool | undefined> {
    const d = readDesired(this.stateDir, pool);
    return d && { release: d.release, env: d.env ?? {}, ...(d.image ? { image: d.image } : {}), ...withOptions(d) };
  }

  async currentPool(pool: Pool): Promise<DesiredPool | undefined> {
    const a = readApplied(this.stateDir, pool);
    return a && { release: a.release, env: a.env ?? {}, ...withOptions(a) };
  }

  async setDesiredPool(pool: Pool, desired: DesiredPool): Promise<void> {
    writeDesired(this.stateDir, pool, { ...desired, at: new Date().toISOString() });
  }

  /** Stamps the desired state with the request id and waits for the agent's applied.json to answer it. */
  async deploy(pool: Pool, options: DeployOptions): Promise<DeployReport> {
    const state = this.stack();
    const desired = readDesired(this.stateDir, pool);
    if (!desired) return { ok: false, steps: [], reason: `pools/${pool}.json does not exist: nothing to deploy` };
    writeDesired(this.stateDir, pool, { ...desired, request: options.requestId, at: new Date().toISOString() });
    const deadline = Date.now() + options.timeoutMs;
    while (Date.now() < deadline) {
      const applied = readApplied(this.stateDir, pool);
      if (applied?.request === options.requestId) {
        const failed = applied.steps.find((s) => !s.ok);
        return {
          ok: applied.ok,
          steps: applied.steps,
          reason: applied.ok ? undefined : (applied.reason ?? failed?.detail ?? `step ${failed?.step ?? '?'} failed`),
        };
      }
      if (!supervisorRunning(state))
        return { ok: false, steps: [], reason: 'npm start (the supervisor running the pool agent) exited' };
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
    return {
      ok: false,
      steps: [],
      reason: `the local pool agent did not report within ${Math.round(options.timeoutMs / 1000)} s (is npm start running a version with the pool agent?)`,
    };
  }

  secretStore(): SecretStore {
    return new LocalSecretStore(this.stateDir);
  }

  /** Asks the pool agent (its one lock: between reconciles) to run the release phase; waits for its answer. */
  async prePromote(pool: Pool, options: PrePromoteOptions): Promise<PrePromoteResult> {
    const state = this.stack();
    writePrePromoteRequest(this.stateDir, {
      request: options.requestId,
      pool,
      release: options.release,
      command: options.command,
      timeoutMs: options.timeoutMs,
    });
    // The agent kills the command at its timeout; this only covers an agent that never answers.
    const deadline = Date.now() + options.timeoutMs + 30_000;
    while (Date.now() < deadline) {
      const result = readPrePromoteResult(this.stateDir);
      if (result?.request === options.requestId) {
        const { request: _request, ...rest } = result;
        return rest;
      }
      if (!supervisorRunning(state))
        return { command: options.command, ok: false, output: '', reason: 'npm start (the pool agent) exited' };
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
    return {
      command: options.command,
      ok: false,
      output: '',
      reason: `the local pool agent did not report within ${Math.round(options.timeoutMs / 1000) + 30} s`,
    };
  }

  async canaryPercent(): Promise<number> {
    return readCanaryPercent(this.stack());
  }

  async setCanary(percent: number, sticky?: string): Promise<void> {
    const result = await setCanary(this.stack(), percent, sticky);
    if (result.code !== 0)
      throw new Error(
        `switch-pool.sh --canary ${percent}${sticky ? ` --sticky ${sticky}` : ''}: ${result.stderr.trim() || `exit ${result.code}`}`,
      );
  }

  /** switch-pool.sh --preview on the running stack (no parameter locally: the CLI prints the token). */
  async setPreview(preview: { pool: Pool; token: string } | undefined): Promise<{ url?: string }> {
    const state = this.stack();
    const result = await setPreview(state, preview);
    if (result.code !== 0)
      throw new Error(
        `switch-pool.sh --preview ${preview ? preview.pool : 'off'}: ${result.stderr.trim() || `exit ${result.code}`}`,
      );
    return { url: state.url };
  }

  /** The running stack's STICKY_KEYS (what its routes.conf was rendered with), normalized. */
  async stickyKeys(): Promise<readonly string[]> {
    const declared = this.stack().upstreamEnv[PROXY_SETTINGS.stickyKeys.env] ?? '';
    return parseStickyKeys(declared, PROXY_SETTINGS.stickyKeys.env).map(stickyKeyText);
  }

  /**
   * Flips through switch-pool.sh, then confirms end to end: a request through nginx whose own
   * access-log line says `active_pool` = pool. Which pool answered it is reported, not required:
   * a failing new release is failed over by nginx, and judging that is the guard's job.
   */
  async flip(pool: Pool): Promise<FlipResult> {
    const state = this.stack();
    const started = Date.now();
    const result = await switchPool(state, pool);
    if (result.code !== 0)
      return { ok: false, detail: `switch-pool.sh ${pool}: ${result.stderr.trim() || `exit ${result.code}`}` };
    let last = 'no answer';
    while (Date.now() - started < 10_000) {
      try {
        const offset = fileSize(state.accessLog);
        const res = await httpRequest(`${state.url}/version`, { timeoutMs: 3000, agent: false });
        const id = header(res, 'x-request-id');
        const line = id ? await this.findLogLine(state.accessLog, offset, id) : undefined;
        if (line?.active_pool === pool) {
          const answered = header(res, 'x-app-pool');
          return {
            ok: true,
            detail: `${pool} is active: a request through ${state.url} ${Date.now() - started} ms after the switch logged active_pool=${pool} (answered by ${answered ?? '?'}, ${res.status})`,
          };
        }
        last = line
          ? `the probe logged active_pool=${line.active_pool}`
          : `the probe's log line (request ${id ?? '?'}) was not found`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return { ok: false, detail: `switched, but nginx did not confirm ${pool} as active within 10 s (${last})` };
  }

  /** The access-log line of one request, written after `offset`; waits up to 2 s for nginx to write it. */
  private async findLogLine(
    file: string,
    offset: number,
    requestId: string,
  ): Promise<{ active_pool?: string } | undefined> {
    const needle = `"request_id":"${requestId}"`;
    const deadline = Date.now() + 2000;
    let from = offset;
    let carry = '';
    while (Date.now() < deadline) {
      const size = fileSize(file);
      if (size < from) from = 0; // rotated or truncated
      if (size > from) {
        const text = carry + readRange(file, from, size);
        from = size;
        const at = text.indexOf(needle);
        if (at >= 0) {
          const start = text.lastIndexOf('\n', at) + 1;
          const end = text.indexOf('\n', at);
          try {
            return JSON.parse(text.slice(start, end < 0 ? undefined : end)) as { active_pool?: string };
          } catch {
            return undefined;
          }
        }
        carry = text.slice(text.lastIndexOf('\n') + 1);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return undefined;
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readRange(file: string, from: number, to: number): string {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(to - from);
    const n = readSync(fd, buffer, 0, buffer.length, from);
    return buffer.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The backend `bluegreen release` uses when no stage is named: the local stack in $BLUEGREEN_STATE_DIR. */
/** A pool's options as the backend reports them: absent when none. */
function withOptions(p: { options?: PoolOptions }): { options?: PoolOptions } {
  return isEmptyPoolOptions(p.options) ? {} : { options: p.options };
}

export function localReleaseBackend(env: NodeJS.ProcessEnv): ReleaseBackend {
  return new LocalReleaseBackend(env.BLUEGREEN_STATE_DIR || LOCAL_STATE_DIR);
}
