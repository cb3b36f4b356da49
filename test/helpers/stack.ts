// Test helpers: a local stack per test on free loopback ports, in its own temp dir.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AccessLogEntry, parseAccessLogLine } from '../../core/access-log';
import { LocalStack, StackOptions } from '../../local/stack';

export async function startTestStack(options: Partial<StackOptions> = {}): Promise<LocalStack> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-test-'));
  const stack = await LocalStack.start({
    stateDir,
    releases: { blue: 'blue-r1', green: 'green-r1' },
    ...options,
  });
  const stop = stack.stop.bind(stack);
  stack.stop = async () => {
    await stop();
    rmSync(stateDir, { recursive: true, force: true });
  };
  return stack;
}

/** An access-log entry with the field the reload-free switch added (where the first try went). */
export type LogEntry = AccessLogEntry & { primary_pool?: string };

export function readAccessLog(stack: LocalStack): { entries: LogEntry[]; malformed: string[] } {
  const lines = readFileSync(stack.state.accessLog, 'utf8').split('\n').filter(Boolean);
  const entries: LogEntry[] = [];
  const malformed: string[] = [];
  for (const line of lines) {
    const parsed = parseAccessLogLine(line);
    if (parsed.ok) entries.push(parsed.entry);
    else malformed.push(`${parsed.reason}: ${line}`);
  }
  return { entries, malformed };
}

/** nginx worker pids: they change on every reload, so equal lists mean no reload happened. */
export function workerPids(stack: LocalStack): string[] {
  return execFileSync('ps', ['-o', 'pid=', '--ppid', String(stack.pid('nginx'))], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
    .sort();
}

/** Polls until check() is truthy; the wait is derived from the state, never a fixed sleep. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A promise resolved the first time predicate holds for the samples seen so far. */
export function sampleGate<S>(predicate: (all: readonly S[]) => boolean) {
  let open!: () => void;
  const reached = new Promise<void>((r) => (open = r));
  let done = false;
  return {
    reached,
    onSample: (_s: S, all: readonly S[]) => {
      if (!done && predicate(all)) {
        done = true;
        open();
      }
    },
  };
}

/** The access-log entry of one response, found by its X-Request-Id once nginx has written it. */
export function logEntryFor(stack: LocalStack, res: { headers: Record<string, unknown> }): Promise<LogEntry> {
  const id = res.headers['x-request-id'];
  if (typeof id !== 'string') throw new Error('response has no X-Request-Id header');
  return waitFor(
    () => readAccessLog(stack).entries.find((e) => e.request_id === id),
    `access-log line for request ${id}`,
  );
}
