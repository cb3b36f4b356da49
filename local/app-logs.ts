// Local mode's app log: each pool process's stdout/stderr, one JSON line per line it printed with
// its pool, release and host (core/app-log.ts appLogFileLine), in <state dir>/app-logs/<pool>.log;
// and `bluegreen logs` without --stage, which reads those files.
import {
  closeSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
  WriteStream,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  APP_LOG_LIMITS,
  AppLogEvent,
  appLogFileLine,
  appLogMatches,
  formatAppLogEvent,
  parseAppLogFileLine,
  parseAppLogQuery,
  resolveAppLogPool,
} from '../core/app-log';
import { ConfigError } from '../core/config-error';
import { Pool, POOLS } from '../core/pools';
import type { Out } from '../support/output';
import { LOCAL_STATE_DIR } from './paths';
import { readStackState } from './stack-state';
import { readActivePool } from './switch';

/** The folder of the pools' app log files in a state dir. */
export function appLogDir(stateDir: string): string {
  return path.join(stateDir, 'app-logs');
}

export function appLogFile(stateDir: string, pool: Pool): string {
  return path.join(appLogDir(stateDir), `${pool}.log`);
}

/** The host a local line comes from: this machine's name (on AWS: the instance id). */
export const LOCAL_HOST = os.hostname();

/**
 * Appends one pool process's lines to its pool's file. One writer per process (the release it
 * runs is fixed for its life); end() when the process has exited.
 */
export class AppLogWriter {
  private readonly stream: WriteStream;

  constructor(
    stateDir: string,
    private readonly pool: Pool,
    private readonly release: string,
    private readonly now: () => number = Date.now,
  ) {
    mkdirSync(appLogDir(stateDir), { recursive: true });
    this.stream = createWriteStream(appLogFile(stateDir, pool), { flags: 'a' });
    // A full disk must not take the stack down: the line is lost, the pool keeps serving.
    this.stream.on('error', () => undefined);
  }

  line(text: string): void {
    const event = { time: this.now(), pool: this.pool, release: this.release, host: LOCAL_HOST, text };
    this.stream.write(`${appLogFileLine(event)}\n`);
  }

  end(): void {
    this.stream.end();
  }
}

/** Where each pool's file was read up to, so a --follow poll reads only what was appended. */
type Offsets = Map<Pool, number>;

/** New complete lines of the pools' files since `offsets` (updated), parsed; a torn last line waits. */
function readNew(stateDir: string, pools: readonly Pool[], offsets: Offsets): AppLogEvent[] {
  const events: AppLogEvent[] = [];
  for (const pool of pools) {
    const file = appLogFile(stateDir, pool);
    if (!existsSync(file)) continue;
    const size = statSync(file).size;
    let from = offsets.get(pool) ?? 0;
    if (size < from) from = 0; // truncated or replaced: read it again from the start
    if (size === from) continue;
    const buf = Buffer.alloc(size - from);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, from);
    } finally {
      closeSync(fd);
    }
    const text = buf.toString('utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) continue;
    offsets.set(pool, from + Buffer.byteLength(text.slice(0, end + 1)));
    for (const line of text.slice(0, end).split('\n')) {
      const e = parseAppLogFileLine(line);
      if (e) events.push(e);
    }
  }
  return events.sort((a, b) => a.time - b.time);
}

export interface LocalAppLogRead {
  stateDir: string;
  pool?: Pool;
  release?: string;
  grep?: string;
  startMs: number;
  maxEvents?: number;
}

/** Prints the read, then (follow) new lines every pollMs until `signal` aborts. */
export async function printLocalAppLog(
  read: LocalAppLogRead,
  out: Out,
  follow: { signal: AbortSignal; pollMs: number } | undefined,
): Promise<void> {
  const pools = read.pool ? [read.pool] : POOLS;
  const offsets: Offsets = new Map();
  const max = read.maxEvents ?? APP_LOG_LIMITS.maxEvents;
  let first = true;
  for (;;) {
    const events = readNew(read.stateDir, pools, offsets).filter((e) =>
      appLogMatches(e, { pool: read.pool, release: read.release, grep: read.grep, startMs: read.startMs }),
    );
    for (const e of first ? events.slice(0, max) : events) out(formatAppLogEvent(e));
    if (first && events.length > max) out(`(more than ${max} lines: narrow --since, --pool, --release or --grep)`);
    first = false;
    if (!follow || follow.signal.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, follow.pollMs);
      follow.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
    if (follow.signal.aborted) return;
  }
}

export async function localLogsCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        pool: { type: 'string' },
        release: { type: 'string' },
        since: { type: 'string' },
        follow: { type: 'boolean' },
        grep: { type: 'string' },
      },
      allowPositionals: false,
    });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (--region and --profile need --stage S or $BLUEGREEN_STAGE)`);
  }
  const query = parseAppLogQuery(parsed.values);
  const stateDir = env.BLUEGREEN_STATE_DIR || LOCAL_STATE_DIR;
  let pool: Pool | undefined;
  if (query.pool === 'active' || query.pool === 'idle') {
    const state = readStackState(stateDir);
    if (!state)
      throw new ConfigError(
        `--pool ${query.pool}: no local stack is running (no ${stateDir}/state.json): start one with npm start`,
      );
    pool = resolveAppLogPool(query.pool, readActivePool(state));
  } else pool = query.pool;
  const abort = new AbortController();
  const stop = () => abort.abort();
  if (query.follow) process.once('SIGINT', stop);
  try {
    await printLocalAppLog(
      { stateDir, pool, release: query.release, grep: query.grep, startMs: Date.now() - query.sinceMs },
      out,
      query.follow ? { signal: abort.signal, pollMs: APP_LOG_LIMITS.followPollMs } : undefined,
    );
  } finally {
    process.off('SIGINT', stop);
  }
  return 0;
}
