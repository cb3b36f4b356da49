// The one step that carries out a guard decision, for the alert function (SSM) and local mode's
// watcher (files and switch-pool.sh): switch first, then write the record, and only if nobody changed
// it meanwhile. The record is written last so it never claims what did not happen; the compare keeps
// the guard from overwriting the CLI (a canary it finished, a release it cancelled) with a stale copy.
import type { Pool } from './pools';
import { GuardAction, recordAfterGuard } from './release-guard';
import type { ReleaseRecord } from './release-record';

/** What a switch reported: `ok: false` leaves the record alone, and the next evaluation tries again. */
export interface SwitchOutcome {
  ok: boolean;
  detail: string;
}

/** Where the guard acts. A port that throws aborts the step before anything is written. */
export interface GuardPorts {
  /** The active pool back to `pool` (rollback). */
  flip(pool: Pool): Promise<SwitchOutcome>;
  /** The canary share to `percent` (abort-canary sets 0). */
  setCanary(percent: number): Promise<SwitchOutcome>;
  /** A fresh read of the record (no cache): what it is now, after the switch. */
  readRecord(): Promise<ReleaseRecord | undefined>;
  writeRecord(record: ReleaseRecord): Promise<void>;
}

/** The decisions that do something. */
export type ActedOn = Exclude<GuardAction['action'], 'none'>;

export type GuardOutcome =
  /** The decision was `none`, or it needs no record change. */
  | { kind: 'nothing' }
  /** The switch failed: nothing written; the decision stands and is tried again. */
  | { kind: 'switch-failed'; action: ActedOn; detail: string }
  /** Switched, but the record changed meanwhile: it was not overwritten. */
  | { kind: 'record-changed'; action: ActedOn; detail?: string }
  | { kind: 'written'; action: ActedOn; record: ReleaseRecord; detail?: string };

/** The same record as far as the guard is concerned: same release, same state, same last write. */
export function sameRecordVersion(a: ReleaseRecord | undefined, b: ReleaseRecord): boolean {
  return a !== undefined && a.id === b.id && a.state === b.state && a.updatedAt === b.updatedAt;
}

/**
 * Carries out `action` on the release `record` it was decided on, at `now`, by `actor` (the step's host).
 */
export async function actOnGuard(
  record: ReleaseRecord,
  action: GuardAction,
  now: number,
  actor: string,
  ports: GuardPorts,
): Promise<GuardOutcome> {
  if (action.action === 'none') return { kind: 'nothing' };
  let detail: string | undefined;
  if (action.action === 'rollback' || action.action === 'abort-canary') {
    const switched = action.action === 'rollback' ? await ports.flip(record.previousPool) : await ports.setCanary(0);
    if (!switched.ok) return { kind: 'switch-failed', action: action.action, detail: switched.detail };
    detail = switched.detail;
  }
  if (!sameRecordVersion(await ports.readRecord(), record))
    return { kind: 'record-changed', action: action.action, detail };
  const next = recordAfterGuard(record, action, now, actor);
  if (!next) return { kind: 'nothing' };
  await ports.writeRecord(next);
  return { kind: 'written', action: action.action, record: next, detail };
}
