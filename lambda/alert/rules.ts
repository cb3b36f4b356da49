// The alert rule engine (DESIGN.md "Alert rules"): pure. Entries and a state value in, decisions and
// the next state out. The same module runs in the Lambda and in local mode's watcher.
import { AccessLogEntry, upstreamStatuses } from './access-log';

export type AlertKind = 'failover' | 'failover_recovered' | 'planned_switch' | 'error_rate' | 'error_rate_recovered' | 'users_see_errors';
export type Severity = 'critical' | 'warning' | 'info' | 'ok';

export interface RuleConfig {
  /** Requests in the error-rate window. */
  windowSize: number;
  /** Share of requests with any 5xx (attempt or status) above which the error-rate alert fires. */
  errorRateThreshold: number;
  /** Requests the window must hold before the error rate is judged. */
  minWindow: number;
  /** The error-rate alert recovers at or below threshold × this (hysteresis). */
  recoveryRatio: number;
  /** Consecutive answers from the active pool that end a failover episode. */
  recoveryConsecutive: number;
  /** Per-kind cooldown for alerts (recoveries and planned switches are never cooled down). */
  cooldownMs: number;
}

export const DEFAULT_RULE_CONFIG: RuleConfig = {
  windowSize: 200,
  errorRateThreshold: 0.02,
  minWindow: 50,
  recoveryRatio: 0.5,
  recoveryConsecutive: 3,
  cooldownMs: 300_000,
};

/** One request as the engine keeps it in the window: small, so state stays small. */
interface WindowItem {
  bad: boolean;
  uri?: string;
  upstream?: string;
}

interface HostState {
  activePool?: string;
  /** The last planned switch, to tell old workers' late lines from a switch back. */
  lastSwitch?: { from: string; at: number };
  /** Last request seen from this host (epoch ms): hosts gone for a day are forgotten. */
  lastSeen?: number;
  /** Open failover episode: traffic served by the pool that is not active. */
  episode?: { since: number; from: string; to: string; posted: boolean; requests: number };
  /** Consecutive active-pool answers seen while an episode is open. */
  healthyStreak: number;
}

export interface EngineState {
  hosts: Record<string, HostState>;
  window: WindowItem[];
  errorRate?: { since: number; posted: boolean; peak: number };
  /** Last time an alert of a cooldown key was posted (epoch ms). */
  lastPosted: Record<string, number>;
}

/** After a reload, old nginx workers still finish requests under the old config for a moment. */
export const STALE_AFTER_SWITCH_MS = 10_000;
/** A host that has logged nothing for this long was replaced: its state is dropped. */
export const FORGET_HOST_MS = 86_400_000;

export function emptyState(): EngineState {
  return { hosts: {}, window: [], lastPosted: {} };
}

export interface EngineInput {
  entry: AccessLogEntry;
  /** Which host wrote the line (log stream on AWS, the machine locally). */
  host: string;
  /** Epoch ms of the request. */
  at: number;
}

export interface WindowFigures {
  requests: number;
  bad: number;
  rate: number;
  topUris: Array<[string, number]>;
  topUpstreams: Array<[string, number]>;
}

export interface Decision {
  kind: AlertKind;
  severity: Severity;
  at: number;
  host?: string;
  /** The pool that served (failover), the pool switched to (planned switch). */
  pool?: string;
  activePool?: string;
  previousPool?: string;
  release?: string;
  summary: string;
  window?: WindowFigures;
  /** Why it is not posted: null = post it. */
  suppressed: null | 'cooldown' | 'maintenance';
  /** Details an on-call engineer wants in the message. */
  details: Record<string, string | number>;
}

export interface EvaluateOptions {
  config: RuleConfig;
  maintenance: boolean;
}

const POOLS = new Set(['blue', 'green']);

export function isBad(entry: Pick<AccessLogEntry, 'status' | 'upstream_status'>): boolean {
  if (entry.status >= 500) return true;
  // Hot path: most lines are a single "200"; only a line holding a "5" can have a 5xx attempt.
  return entry.upstream_status.includes('5') && upstreamStatuses(entry).some((s) => s >= 500);
}

function top(items: string[], n: number): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, n);
}

