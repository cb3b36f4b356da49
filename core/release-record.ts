// The release record (DECISIONS "Releases"): one JSON document per stage for the release in progress
// or last finished. Written by the CLI (`bluegreen release`), read and finished by the server-side
// guard (the alert Lambda on AWS, the watcher in local mode). Types and pure helpers only.
import { limit } from './aws-limits';
import { PRE_PROMOTE_OUTPUT_BYTES, PRE_PROMOTE_RECORD_COMMAND_BYTES } from './pre-promote';
import type { PoolOptions } from './pool-options';
import type { Pool } from './pools';

/**
 * deploying → verifying → (deployed, with --no-promote) | baking → promoted | rolled-back | held;
 * failed from any step before promotion. Every state but deploying, verifying and baking is final.
 * held: the bake (extended up to its maximum) never saw the requests the gate needs to judge: not
 * promoted, not rolled back; the new pool keeps serving until a person promotes it
 * (`bluegreen release promote <id>`, → promoted) or flips back.
 * frozen: an `--irreversible` release crossed the gate; the guard never flips it back: it stays where
 * it was (active, or its canary share as it was), paged, for a person to fix forward.
 */
export type ReleaseState =
  'deploying' | 'verifying' | 'deployed' | 'baking' | 'promoted' | 'rolled-back' | 'held' | 'frozen' | 'failed';
export const FINAL_STATES: readonly ReleaseState[] = [
  'deployed',
  'promoted',
  'rolled-back',
  'held',
  'frozen',
  'failed',
];

/**
 * Release states in which the record's pool passed its gate on every host (the host boots a new
 * fleet host's pool from them). A Record over every state, so a new state must be placed here.
 */
const GATE_PASSED: Readonly<Record<ReleaseState, boolean>> = {
  deploying: false,
  verifying: true,
  deployed: true,
  baking: true,
  promoted: true,
  'rolled-back': true,
  held: true,
  frozen: true,
  failed: false,
};
export const GATE_PASSED_STATES = (Object.keys(GATE_PASSED) as ReleaseState[]).filter((s) => GATE_PASSED[s]);

export type ReleaseStrategy = 'all-at-once' | 'canary';

/** What a pool should run: the unit the host agent (or the local agent) reconciles. */
export interface DesiredPool {
  /** Registry image; undefined = the project's own app/ image. */
  image?: string;
  release: string;
  env: Record<string, string>;
  /** Pinned secrets (names and versions, never values), health and drain times; absent = `{}`. */
  options?: PoolOptions;
}

/** p50/p99 of the requests a pool answered itself (ms), over `requests` of them. */
export interface LatencyFigures {
  requests: number;
  p50Ms: number;
  p99Ms: number;
}

export interface ReleaseFigures {
  /** Requests first sent to the release's pool since the release started (the latest 10,000 at most). */
  requests: number;
  /**
   * Of those, failed by that pool: tried and failed (a 5xx attempt or status, an error or timeout
   * retried on the other pool), or sent straight to the other pool after the release itself failed
   * one on that host (nginx then holds the pool failed because of it).
   */
  failed: number;
  /** failed / judged. */
  rate: number;
  /** Of those, answered to the client with a 5xx (what users saw; normally 0 thanks to failover). */
  usersSaw5xx: number;
  /**
   * Requests the gate judged: `requests` less `notTried`. The gate decides only once this reaches its
   * minimum (absent in records written before it existed: `requests` was the count then).
   */
  judged?: number;
  /**
   * Sent straight to the other pool before the release had failed anything on that host: nginx still
   * held the pool failed from before (its passive state), so the release never got them; not judged.
   */
  notTried?: number;
  /** The minimum of judged requests this gate needed. */
  minRequests?: number;
  /**
   * On a fleet (requests from more than one host): how many hosts sent the release requests, and the
   * hosts its failures came from, most first (at most 3 named).
   */
  hosts?: number;
  hostsWithFailures?: number;
  failedHosts?: Array<[string, number]>;
  /** The release's own response times. */
  latency?: LatencyFigures;
  /** The previous release's, on the previous pool, over the minutes before the flip. */
  baseline?: LatencyFigures & { release: string };
}

/**
 * The gate's settings a release asked for (`--min-requests`, `--max-p99`, `--max-p99-ratio`), carried
 * in the record so the server-side guard judges by them; each absent one is the stage's default.
 */
