// The local-mode operator commands: flip, status, maintenance, chaos, check (start is in start.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import { parseArgs } from 'node:util';
import { ChaosMode, otherPool, parseChaosMode, parsePool, Pool, POOLS } from '../core/pools';
import { ConfigError } from '../core/config-error';
import { PORTS } from '../core/ports';
import { LOCAL_STATE_DIR } from './paths';
import { header, httpRequest } from '../support/http';
import { describeEndpoint } from '../support/endpoint';
import { printRows, type Out } from '../support/output';
import { runCheck } from './check';
import { runLoad, summarize } from './load';
import { parseDuration } from '../core/duration';
import { readApplied, readLocalRecord } from './release-store';
import { poolUrl, readStackState, StackState, supervisorRunning } from './stack';
import { describeCanaryShare } from '../core/canary';
import { describePreviewState } from '../core/preview';
import {
  freshPool,
  readActivePool,
  readCanaryPercent,
  readCanarySticky,
  readPreviewPool,
  setCanary,
  switchPool,
} from './switch';
import { maintenanceOn, MAINTENANCE_FILE } from './watcher';

export class UsageError extends ConfigError {}

function stateDir(env: NodeJS.ProcessEnv): string {
  return env.BLUEGREEN_STATE_DIR || LOCAL_STATE_DIR;
}

function requireLocalStack(env: NodeJS.ProcessEnv): StackState {
  const state = readStackState(stateDir(env));
  if (!state)
    throw new UsageError(`no local stack is running (no ${stateDir(env)}/state.json): start one with npm start`);
  return state;
}

/** One pool as seen on its own port: the release it runs (GET /version) and its health (GET /healthz). */
async function describePool(state: StackState, dir: string, pool: Pool): Promise<string> {
  const base = poolUrl(state, pool);
  const get = (p: string) =>
    httpRequest(`${base}${p}`, { timeoutMs: 2000, agent: false }).then(
      (res) => ({ status: res.status, body: res.body, error: undefined }),
      (err: Error) => ({ status: 0, body: '', error: err.message.replace(`GET ${base}${p}: `, '') }),
    );
  const [version, health] = await Promise.all([get('/version'), get('/healthz')]);
  const applied = readApplied(dir, pool);
  let release: string | undefined;
  if (version.status === 200) {
    try {
      const answered = (JSON.parse(version.body) as { release?: unknown }).release;
      if (typeof answered === 'string') release = `release ${answered}`;
    } catch {
      // not the pool contract's JSON: fall back to what the pool agent applied
    }
  }
  if (!release) {
    const why = version.error ?? `status ${version.status}`;
    release = applied?.ok
      ? `release ${applied.release} (as the pool agent applied it; GET /version: ${why})`
      : `release unknown (GET /version: ${why})`;
  }
  const healthText =
    health.status === 200
      ? 'healthy (GET /healthz 200)'
      : health.error
        ? `down (GET /healthz: ${health.error})`
        : `unhealthy (GET /healthz ${health.status})`;
  const agent =
    applied && !applied.ok ? `; the pool agent's last run failed: ${applied.reason ?? 'no reason given'}` : '';
  return `${release}, ${healthText}, ${base}${agent}`;
}

/** `status` without a stage: the local stack, as `flip` and `maintenance` find it. */
export async function statusCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  if (args.length > 0) {
    throw new UsageError(
      `status takes no arguments without --stage, got "${args.join(' ')}" (--region and --profile need --stage S or $BLUEGREEN_STAGE)`,
    );
  }
  const dir = stateDir(env);
  const state = requireLocalStack(env);
  if (!supervisorRunning(state)) {
    throw new UsageError(
      `no local stack is running (${dir}/state.json was left by process ${state.supervisorPid}, which has exited): start one with npm start`,
    );
  }
  const [blue, green, endpoint] = await Promise.all([
    describePool(state, dir, 'blue'),
    describePool(state, dir, 'green'),
    describeEndpoint(state.url),
  ]);
  const active = readActivePool(state);
  const canary = readCanaryPercent(state);
  const sticky = readCanarySticky(state);
  const record = readLocalRecord(dir);
  const lastRelease = record
    ? `${record.id}: release ${record.release} to ${record.pool}, ${record.state}${record.reason ? ` (${record.reason})` : ''}, ${record.finishedAt ?? record.updatedAt}`
    : 'none';
  printRows(
    [
      ['stack', `local (${dir})`],
      ['active pool', active],
      ['canary', describeCanaryShare(canary, otherPool(active), sticky)],
      ['preview', describePreviewState(readPreviewPool(state), record?.preview ? record.id : undefined)],
      ['blue pool', blue],
      ['green pool', green],
      ['maintenance', maintenanceOn(dir) ? 'on: alerts are evaluated and printed, not posted' : 'off'],
      ['last release', lastRelease],
      ['access log', state.accessLog],
      ['error log', state.errorLog],
      ['public URL', state.url],
      ['endpoint now', endpoint.text],
    ],
    out,
  );
  return endpoint.healthy ? 0 : 1;
}

