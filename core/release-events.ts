// Release events for Slack (DECISIONS "Releases"): pure. Given the release record and what was last
// announced for it, which messages to post — each transition once, never twice. The runtimes keep
// `lastAnnounced` (EngineState.releaseAnnounced, persisted with the engine state) and set it to
// `announced(record)` once the decisions were handled.
import { CANARY_ABORTED_STEP, describeFigures } from './release-guard';
import { isFinal, ReleaseRecord, ReleaseState } from './release-record';
import type { Decision, ReleaseAlertKind, Severity } from './rules';

export interface Announced {
  id: string;
  state: string;
}

/** What to store as `lastAnnounced` after handling the record's announcements. */
export function announced(record: ReleaseRecord): Announced {
  return { id: record.id, state: record.state };
}

const FINAL_KIND: Record<Exclude<ReleaseState, 'deploying' | 'verifying' | 'baking'>, ReleaseAlertKind> = {
  promoted: 'release_promoted',
  'rolled-back': 'release_rolled_back',
  failed: 'release_failed',
  deployed: 'release_deployed',
  held: 'release_held',
  frozen: 'release_frozen',
};

export const RELEASE_SEVERITY: Record<ReleaseAlertKind, Severity> = {
  release_started: 'info',
  release_deployed: 'info',
  release_promoted: 'ok',
  release_failed: 'warning',
  release_canary_aborted: 'warning',
  release_rolled_back: 'warning',
  // A person must decide now: the only release event that pages.
  release_held: 'critical',
  // An irreversible release failing where nobody may flip it back: someone fixes it forward now.
  release_frozen: 'critical',
};

/** The two ways out of a held release, as the CLI, Slack and the runbook say them. */
export function heldWaysOut(r: Pick<ReleaseRecord, 'id' | 'previousPool' | 'previousRelease'>): string {
  return `Either flip back (\`bluegreen flip ${r.previousPool}\`: ${r.previousPool} serves ${r.previousRelease} again), or, after a look, promote it (\`bluegreen release promote ${r.id}\`)`;
}

/** A frozen release was frozen in its canary (never promoted), not while it baked as the active pool. */
export function frozenInCanary(r: Pick<ReleaseRecord, 'steps'>): boolean {
  return !r.steps.some((s) => s.step === 'promoting');
}

/** What on-call does with a frozen release, as the CLI, Slack and the runbook say it. */
export function frozenWayOut(
  r: Pick<ReleaseRecord, 'pool' | 'release' | 'previousPool' | 'previousRelease' | 'steps'>,
): string {
  const never = `do not flip back to ${r.previousRelease} unless you know it reads what ${r.release} wrote`;
  if (frozenInCanary(r))
    return `The canary share stays on ${r.pool} until a person decides (RUNBOOK "Release frozen"): fix forward; ${never}`;
  return `Fix forward: release the fix to the idle pool ${r.previousPool} (\`bluegreen release --release <fix>\`); ${never}`;
}

function strategyText(r: ReleaseRecord): string {
  return r.strategy === 'canary' ? `canary ${r.canaryPercent}%` : r.strategy;
}

function time(...candidates: Array<string | undefined>): number {
  for (const c of candidates) {
    const t = c === undefined ? NaN : Date.parse(c);
    if (!Number.isNaN(t)) return t;
  }
  return 0;
}

function kindOf(record: ReleaseRecord): ReleaseAlertKind {
  if (!isFinal(record.state)) return 'release_started';
  if (record.state === 'failed' && record.steps.some((s) => s.step === CANARY_ABORTED_STEP))
    return 'release_canary_aborted';
  return FINAL_KIND[record.state as keyof typeof FINAL_KIND];
}

function summaryOf(kind: ReleaseAlertKind, r: ReleaseRecord): string {
  const prev = `${r.previousPool} (${r.previousRelease})`;
  const reason = r.reason ? `: ${r.reason}` : '';
  switch (kind) {
    case 'release_started':
      return `Release ${r.release} started on ${r.pool} (${strategyText(r)}, bake ${r.bakeSeconds} s); ${prev} is serving`;
    case 'release_deployed':
      return `Release ${r.release} deployed to ${r.pool} and left idle (--no-promote); ${prev} stays active`;
    case 'release_promoted':
      return `Release ${r.release} promoted: ${r.pool} is active after a clean ${r.bakeSeconds} s bake${r.figures ? ` (${describeFigures(r.pool, r.figures)})` : ''}`;
    case 'release_failed':
      return `Release ${r.release} failed on ${r.pool} before promotion${reason}; ${prev} kept serving`;
    case 'release_canary_aborted':
      return `Release ${r.release} canary aborted on ${r.pool}${reason}; all traffic on ${prev}`;
    case 'release_rolled_back':
      return `Release ${r.release} rolled back: traffic is back on ${prev}${reason}`;
    case 'release_held':
      return `Release ${r.release} HELD on ${r.pool}, which keeps serving it${reason}. ${heldWaysOut(r)}`;
    case 'release_frozen':
      return `Irreversible release ${r.release} FROZEN on ${r.pool}: it crossed the gate and is not flipped back${reason}. ${frozenWayOut(r)}`;
  }
}

/**
 * The release events to post for `record`, given the (id, state) last announced:
 * - a record id seen for the first time while in progress (deploying, verifying, baking) → started;
 * - a final state not announced yet → promoted / rolled back / failed (gate) / canary aborted /
 *   deployed (--no-promote). A record first seen already final gets only its final message.
 * - the same (id, state) again, or an in-progress step of a release already announced → nothing.
 * `maintenance`: the decisions are returned suppressed (logged, not posted), like every alert.
 */
export function releaseAnnouncements(
  lastAnnounced: Announced | undefined,
  record: ReleaseRecord | undefined,
  maintenance = false,
): Decision[] {
  if (!record) return [];
  const sameRecord = lastAnnounced?.id === record.id;
  if (sameRecord && lastAnnounced!.state === record.state) return [];
  const final = isFinal(record.state);
  if (!final && sameRecord) return [];
  const kind = kindOf(record);
  const details: Record<string, string | number> = {
    record: record.id,
    strategy: strategyText(record),
    bake_s: record.bakeSeconds,
  };
  if (record.image) details.image = record.image;
  if (final) {
    const duration = time(record.finishedAt, record.updatedAt) - time(record.startedAt);
    if (duration >= 0) details.duration_s = Math.round(duration / 1000);
    const failedStep = [...record.steps].reverse().find((s) => !s.ok);
    if (record.state !== 'promoted' && record.state !== 'deployed' && failedStep) details.failed_step = failedStep.step;
  }
  return [
    {
      kind,
      severity: RELEASE_SEVERITY[kind],
      at: final
        ? time(record.finishedAt, record.updatedAt, record.startedAt)
        : time(record.startedAt, record.updatedAt),
      pool: record.pool,
      activePool:
        kind === 'release_promoted' || (kind === 'release_frozen' && !frozenInCanary(record))
          ? record.pool
          : record.previousPool,
      previousPool: record.previousPool,
      release: record.release,
      releaseId: record.id,
      previousRelease: record.previousRelease,
      strategy: strategyText(record),
      figures: record.figures,
      reason: record.reason,
      summary: summaryOf(kind, record),
      suppressed: maintenance ? 'maintenance' : null,
      details,
    },
  ];
}
