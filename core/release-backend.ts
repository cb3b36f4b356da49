// What `bluegreen release` needs from where the pools run: the local stack (local/release-backend.ts) or a
// deployed stage (aws-backend.ts, SSM + Run Command). The orchestrator (orchestrator.ts) holds the
// flow and the rules; a backend only reads and writes state and asks the pool agent to act.
import type { SecretStore } from './secrets';
import type { Pool } from './pools';
import type { DesiredPool, PrePromoteResult, ReleaseRecord, ReleaseStep } from './release-record';
import type { RunRate } from './run-rate';

/** A conditional record write lost: someone wrote the record since the writer read it. */
export class RecordChanged extends Error {
  constructor(
    /** The record stored now (undefined: none, or unreadable). */
    readonly current: ReleaseRecord | undefined,
  ) {
    super(`the release record changed meanwhile${current ? ` (now ${current.id}, ${current.state})` : ''}`);
    this.name = 'RecordChanged';
  }
}

/** The same stored version: `revision` where both carry one, else id, state and last write. */
export function sameRecordVersion(a: ReleaseRecord | undefined, b: ReleaseRecord | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.revision !== undefined || b.revision !== undefined) return a.revision === b.revision;
  return a.id === b.id && a.state === b.state && a.updatedAt === b.updatedAt;
}

/** What the pool agent(s) reported for one deploy: every step, ok when all of them were. */
export interface DeployReport {
  ok: boolean;
  /** In order; AWS: the `step=` lines of every host (ReleaseStep.host names the host). */
  steps: ReleaseStep[];
  /** Why it failed (the first failed step's detail, a timeout, an unreachable agent). */
  reason?: string;
}

export interface FlipResult {
  /** The switch was made AND the public endpoint answers from the new pool. */
  ok: boolean;
  /** One line: what was done and how it was confirmed (or why not). */
  detail: string;
}

export interface DeployOptions {
  /** The release id asking for it (the record id, or `<id>:restore`): agents echo it back. */
  requestId: string;
  /** How long to wait for the agent(s) to report (on AWS: per host, and without any host finishing). */
  timeoutMs: number;
  /** How many hosts at a time and how many failures stop it (AWS Run Command); ignored locally. */
  rate?: RunRate;
}

export interface PrePromoteOptions {
  /** The command as the operator gave it (run with `sh -c`). */
  command: string;
  /** The release the pool must be running (the one that passed its gate). */
  release: string;
  /** How long the command may run; then it is killed and the release fails. */
  timeoutMs: number;
  /** `<record id>:pre-promote`: the agent echoes it back, and runs each request once. */
  requestId: string;
  /** The hosts that passed this release's gate (AWS: it runs on the first); empty/undefined: any in service. */
  hosts?: readonly string[];
}

/**
 * One stage's (or the local stack's) release surface. Every method may throw on a transport
 * problem (no stack running, AWS refused); the orchestrator reports that and exits 1.
 */
export interface ReleaseBackend {
  /** For messages: "local" or "stage prod". */
  readonly target: string;
  /** Whether --image means something here (AWS pulls images; the local stack runs app/ only). */
  readonly supportsImages: boolean;
  /**
   * How often the record may be re-read while the release waits (a canary, the bake): on a stage each
   * read is a Parameter Store request from the account's shared budget. Unset: every 250 ms (a file).
   */
  readonly recordPollMs?: number;
  /** The release record (in progress or last finished); undefined when there has never been one. */
  readRecord(): Promise<ReleaseRecord | undefined>;
  /**
   * Writes the record (the server-side guard reads it) and adds it to the history, only if the stored
   * record is still `basis` (the version the writer read or last wrote; undefined: none stored). This
   * compare is the one-release lock and keeps a guard's decision from being overwritten. Returns what
   * was stored (with its new revision); throws RecordChanged when someone wrote first.
   */
  writeRecord(record: ReleaseRecord, basis: ReleaseRecord | undefined): Promise<ReleaseRecord>;
  /** Every release, oldest first: at least the last version of each (history groups them by id). */
  history(): Promise<ReleaseRecord[]>;
  /** Who is running this command, for the record's startedBy/decidedBy (AWS: the IAM principal's ARN). */
  actor?(): Promise<string | undefined>;
  /** Days the stage keeps a release's history (the record's historyDays); undefined = for good. */
  historyDays?(): Promise<number | undefined>;
  /** The active pool (the flag the data plane follows). */
  activePool(): Promise<Pool>;
  /** What the pool should run (its desired state); undefined when never written. */
  desiredPool(pool: Pool): Promise<DesiredPool | undefined>;
  /** What the pool's agent last reported running (applied state); undefined when unknown. */
  currentPool(pool: Pool): Promise<DesiredPool | undefined>;
  /** Writes the pool's desired state; the agent reconciles on deploy() (and on its own timer). */
  setDesiredPool(pool: Pool, desired: DesiredPool): Promise<void>;
  /**
   * Makes the pool's agent apply its desired state now (recreate/restart, health gate, smoke via
   * the pool's own port) and waits for its report. Never touches the active pool: the agent refuses.
   */
  deploy(pool: Pool, options: DeployOptions): Promise<DeployReport>;
  /** The share (0-99) of requests first sent to the idle pool now. */
  canaryPercent(): Promise<number>;
  /**
   * Sets the share (0-99) of requests first sent to the idle pool; with `sticky` (`cookie:NAME` /
   * `header:NAME`, a share above 0) a request carrying that key is split by its value, not on its own.
   */
  setCanary(percent: number, sticky?: string): Promise<void>;
  /**
   * The sticky keys the stage's nginx was rendered with (STICKY_KEYS), when this backend can know
   * them; undefined when it cannot (AWS: a host refuses an undeclared key itself).
   */
  stickyKeys?(): Promise<readonly string[] | undefined>;
  /** The stage's secrets (core/secrets.ts): a release pins them; absent = this backend keeps none. */
  secretStore?(): SecretStore;
  /**
   * Opens the preview of the idle `pool` on every host (a request carrying `token` goes to it alone,
   * no fallback; core/preview.ts), or ends it (`undefined`). Returns the public entry's URL, for the
   * message. Optional: a backend without it releases without previews.
   */
  setPreview?(preview: { pool: Pool; token: string } | undefined): Promise<{ url?: string }>;
  /**
   * The release phase (`--pre-promote`): runs the command once, on one host, in the idle pool's new
   * release (its container and env; locally a process with its env in app/), under the agent's
   * lock, and reports its exit status and last lines. Never on the active pool.
   */
  prePromote(pool: Pool, options: PrePromoteOptions): Promise<PrePromoteResult>;
  /** Makes `pool` the active pool through the existing flip path and confirms it end to end. */
  flip(pool: Pool): Promise<FlipResult>;
}
