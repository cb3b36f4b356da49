// The release ledger's item shapes (DECISIONS "The release ledger"): one DynamoDB table per stage that
// keeps every release. The stack creates the table, the CLI and the guard write it, the hosts read
// its head. Pure: names, keys and the item <-> record mapping; the AWS calls live in ops/release/ledger.ts.
import type { ReleaseRecord } from './release-record';

/** The stage's ledger table (a fixed name: the CLI, the hosts and the function find it without a lookup). */
export function ledgerTableName(stage: string): string {
  return `bluegreen-${stage}-releases`;
}

/** The table's key attributes (both strings). */
export const LEDGER_PARTITION_KEY = 'pk';
export const LEDGER_SORT_KEY = 'sk';
/** The TTL attribute (epoch seconds) of release and event items; the head never expires. */
export const LEDGER_TTL_ATTRIBUTE = 'expiresAt';

/**
 * The head: the release in progress or last finished, the one the guard, the hosts and the next
 * release read. Every write of it is conditional on the revision the writer read (the one-release
 * lock and the guard's "never overwrite" are the same compare-and-set).
 */
export const LEDGER_HEAD_KEY = { [LEDGER_PARTITION_KEY]: 'head', [LEDGER_SORT_KEY]: 'head' } as const;
/** One item per release (its last written version): `history` queries this partition. */
export const LEDGER_RELEASES_PARTITION = 'release';
/** The release's events: every version written, sort key = the revision, zero-padded. */
export function ledgerEventsPartition(id: string): string {
  return `events#${id}`;
}
export function ledgerEventSortKey(revision: number): string {
  return String(revision).padStart(10, '0');
}

/**
 * A Slack click remembered (pk `click#<trigger id>`): its conditional put is the replay check, and
 * its TTL (expiresAt) clears it after an hour (core/slack-click.ts CLICK_MEMORY_MS).
 */
export function ledgerClickPartition(clickId: string): string {
  return `click#${clickId}`;
}
export const LEDGER_CLICK_SORT_KEY = 'click';

/** The head's key as the AWS CLI takes it (`aws dynamodb get-item --key`): hosts read the head with it. */
export function ledgerHeadKeyJson(): string {
  return JSON.stringify({
    [LEDGER_PARTITION_KEY]: { S: LEDGER_HEAD_KEY.pk },
    [LEDGER_SORT_KEY]: { S: LEDGER_HEAD_KEY.sk },
  });
}

/** The attribute holding the record's JSON (core/release-record.ts serializeRecord) on every item. */
export const LEDGER_RECORD_ATTRIBUTE = 'record';
/** The attribute holding the item's revision (a number; the head's counts every write of the stage). */
export const LEDGER_REVISION_ATTRIBUTE = 'revision';

/**
 * The record as kept in history (release and event items): the environment's keys, never its values
 * (a value may be a connection string someone pasted). The head keeps the values: a fleet host boots
 * its pools from them (fleet/bluegreen-join.sh).
 */
export function historyCopy(record: ReleaseRecord): ReleaseRecord {
  const keysOnly = (env: Record<string, string> | undefined) =>
    env === undefined ? undefined : Object.fromEntries(Object.keys(env).map((k) => [k, HIDDEN_VALUE]));
  const copy: ReleaseRecord = { ...record, env: keysOnly(record.env) ?? {} };
  for (const field of ['previousEnv', 'replacedEnv'] as const) {
    const env = keysOnly(record[field]);
    if (env) copy[field] = env;
  }
  return copy;
}

/** The TTL a ledger may be given: at least a month (the releases on-call looks back at), at most ten years. */
export const HISTORY_DAYS_RANGE = { min: 30, max: 3650 } as const;

/**
 * When a release's history items expire (DynamoDB TTL: epoch seconds): `historyDays` after its start;
 * undefined = kept for good. Every writer computes it from the record, so a later write (the guard's,
 * a click's) keeps the release's expiry.
 */
export function historyExpiresAt(record: Pick<ReleaseRecord, 'startedAt' | 'historyDays'>): number | undefined {
  const start = Date.parse(record.startedAt);
  if (!record.historyDays || !Number.isFinite(start)) return undefined;
  return Math.floor((start + record.historyDays * 86_400_000) / 1000);
}

/** What history shows for an environment value. */
export const HIDDEN_VALUE = '(set)';
