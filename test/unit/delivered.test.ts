// The delivered-decision record: kept by when each was delivered, not by the log line's time.
import {
  deliveredEntry,
  deliveryKey,
  DELIVERED_KEEP_MS,
  DELIVERED_MAX,
  normalizeDelivered,
  pruneDelivered,
  wasDelivered,
} from '../../lambda/alert/delivered';

const T0 = Date.UTC(2026, 10, 22, 23, 45, 18);
const DAY = 24 * 3_600_000;

test('a decision about a 14-day-old line, delivered now, is kept a day from now', () => {
  const key = deliveryKey({ kind: 'failover', host: 'i-1', at: T0 } as never);
  const now = T0 + 14 * DAY;
  const kept = pruneDelivered([deliveredEntry(key, now)], now);
  expect(wasDelivered(kept, key)).toBe(true);
  expect(wasDelivered(pruneDelivered(kept, now + DELIVERED_KEEP_MS), key)).toBe(true);
  expect(pruneDelivered(kept, now + DELIVERED_KEEP_MS + 1)).toEqual([]);
});

test('entries written before delivery times were kept count as delivered when loaded', () => {
  const old = `failover|i-1|${T0}`;
  const loadedAt = T0 + 30 * DAY;
  const entries = normalizeDelivered([old], loadedAt);
  expect(entries).toEqual([`${old}|${loadedAt}`]);
  expect(wasDelivered(entries, old)).toBe(true);
  expect(pruneDelivered(entries, loadedAt + DAY - 1)).toHaveLength(1);
});

test('a key with no host keeps its shape', () => {
  const key = deliveryKey({ kind: 'error-rate', at: T0 } as never);
  expect(key).toBe(`error-rate||${T0}`);
  expect(wasDelivered([deliveredEntry(key, T0)], key)).toBe(true);
  expect(wasDelivered([deliveredEntry(key, T0)], `error-rate||${T0 + 1}`)).toBe(false);
});

test(`at most ${DELIVERED_MAX} entries, the newest`, () => {
  const entries = Array.from({ length: DELIVERED_MAX + 5 }, (_, i) => deliveredEntry(`failover|i-${i}|${T0}`, T0 + i));
  const kept = pruneDelivered(entries, T0 + 100);
  expect(kept).toHaveLength(DELIVERED_MAX);
  expect(kept[0]).toBe(entries[5]);
});