/** Polls GET /version through nginx until the given pool answers; returns ms waited or undefined. */
export async function waitForPool(url: string, pool: Pool, timeoutMs: number): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    try {
      const res = await httpRequest(`${url}/version`, { timeoutMs: 2000, agent: false });
      if (res.status === 200 && header(res, 'x-app-pool') === pool) return Date.now() - started;
    } catch {
      // pool down or restarting: keep polling until the deadline
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

export async function flipCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const [target] = args;
  if (!target) throw new UsageError('usage: bluegreen flip <blue|green>');
  const state = requireLocalStack(env);
  const before = readActivePool(state);
  // An invalid pool still goes to the switch script: its refusal is the one source of that rule.
  const result = await switchPool(state, target);
  if (result.stdout.trim()) out(result.stdout.trim());
  if (result.code !== 0) {
    out(result.stderr.trim());
    return result.code;
  }
  const pool = parsePool(target, 'pool');
  // A canary share left set would now send its requests to the pool just left (as on a stage).
  if (pool !== before && readCanaryPercent(state) > 0) {
    const ended = await setCanary(state, 0);
    out((ended.code === 0 ? ended.stdout : ended.stderr).trim());
    if (ended.code !== 0) return 1;
  }
  const waited = await waitForPool(state.url, pool, 10_000);
  if (waited === undefined) {
    out(
      `switched, but ${state.url}/version is not answered by ${pool} after 10 s: is ${pool} healthy? (bluegreen chaos ${pool} stop)`,
    );
    return 1;
  }
  out(`confirmed: ${state.url} is answered by ${pool} (${waited} ms after the switch)`);
  return 0;
}

export async function chaosCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const [poolArg, modeArg] = args;
  if (!poolArg || !modeArg) throw new UsageError('usage: bluegreen chaos <blue|green> <error|timeout|stop>');
  const pool = parsePool(poolArg, 'pool');
  const mode: ChaosMode | 'stop' = modeArg === 'stop' ? 'stop' : parseChaosMode(modeArg, 'mode (or stop)');
  const state = readStackState(stateDir(env));
  const base = state ? poolUrl(state, pool) : `http://127.0.0.1:${PORTS[pool]}`;
  const path = mode === 'stop' ? '/chaos/stop' : `/chaos/start?mode=${mode}`;
  const res = await httpRequest(`${base}${path}`, { method: 'POST', timeoutMs: 5000, agent: false });
  out(`${pool}: ${res.status} ${res.body.trim()}`);
  if (res.status !== 200) return 1;
  // Healed: nginx may still hold the pool failed from the chaos for up to fail_timeout, and a
  // deploy of the other pool in that window would leave no pool to answer. A fresh upstream
  // generation makes nginx try it again from the next request.
  if (mode === 'stop' && state) {
    const fresh = await freshPool(state, pool);
    if (fresh.code !== 0) {
      out(`${pool}: nginx may keep it out for a few seconds more: ${fresh.stderr.trim() || `exit ${fresh.code}`}`);
      return 1;
    }
    out(`${pool}: ${fresh.stdout.trim()}`);
  }
  return 0;
}

export const CHECK_USAGE = `usage: bluegreen check [--url URL] [--blue-url URL] [--green-url URL] [--mode error|timeout]
                       [--duration SECONDS] [--concurrency N]
  Baseline from the active pool, chaos on it, requests through nginx, chaos stopped.
  PASS needs zero non-200 answers and >= 95% served by the other pool. Exit 0 PASS, 1 FAIL.
  --url          public entry (default: the running local stack, else http://127.0.0.1:${PORTS.nginx})
  --blue-url     blue pool (default: --url's host, port ${PORTS.blue}); --green-url likewise (${PORTS.green})`;

