// The release gate (DECISIONS "Releases"): pure. While a release bakes (or runs a canary), judge the
// release's pool by the one failure measure the error-rate alert uses (rules.ts `failedByPrimary`),
// over the window items whose primary is that pool. The alert Lambda and the local watcher call it
// on every batch and act on the answer (flip back, set the canary to 0, write the record).
import { parseRecordTime, type ReleaseFigures, type ReleaseRecord } from './release-record';
import { type Pool } from './pools';
import type { WindowItem } from './rules';

export interface ReleaseGate {
  /** The release's pool failing more than this share of its requests fails the gate. */
  errorRate: number;
  /** Requests first sent to the release's pool the window must hold before the gate judges. */
  minRequests: number;
  /**
   * Requests the window holds (the alert's ALERT_WINDOW). A canary of N% only ever has about
   * N% of them, so its minimum is capped at that share: otherwise a 10% canary (about 20 of 200)
   * could never reach a minimum of 50 and a failing canary would never be aborted.
   */
  windowSize?: number;
}

/** The minimum a canary of `percent`% can reach in the window: the gate's, capped at its share. */
export function canaryMinRequests(gate: ReleaseGate, percent: number): number {
  if (gate.windowSize === undefined) return gate.minRequests;
  return Math.min(gate.minRequests, Math.max(1, Math.floor((gate.windowSize * percent) / 100)));
}

export type GuardAction =
  | { action: 'none' }
  | { action: 'rollback'; figures: ReleaseFigures; reason: string }
  | { action: 'abort-canary'; figures: ReleaseFigures; reason: string }
  /** `figures`: what the gate saw over the bake's last window (for the record and the message). */
  | { action: 'promote'; figures: ReleaseFigures };

/**
 * The figures for one pool: window items first sent to `pool`, at or after `since` (epoch ms; the
 * release's start, so requests the pool served under the release it replaced never count).
 */
export function releaseFigures(window: readonly WindowItem[], pool: Pool, since = -Infinity): ReleaseFigures {
  let requests = 0;
  let failed = 0;
  let usersSaw5xx = 0;
  for (const w of window) {
    if (w.primary !== pool || w.at < since) continue;
    requests++;
    if (w.bad) failed++;
    if (w.saw5xx) usersSaw5xx++;
  }
  return { requests, failed, rate: requests ? failed / requests : 0, usersSaw5xx };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** One line an operator reads in the record, the CLI and Slack. */
export function describeFigures(pool: string, f: ReleaseFigures): string {
  return `${pool} failed ${f.failed} of ${f.requests} requests first sent to it (${pct(f.rate)}); users saw 5xx on ${f.usersSaw5xx}`;
}

function crossed(f: ReleaseFigures, gate: ReleaseGate, minRequests = gate.minRequests): boolean {
  return f.requests >= minRequests && f.rate > gate.errorRate;
}

/**
 * What the guard must do now for `record`:
 * - `baking`: the release's pool above the gate (at least `gate.minRequests` requests first sent to
 *   it, failure rate > `gate.errorRate`) → rollback; else, once `now >= bakeUntil` → promote.
 * - `verifying` with a canary share > 0: above the gate → abort-canary, the minimum capped at the
 *   canary's share of the window (`canaryMinRequests`).
 * - anything else (deploying, verifying without canary, final states, no record) → none.
 * Only requests at or after the record's `startedAt` count.
 */
export function guardRelease(
  record: ReleaseRecord | undefined,
  window: readonly WindowItem[],
  now: number,
  gate: ReleaseGate,
): GuardAction {
  if (!record) return { action: 'none' };
  // Times as every reader of the record reads them (parseRecordTime): never what Date.parse guesses.
  const since = parseRecordTime(record.startedAt) ?? -Infinity;
  if (record.state === 'baking') {
    const figures = releaseFigures(window, record.pool, since);
    if (crossed(figures, gate)) {
      return {
        action: 'rollback',
        figures,
        reason: `gate crossed while baking: ${describeFigures(record.pool, figures)}, above the gate of ${pct(gate.errorRate)}; traffic back on ${record.previousPool} (${record.previousRelease})`,
      };
    }
    const bakeUntil = parseRecordTime(record.bakeUntil);
    if (bakeUntil !== undefined && now >= bakeUntil) return { action: 'promote', figures };
    return { action: 'none' };
  }
  if (record.state === 'verifying' && record.canaryPercent > 0) {
    const figures = releaseFigures(window, record.pool, since);
    if (crossed(figures, gate, canaryMinRequests(gate, record.canaryPercent))) {
      return {
        action: 'abort-canary',
        figures,
        reason: `canary aborted: ${describeFigures(record.pool, figures)}, above the gate of ${pct(gate.errorRate)}; canary share set to 0`,
      };
    }
  }
  return { action: 'none' };
}

/** The step name the guard writes when it aborts a canary (release-events.ts announces it as such). */
export const CANARY_ABORTED_STEP = 'canary-aborted';

/**
 * The record after the guard acted (the runtimes write it once the flip / canary reset succeeded):
 * rollback → `rolled-back`, abort-canary → `failed`, promote → `promoted`, each with the figures,
 * reason, finishedAt and a step. `none` → undefined (nothing to write).
 */
export function recordAfterGuard(
  record: ReleaseRecord,
  action: GuardAction,
  now: number,
  host = 'guard',
): ReleaseRecord | undefined {
  const at = new Date(now).toISOString();
  switch (action.action) {
    case 'none':
      return undefined;
    case 'rollback':
      return {
        ...record,
        state: 'rolled-back',
        reason: action.reason,
        figures: action.figures,
        updatedAt: at,
        finishedAt: at,
        steps: [
          ...record.steps,
          {
            at,
            step: 'rollback',
            ok: true,
            detail: `flipped back to ${record.previousPool}: ${describeFigures(record.pool, action.figures)}`,
            host,
          },
        ],
      };
    case 'abort-canary':
      return {
        ...record,
        state: 'failed',
        reason: action.reason,
        figures: action.figures,
        updatedAt: at,
        finishedAt: at,
        steps: [
          ...record.steps,
          { at, step: CANARY_ABORTED_STEP, ok: false, detail: describeFigures(record.pool, action.figures), host },
        ],
      };
    case 'promote':
      return {
        ...record,
        state: 'promoted',
        figures: action.figures,
        updatedAt: at,
        finishedAt: at,
        steps: [
          ...record.steps,
          {
            at,
            step: 'promoted',
            ok: true,
            detail: `bake ended clean: ${describeFigures(record.pool, action.figures)}`,
            host,
          },
        ],
      };
  }
}
