// The record of decisions already posted (or dead-lettered), kept with the alert state so that
// Lambda's retry of a batch never posts one twice. Pure: the caller passes the clock.
import type { Decision } from '../../core/rules';

/**
 * How long a delivered decision's key is kept, counted from its delivery (its arrival here), not
 * from the log line's time: Lambda retries a batch within hours (maximum event age 6 h), while the
 * CloudWatch agent ships a backlog of lines up to 14 days old after an outage. Keyed by event time,
 * such a batch's keys would be pruned the moment they were written and its retry would post again.
 */
export const DELIVERED_KEEP_MS = 24 * 3_600_000;
/** At most this many keys (the state parameter is a 4 KB standard one). */
export const DELIVERED_MAX = 40;

/** A decision's identity across Lambda's retries of a batch: the same lines give the same key. */
export function deliveryKey(d: Decision): string {
  return `${d.kind}|${d.host ?? ''}|${d.at}`;
}

/**
 * One persisted entry: `<key>|<delivered at, epoch ms>`. A key has exactly two `|` (kind and host
 * hold none); an entry written before delivery times were kept has no third and is read as
 * delivered at `loadedAt`, so it is kept a full day from the upgrade.
 */
export function deliveredEntry(key: string, deliveredAt: number): string {
  return `${key}|${deliveredAt}`;
}

function split(entry: string, loadedAt: number): { key: string; deliveredAt: number } {
  const parts = entry.split('|');
  if (parts.length <= 3) return { key: entry, deliveredAt: loadedAt };
  return { key: parts.slice(0, 3).join('|'), deliveredAt: Number(parts[3]) || 0 };
}

/** Entries as read from the state: old-format ones get `loadedAt` as their delivery time. */
export function normalizeDelivered(entries: readonly string[], loadedAt: number): string[] {
  return entries.map((e) => {
    const { key, deliveredAt } = split(e, loadedAt);
    return deliveredEntry(key, deliveredAt);
  });
}

export function wasDelivered(entries: readonly string[], key: string): boolean {
  return entries.some((e) => split(e, 0).key === key);
}

/** The entries still worth keeping at `now`: delivered within DELIVERED_KEEP_MS, the newest DELIVERED_MAX. */
export function pruneDelivered(entries: readonly string[], now: number): string[] {
  const oldest = now - DELIVERED_KEEP_MS;
  return entries.filter((e) => split(e, now).deliveredAt >= oldest).slice(-DELIVERED_MAX);
}
