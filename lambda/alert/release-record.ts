// The release record (DESIGN.md "Releases"): one JSON document per stage for the release in progress
// or last finished. Written by the CLI (`bluegreen release`), read and finished by the server-side
// guard (the alert Lambda on AWS, the watcher in local mode). Types and pure helpers only.

export type Pool = 'blue' | 'green';

/**
 * deploying → verifying → (deployed, with --no-promote) | baking → promoted | rolled-back;
 * failed from any step before promotion. 'deployed', 'promoted', 'rolled-back', 'failed' are final.
 */
export type ReleaseState = 'deploying' | 'verifying' | 'deployed' | 'baking' | 'promoted' | 'rolled-back' | 'failed';
export const FINAL_STATES: readonly ReleaseState[] = ['deployed', 'promoted', 'rolled-back', 'failed'];

export type ReleaseStrategy = 'all-at-once' | 'canary';

/** What a pool should run: the unit the host agent (or the local agent) reconciles. */
export interface DesiredPool {
  /** Registry image; undefined = the project's own app/ image. */
  image?: string;
  release: string;
  env: Record<string, string>;
}

export interface ReleaseFigures {
  /** Requests first sent to the release's pool in the window the gate judged. */
  requests: number;
  /** Of those, failed by that pool (served by the other pool, a 5xx attempt, or a 5xx status). */
  failed: number;
  rate: number;
  /** Of those, answered to the client with a 5xx (what users saw; normally 0 thanks to failover). */
  usersSaw5xx: number;
}

export interface ReleaseStep {
  at: string;
  step: string;
  ok: boolean;
  detail?: string;
  /** The host that reported it (AWS: instance id; local: "local"). */
  host?: string;
}

export interface ReleaseRecord {
  id: string;
  pool: Pool;
  image?: string;
  release: string;
  env: Record<string, string>;
  previousPool: Pool;
  previousRelease: string;
  /**
   * What the previous (active) pool ran when the release started: a fleet host launched later boots
   * its active pool with it once every host's deploy passed (each deploy run checks that the active
   * pool runs its desired state). Absent in records written before it existed.
   */
  previousImage?: string;
  previousEnv?: Record<string, string>;
  /** What the idle pool ran before the release: restored when the gate fails. */
  replacedRelease: string;
  replacedImage?: string;
  replacedEnv?: Record<string, string>;
  strategy: ReleaseStrategy;
  canaryPercent: number;
  bakeSeconds: number;
  state: ReleaseState;
  reason?: string;
  figures?: ReleaseFigures;
  startedAt: string;
  updatedAt: string;
  bakeUntil?: string;
  finishedAt?: string;
  steps: ReleaseStep[];
}

export function isFinal(state: ReleaseState): boolean {
  return FINAL_STATES.includes(state);
}

/** A record neither final nor touched for this long past its last deadline was abandoned (a killed CLI). */
export const STALE_AFTER_MS = 10 * 60_000;
/** The longest --bake (and --canary-duration, --deploy-timeout) the CLI takes. */
export const MAX_DURATION_SECONDS = 24 * 3600;
/** A promotion's flip (Run Command, then the endpoint) is confirmed well within this on AWS. */
export const PROMOTION_BOUND_MS = 10 * 60_000;
/**
 * How far past its updatedAt a record's bakeUntil can be: the CLI writes the provisional end (bake +
 * the promotion's bound) and the real one (bake) in the same write as updatedAt. Further is not a
 * record the CLI wrote, and believing it would hold every release and every joining host for as long.
 */
export const BAKE_AHEAD_MS = MAX_DURATION_SECONDS * 1000 + PROMOTION_BOUND_MS;
/** How far ahead of the reader's clock a record may have been written (clock skew is minutes). */
export const CLOCK_AHEAD_MS = STALE_AFTER_MS;

/**
 * The one form a record's times take: what the CLI writes (toISOString), seconds optionally with
 * milliseconds, UTC. fleet/bluegreen-join.sh reads the same form the same way (jq); anything else
 * (an offset, a missing zone, a day that does not exist, a trailing line feed) is no time to either.
 */
const RECORD_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?Z$/;
export function parseRecordTime(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = RECORD_TIME.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  if (year < 1970) return undefined;
  const t = Date.UTC(year, month - 1, day, hour, minute, second, m[7] === undefined ? 0 : Number(m[7]));
  // Date.UTC rolls 02-30 or 23:59:60 over into the next day or minute; such a time is not read.
  return new Date(t).toISOString().slice(0, 19) === value.slice(0, 19) ? t : undefined;
}

