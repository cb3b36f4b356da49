// `bluegreen logs --stage S`: the pools' stdout/stderr from the stage's app log group (Docker's
// awslogs driver ships it, one stream per pool, release and host: core/app-log.ts). FilterLogEvents
// with the stream-name prefix of the pool (and release) asked for; --follow polls.
import {
  CloudWatchLogsClient,
  FilteredLogEvent,
  FilterLogEventsCommand,
  FilterLogEventsCommandInput,
} from '@aws-sdk/client-cloudwatch-logs';
import { parseArgs } from 'node:util';
import {
  APP_LOG_LIMITS,
  AppLogEvent,
  appLogMatches,
  appLogStreamPrefix,
  formatAppLogEvent,
  parseAppLogQuery,
  parseAppLogStream,
  resolveAppLogPool,
} from '../core/app-log';
import { ConfigError } from '../core/config-error';
import { parsePool, Pool, POOLS } from '../core/pools';
import type { Out } from '../support/output';
import { AWS_FLAGS, awsTarget, getParameter } from './aws-target';

export const APP_LOGS_FLAGS = {
  pool: { type: 'string' },
  release: { type: 'string' },
  since: { type: 'string' },
  follow: { type: 'boolean' },
  grep: { type: 'string' },
} as const;

/** What one read of the stage's app log asks CloudWatch for. */
export interface StageAppLogRead {
  logs: CloudWatchLogsClient;
  logGroup: string;
  /** Only this pool (resolved from active/idle), this release, lines containing grep. */
  pool?: Pool;
  release?: string;
  grep?: string;
  startMs: number;
  /** Lines read at most (APP_LOG_LIMITS.maxEvents); `more` says there were more. */
  maxEvents?: number;
}

/**
 * The stream-name prefixes a read needs: none (every stream), one pool's, or a release on each
 * pool when only --release is given (FilterLogEvents takes one prefix per call).
 */
export function streamPrefixes(pool: Pool | undefined, release: string | undefined): Array<string | undefined> {
  if (pool) return [appLogStreamPrefix(pool, release)];
  if (release !== undefined) return POOLS.map((p) => appLogStreamPrefix(p, release));
  return [undefined];
}

/**
 * A filter pattern CloudWatch matches as the exact text (a quoted term), so fewer events cross the
 * wire; text with a double quote is matched here only. Either way every event is checked again here.
 */
function filterPattern(grep: string | undefined): string | undefined {
  return grep !== undefined && !grep.includes('"') ? `"${grep}"` : undefined;
}

function toEvent(e: FilteredLogEvent): (AppLogEvent & { id: string }) | undefined {
  const source = e.logStreamName ? parseAppLogStream(e.logStreamName) : undefined;
  if (!source || e.timestamp === undefined) return undefined;
  return { ...source, time: e.timestamp, text: (e.message ?? '').replace(/\n$/, ''), id: e.eventId ?? '' };
}

/** The events of one read in time order (ties by event id), at most maxEvents of them. */
export async function readStageAppLog(
  read: StageAppLogRead,
): Promise<{ events: Array<AppLogEvent & { id: string }>; more: boolean }> {
  const max = read.maxEvents ?? APP_LOG_LIMITS.maxEvents;
  const events: Array<AppLogEvent & { id: string }> = [];
  let more = false;
  for (const prefix of streamPrefixes(read.pool, read.release)) {
    let nextToken: string | undefined;
    do {
      const input: FilterLogEventsCommandInput = {
        logGroupName: read.logGroup,
        startTime: read.startMs,
        ...(prefix ? { logStreamNamePrefix: prefix } : {}),
        ...(filterPattern(read.grep) ? { filterPattern: filterPattern(read.grep) } : {}),
        nextToken,
      };
      const page = await read.logs.send(new FilterLogEventsCommand(input));
      for (const raw of page.events ?? []) {
        const e = toEvent(raw);
        if (!e || !appLogMatches(e, { pool: read.pool, release: read.release, grep: read.grep })) continue;
        if (events.length >= max) {
          more = true;
          break;
        }
        events.push(e);
      }
      nextToken = more ? undefined : page.nextToken;
    } while (nextToken);
    if (more) break;
  }
  events.sort((a, b) => a.time - b.time || a.id.localeCompare(b.id));
  return { events, more };
}

/**
 * How far behind the newest printed event a --follow poll looks again: the awslogs driver sends a
 * batch every 5 s per container, so a line of another host (or pool) can reach CloudWatch after
 * newer ones were printed. Events are printed once, by id.
 */
export const FOLLOW_LOOKBACK_MS = 60_000;

/**
 * Prints the read, then (follow) polls until `signal` aborts, from FOLLOW_LOOKBACK_MS before the
 * newest event printed, printing each event once (the ids of that window are remembered).
 */
export async function printStageAppLog(
  read: StageAppLogRead,
  out: Out,
  follow: { signal: AbortSignal; pollMs: number } | undefined,
): Promise<void> {
  let { events, more } = await readStageAppLog(read);
  let newest = read.startMs;
  const printed = new Map<string, number>();
  for (;;) {
    for (const e of events) {
      if (printed.has(e.id)) continue;
      out(formatAppLogEvent(e));
      printed.set(e.id, e.time);
      newest = Math.max(newest, e.time);
    }
    if (more)
      out(
        `(more than ${read.maxEvents ?? APP_LOG_LIMITS.maxEvents} lines: narrow --since, --pool, --release or --grep)`,
      );
    if (!follow || follow.signal.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, follow.pollMs);
      follow.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
    if (follow.signal.aborted) return;
    const from = Math.max(read.startMs, newest - FOLLOW_LOOKBACK_MS);
    for (const [id, time] of printed) if (time < from) printed.delete(id);
    ({ events, more } = await readStageAppLog({ ...read, startMs: from }));
  }
}

export async function awsLogsCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...AWS_FLAGS, ...APP_LOGS_FLAGS }, allowPositionals: false });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const { values } = parsed;
  const query = parseAppLogQuery(values);
  const target = awsTarget(values, env);
  let pool: Pool | undefined;
  if (query.pool === 'active' || query.pool === 'idle') {
    const active = await getParameter(target.ssm, target.params.activePool);
    pool = resolveAppLogPool(query.pool, parsePool(active, target.params.activePool));
  } else pool = query.pool;
  const abort = new AbortController();
  const stop = () => abort.abort();
  if (query.follow) process.once('SIGINT', stop);
  try {
    await printStageAppLog(
      {
        logs: target.logs,
        logGroup: target.logGroups.app,
        pool,
        release: query.release,
        grep: query.grep,
        startMs: Date.now() - query.sinceMs,
      },
      out,
      query.follow ? { signal: abort.signal, pollMs: APP_LOG_LIMITS.followPollMs } : undefined,
    );
  } finally {
    process.off('SIGINT', stop);
  }
  return 0;
}
