// The one step that carries out a guard decision, for the alert function (the ledger) and local mode's
// watcher (files and switch-pool.sh): switch first, then write the record, and only if nobody changed
// it meanwhile. The record is written last so it never claims what did not happen; the write is
// conditional on the version the decision was made on (RecordChanged otherwise), which keeps the guard
// from overwriting the CLI (a canary it finished, a release it cancelled) with a stale copy.
import type { Pool } from './pools';
import { RecordChanged } from './release-backend';
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
  /** Writes `next` only if the stored record is still `basis`; throws RecordChanged otherwise. */
  writeRecord(next: ReleaseRecord, basis: ReleaseRecord): Promise<ReleaseRecord>;
}

/** The decisions that do something. */
export type ActedOn = Exclude<GuardAction['action'], 'none'>;

export type GuardOutcome =
  /** The decision was `none`, or it needs no record change. */
  | { kind: 'nothing' }
  /** The switch failed: nothing written; the decision stands and is tried again. */
  | { kind: 'switch-failed'; action: ActedOn; detail: string }
  /** Switched, but the record changed meanwhile: it was not overwritten. */
  | { kind: 'record-changed'; action: ActedOn; detail?: string; current?: ReleaseRecord }
  | { kind: 'written'; action: ActedOn; record: ReleaseRecord; detail?: string };

/** What a decision switches before its record is written: the active pool back, or the canary share. */
export type Switch = { flip: Pool } | { canary: number };

/** The outcome of carrying out a change (a guard's or a person's). */
export type ChangeOutcome =
  | { kind: 'switch-failed'; detail: string }
  | { kind: 'record-changed'; detail?: string; current?: ReleaseRecord }
  | { kind: 'written'; record: ReleaseRecord; detail?: string };

/**
 * The one actuator: switches (if the change has a switch), then writes `next` conditional on
 * `record` still being the stored version. The guard, Slack's buttons and local mode all act
 * through it.
 */
export async function carryOut(
  record: ReleaseRecord,
  change: { switch?: Switch; next: ReleaseRecord },
  ports: GuardPorts,
): Promise<ChangeOutcome> {
  let detail: string | undefined;
  if (change.switch) {
    const switched =
      'flip' in change.switch ? await ports.flip(change.switch.flip) : await ports.setCanary(change.switch.canary);
    if (!switched.ok) return { kind: 'switch-failed', detail: switched.detail };
    detail = switched.detail;
  }
  try {
    return { kind: 'written', record: await ports.writeRecord(change.next, record), detail };
  } catch (err) {
    if (err instanceof RecordChanged) return { kind: 'record-changed', detail, current: err.current };
    throw err;
  }
}

/** What a guard decision switches: a rollback flips back, an abort ends the canary share. */
function guardSwitch(record: ReleaseRecord, action: GuardAction): Switch | undefined {
  if (action.action === 'rollback') return { flip: record.previousPool };
  if (action.action === 'abort-canary') return { canary: 0 };
  return undefined;
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
  const next = recordAfterGuard(record, action, now, actor);
  if (!next) return { kind: 'nothing' };
  const outcome = await carryOut(record, { switch: guardSwitch(record, action), next }, ports);
  return { ...outcome, action: action.action };
}