/** Seeds the error-rate window from history (a cold start's rebuild): no decisions, no episodes. */
export function seedWindow(state: EngineState, entries: readonly AccessLogEntry[], config: RuleConfig): EngineState {
  const window = entries.slice(-config.windowSize).map((entry): WindowItem => {
    const bad = isBad(entry);
    return bad ? { bad, uri: entry.uri.split('?')[0], upstream: entry.upstream_addr || undefined } : { bad };
  });
  return { ...state, window: [...window, ...state.window].slice(-config.windowSize) };
}

export function windowFigures(window: readonly WindowItem[]): WindowFigures {
  const badItems = window.filter((w) => w.bad);
  return {
    requests: window.length,
    bad: badItems.length,
    rate: window.length ? badItems.length / window.length : 0,
    topUris: top(badItems.map((w) => w.uri ?? '?'), 5),
    topUpstreams: top(badItems.flatMap((w) => (w.upstream ? w.upstream.split(/,\s*/) : [])), 3),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Evaluates a batch of entries in order. Returns every decision (posted or suppressed: the caller
 * logs them all) and the next state. Does not mutate `state`.
 */
export function evaluate(state: EngineState, inputs: readonly EngineInput[], options: EvaluateOptions): { state: EngineState; decisions: Decision[] } {
  const { config } = options;
  const next: EngineState = structuredClone(state);
  const decisions: Decision[] = [];

  const decide = (d: Omit<Decision, 'suppressed'>, cooldownKey?: string): Decision => {
    let suppressed: Decision['suppressed'] = null;
    if (options.maintenance) suppressed = 'maintenance';
    else if (cooldownKey !== undefined) {
      const last = next.lastPosted[cooldownKey];
      if (last !== undefined && d.at - last < config.cooldownMs) suppressed = 'cooldown';
      else next.lastPosted[cooldownKey] = d.at;
    }
    const decision = { ...d, suppressed };
    decisions.push(decision);
    return decision;
  };

  // Kept incrementally: recounting the window per request made the engine O(window) per line.
  let badInWindow = next.window.reduce((n, w) => n + (w.bad ? 1 : 0), 0);

  for (const { entry, host, at } of inputs) {
    const h = (next.hosts[host] ??= { healthyStreak: 0 });
    const active = POOLS.has(entry.active_pool) ? entry.active_pool : undefined;
    const served = POOLS.has(entry.pool) ? entry.pool : undefined;
    h.lastSeen = at;
    // A line from an old worker finishing a request under the previous config: not a switch back.
    const staleLine = active !== undefined && h.lastSwitch !== undefined && active === h.lastSwitch.from && active !== h.activePool && at - h.lastSwitch.at < STALE_AFTER_SWITCH_MS;

    // Planned switch: the configured primary changed. Info, never a failover.
    if (active && h.activePool && active !== h.activePool && !staleLine) {
      decide({
        kind: 'planned_switch',
        severity: 'info',
        at,
        host,
        pool: active,
        previousPool: h.activePool,
        activePool: active,
        summary: `Planned switch on ${host}: active pool ${h.activePool} → ${active}`,
        details: { from: h.activePool, to: active },
      });
      h.lastSwitch = { from: h.activePool, at };
      // An episode against the old primary is over: the operator moved traffic on purpose.
      if (h.episode) {
        h.episode = undefined;
        h.healthyStreak = 0;
      }
    }
    if (active && !staleLine) h.activePool = active;

    // Failover episodes, per host (a stale line says nothing about the current config).
    if (active && served && !staleLine) {
      if (served !== active) {
        h.healthyStreak = 0;
        if (h.episode) h.episode.requests++;
        else {
          const d = decide(
            {
              kind: 'failover',
              severity: 'warning',
              at,
              host,
              pool: served,
              activePool: active,
              release: entry.release,
              summary: `Failover on ${host}: ${active} is failing, ${served} is answering`,
              details: { upstream_status: entry.upstream_status || '-', upstream_addr: entry.upstream_addr || '-', uri: entry.uri, request_id: entry.request_id },
            },
            `failover:${host}`,
          );
          h.episode = { since: at, from: active, to: served, posted: d.suppressed === null, requests: 1 };
        }
      } else if (h.episode) {
        h.healthyStreak++;
        if (h.healthyStreak >= config.recoveryConsecutive) {
          const episode = h.episode;
          h.episode = undefined;
          h.healthyStreak = 0;
          if (episode.posted) {
            decide({
              kind: 'failover_recovered',
              severity: 'ok',
              at,
              host,
              pool: served,
              activePool: active,
              release: entry.release,
              summary: `Recovered on ${host}: ${active} is answering again after ${Math.round((at - episode.since) / 1000)} s`,
              details: { duration_s: Math.round((at - episode.since) / 1000), requests_on_backup: episode.requests },
            });
          }
        }
      }
    }

    // Error rate over the last N requests, stage-wide.
    const bad = isBad(entry);
    next.window.push(bad ? { bad, uri: entry.uri.split('?')[0], upstream: entry.upstream_addr || undefined } : { bad });
    if (bad) badInWindow++;
    while (next.window.length > config.windowSize) if (next.window.shift()!.bad) badInWindow--;
    if (next.window.length >= config.minWindow) {
      const rate = badInWindow / next.window.length;
      if (!next.errorRate && rate > config.errorRateThreshold) {
        const figures = windowFigures(next.window);
        const d = decide(
          {
            kind: 'error_rate',
            severity: 'warning',
            at,
            host,
            activePool: active,
            summary: `Error rate ${pct(figures.rate)} over the last ${figures.requests} requests (threshold ${pct(config.errorRateThreshold)})`,
            window: figures,
            details: { bad: figures.bad, requests: figures.requests },
          },
          'error_rate',
        );
        next.errorRate = { since: at, posted: d.suppressed === null, peak: figures.rate };
      } else if (next.errorRate) {
        next.errorRate.peak = Math.max(next.errorRate.peak, rate);
        if (rate <= config.errorRateThreshold * config.recoveryRatio) {
          const figures = windowFigures(next.window);
          const episode = next.errorRate;
          next.errorRate = undefined;
          if (episode.posted) {
            decide({
              kind: 'error_rate_recovered',
              severity: 'ok',
              at,
              host,
              activePool: active,
              summary: `Error rate back to ${pct(figures.rate)} over the last ${figures.requests} requests (peak ${pct(episode.peak)})`,
              window: figures,
              details: { duration_s: Math.round((at - episode.since) / 1000), peak: pct(episode.peak) },
            });
          }
        }
      }
    }

    // Users see errors: a 5xx reached the client (both pools failed for this request).
    if (entry.status >= 500) {
      decide(
        {
          kind: 'users_see_errors',
          severity: 'critical',
          at,
          host,
          pool: served,
          activePool: active,
          release: entry.release,
          summary: `Users see errors on ${host}: ${entry.method} ${entry.uri.split('?')[0]} answered ${entry.status} (upstream ${entry.upstream_status || 'none'})`,
          details: { status: entry.status, upstream_status: entry.upstream_status || '-', upstream_addr: entry.upstream_addr || '-', request_id: entry.request_id },
        },
        'users_see_errors',
      );
    }
  }
  // Keep the state small (it is persisted): forget replaced hosts and cooldowns that have run out.
  const latest = inputs.length ? Math.max(...inputs.map((i) => i.at)) : undefined;
  if (latest !== undefined) {
    for (const [host, h] of Object.entries(next.hosts)) if (h.lastSeen !== undefined && latest - h.lastSeen > FORGET_HOST_MS) delete next.hosts[host];
    for (const [key, last] of Object.entries(next.lastPosted)) if (latest - last >= config.cooldownMs && latest - last > FORGET_HOST_MS) delete next.lastPosted[key];
  }
  return { state: next, decisions };
}

/** Epoch ms of an entry: `msec` when nginx wrote it, else the ISO `time`, else the fallback. */
export function entryTime(entry: AccessLogEntry, fallback: number): number {
  if (typeof entry.msec === 'number') return Math.round(entry.msec * 1000);
  const parsed = Date.parse(entry.time);
  return Number.isNaN(parsed) ? fallback : parsed;
}
