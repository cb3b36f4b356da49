// The release gate (DECISIONS "The gate's evidence"): pure. While a release runs a canary or bakes,
// judge the release's pool by the requests first sent to it since the release started (its pool
// samples, pool-samples.ts): their failure rate, and their latency against an absolute bound and
// against the previous release. No verdict without evidence: a bake that has not seen the gate's
// minimum is extended up to its maximum, then held for a person. The alert Lambda and the local
// watcher call it on every batch and every tick, stage-wide (a fleet's hosts all feed the samples),
// and act on the answer through guard-actuator.ts.
import { parseRecordTime, type LatencyFigures, type ReleaseFigures, type ReleaseRecord } from './release-record';
import { percentile, samplesSince, type PoolSample, type PoolSamples } from './pool-samples';

export interface ReleaseGate {
  /** The release's pool failing more than this share of its judged requests fails the gate. */
  errorRate: number;
  /** Requests first sent to the release's pool (and judged) before the gate decides anything. */
  minRequests: number;
  /** p99 of the release's own answers above this (ms) fails the gate; undefined = no absolute bound. */
  maxP99Ms?: number;
  /** p99 above this many times the previous release's p99 fails the gate (when also above by latencyMarginMs). */
  maxP99Ratio: number;
  /**
   * The ratio is judged only when the release's p99 is also this much above the previous release's
   * (ms): a pool answering in 3 ms against 1 ms is 3× slower and no user notices; the machine's own
   * jitter stays under it (DECISIONS "The gate's evidence" has the measured figures).
   */
  latencyMarginMs: number;
}

/** How far back before the release's start the previous release's latency is taken from. */
export const BASELINE_LOOKBACK_MS = 5 * 60_000;

export type GuardAction =
  | { action: 'none' }
  | { action: 'rollback'; figures: ReleaseFigures; reason: string }
  | { action: 'abort-canary'; figures: ReleaseFigures; reason: string }
  /** `figures`: what the gate saw over the release (for the record and the message). */
  | { action: 'promote'; figures: ReleaseFigures }
  /** The bake is over but the gate has not seen its minimum: it goes on, up to maxBakeUntil (written once). */
  | { action: 'extend'; figures: ReleaseFigures; reason: string }
  /** The extended bake is over too, still without the minimum: held, for a person to decide. */
  | { action: 'hold'; figures: ReleaseFigures; reason: string }
  /**
   * An `--irreversible` release crossed the gate (baking, or its canary): never flipped back; frozen
   * where it is (the active pool, or the canary share, unchanged) and paged, for a person to fix forward.
   */
  | { action: 'freeze'; figures: ReleaseFigures; reason: string };

/** The stage's gate with what the release asked for (`--min-requests`, `--max-p99`, `--max-p99-ratio`). */
export function effectiveGate(gate: ReleaseGate, record: Pick<ReleaseRecord, 'gate'>): ReleaseGate {
  const own = record.gate ?? {};
  return {
    ...gate,
    ...(own.minRequests !== undefined ? { minRequests: own.minRequests } : {}),
    ...(own.maxP99Ms !== undefined ? { maxP99Ms: own.maxP99Ms } : {}),
    ...(own.maxP99Ratio !== undefined ? { maxP99Ratio: own.maxP99Ratio } : {}),
  };
}

function latencyOf(samples: readonly PoolSample[]): LatencyFigures | undefined {
  const ms = samples.flatMap((s) => (s.outcome === 'ok' && s.ms !== undefined ? [s.ms] : []));
  if (ms.length === 0) return undefined;
  return { requests: ms.length, p50Ms: percentile(ms, 50)!, p99Ms: percentile(ms, 99)! };
}

/**
 * The figures of the release in `record`: its pool's requests since the release started. A request
 * nginx sent straight to the other pool (skipped) counts against the release only after the release
 * itself failed one on that host: before that, nginx's passive state still held the pool failed from
 * before the release (what a redeployed pool carried), and the release never got the request.
 */
