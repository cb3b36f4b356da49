// DORA's four figures from the release records (`bluegreen history --stats`), one record per release
// (its last version). Pure: the records and the window in, the figures out. What each counts:
// - deployment frequency: releases promoted (final state `promoted`) per day and per week;
// - change failure rate: of the releases that reached users (their canary share was set, or they
//   were promoted), the share that failed there: rolled back, frozen, or a canary aborted;
// - time to restore: for each such failure, from the moment it reached users to the moment users
//   were off it: the rollback's flip, the canary's share back to 0, or (frozen: fixed forward) the
//   next release's promotion; a frozen release not fixed yet is counted as unrestored;
// - lead time: from the image's build (`--build` records when it pushed) to the promotion, for the
//   releases whose record carries a build time.
import { ReleaseRecord } from './release-record';
import { CANARY_ABORTED_STEP, FROZEN_STEP } from './release-guard';

export interface Spread {
  count: number;
  /** The lower middle value (ms); null without values. */
  medianMs: number | null;
  maxMs: number | null;
}

export interface ReleaseStats {
  sinceMs: number;
  untilMs: number;
  /** Releases started in the window, whatever became of them. */
  releases: number;
  promoted: number;
  perDay: number;
  perWeek: number;
  reachedUsers: number;
  /** Ids of the releases that failed after reaching users. */
  failed: string[];
  /** failed / reachedUsers; null when none reached users. */
  changeFailureRate: number | null;
  timeToRestore: Spread;
  /** Failed releases users were still on at `untilMs` (a frozen release not fixed forward yet). */
  unrestored: string[];
  leadTime: Spread;
  /** How many promoted releases carry a build time (lead time is theirs). */
  leadTimeOf: number;
}

const DAY_MS = 24 * 3600_000;

function spread(values: number[]): Spread {
  const v = [...values].sort((a, b) => a - b);
  return {
    count: v.length,
    medianMs: v.length ? v[Math.floor((v.length - 1) / 2)] : null,
    maxMs: v.length ? v[v.length - 1] : null,
  };
}

/** When a step first happened (ok only, unless said), as epoch ms. */
function stepAt(r: ReleaseRecord, step: string, okOnly = true): number | undefined {
  const s = r.steps.find((x) => x.step === step && (!okOnly || x.ok));
  return s ? Date.parse(s.at) : undefined;
}

/** When users first got the release: its canary share, else its promotion's flip. */
export function reachedUsersAt(r: ReleaseRecord): number | undefined {
  const times = [stepAt(r, 'canary'), stepAt(r, 'promote')].filter((t): t is number => t !== undefined);
  return times.length ? Math.min(...times) : undefined;
}

/** Failed where users were: rolled back, frozen, or its canary aborted. */
export function failedInProduction(r: ReleaseRecord): boolean {
  if (reachedUsersAt(r) === undefined) return false;
  return (
    r.state === 'rolled-back' ||
    r.state === 'frozen' ||
    (r.state === 'failed' && stepAt(r, CANARY_ABORTED_STEP, false) !== undefined)
  );
}

/** When users were off a failed release; undefined while they are still on it. */
function restoredAt(r: ReleaseRecord, later: readonly ReleaseRecord[]): number | undefined {
  if (r.state === 'rolled-back') return stepAt(r, 'rollback') ?? (r.finishedAt ? Date.parse(r.finishedAt) : undefined);
  if (r.state === 'failed') return r.finishedAt ? Date.parse(r.finishedAt) : undefined;
  // Frozen: fixed forward, by the first release promoted after it.
  const frozenAt = stepAt(r, FROZEN_STEP, false) ?? Date.parse(r.updatedAt);
  const fixes = later
    .filter((x) => x.state === 'promoted')
    .map((x) => stepAt(x, 'promote'))
    .filter((t): t is number => t !== undefined && t >= frozenAt);
  return fixes.length ? Math.min(...fixes) : undefined;
}

/** A promoted release's lead time (ms): its image's build to its promotion; undefined without a build time. */
function leadTimeOf(r: ReleaseRecord): number | undefined {
  const built = r.builtAt ? Date.parse(r.builtAt) : NaN;
  const at = stepAt(r, 'promote');
  return Number.isFinite(built) && at !== undefined && at >= built ? at - built : undefined;
}

/**
 * One finished release's part of the four figures, as the alert function publishes it the moment the
 * release ends (the dashboard's DORA row sums and takes percentiles of these): counted by the same
 * rules as `releaseStats`. A frozen release has no restore yet (its fix forward is a later release).
 */
export interface ReleaseOutcome {
  deployments: number;
  reachedUsers: number;
  changeFailures: number;
  restoreSeconds?: number;
  leadTimeSeconds?: number;
}

export function releaseOutcome(r: ReleaseRecord): ReleaseOutcome {
  const reached = reachedUsersAt(r);
  const failed = failedInProduction(r);
  const restored = failed ? restoredAt(r, []) : undefined;
  const lead = r.state === 'promoted' ? leadTimeOf(r) : undefined;
  return {
    deployments: r.state === 'promoted' ? 1 : 0,
    reachedUsers: reached === undefined ? 0 : 1,
    changeFailures: failed ? 1 : 0,
    ...(restored !== undefined && reached !== undefined ? { restoreSeconds: (restored - reached) / 1000 } : {}),
    ...(lead !== undefined ? { leadTimeSeconds: lead / 1000 } : {}),
  };
}

/**
 * The figures over the releases started in [untilMs - windowMs, untilMs]. `records`: one per release
 * (the last version of each), any order. A fix forward after the window still restores a failure in it.
 */
export function releaseStats(records: readonly ReleaseRecord[], untilMs: number, windowMs: number): ReleaseStats {
  const sinceMs = untilMs - windowMs;
  const byStart = [...records].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  const inWindow = byStart.filter((r) => {
    const t = Date.parse(r.startedAt);
    return t >= sinceMs && t <= untilMs;
  });
  const promoted = inWindow.filter((r) => r.state === 'promoted');
  const reached = inWindow.filter((r) => reachedUsersAt(r) !== undefined);
  const failed = reached.filter(failedInProduction);
  const restores: number[] = [];
  const unrestored: string[] = [];
  for (const r of failed) {
    const later = byStart.filter((x) => Date.parse(x.startedAt) > Date.parse(r.startedAt));
    const at = restoredAt(r, later);
    if (at === undefined || at > untilMs) unrestored.push(r.id);
    else restores.push(at - reachedUsersAt(r)!);
  }
  const leads = promoted.flatMap((r) => {
    const lead = leadTimeOf(r);
    return lead === undefined ? [] : [lead];
  });
  const days = windowMs / DAY_MS;
  return {
    sinceMs,
    untilMs,
    releases: inWindow.length,
    promoted: promoted.length,
    perDay: promoted.length / days,
    perWeek: (promoted.length / days) * 7,
    reachedUsers: reached.length,
    failed: failed.map((r) => r.id),
    changeFailureRate: reached.length ? failed.length / reached.length : null,
    timeToRestore: spread(restores),
    unrestored,
    leadTime: spread(leads),
    leadTimeOf: leads.length,
  };
}
