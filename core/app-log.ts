// The pools' app log (their stdout and stderr): which pool, release and host a line comes from, how
// `bluegreen logs` selects and prints lines, and the Docker awslogs settings the host ships it with.
// One source for the stream name: the host's Compose file renders it (test/unit/app-log.test.ts
// holds the two together), the CLI reads it back.
import { ConfigError } from './config-error';
import { parseDuration } from './duration';
import { POOL_STATE_REGEXPS } from './patterns';
import { isPool, Pool } from './pools';

/** Where a line of the app log comes from. */
export interface AppLogSource {
  readonly pool: Pool;
  readonly release: string;
  readonly host: string;
}

/** One line of a pool's stdout/stderr with its source. `time` in ms since the epoch. */
export interface AppLogEvent extends AppLogSource {
  readonly time: number;
  readonly text: string;
}

/**
 * A CloudWatch stream name: `<pool>/<release>/<host>`. Pool first, so one stream-name prefix selects
 * a pool (`blue/`) or a pool's release (`blue/r42/`) on every host; the awslogs driver attaches no
 * other metadata to an event, so the name carries all three. A release id is `[A-Za-z0-9._-]` and
 * a host an instance id: no `:` or `*`, which stream names refuse.
 */
export function appLogStreamName(source: AppLogSource): string {
  return `${source.pool}/${source.release}/${source.host}`;
}

/** The stream name's parts, or undefined for a stream not named by appLogStreamName. */
export function parseAppLogStream(name: string): AppLogSource | undefined {
  const [pool, release, ...host] = name.split('/');
  if (!isPool(pool) || !release || host.length === 0 || !host.join('/')) return undefined;
  return { pool, release, host: host.join('/') };
}

/** The stream-name prefix of a pool, or of one release on that pool. */
export function appLogStreamPrefix(pool: Pool, release?: string): string {
  return release === undefined ? `${pool}/` : `${pool}/${release}/`;
}

/**
 * The awslogs driver's delivery settings (userdata/docker-compose.yml). non-blocking: a slow or
 * unreachable CloudWatch never blocks the app's write to stdout; lines beyond the buffer are
 * dropped instead. 4 MiB holds about 21,000 lines of 200 bytes (DECISIONS.md "App logs").
 */
export const APP_LOG_DRIVER = { mode: 'non-blocking', maxBufferSize: '4m' } as const;

/** A pool as `--pool` names it: one of the two, or the one that is active / idle when the command runs. */
export type AppLogPoolChoice = Pool | 'active' | 'idle';

export interface AppLogQuery {
  readonly pool?: AppLogPoolChoice;
  readonly release?: string;
  readonly sinceMs: number;
  readonly follow: boolean;
  readonly grep?: string;
}

/** The lines a read prints at most (the oldest first; a last line says there were more), a --follow poll's period. */
export const APP_LOG_LIMITS = { maxEvents: 10_000, followPollMs: 2000, defaultSince: '10m' } as const;

/** `bluegreen logs` flags as parsed values → the query; a bad value throws naming its flag. */
export function parseAppLogQuery(values: {
  pool?: string;
  release?: string;
  since?: string;
  follow?: boolean;
  grep?: string;
}): AppLogQuery {
  const { pool, release, grep } = values;
  if (pool !== undefined && !isPool(pool) && pool !== 'active' && pool !== 'idle')
    throw new ConfigError(`--pool must be blue, green, active or idle, got "${pool}"`);
  if (release !== undefined && !POOL_STATE_REGEXPS.release.test(release))
    throw new ConfigError(`--release must be a release id ([A-Za-z0-9._-], 1-64 characters), got "${release}"`);
  if (grep !== undefined && grep.length === 0) throw new ConfigError('--grep must not be empty');
  const sinceMs = parseDuration(values.since ?? APP_LOG_LIMITS.defaultSince, '--since') * 1000;
  return { pool, release, sinceMs, follow: values.follow === true, grep };
}

/** The pool a choice means when the active pool is `active`. */
export function resolveAppLogPool(choice: AppLogPoolChoice | undefined, active: Pool): Pool | undefined {
  if (choice === 'active') return active;
  if (choice === 'idle') return active === 'blue' ? 'green' : 'blue';
  return choice;
}

/** Whether an event is one the query (with its pool resolved) asks for. */
export function appLogMatches(
  event: AppLogEvent,
  query: { pool?: Pool; release?: string; grep?: string; startMs?: number },
): boolean {
  return (
    (query.pool === undefined || event.pool === query.pool) &&
    (query.release === undefined || event.release === query.release) &&
    (query.grep === undefined || event.text.includes(query.grep)) &&
    (query.startMs === undefined || event.time >= query.startMs)
  );
}

/** The CLI's line: time, pool, release, host, text. */
export function formatAppLogEvent(event: AppLogEvent): string {
  return `${new Date(event.time).toISOString()} ${event.pool} ${event.release} ${event.host} ${event.text}`;
}

/** Local mode's app log file: one JSON object per line, each with its source (appLogFileLine). */
export function appLogFileLine(event: AppLogEvent): string {
  return JSON.stringify({
    time: new Date(event.time).toISOString(),
    pool: event.pool,
    release: event.release,
    host: event.host,
    text: event.text,
  });
}

/** A line of local mode's app log file, or undefined for a torn or foreign line. */
export function parseAppLogFileLine(line: string): AppLogEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const time = typeof o.time === 'string' ? Date.parse(o.time) : NaN;
  if (!isPool(o.pool) || typeof o.release !== 'string' || typeof o.host !== 'string' || typeof o.text !== 'string')
    return undefined;
  if (Number.isNaN(time)) return undefined;
  return { time, pool: o.pool, release: o.release, host: o.host, text: o.text };
}

export const APP_LOGS_USAGE = `usage: bluegreen logs [--pool blue|green|active|idle] [--release ID] [--since 10m] [--follow] [--grep TEXT] [--stage S]
  The pools' stdout/stderr, one line per event: time, pool, release, host, text.
  --pool P      one pool; active/idle = the pool that is active/idle now (default: both)
  --release ID  one release's lines
  --since D     how far back (default ${APP_LOG_LIMITS.defaultSince}; up to 24h)
  --follow      keep printing new lines (polls every ${APP_LOG_LIMITS.followPollMs / 1000} s; on a stage it looks 60 s back for
                late batches, each line once) until Ctrl-C
  --grep TEXT   only lines that contain TEXT (case-sensitive)
  At most ${APP_LOG_LIMITS.maxEvents} lines per read, oldest first (a last line says when there were more). With --stage: the stage's CloudWatch group
  /bluegreen/<stage>/app (streams <pool>/<release>/<host>); without: the local stack's files
  (<state dir>/app-logs/<pool>.log).`;
