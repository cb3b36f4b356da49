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
