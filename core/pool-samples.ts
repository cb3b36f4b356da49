// What the release guard judges a pool by (DECISIONS "The gate's evidence"): the latest requests first
// sent to each pool, one small sample per request, kept by the rule engine next to its window. Pure.
// Unlike the error-rate window (the stage's last N requests, whatever their pool), a pool's samples
// hold only its own requests, so a 1% canary gathers evidence as surely as a full bake, only slower.
import { AccessLogEntry, primaryPool, upstreamStatuses } from './access-log';
import { type Pool } from './pools';
import { isPreview } from './preview';

/**
 * How one request first sent to a pool went for that pool:
 * - ok: the pool answered it (one attempt, not a 5xx);
 * - failed: the pool was tried and failed it (a 5xx attempt, an error or timeout retried on the other pool);
 * - skipped: nginx never tried the pool: its passive health state held the pool failed, so the
 *   request went straight to the other pool (one attempt, answered by the other pool).
 */
export type SampleOutcome = 'ok' | 'failed' | 'skipped';

export interface PoolSample {
  /** Epoch ms of the request. */
  at: number;
  outcome: SampleOutcome;
  /** The host that logged it (nginx's passive state is per host, so a skip is judged per host). */
  host: string;
  /** The pool's own response time (ms), when it answered (ok). */
  ms?: number;
  /** The client got a 5xx (set only when true). */
  saw5xx?: true;
}

export type PoolSamples = Record<Pool, PoolSample[]>;

/**
 * Samples kept per pool: enough for a p99 over more than a few outliers and for any minimum the
 * gate may ask (the gate's minimum is at most the alert window, 10,000). About 100 bytes each in
 * memory; never persisted (a cold start rebuilds them from the log, like the window).
 */
export const SAMPLES_PER_POOL = 10_000;

export function emptySamples(): PoolSamples {
  return { blue: [], green: [] };
}

const POOLS = new Set<string>(['blue', 'green']);

/** The User-Agent of the project's own requests through nginx (flip confirmations, status, checks). */
export const PROBE_USER_AGENT = 'bluegreen-probe';
/** What `bluegreen load` sends as: traffic meant as evidence. */
export const LOAD_USER_AGENT = 'bluegreen-load';
/**
 * Requests that are no user's: the project's probes and a load balancer's health checks (an ALB
 * checks GET /version through nginx every 10 s on every fleet host). A release no user reached must
 * not pass its gate on them.
 */
export function isProbe(userAgent: string | undefined): boolean {
  return userAgent !== undefined && (userAgent === PROBE_USER_AGENT || userAgent.startsWith('ELB-HealthChecker/'));
}

/** Seconds as nginx logs them ("0.004") → ms; the first attempt's when several are listed. */
function firstAttemptMs(value: string): number | undefined {
  const first = value.split(/[,:]/)[0]?.trim();
  if (!first || !/^\d+(\.\d+)?$/.test(first)) return undefined;
  return Math.round(Number(first) * 1000 * 10) / 10;
}

/** How many attempts nginx made ("10.0.0.1:3000, 10.0.0.2:3000" → 2); a line without any → 0. */
function attempts(entry: Pick<AccessLogEntry, 'upstream_addr'>): number {
  const addr = entry.upstream_addr.trim();
  return addr === '' || addr === '-' ? 0 : addr.split(/,\s*|\s+:\s+/).length;
}

/** The sample for one request, with the pool it was first sent to; undefined when the line names no pool. */
export function sampleOf(
  entry: AccessLogEntry,
  at: number,
  host: string,
): { pool: Pool; sample: PoolSample } | undefined {
  const primary = primaryPool(entry);
  // A preview request is a tester's, sent to the new pool with no fallback: no evidence either way.
  if (!POOLS.has(primary) || isProbe(entry.user_agent) || isPreview(entry)) return undefined;
  const pool = primary as Pool;
  const servedByOther = POOLS.has(entry.pool) && entry.pool !== primary;
  const statuses = upstreamStatuses(entry);
  let outcome: SampleOutcome;
  if (servedByOther && attempts(entry) <= 1 && statuses.every((s) => s < 500) && entry.status < 500)
    outcome = 'skipped';
  else if (servedByOther || entry.status >= 500 || statuses.some((s) => s >= 500)) outcome = 'failed';
  else outcome = 'ok';
  const sample: PoolSample = { at, outcome, host };
  if (outcome === 'ok') {
    const ms = firstAttemptMs(entry.upstream_response_time);
    if (ms !== undefined) sample.ms = ms;
  }
  if (entry.status >= 500) sample.saw5xx = true;
  return { pool, sample };
}

/** Appends in place and keeps the latest `limit` per pool. */
export function addSample(samples: PoolSamples, pool: Pool, sample: PoolSample, limit = SAMPLES_PER_POOL): void {
  const list = samples[pool];
  list.push(sample);
  // Dropped in chunks: shifting one item per request would make the hot path O(limit).
  if (list.length > limit + limit / 10) list.splice(0, list.length - limit);
}

/** The samples of `pool` at or after `since`, within the latest `limit`. */
export function samplesSince(
  samples: PoolSamples | undefined,
  pool: Pool,
  since: number,
  limit = SAMPLES_PER_POOL,
): PoolSample[] {
  const list = samples?.[pool] ?? [];
  const out: PoolSample[] = [];
  for (let i = list.length - 1; i >= 0 && out.length < limit; i--) {
    if (list[i].at < since) continue;
    out.push(list[i]);
  }
  return out.reverse();
}

/** The nearest-rank percentile (0 < p ≤ 100) of values already sorted ascending; undefined for none. */
export function percentileOfSorted(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The nearest-rank percentile (0 < p ≤ 100) of `values`; undefined for none. */
export function percentile(values: readonly number[], p: number): number | undefined {
  return percentileOfSorted(
    [...values].sort((a, b) => a - b),
    p,
  );
}
