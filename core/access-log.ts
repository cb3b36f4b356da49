// The nginx JSON access-log entry: its fields (nginx/nginx.conf `log_format`; DECISIONS "Access log") and a parser that never throws.
// One definition for the alert Lambda, the local watcher, the tests and the benches.

export const ACCESS_LOG_FIELDS = [
  'time',
  'request_id',
  'remote_addr',
  'method',
  'uri',
  'status',
  'body_bytes_sent',
  'request_time',
  'upstream_addr',
  'upstream_status',
  'upstream_response_time',
  'upstream_connect_time',
  'pool',
  'release',
  'active_pool',
] as const;

/**
 * Fields older lines lack: when present they must be strings.
 * - primary_pool: the pool the request was first sent to (= active_pool except canary requests);
 *   lines written before reload-free switches lack it, and the active pool stands in for it.
 * - upstream_block: the upstream block the request went through, `bluegreen_<primary pool>_<generation>`
 *   (nginx.conf); lines written before pool generations lack it. Read by nothing in the pipeline:
 *   it says which generation's passive health state judged the request (debugging, tests).
 * - preview: the pool a preview request went to (it carried the release's preview token: core/preview.ts),
 *   empty for every other request; lines written before previews lack it.
 */
export const OPTIONAL_STRING_FIELDS = ['primary_pool', 'upstream_block', 'preview'] as const;

export interface AccessLogEntry {
  time: string;
  msec?: number;
  request_id: string;
  remote_addr: string;
  method: string;
  uri: string;
  status: number;
  body_bytes_sent: number;
  request_time: number;
  upstream_addr: string;
  upstream_status: string;
  upstream_response_time: string;
  upstream_connect_time: string;
  pool: string;
  release: string;
  active_pool: string;
  /** The pool nginx sent the request to first; absent on older lines (use `primaryPool()`). */
  primary_pool?: string;
  /** The upstream block (`bluegreen_<primary pool>_<generation>`); absent on older lines. */
  upstream_block?: string;
  /** The pool a preview request went to (no fallback), empty otherwise; absent on older lines. */
  preview?: string;
  host?: string;
  user_agent?: string;
}

export type ParseResult = { ok: true; entry: AccessLogEntry } | { ok: false; reason: string };

const NUMERIC = new Set(['status', 'body_bytes_sent', 'request_time']);

export function parseAccessLogLine(line: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'not a JSON object' };
  const record = value as Record<string, unknown>;
  for (const field of ACCESS_LOG_FIELDS) {
    if (!(field in record)) return { ok: false, reason: `missing field ${field}` };
    const expected = NUMERIC.has(field) ? 'number' : 'string';
    if (typeof record[field] !== expected) return { ok: false, reason: `field ${field} is not a ${expected}` };
  }
  for (const field of OPTIONAL_STRING_FIELDS) {
    if (field in record && typeof record[field] !== 'string')
      return { ok: false, reason: `field ${field} is not a string` };
  }
  return { ok: true, entry: record as unknown as AccessLogEntry };
}

/** The pool a request was first sent to: `primary_pool`, or `active_pool` on lines that lack it. */
export function primaryPool(entry: Pick<AccessLogEntry, 'primary_pool' | 'active_pool'>): string {
  return entry.primary_pool || entry.active_pool;
}

/** One entry per attempt: "500, 200" (failover inside the request) → [500, 200]; "" → []. */
export function upstreamStatuses(entry: Pick<AccessLogEntry, 'upstream_status'>): number[] {
  return entry.upstream_status
    .split(/[,:]\s*/)
    .map((s) => s.trim())
    .filter((s) => /^\d{3}$/.test(s))
    .map(Number);
}