export function releaseFigures(
  samples: PoolSamples | undefined,
  record: Pick<ReleaseRecord, 'pool' | 'previousPool' | 'previousRelease' | 'startedAt'>,
  minRequests?: number,
): ReleaseFigures {
  const since = parseRecordTime(record.startedAt) ?? -Infinity;
  const own = samplesSince(samples, record.pool, since);
  const failedOn = new Map<string, number>();
  const hosts = new Set<string>();
  const fail = (host: string) => failedOn.set(host, (failedOn.get(host) ?? 0) + 1);
  let failed = 0;
  let notTried = 0;
  let usersSaw5xx = 0;
  for (const s of own) {
    hosts.add(s.host);
    if (s.saw5xx) usersSaw5xx++;
    if (s.outcome === 'failed') {
      failed++;
      fail(s.host);
    } else if (s.outcome === 'skipped') {
      if (failedOn.has(s.host)) {
        failed++;
        fail(s.host);
      } else notTried++;
    }
  }
  const judged = own.length - notTried;
  const figures: ReleaseFigures = {
    requests: own.length,
    failed,
    rate: judged ? failed / judged : 0,
    usersSaw5xx,
    judged,
    notTried,
  };
  if (minRequests !== undefined) figures.minRequests = minRequests;
  // A fleet: the hosts named, as the error-rate alert names them.
  if (hosts.size > 1) {
    figures.hosts = hosts.size;
    figures.hostsWithFailures = failedOn.size;
    if (failedOn.size > 0)
      figures.failedHosts = [...failedOn.entries()]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, FAILED_HOSTS_NAMED);
  }
  const latency = latencyOf(own);
  if (latency) figures.latency = latency;
  const baseline = latencyOf(samplesSince(samples, record.previousPool, since - BASELINE_LOOKBACK_MS));
  if (baseline) figures.baseline = { ...baseline, release: record.previousRelease };
  return figures;
}

/** Hosts a fleet release's figures name (the count says how many failed in all). */
const FAILED_HOSTS_NAMED = 3;

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const ms = (x: number) => `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`;

/** The requests the gate judged: `judged` (older records: `requests`). */
export function judgedOf(f: ReleaseFigures): number {
  return f.judged ?? f.requests;
}

/** One line an operator reads in the record, the CLI and Slack. */
export function describeFigures(pool: string, f: ReleaseFigures): string {
  const parts = [
    `${pool} failed ${f.failed} of ${judgedOf(f)} requests first sent to it (${pct(f.rate)}); users saw 5xx on ${f.usersSaw5xx}`,
  ];
  if (f.notTried) parts.push(`${f.notTried} more were never tried (nginx still held ${pool} failed from before)`);
  if (f.hosts !== undefined) {
    const named = (f.failedHosts ?? []).map(([host, n]) => `${host} ${n}`).join(', ');
    parts.push(
      f.failedHosts?.length
        ? `failures from ${f.hostsWithFailures ?? f.failedHosts.length} of ${f.hosts} hosts: ${named}`
        : `no failures on any of the ${f.hosts} hosts`,
    );
  }
  if (f.latency) {
    const base = f.baseline
      ? ` (previous release ${f.baseline.release}: p50 ${ms(f.baseline.p50Ms)}, p99 ${ms(f.baseline.p99Ms)})`
      : '';
    parts.push(`p50 ${ms(f.latency.p50Ms)}, p99 ${ms(f.latency.p99Ms)}${base}`);
  }
  return parts.join('; ');
}