export interface RecordGate {
  minRequests?: number;
  maxP99Ms?: number;
  maxP99Ratio?: number;
}

/**
 * What `--pre-promote` ran and how it ended (core/pre-promote.ts): once per release, on one host, in
 * the new release's container (locally: a process with its env), after the gate, before any traffic.
 */
export interface PrePromoteResult {
  /** The command as given (cut to PRE_PROMOTE_RECORD_COMMAND_BYTES in the record). */
  command: string;
  /** Where it ran: an instance id, or "local". */
  host?: string;
  ok: boolean;
  /** Its exit status; absent when it never ran or was killed at its timeout. */
  exitCode?: number;
  timedOut?: boolean;
  /** How long it ran (s). */
  seconds?: number;
  /** Its last lines of output, stdout and stderr together (core/pre-promote.ts bounds them). */
  output: string;
  /** Why it failed, when not its exit status (not run, timeout, no report). */
  reason?: string;
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
  /** The release's pool options (secrets as names and pinned versions only); absent = none. */
  options?: PoolOptions;
  previousPool: Pool;
  previousRelease: string;
  /**
   * What the previous (active) pool ran when the release started: a fleet host launched later boots
   * its active pool with it once every host's deploy passed (each deploy run checks that the active
   * pool runs its desired state). Absent in records written before it existed.
   */
  previousImage?: string;
  previousEnv?: Record<string, string>;
  previousOptions?: PoolOptions;
  /** What the idle pool ran before the release: restored when the gate fails. */
  replacedRelease: string;
  replacedImage?: string;
  replacedEnv?: Record<string, string>;
  replacedOptions?: PoolOptions;
  strategy: ReleaseStrategy;
  canaryPercent: number;
  /** A sticky canary's key (`cookie:NAME` / `header:name`): requests carrying it are split by its value. */
  sticky?: string;
  /**
   * A preview was opened for this release once its gate passed (core/preview.ts): requests carrying
   * its token went to its pool only. Never the token itself.
   */
  preview?: boolean;
  bakeSeconds: number;
  /**
   * `--irreversible`: a one-way release (a schema change the previous release cannot read): the guard
   * freezes it where it would roll it back or abort its canary. Absent = false.
   */
  irreversible?: boolean;
  /** When its image was built and pushed (`--build`): where its lead time starts (core/release-stats.ts). */
  builtAt?: string;
  /** The image's digest as pushed (`--build`), or as named (`--image name@sha256:…`). */
  imageDigest?: string;
  /** `--pre-promote`'s run, once it ran. */
  prePromote?: PrePromoteResult;
  state: ReleaseState;
  reason?: string;
  figures?: ReleaseFigures;
  gate?: RecordGate;
  /**
   * Who started it: the caller's IAM principal (AWS) or the user (local). Absent in records written
   * before it existed.
   */
  startedBy?: string;
  /**
   * Days the ledger keeps this release's items after its start (their TTL; the stage's
   * releaseHistoryDays when it started); absent = for good.
   */
  historyDays?: number;
  /** The CI run that started it (GitHub Actions: the run's URL; core/release-actor.ts). */
  ciRunUrl?: string;
  /** Who made the final decision: the guard (and where it ran), a person by CLI or Slack. */
  decidedBy?: string;
  /**
   * The ledger's write count when this version was stored (core/release-ledger.ts): the next write is
   * conditional on it. Set by the store, never by a writer.
   */
  revision?: number;
  startedAt: string;
  updatedAt: string;
  bakeUntil?: string;
  /**
   * How far the guard may extend a bake that has not seen the requests it needs (`--max-bake`): past
   * it, the release is held. Absent (older records): no extension, the bake ends at bakeUntil.
   */
  maxBakeUntil?: string;
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
 * core/host-files.ts bakes it into fleet/record-verdict.jq.
 */
export const RECORD_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?Z$/;
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
  const times: Record<'startedAt' | 'updatedAt' | 'bakeUntil' | 'maxBakeUntil', number | undefined> = {
    startedAt: undefined,
    updatedAt: undefined,
    bakeUntil: undefined,
    maxBakeUntil: undefined,
  };
  for (const field of ['startedAt', 'updatedAt', 'bakeUntil', 'maxBakeUntil'] as const) {
    const raw = (record as unknown as Record<string, unknown>)[field];
    if ((field === 'bakeUntil' || field === 'maxBakeUntil') && (raw === undefined || raw === null)) continue;
    times[field] = parseRecordTime(raw);
    if (times[field] === undefined) return `${field} is not a time as the CLI writes it (YYYY-MM-DDTHH:MM:SS[.sss]Z)`;
  }
  const { startedAt, updatedAt, bakeUntil, maxBakeUntil } = times as {
    startedAt: number;
    updatedAt: number;
    bakeUntil?: number;
    maxBakeUntil?: number;
  };
  if (startedAt > updatedAt) return 'startedAt is after updatedAt';
  if (updatedAt > now + CLOCK_AHEAD_MS) return `updatedAt is more than ${CLOCK_AHEAD_MS / 1000} s ahead of this clock`;
  for (const [field, t] of [
    ['bakeUntil', bakeUntil],
    ['maxBakeUntil', maxBakeUntil],
  ] as const)
    if (t !== undefined && t > updatedAt + BAKE_AHEAD_MS)
      return `${field} is more than ${BAKE_AHEAD_MS / 1000} s after updatedAt (the longest bake and a promotion)`;
  return undefined;
}