export type RecordVerdict =
  | { kind: 'final' }
  /** Not final, but its times are not ones the CLI writes: not in progress, whatever they say. */
  | { kind: 'invalid'; reason: string }
  | { kind: 'stale' }
  | { kind: 'in-progress' };

/** Why a record's times cannot be the CLI's, or undefined. The host's jq gives the same reasons. */
export function recordTimesProblem(record: ReleaseRecord, now: number): string | undefined {
  const times: Record<'startedAt' | 'updatedAt' | 'bakeUntil', number | undefined> = { startedAt: undefined, updatedAt: undefined, bakeUntil: undefined };
  for (const field of ['startedAt', 'updatedAt', 'bakeUntil'] as const) {
    const raw = (record as unknown as Record<string, unknown>)[field];
    if (field === 'bakeUntil' && (raw === undefined || raw === null)) continue;
    times[field] = parseRecordTime(raw);
    if (times[field] === undefined) return `${field} is not a time as the CLI writes it (YYYY-MM-DDTHH:MM:SS[.sss]Z)`;
  }
  const { startedAt, updatedAt, bakeUntil } = times as { startedAt: number; updatedAt: number; bakeUntil?: number };
  if (startedAt > updatedAt) return 'startedAt is after updatedAt';
  if (updatedAt > now + CLOCK_AHEAD_MS) return `updatedAt is more than ${CLOCK_AHEAD_MS / 1000} s ahead of this clock`;
  if (bakeUntil !== undefined && bakeUntil > updatedAt + BAKE_AHEAD_MS) return `bakeUntil is more than ${BAKE_AHEAD_MS / 1000} s after updatedAt (the longest bake and a promotion)`;
  return undefined;
}

/**
 * The record's verdict, the one the CLI (one release at a time), `history`, and a joining fleet host
 * (fleet/bluegreen-join.sh, in jq) all go by: final; invalid (its times are not the CLI's); stale (not
 * written nor due, bakeUntil, for STALE_AFTER_MS: a killed CLI); or in progress.
 */
export function recordVerdict(record: ReleaseRecord, now: number, staleAfterMs = STALE_AFTER_MS): RecordVerdict {
  if (isFinal(record.state)) return { kind: 'final' };
  const reason = recordTimesProblem(record, now);
  if (reason) return { kind: 'invalid', reason };
  const last = Math.max(parseRecordTime(record.updatedAt)!, parseRecordTime(record.bakeUntil) ?? 0);
  return now - last > staleAfterMs ? { kind: 'stale' } : { kind: 'in-progress' };
}

/** Abandoned: not final and not in progress (stale, or times the CLI never writes). */
export function isStale(record: ReleaseRecord, now: number, staleAfterMs = STALE_AFTER_MS): boolean {
  const verdict = recordVerdict(record, now, staleAfterMs).kind;
  return verdict === 'stale' || verdict === 'invalid';
}

/** In progress = not final and not abandoned: one release at a time, and a joining fleet host waits for it. */
export function inProgress(record: ReleaseRecord | undefined, now: number, staleAfterMs = STALE_AFTER_MS): record is ReleaseRecord {
  return record !== undefined && recordVerdict(record, now, staleAfterMs).kind === 'in-progress';
}

/** A stored value that is a release record, or undefined ("{}" before the first release, junk). */
export function parseRecord(value: string | undefined): ReleaseRecord | undefined {
  if (!value) return undefined;
  try {
    const parsed = JSON.parse(value) as Partial<ReleaseRecord>;
    const ok = typeof parsed.id === 'string' && typeof parsed.state === 'string' && (parsed.pool === 'blue' || parsed.pool === 'green') && Array.isArray(parsed.steps);
    return ok ? (parsed as ReleaseRecord) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A standard SSM parameter holds 4 KB; the record of a release on several hosts can outgrow that,
 * so it is written with Intelligent-Tiering (advanced, 8 KB, only when needed), and the details of
 * the oldest steps are shortened, then middle steps dropped, before it would outgrow 8 KB.
 */
export const RECORD_MAX_CHARS = 8000;

export function serializeRecord(record: ReleaseRecord): string {
  let text = JSON.stringify(record);
  if (text.length <= RECORD_MAX_CHARS) return text;
  const steps = record.steps.map((s) => ({ ...s }));
  for (let i = 0; i < steps.length && text.length > RECORD_MAX_CHARS; i++) {
    if (steps[i].detail) steps[i].detail = steps[i].detail!.slice(0, 40);
    text = JSON.stringify({ ...record, steps });
  }
  while (text.length > RECORD_MAX_CHARS && steps.length > 1) {
    steps.splice(1, 1); // keep the first step (start) and the newest ones
    text = JSON.stringify({ ...record, steps });
  }
  return text;
}