/** Why the figures fail the gate (error rate first, then latency), or undefined. Needs the minimum. */
export function gateCrossed(f: ReleaseFigures, gate: ReleaseGate): string | undefined {
  if (judgedOf(f) < gate.minRequests) return undefined;
  if (f.rate > gate.errorRate) return `error rate ${pct(f.rate)} above the gate of ${pct(gate.errorRate)}`;
  const latency = f.latency;
  if (!latency || latency.requests < gate.minRequests) return undefined;
  if (gate.maxP99Ms !== undefined && latency.p99Ms > gate.maxP99Ms)
    return `p99 ${ms(latency.p99Ms)} above the bound of ${ms(gate.maxP99Ms)}`;
  const base = f.baseline;
  if (
    base &&
    base.requests >= gate.minRequests &&
    latency.p99Ms > base.p99Ms * gate.maxP99Ratio &&
    latency.p99Ms - base.p99Ms > gate.latencyMarginMs
  )
    return `p99 ${ms(latency.p99Ms)} is ${(latency.p99Ms / base.p99Ms).toFixed(1)}× the previous release's ${ms(base.p99Ms)} (gate ${gate.maxP99Ratio}×)`;
  return undefined;
}

/** Why a bake has no verdict: the evidence it lacks. */
function lacking(record: ReleaseRecord, f: ReleaseFigures, gate: ReleaseGate): string {
  return `${judgedOf(f)} of the ${gate.minRequests} requests the gate needs reached ${record.pool} (${record.release})`;
}

/** The step the guard writes when it extends a bake (once per release). */
export const BAKE_EXTENDED_STEP = 'bake-extended';

/**
 * What the guard must do now for `record`:
 * - `baking`: the gate crossed (error rate or latency, over at least the minimum) → rollback; else,
 *   once `now >= bakeUntil`: the minimum seen → promote; not seen and before maxBakeUntil → extend
 *   (once; then none until it is decided); not seen by maxBakeUntil (or no maxBakeUntil) → hold.
 * - `verifying` with a canary share > 0: the gate crossed → abort-canary.
 * - anything else (deploying, verifying without canary, final states, no record) → none.
 * Only requests at or after the record's `startedAt` count.
 */
export function guardRelease(
  record: ReleaseRecord | undefined,
  samples: PoolSamples | undefined,
  now: number,
  stageGate: ReleaseGate,
): GuardAction {
  if (!record) return { action: 'none' };
  const gate = effectiveGate(stageGate, record);
  if (record.state === 'baking') {
    const figures = releaseFigures(samples, record, gate.minRequests);
    const crossed = gateCrossed(figures, gate);
    if (crossed && record.irreversible) {
      return {
        action: 'freeze',
        figures,
        reason: `gate crossed while baking an irreversible release: ${crossed}; ${describeFigures(record.pool, figures)}; FROZEN, not rolled back: ${record.pool} keeps serving ${record.release} (${record.previousPool} runs ${record.previousRelease}, which may not read what ${record.release} wrote)`,
      };
    }
    if (crossed) {
      return {
        action: 'rollback',
        figures,
        reason: `gate crossed while baking: ${crossed}; ${describeFigures(record.pool, figures)}; traffic back on ${record.previousPool} (${record.previousRelease})`,
      };
    }
    // Times as every reader of the record reads them (parseRecordTime): never what Date.parse guesses.
    const bakeUntil = parseRecordTime(record.bakeUntil);
    if (bakeUntil === undefined || now < bakeUntil) return { action: 'none' };
    if (judgedOf(figures) >= gate.minRequests) return { action: 'promote', figures };
    const maxBakeUntil = parseRecordTime(record.maxBakeUntil);
    if (maxBakeUntil !== undefined && now < maxBakeUntil) {
      if (record.steps.some((s) => s.step === BAKE_EXTENDED_STEP)) return { action: 'none' };
      return {
        action: 'extend',
        figures,
        reason: `bake extended until ${record.maxBakeUntil}: ${lacking(record, figures, gate)}`,
      };
    }
    return {
      action: 'hold',
      figures,
      reason: `inconclusive: ${lacking(record, figures, gate)} by the end of the bake${maxBakeUntil !== undefined ? ' (extended to its maximum)' : ''}; held: ${record.pool} keeps serving ${record.release}, not promoted, not rolled back`,
    };
  }
  if (record.state === 'verifying' && record.canaryPercent > 0) {
    const figures = releaseFigures(samples, record, gate.minRequests);
    const crossed = gateCrossed(figures, gate);
    // An irreversible canary: the clients it served may have written what the previous release
    // cannot read, so they are not sent back (the share stays), and no more are sent (no promotion).
    if (crossed && record.irreversible) {
      return {
        action: 'freeze',
        figures,
        reason: `canary of an irreversible release crossed the gate: ${crossed}; ${describeFigures(record.pool, figures)}; FROZEN, not aborted: the canary share stays ${record.canaryPercent}% on ${record.pool}, nothing is promoted`,
      };
    }
    if (crossed) {
      return {
        action: 'abort-canary',
        figures,
        reason: `canary aborted: ${crossed}; ${describeFigures(record.pool, figures)}; canary share set to 0`,
      };
    }
  }
  return { action: 'none' };
}