function parseCheckArgs(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        url: { type: 'string' },
        'blue-url': { type: 'string' },
        'green-url': { type: 'string' },
        mode: { type: 'string', default: 'error' },
        duration: { type: 'string', default: '10' },
        concurrency: { type: 'string', default: '4' },
      },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${CHECK_USAGE}`);
  }
}

export async function checkCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const { values } = parseCheckArgs(args);
  const state = values.url ? undefined : readStackState(stateDir(env));
  const url = (values.url ?? state?.url ?? `http://127.0.0.1:${PORTS.nginx}`).replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url must be a URL like http://HOST:${PORTS.nginx}, got "${url}"`);
  }
  const poolUrls = {} as Record<Pool, string>;
  for (const pool of POOLS) {
    const given = pool === 'blue' ? values['blue-url'] : values['green-url'];
    poolUrls[pool] = (
      given ?? (state ? poolUrl(state, pool) : `${parsed.protocol}//${parsed.hostname}:${PORTS[pool]}`)
    ).replace(/\/+$/, '');
  }
  const durationS = Number(values.duration);
  const concurrency = Number(values.concurrency);
  if (!(durationS > 0 && durationS <= 300))
    throw new UsageError(`--duration must be 1-300 seconds, got "${values.duration}"`);
  if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 256)) {
    throw new UsageError(`--concurrency must be 1-256, got "${values.concurrency}"`);
  }
  const result = await runCheck({
    url,
    poolUrls,
    mode: parseChaosMode(values.mode, '--mode'),
    durationMs: durationS * 1000,
    concurrency,
    minBackupShare: 0.95,
    baselineRequests: 10,
    log: out,
  });
  out(result.verdict);
  return result.ok ? 0 : 1;
}

export async function maintenanceCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const [value] = args;
  if (value !== 'on' && value !== 'off') throw new UsageError('usage: bluegreen maintenance <on|off>');
  const dir = stateDir(env);
  mkdirSync(dir, { recursive: true });
  writeFileSync(nodePath.join(dir, MAINTENANCE_FILE), `${value}\n`);
  out(
    value === 'on'
      ? 'maintenance on: alerts are evaluated and printed, not posted'
      : 'maintenance off: alerts are posted',
  );
  return 0;
}

export const LOAD_USAGE = `usage: bluegreen load [--url URL] [--rps 20] [--duration 2m] [--connections 4]
  Steady traffic for the gate to judge (and for you to watch a flip or a release under): keep-alive
  clients that never re-send, at --rps requests per second in all, for --duration (at most 1h).
  Prints a summary when done: requests, failed (by status or error), p50/p99, and by pool.
  Default URL: the local stack's nginx. Exit 0 when no request failed, 1 otherwise.`;

/** Most requests per second `load` sends: a tool to give the gate evidence, not a benchmark. */
const LOAD_MAX_RPS = 1000;

export async function loadCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      strict: true,
      options: {
        url: { type: 'string' },
        rps: { type: 'string', default: '20' },
        duration: { type: 'string', default: '2m' },
        connections: { type: 'string', default: '4' },
      },
    }).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${LOAD_USAGE}`);
  }
  const state = values.url ? undefined : readStackState(stateDir(env));
  const url = values.url ?? state?.url ?? `http://127.0.0.1:${PORTS.nginx}`;
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url must be a URL like http://127.0.0.1:${PORTS.nginx}/, got "${url}"`);
  }
  const rps = Number(values.rps);
  const connections = Number(values.connections);
  if (!(rps > 0 && rps <= LOAD_MAX_RPS)) throw new UsageError(`--rps must be 1-${LOAD_MAX_RPS}, got "${values.rps}"`);
  if (!(Number.isInteger(connections) && connections >= 1 && connections <= 64))
    throw new UsageError(`--connections must be 1-64, got "${values.connections}"`);
  const seconds = parseDuration(values.duration, '--duration', 3600);
  out(`load: ${rps} requests/s over ${connections} keep-alive connections to ${url} for ${seconds} s (no re-sends)`);
  // Ctrl-C (or a kill) ends the run early with its summary: what was sent is still worth seeing.
  const stop = new AbortController();
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const onSignal = () => stop.abort();
  signals.forEach((s) => process.on(s, onSignal));
  let result;
  try {
    result = await runLoad({
      url,
      connections,
      durationMs: seconds * 1000,
      ratePerSec: rps,
      retryStaleSockets: false,
      requestTimeoutMs: 30_000,
      signal: stop.signal,
    });
  } finally {
    signals.forEach((s) => process.off(s, onSignal));
  }
  const s = summarize(result.samples, result.durationMs);
  const pools = Object.entries(s.byPool)
    .map(([pool, n]) => `${pool} ${n}`)
    .join(', ');
  const failures = Object.entries(s.failures)
    .map(([why, n]) => `${why} ${n}`)
    .join(', ');
  out(
    `load: ${s.requests} requests, ${s.failed} failed${failures ? ` (${failures})` : ''}; p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms; by pool: ${pools || 'none'}`,
  );
  return s.failed === 0 ? 0 : 1;
}
