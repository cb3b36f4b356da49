// The release record (DESIGN.md "Releases"): one JSON document per stage for the release in progress
// or last finished. Written by the CLI (`bluegreen release`), read and finished by the server-side
// guard (the alert Lambda on AWS, the watcher in local mode). Types and pure helpers only.
import { limit } from './aws-limits';

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

/** Abandoned: not final, and neither written nor due (bakeUntil) for STALE_AFTER_MS. */
export function isStale(record: ReleaseRecord, now: number, staleAfterMs = STALE_AFTER_MS): boolean {
  if (isFinal(record.state)) return false;
  const last = Math.max(Date.parse(record.updatedAt) || 0, record.bakeUntil ? Date.parse(record.bakeUntil) || 0 : 0);
  return now - last > staleAfterMs;
}

/** In progress = not final and not abandoned: one release at a time, and a joining fleet host waits for it. */
export function inProgress(record: ReleaseRecord | undefined, now: number, staleAfterMs = STALE_AFTER_MS): record is ReleaseRecord {
  return record !== undefined && !isFinal(record.state) && !isStale(record, now, staleAfterMs);
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
 * The record's parameter is written with Intelligent-Tiering: standard (4 KB) while it fits, advanced
 * (8 KB) when a multi-host record needs it. SSM counts bytes, so the record is measured in bytes of
 * UTF-8: an env value or a step detail in another script takes two to four bytes a character.
 */
export const RECORD_MAX_BYTES = limit('advancedParameterValue');
/**
 * env and replacedEnv each take at most this much of the record: a release's env (up to the 4 KB of
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

/**
 * An env as the record keeps it: as it is when its JSON fits `maxBytes`; else every value cut to its
 * first bytes and, if the keys still do not fit, the first keys (sorted) and how many were left out.
 */
export function boundEnv(env: Record<string, string>, maxBytes = RECORD_ENV_MAX_BYTES): Record<string, string> {
  if (utf8(JSON.stringify(env)) <= maxBytes) return env;
  const keys = Object.keys(env).sort();
  const out: Record<string, string> = {};
  for (const [i, key] of keys.entries()) {
    const withKey = { ...out, [key]: cutToBytes(env[key], ENV_VALUE_KEPT_BYTES) };
    const rest = keys.length - i - 1;
    // Room for the left-out marker too, in case a later key does not fit.
    if (utf8(JSON.stringify(rest ? { ...withKey, [ENV_LEFT_OUT]: `${rest} more keys` } : withKey)) > maxBytes) {
      out[ENV_LEFT_OUT] = `${keys.length - i} more keys`;
      return out;
    }
    out[key] = withKey[key];
  }
  return out;
}

/**
 * The record as stored: env, replacedEnv and the reason bounded; if it is still too large, the oldest
 * steps' details are shortened, then middle steps dropped (the first, `start`, and the newest stay).
 */
export function serializeRecord(record: ReleaseRecord): string {
  // A record the guard re-writes is what SSM held: an older or hand-written one may lack env.
  const bounded: ReleaseRecord = {
    ...record,
    ...(record.env ? { env: boundEnv(record.env) } : {}),
    ...(record.replacedEnv ? { replacedEnv: boundEnv(record.replacedEnv) } : {}),
    ...(record.reason !== undefined ? { reason: cutToBytes(record.reason, RECORD_REASON_MAX_BYTES) } : {}),
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
  if (utf8(text) > RECORD_MAX_BYTES) throw new Error(`release record ${record.id} is ${utf8(text)} bytes even with one step; its parameter holds ${RECORD_MAX_BYTES}`);
  return text;
}
