// A person's decision on a release (Slack's buttons: Roll back now, Promote now, Extend bake, Abort):
// what it switches and the record it writes, or why it is refused. Pure: the caller reads the record
// and the active pool, and carries the change out through the one actuator (guard-actuator.ts
// carryOut), conditional on the version decided on, like the guard.
import type { Pool } from './pools';
import { BAKE_EXTENDED_STEP, CANARY_ABORTED_STEP } from './release-guard';
import { isFinal, parseRecordTime, ReleaseRecord } from './release-record';
import type { SlackActionKind } from './slack-actions';
import type { Switch } from './guard-actuator';

/** How much longer a bake runs per Extend bake (and past the maximum the guard would hold it at). */
export const EXTEND_BAKE_MS = 10 * 60_000;

export interface OperatorRequest {
  kind: SlackActionKind;
  /** The release the button was on. */
  releaseId: string;
  /** Who, as the ledger keeps it: `@alice (U012AB3CD) in Slack`. */
  by: string;
  /** The step's host: where the decision came from (`slack`). */
  via: string;
  now: number;
}

export type OperatorDecision =
  | { ok: false; reason: string }
  | {
      ok: true;
      switch?: Switch;
      next: ReleaseRecord;
      /** For the message: "Rolled back", "Promoted", "Bake extended to 14:12 UTC", "Aborted". */
      done: string;
    };

/** How Slack names each button (and the message says what was done). */
export const OPERATOR_ACTION_LABELS: Readonly<Record<SlackActionKind, string>> = {
  rollback: 'Roll back now',
  promote: 'Promote now',
  'extend-bake': 'Extend bake',
  abort: 'Abort',
};

const refuse = (reason: string): OperatorDecision => ({ ok: false, reason });

/**
 * The decision for `request` on the stored `record` (the ledger's head) with `active` the active pool
 * now. Refused, with a reason the person reads, whenever it does not apply any more: another release
 * is the latest, the state moved on, the pool is no longer active, the release is irreversible.
 */
export function decideOperatorAction(
  record: ReleaseRecord | undefined,
  active: Pool,
  request: OperatorRequest,
): OperatorDecision {
  const { kind, releaseId, by, via, now } = request;
  if (!record || record.id !== releaseId)
    return refuse(
      `${releaseId} is not the latest release${record ? ` (that is ${record.id}, ${record.state})` : ''}: nothing was changed`,
    );
  const at = new Date(now).toISOString();
  const step = (name: string, ok: boolean, detail: string) => [
    ...record.steps,
    { at, step: name, ok, detail: `${detail} by ${by}`, host: via },
  ];
  const finished = (
    state: ReleaseRecord['state'],
    reason: string | undefined,
    name: string,
    ok: boolean,
    detail: string,
  ) => ({
    ...record,
    state,
    ...(reason !== undefined ? { reason: `${reason} by ${by}` } : {}),
    decidedBy: by,
    updatedAt: at,
    finishedAt: at,
    steps: step(name, ok, detail),
  });
  const inCanary = record.strategy === 'canary' && (record.state === 'deploying' || record.state === 'verifying');
  switch (kind) {
    case 'rollback': {
      if (record.irreversible && !isFinal(record.state))
        return refuse(`${record.release} is irreversible (--irreversible): it is never flipped back; fix forward`);
      if (record.state === 'frozen')
        return refuse(`${record.release} is frozen (irreversible): it is never flipped back; fix forward`);
      if (inCanary)
        return {
          ok: true,
          switch: { canary: 0 },
          next: finished('failed', 'canary aborted', CANARY_ABORTED_STEP, false, 'canary share set to 0'),
          done: 'Canary aborted',
        };
      if (record.state === 'deploying' || record.state === 'verifying')
        return refuse(`${record.release} is not serving users yet (${record.state}): Abort stops it`);
      if (record.state !== 'baking' && record.state !== 'held' && record.state !== 'promoted')
        return refuse(`${record.release} is ${record.state}: there is nothing to roll back`);
      if (active !== record.pool)
        return refuse(`${record.pool} is not the active pool any more (${active} is): nothing to roll back`);
      return {
        ok: true,
        switch: { flip: record.previousPool },
        next: finished('rolled-back', 'rolled back', 'rollback', true, `flipped back to ${record.previousPool}`),
        done: 'Rolled back',
      };
    }
    case 'abort':
      if (record.state !== 'deploying' && record.state !== 'verifying')
        return refuse(
          `${record.release} is ${record.state}, past the point an abort applies (before promotion)${record.state === 'baking' ? ': Roll back now instead' : ''}`,
        );
      return {
        ok: true,
        switch: { canary: 0 },
        next: finished('failed', 'aborted before promotion', CANARY_ABORTED_STEP, false, 'aborted before promotion'),
        done: 'Aborted',
      };
    case 'promote':
      if (inCanary)
        return refuse(
          `${record.release} is in its canary: its release command promotes it (the flip); Abort to stop it`,
        );
      if (record.state !== 'baking' && record.state !== 'held' && record.state !== 'frozen')
        return refuse(
          `${record.release} is ${record.state}: only a baking, held or frozen release is promoted by hand`,
        );
      if (active !== record.pool)
        return refuse(`${record.pool} is not the active pool (${active} is: someone flipped back); release it again`);
      return {
        ok: true,
        next: finished('promoted', `promoted (was ${record.state})`, 'promoted', true, 'promoted'),
        done: 'Promoted',
      };
    case 'extend-bake': {
      if (record.state !== 'baking')
        return refuse(`${record.release} is ${record.state}, not baking: nothing to extend`);
      const until = Math.max(now, parseRecordTime(record.bakeUntil) ?? now) + EXTEND_BAKE_MS;
      const maxUntil = Math.max(until, parseRecordTime(record.maxBakeUntil) ?? until);
      const untilText = new Date(until).toISOString();
      return {
        ok: true,
        next: {
          ...record,
          bakeUntil: untilText,
          maxBakeUntil: new Date(maxUntil).toISOString(),
          updatedAt: at,
          steps: step(BAKE_EXTENDED_STEP, true, `bake extended to ${untilText}`),
        },
        done: `Bake extended to ${untilText.slice(11, 16)} UTC`,
      };
    }
  }
}

/** The message's new last line: "Rolled back by @alice at 14:02 UTC". */
export function operatorDoneLine(done: string, user: string, now: number): string {
  return `${done} by ${user} at ${new Date(now).toISOString().slice(11, 16)} UTC`;
}