/**
 * The record's verdict, the one the CLI (one release at a time), `history`, and a joining fleet host
 * (fleet/bluegreen-join.sh, in jq) all go by: final; invalid (its times are not the CLI's); stale (not
 * written nor due, bakeUntil or maxBakeUntil, for STALE_AFTER_MS: a killed CLI); or in progress.
 */
export function recordVerdict(record: ReleaseRecord, now: number, staleAfterMs = STALE_AFTER_MS): RecordVerdict {
  if (isFinal(record.state)) return { kind: 'final' };
  const reason = recordTimesProblem(record, now);
  if (reason) return { kind: 'invalid', reason };
  // An extended bake is due until its maximum: the guard may finish it any time before then.
  const last = Math.max(
    parseRecordTime(record.updatedAt)!,
    parseRecordTime(record.bakeUntil) ?? 0,
    parseRecordTime(record.maxBakeUntil) ?? 0,
  );
  return now - last > staleAfterMs ? { kind: 'stale' } : { kind: 'in-progress' };
}

/** Abandoned: not final and not in progress (stale, or times the CLI never writes). */
export function isStale(record: ReleaseRecord, now: number, staleAfterMs = STALE_AFTER_MS): boolean {
  const verdict = recordVerdict(record, now, staleAfterMs).kind;
  return verdict === 'stale' || verdict === 'invalid';
}

/** In progress = not final and not abandoned: one release at a time, and a joining fleet host waits for it. */
export function inProgress(
  record: ReleaseRecord | undefined,
  now: number,
  staleAfterMs = STALE_AFTER_MS,
): record is ReleaseRecord {
  return record !== undefined && recordVerdict(record, now, staleAfterMs).kind === 'in-progress';
}