/** The step name the guard writes when it aborts a canary (release-events.ts announces it as such). */
export const CANARY_ABORTED_STEP = 'canary-aborted';

/** The step the guard (or the CLI) writes when it holds a release. */
export const HELD_STEP = 'held';
/** The step the guard writes when it freezes an irreversible release. */
export const FROZEN_STEP = 'frozen';

/**
 * The record after the guard acted (the runtimes write it once the flip / canary reset succeeded):
 * rollback → `rolled-back`, abort-canary → `failed`, promote → `promoted`, hold → `held`, freeze →
 * `frozen`, each with
 * the figures, reason, finishedAt and a step; extend → still `baking`, with the figures and a step.
 * `none` → undefined (nothing to write).
 */
export function recordAfterGuard(
  record: ReleaseRecord,
  action: GuardAction,
  now: number,
  host = 'guard',
): ReleaseRecord | undefined {
  const at = new Date(now).toISOString();
  /** A final record: the state, the figures and reason, and the step that says who ended it. */
  const finished = (
    state: ReleaseRecord['state'],
    figures: ReleaseFigures,
    reason: string | undefined,
    step: string,
    ok: boolean,
    detail: string,
  ): ReleaseRecord => ({
    ...record,
    state,
    ...(reason !== undefined ? { reason } : {}),
    figures,
    decidedBy: `release guard (${host})`,
    updatedAt: at,
    finishedAt: at,
    steps: [...record.steps, { at, step, ok, detail, host }],
  });
  switch (action.action) {
    case 'none':
      return undefined;
    case 'rollback':
      return finished(
        'rolled-back',
        action.figures,
        action.reason,
        'rollback',
        true,
        `flipped back to ${record.previousPool}: ${describeFigures(record.pool, action.figures)}`,
      );
    case 'abort-canary':
      return finished(
        'failed',
        action.figures,
        action.reason,
        CANARY_ABORTED_STEP,
        false,
        describeFigures(record.pool, action.figures),
      );
    case 'hold':
      return finished(
        'held',
        action.figures,
        action.reason,
        HELD_STEP,
        false,
        describeFigures(record.pool, action.figures),
      );
    case 'freeze':
      return finished(
        'frozen',
        action.figures,
        action.reason,
        FROZEN_STEP,
        false,
        `not flipped back (irreversible): ${describeFigures(record.pool, action.figures)}`,
      );
    case 'promote':
      return finished(
        'promoted',
        action.figures,
        undefined,
        'promoted',
        true,
        `bake ended clean: ${describeFigures(record.pool, action.figures)}`,
      );
    case 'extend':
      return {
        ...record,
        figures: action.figures,
        updatedAt: at,
        steps: [...record.steps, { at, step: BAKE_EXTENDED_STEP, ok: true, detail: action.reason, host }],
      };
  }
}
