// Local mode's release state: plain files in the state dir (the local counterpart of the stage's SSM parameters), shared by the CLI
// (local/release-backend.ts), the pool agent (local/pool-agent.ts) and the server-side guard
// (local/watcher.ts), which run in different processes. Every write is atomic (temp file + rename);
// the history is append-only, one JSON record per line. The record's write is conditional like the
// stage's ledger (support/release-ledger.ts): under a lock directory, only if it is still the version
// the writer read.
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import * as path from 'node:path';
import type { Pool } from '../core/pools';
import type { PoolOptions } from '../core/pool-options';
import type { DesiredPool, PrePromoteResult, ReleaseRecord, ReleaseStep } from '../core/release-record';
import { RecordChanged, sameRecordVersion } from '../core/release-backend';

/** pools/<pool>.json: what the pool should run. `request` names who asked (the agent echoes it). */
export interface LocalDesiredPool extends DesiredPool {
  request?: string;
  at?: string;
}

/** pools/<pool>.applied.json: what the local agent last did for the pool. */
export interface AppliedPool {
  release: string;
  env: Record<string, string>;
  /** The options it was started with (secrets as names and pinned versions). */
  options?: PoolOptions;
  ok: boolean;
  at: string;
  steps: ReleaseStep[];
  reason?: string;
  /** The `request` of the desired state this answers. */
  request?: string;
}

export const localFiles = (stateDir: string) => ({
  desired: (pool: Pool) => path.join(stateDir, 'pools', `${pool}.json`),
  applied: (pool: Pool) => path.join(stateDir, 'pools', `${pool}.applied.json`),
  record: path.join(stateDir, 'release.json'),
  recordLock: path.join(stateDir, 'release.lock'),
  history: path.join(stateDir, 'releases.jsonl'),
  prePromote: path.join(stateDir, 'pools', 'pre-promote.json'),
  prePromoteResult: path.join(stateDir, 'pools', 'pre-promote.result.json'),
});

/** pools/pre-promote.json: a release phase the CLI asks the local agent to run (once per `request`). */
export interface LocalPrePromoteRequest {
  request: string;
  pool: Pool;
  /** The release the pool must be running (the one that passed its gate). */
  release: string;
  command: string;
  timeoutMs: number;
}

/** pools/pre-promote.result.json: what the agent ran for `request`. */
export interface LocalPrePromoteResult extends PrePromoteResult {
  request: string;
}

export function readPrePromoteRequest(stateDir: string): LocalPrePromoteRequest | undefined {
  return readJsonFile<LocalPrePromoteRequest>(localFiles(stateDir).prePromote);
}
export function writePrePromoteRequest(stateDir: string, request: LocalPrePromoteRequest): void {
  writeJsonAtomic(localFiles(stateDir).prePromote, request);
}
export function readPrePromoteResult(stateDir: string): LocalPrePromoteResult | undefined {
  return readJsonFile<LocalPrePromoteResult>(localFiles(stateDir).prePromoteResult);
}
export function writePrePromoteResult(stateDir: string, result: LocalPrePromoteResult): void {
  writeJsonAtomic(localFiles(stateDir).prePromoteResult, result);
}

/** The parsed file, or undefined when it does not exist (or is mid-write by a crashed writer). */
export function readJsonFile<T>(file: string): T | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

let tmpCounter = 0;
export function writeJsonAtomic(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${tmpCounter++}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}

export function readLocalRecord(stateDir: string): ReleaseRecord | undefined {
  return readJsonFile<ReleaseRecord>(localFiles(stateDir).record);
}

/** A writer holds the lock for a read, a compare and a rename: one older than this was left by a crash. */
const LOCK_STALE_MS = 10_000;
const LOCK_WAIT_MS = 5_000;

/** Runs `fn` holding release.lock (mkdir is atomic): the CLI, the watcher and the Slack handler are separate processes. */
function withRecordLock<T>(stateDir: string, fn: () => T): T {
  const lock = localFiles(stateDir).recordLock;
  mkdirSync(stateDir, { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline)
        throw new Error(`${lock} is held by another writer for ${LOCK_WAIT_MS / 1000} s`, { cause: err });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
  try {
    return fn();
  } finally {
    rmdirSync(lock);
  }
}

/**
 * Writes release.json and appends the same version to releases.jsonl (the history), only if
 * release.json is still `basis` (undefined: no record); throws RecordChanged otherwise. Returns what
 * was stored, with its revision.
 */
export function writeLocalRecord(
  stateDir: string,
  record: ReleaseRecord,
  basis: ReleaseRecord | undefined,
): ReleaseRecord {
  const files = localFiles(stateDir);
  return withRecordLock(stateDir, () => {
    const current = readLocalRecord(stateDir);
    if (!sameRecordVersion(current, basis)) throw new RecordChanged(current);
    const stored = { ...record, revision: (current?.revision ?? 0) + 1 };
    writeJsonAtomic(files.record, stored);
    appendFileSync(files.history, `${JSON.stringify(stored)}\n`);
    return stored;
  });
}

/** Every record version ever written, oldest first; a torn or hand-broken line is skipped. */
export function readLocalHistory(stateDir: string): ReleaseRecord[] {
  const file = localFiles(stateDir).history;
  if (!existsSync(file)) return [];
  const out: ReleaseRecord[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as ReleaseRecord;
      if (r && typeof r.id === 'string' && typeof r.state === 'string') out.push(r);
    } catch {
      // skipped: history is for reading, one bad line must not hide the others
    }
  }
  return out;
}

export function readDesired(stateDir: string, pool: Pool): LocalDesiredPool | undefined {
  return readJsonFile<LocalDesiredPool>(localFiles(stateDir).desired(pool));
}

export function writeDesired(stateDir: string, pool: Pool, desired: LocalDesiredPool): void {
  writeJsonAtomic(localFiles(stateDir).desired(pool), desired);
}

export function readApplied(stateDir: string, pool: Pool): AppliedPool | undefined {
  return readJsonFile<AppliedPool>(localFiles(stateDir).applied(pool));
}

export function writeApplied(stateDir: string, pool: Pool, applied: AppliedPool): void {
  writeJsonAtomic(localFiles(stateDir).applied(pool), applied);
}