/** A stored value that is a release record, or undefined ("{}" before the first release, junk). */
export function parseRecord(value: string | undefined): ReleaseRecord | undefined {
  if (!value) return undefined;
  try {
    const parsed = JSON.parse(value) as Partial<ReleaseRecord>;
    const ok =
      typeof parsed.id === 'string' &&
      typeof parsed.state === 'string' &&
      (parsed.pool === 'blue' || parsed.pool === 'green') &&
      Array.isArray(parsed.steps);
    return ok ? (parsed as ReleaseRecord) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The record's parameter is written with Intelligent-Tiering: standard (4 KB) while it fits, advanced
 * (8 KB) when a multi-host record needs it. SSM counts bytes, so the record is measured in bytes of
 * UTF-8: an env value or a step detail in another script takes two to four bytes a character.
 */
export const RECORD_MAX_BYTES = limit('advancedParameterValue');
/**
 * env, replacedEnv and previousEnv each take at most this much of the record: a release's env (up to the 4 KB of
 * its own parameter) must not leave the steps, which say what each host did, without room. The full
 * env stays in /bluegreen/<stage>/pools/<pool>/env.
 */
export const RECORD_ENV_MAX_BYTES = 1024;
/** The reason names every failed host (50 on a fleet failing everywhere); past this it is cut (each host's step still names it). */
export const RECORD_REASON_MAX_BYTES = 2048;
/** What is kept of an env value, and of an older step's detail, once the record must shrink. */
const ENV_VALUE_KEPT_BYTES = 48;
const STEP_DETAIL_KEPT_BYTES = 64;
/** The key that says how many env keys a bounded env left out (not an environment variable name). */
export const ENV_LEFT_OUT = '…';

const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

/** `text` cut to at most `maxBytes` of UTF-8, on a character boundary, saying how long it was. */
export function cutToBytes(text: string, maxBytes: number): string {
  const size = utf8(text);
  if (size <= maxBytes) return text;
  const suffix = `…[${size} bytes]`;
  let kept = '';
  let used = utf8(suffix);
  for (const c of text) {
    const n = utf8(c);
    if (used + n > maxBytes) break;
    kept += c;
    used += n;
  }
  return kept + suffix;
}

/** The marker's value when every key was kept but values were cut. */
export const ENV_VALUES_CUT = 'values cut';

/**
 * An env as the record keeps it: as it is when its JSON fits `maxBytes`; else every value cut to its
 * first bytes and, if the keys still do not fit, the first keys (sorted) and how many were left out.
 * A cut env always carries the ENV_LEFT_OUT key: it is a summary for people, and a host booting from
 * the record (userdata/bluegreen-apply.sh) must see that it cannot run it.
 */
export function boundEnv(env: Record<string, string>, maxBytes = RECORD_ENV_MAX_BYTES): Record<string, string> {
  if (utf8(JSON.stringify(env)) <= maxBytes) return env;
  const keys = Object.keys(env).sort();
  const out: Record<string, string> = {};
  for (const [i, key] of keys.entries()) {
    const withKey = { ...out, [key]: cutToBytes(env[key], ENV_VALUE_KEPT_BYTES) };
    const rest = keys.length - i - 1;
    // Room for the marker too, whichever it ends up saying.
    if (utf8(JSON.stringify({ ...withKey, [ENV_LEFT_OUT]: `${rest || ''} more keys` })) > maxBytes) {
      out[ENV_LEFT_OUT] = `${keys.length - i} more keys`;
      return out;
    }
    out[key] = withKey[key];
  }
  out[ENV_LEFT_OUT] = ENV_VALUES_CUT;
  return out;
}

/**
 * The record as stored: env, replacedEnv, previousEnv and the reason bounded; if it is still too large, the oldest
 * steps' details are shortened, then middle steps dropped (the first, `start`, and the newest stay).
 */
export function serializeRecord(record: ReleaseRecord): string {
  // A record the guard re-writes is what SSM held: an older or hand-written one may lack env.
  const bounded: ReleaseRecord = {
    ...record,
    ...(record.env ? { env: boundEnv(record.env) } : {}),
    ...(record.replacedEnv ? { replacedEnv: boundEnv(record.replacedEnv) } : {}),
    ...(record.previousEnv ? { previousEnv: boundEnv(record.previousEnv) } : {}),
    ...(record.reason !== undefined ? { reason: cutToBytes(record.reason, RECORD_REASON_MAX_BYTES) } : {}),
    ...(record.prePromote
      ? {
          prePromote: {
            ...record.prePromote,
            command: cutToBytes(record.prePromote.command, PRE_PROMOTE_RECORD_COMMAND_BYTES),
            output: cutToBytes(record.prePromote.output, PRE_PROMOTE_OUTPUT_BYTES + 16),
          },
        }
      : {}),
  };
  const whole = JSON.stringify(bounded);
  // The size is kept by difference (a step's JSON, one comma) rather than by serializing the whole
  // record again per step: a fleet's record has hundreds of them.
  let size = utf8(whole);
  if (size <= RECORD_MAX_BYTES) return whole;
  const json = (value: unknown) => utf8(JSON.stringify(value));
  const steps = bounded.steps.map((s) => ({ ...s }));
  for (let i = 0; i < steps.length && size > RECORD_MAX_BYTES; i++) {
    const detail = steps[i].detail;
    if (detail === undefined) continue;
    steps[i].detail = cutToBytes(detail, STEP_DETAIL_KEPT_BYTES);
    size -= json(detail) - json(steps[i].detail);
  }
  while (size > RECORD_MAX_BYTES && steps.length > 1) {
    const [gone] = steps.splice(1, 1); // keep the first step (start) and the newest ones
    size -= json(gone) + 1;
  }
  const text = JSON.stringify({ ...bounded, steps });
  // Only an image reference of kilobytes could get here: SSM would refuse the write anyway.
  if (utf8(text) > RECORD_MAX_BYTES)
    throw new Error(
      `release record ${record.id} is ${utf8(text)} bytes even with one step; its parameter holds ${RECORD_MAX_BYTES}`,
    );
  return text;
}
