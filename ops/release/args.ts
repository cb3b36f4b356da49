// `bluegreen release` / `bluegreen history`: the command lines, parsed and validated before anything
// is read or written (a bad value is exit 2, one line, nothing changed).
import { parseArgs } from 'node:util';
import { POOL_STATE_REGEXPS } from '../../core/patterns';
import { CANARY_SHARE_PATTERN, parseStickyKey, stickyKeyText } from '../../core/canary';
import type { PoolOptions } from '../../core/pool-options';
import { secretNameProblem } from '../../core/secrets';
import { ENV_KEY_PATTERN, envValueProblem, RESERVED_ENV } from '../../core/pool-env';
import { ConfigError } from '../../core/config-error';
import { parsePool, Pool } from '../../core/pools';
import { MAX_DURATION_SECONDS, type RecordGate, type ReleaseStrategy } from '../../core/release-record';
import { MAX_MIN_REQUESTS } from '../../core/rule-config';
import { parseDuration, parseMilliseconds } from '../../core/duration';
import {
  DEFAULT_PRE_PROMOTE_TIMEOUT_SECONDS,
  MAX_PRE_PROMOTE_TIMEOUT_SECONDS,
  PRE_PROMOTE_COMMAND_MAX_BYTES,
  PRE_PROMOTE_OUTPUT_LINES,
  prePromoteCommandProblem,
} from '../../core/pre-promote';
import { DEPLOY_RATE, MAX_CONCURRENCY_PATTERN, MAX_ERRORS_PATTERN, RunRate } from '../../core/run-rate';
import { HEALTH_FLAGS, HEALTH_USAGE, parseHealthFlags } from './health-flags';

// Defined in core (local mode's `load` takes the same durations).
export { parseDuration, parseMilliseconds };
// The env rule is the host's (userdata/pool-env.json): what passes here, the host writes as it is.
export { ENV_KEY_PATTERN, RESERVED_ENV };

export const DEFAULT_BAKE_SECONDS = 120;
export const DEFAULT_CANARY_PERCENT = 10;
export const DEFAULT_CANARY_SECONDS = 60;
// With the record: it bounds a record's bakeUntil (core/release-record.ts BAKE_AHEAD_MS).
export { MAX_DURATION_SECONDS };
export const DEFAULT_DEPLOY_TIMEOUT_SECONDS = 300;
/**
 * A bake that has not seen the gate's minimum is extended up to this many times --bake by default
 * (30 s → 2 min, 2 min → 8 min): long enough for a quiet minute to pass, short enough that a
 * release nobody sends traffic to is held (and someone paged) the same hour.
 */
export const DEFAULT_MAX_BAKE_FACTOR = 4;
const CANARY_SHARE = new RegExp(CANARY_SHARE_PATTERN);

export interface ReleaseOptions {
  release: string;
  /** undefined = the idle pool. */
  pool?: Pool;
  image?: string;
  env: Record<string, string>;
  strategy: ReleaseStrategy;
  /** 0 unless strategy is canary. */
  canaryPercent: number;
  /** How long the canary share is held before promotion. */
  canarySeconds: number;
  /**
   * A sticky canary's key, `cookie:NAME` or `header:name` (a header's name lowercased): requests
   * carrying it are split by its value, so one client stays on one side. Only with strategy canary.
   */
  sticky?: string;
  bakeSeconds: number;
  promote: boolean;
  /** Seconds to wait for the pool agent(s) to report a deploy. */
  deployTimeoutSeconds: number;
  /** Run Command's rate control for the deploy on the stage's hosts (AWS; ignored locally). @default DEPLOY_RATE */
  deployRate?: RunRate;
  /** How far the guard may extend a bake without the gate's minimum; >= bakeSeconds. @default DEFAULT_MAX_BAKE_FACTOR × bakeSeconds */
  maxBakeSeconds?: number;
  /** The gate's settings this release asks for (carried in the record); {} = the stage's. */
  gate?: RecordGate;
  /** The pool's options this release sets (core/pool-options.ts); absent = none (`{}`). */
  poolOptions?: PoolOptions;
  /** `--secret NAME`: the stage's secrets this release pins; undefined = all of them. */
  secrets?: string[];
  /** `--pre-promote CMD`: run once in the new release's container, after the gate, before any traffic. */
  prePromote?: { command: string; timeoutSeconds: number };
  /** `--irreversible`: the guard never flips this release back; it freezes it (core/release-guard.ts). */
  irreversible?: boolean;
  /** When `--build` pushed the image (ISO 8601): recorded as the start of the lead time. */
  builtAt?: string;
  /** The digest `--build` pushed (sha256:…): the ledger keeps exactly what ran, whatever the tag says later. */
  imageDigest?: string;
  /** Who runs it (the backend's actor: an IAM principal, a local user); recorded in the ledger. */
  startedBy?: string;
  /** The CI run it runs in (core/release-actor.ts); recorded in the ledger. */
  ciRunUrl?: string;
}

export const RELEASE_USAGE = `usage: bluegreen release --release ID [--pool blue|green] [--image IMAGE | --build DIR] [--env KEY=VALUE]...
                         [--strategy all-at-once|canary] [--canary-percent 10] [--canary-duration 60s]
                         [--sticky cookie:NAME|header:NAME]
                         [--bake 2m] [--max-bake 8m] [--min-requests N] [--max-p99 500ms] [--max-p99-ratio 3]
                         [--health-start-period 10s] [--health-timeout 3s] [--drain 10s]
                         [--no-promote] [--max-concurrency 50%] [--max-errors 0] [--stage S]
                         [--pre-promote CMD] [--pre-promote-timeout 10m] [--irreversible]
       bluegreen release promote ID [--stage S]
  Ships release ID to the idle pool while the active pool keeps serving, then:
    deploy    the pool agent restarts (locally) or recreates (AWS) the idle pool only, waits for its
              /healthz and smoke-tests /version on the pool's own port (it must answer ID)
    canary    (--strategy canary) that share of requests goes to the new pool first, failures still
              retried on the old one, for --canary-duration; the server-side guard aborts it on errors
    promote   the flip: the new pool becomes active (no reload, no dropped request)
    bake      for --bake, the server-side guard (the alert Lambda / the local watcher) watches the
              new pool's failure rate and latency and flips back on its own if it crosses the gate;
              closing this terminal does not disarm it. No verdict without evidence: a bake that has
              not seen --min-requests requests first sent to the new pool goes on up to --max-bake,
              then the release is HELD (exit 3, paged): not promoted, not rolled back
  --release ID          what the pool reports in X-Release-Id ([A-Za-z0-9._-], 1-64 characters)
  --pool P              the pool to release to; must be the idle one (default: the idle one)
  --image IMAGE         registry image (AWS only; default: the project's app image)
  --build DIR           build DIR's Dockerfile for the stage's hosts (amd64 or arm64, from the instance
                        type), push it to the stage's repository as <repository>:ID, then release it
                        (AWS only; needs Docker; a failed build or push releases nothing: exit 1)
  --env KEY=VALUE       environment for the new release (repeatable); the idle pool's previous env is not kept
  --secret NAME         a secret of the stage the release gets (repeatable; default: all of them), pinned to
                        its current version (bluegreen secret set NAME; the record keeps names and versions only)
  --strategy S          all-at-once (default) or canary
  --canary-percent N    1-99, share of requests for the canary (default ${DEFAULT_CANARY_PERCENT}; implies --strategy canary)
  --canary-duration D   how long the canary runs before promotion (default ${DEFAULT_CANARY_SECONDS}s)
  --sticky KEY          cookie:NAME or header:NAME: a request carrying that key goes to the side its
                        value picks, for the whole canary (one client, one side); requests without
                        it are split per request. The stage must declare the key (STICKY_KEYS /
                        stickyKeys context); needs --strategy canary
  --bake D              watch after promotion (default ${DEFAULT_BAKE_SECONDS / 60}m); D like 30s, 2m, 1h
  --max-bake D          how long a bake without enough requests may go on before it is held (default
                        ${DEFAULT_MAX_BAKE_FACTOR} × --bake); at least --bake
  --min-requests N      requests first sent to the new pool before the gate judges anything (default:
                        the stage's, the alert's minimum, 50)
  --max-p99 T           the new release's p99 above T (like 500ms, 2s) rolls it back (default: no bound)
  --max-p99-ratio X     its p99 above X times the previous release's rolls it back (default 3; judged
                        only when also 100 ms above it)
${HEALTH_USAGE}
  --no-promote          stop after the gate: the new release waits idle (record "deployed")
  --pre-promote CMD     the release phase: CMD runs once (sh -c), on one host, inside the new release's
                        container with its env (locally: in app/ with the new pool's env), after the
                        gate and before any traffic; its exit status and last ${PRE_PROMOTE_OUTPUT_LINES} lines go into the
                        record. Non-zero or a timeout fails the release: nothing promoted, the idle
                        pool put back. At most ${PRE_PROMOTE_COMMAND_MAX_BYTES} bytes
  --pre-promote-timeout D  how long CMD may run (default ${DEFAULT_PRE_PROMOTE_TIMEOUT_SECONDS / 60}m, at most ${MAX_PRE_PROMOTE_TIMEOUT_SECONDS / 60}m)
  --irreversible        a one-way release (a schema change the previous release cannot read): where
                        the guard would roll it back (or abort its canary) it FREEZES it instead: not
                        flipped back, paged (exit 4); someone fixes forward (README "Expand/contract")
  --deploy-timeout D    how long to wait for the pool agent(s) (default 5m: on a host a failed gate can
                        take two container recreations of up to 2 min each, plus a wait for the lock;
                        longer by default when the health flags allow a longer gate, and at least
                        that with them); on a fleet: per host, and the longest wait with no host finishing
  --max-concurrency N   hosts deployed at a time: a count or a percentage (default ${DEPLOY_RATE.maxConcurrency}: half the
                        fleet, at least one host; the idle pool is every host's backup)
  --max-errors N        failed hosts after which no further host starts the deploy (default ${DEPLOY_RATE.maxErrors}: the
                        first failure stops it). Any failed host fails the release; nothing is promoted
  One release at a time: naming the active pool or starting while a release is in progress is bad input.
  Exit 0 promoted (or deployed with --no-promote), 1 failed gate, failed pre-promote or rolled back
  (reason and runbook section printed), 2 bad input (nothing changed), 4 frozen (--irreversible), 3 held: no verdict without evidence (the two ways
  out printed: flip back, or \`bluegreen release promote ID\` after a look).
  release promote ID: promotes a held release whose pool is still active (exit 0), after a person looked.
  Without --stage (and $BLUEGREEN_STAGE): the local stack started by npm start.`;

export const HISTORY_USAGE = `usage: bluegreen history [--stage S] [--limit N] [--json]
       bluegreen history --stats [--since 90d] [--stage S]
  The releases, newest first: id, pool, release, strategy, outcome, duration, reason; on a stage
  also each host's gate (HOSTS: "3/3 ok", "2/3 ok; failed i-0abc"; the record has the details).
  On a stage they come from its release ledger (every release, no cap); without --stage (and
  $BLUEGREEN_STAGE) from the local stack's (.bluegreen/local/releases.jsonl).
  --json: the records themselves (who started and decided, why, the steps and their times; the
  environment's keys, never its values), newest first, as one JSON array.
  --stats: DORA's four figures over the releases started since then (default 90d): deployment
  frequency (promoted per day and week), change failure rate (of the releases that reached users,
  those rolled back, frozen or whose canary was aborted), time to restore (from reaching users to
  users off it: the rollback, the canary reset, a frozen release's fix forward), lead time (image
  pushed by --build to promoted).`;

/** `--secret NAME`: secret names (their values stay in the stage's store). */
function parseSecretNames(names: string[]): string[] {
  for (const name of names) {
    const problem = secretNameProblem(name);
    if (problem) throw new ConfigError(`--secret ${name}: ${problem}`);
  }
  return names;
}

function parseEnvPairs(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (eq < 0 || !ENV_KEY_PATTERN.test(key)) {
      throw new ConfigError(
        `--env must be KEY=VALUE with KEY like FAULT_RATE (letters, digits, _; not starting with a digit), got "${pair}"`,
      );
    }
    if (RESERVED_ENV.has(key))
      throw new ConfigError(
        `--env ${key}: set by the pool agent itself (${[...RESERVED_ENV].join(', ')}); use --release for the release id`,
      );
    const value = pair.slice(eq + 1);
    const problem = envValueProblem(value);
    if (problem) throw new ConfigError(`--env ${key}: ${problem}`);
    env[key] = value;
  }
  return env;
}

/** Flags every release/history command line may carry for AWS (the AWS backend reads them). */
const AWS_FLAGS = { stage: { type: 'string' }, region: { type: 'string' }, profile: { type: 'string' } } as const;

export interface ParsedRelease {
  options: ReleaseOptions;
  /** --build DIR: build and push DIR's image for the stage first, then release it (ops/build). */
  build?: string;
  aws: { stage?: string; region?: string; profile?: string };
}

export function parseReleaseArgs(args: string[]): ParsedRelease {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        ...AWS_FLAGS,
        release: { type: 'string' },
        pool: { type: 'string' },
        image: { type: 'string' },
        build: { type: 'string' },
        env: { type: 'string', multiple: true },
        secret: { type: 'string', multiple: true },
        strategy: { type: 'string' },
        'canary-percent': { type: 'string' },
        'canary-duration': { type: 'string' },
        sticky: { type: 'string' },
        bake: { type: 'string' },
        'no-promote': { type: 'boolean' },
        'deploy-timeout': { type: 'string' },
        'max-concurrency': { type: 'string' },
        'max-errors': { type: 'string' },
        'max-bake': { type: 'string' },
        'min-requests': { type: 'string' },
        'max-p99': { type: 'string' },
        'max-p99-ratio': { type: 'string' },
        ...HEALTH_FLAGS,
        'pre-promote': { type: 'string' },
        'pre-promote-timeout': { type: 'string' },
        irreversible: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (see bluegreen release --help)`);
  }
  const v = parsed.values;
  if (v.release === undefined) throw new ConfigError('--release ID is required (see bluegreen release --help)');
  if (!POOL_STATE_REGEXPS.release.test(v.release))
    throw new ConfigError(`--release must be 1-64 characters of A-Z a-z 0-9 . _ -, got "${v.release}"`);
  const pool = v.pool === undefined ? undefined : parsePool(v.pool, '--pool');
  // The same pattern the image parameter enforces in SSM (and the host checks again).
  if (v.image !== undefined && !POOL_STATE_REGEXPS.image.test(v.image)) {
    throw new ConfigError(
      `--image must be an image reference like 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v2, got "${v.image}"`,
    );
  }
  if (v.build !== undefined && v.image !== undefined)
    throw new ConfigError('--build and --image exclude each other: --build DIR pushes the image it releases');
  if (v.build === '')
    throw new ConfigError('--build needs a directory with a Dockerfile, like --build examples/python-app');
  let strategy: ReleaseStrategy;
  if (v.strategy === undefined)
    strategy = v['canary-percent'] !== undefined || v['canary-duration'] !== undefined ? 'canary' : 'all-at-once';
  else if (v.strategy === 'all-at-once' || v.strategy === 'canary') strategy = v.strategy;
  else throw new ConfigError(`--strategy must be all-at-once or canary, got "${v.strategy}"`);
  if (strategy === 'all-at-once' && (v['canary-percent'] !== undefined || v['canary-duration'] !== undefined)) {
    throw new ConfigError('--canary-percent/--canary-duration need --strategy canary');
  }
  if (v.sticky !== undefined && strategy !== 'canary')
    throw new ConfigError('--sticky needs --strategy canary (a sticky key picks the side of a canary)');
  const sticky = v.sticky === undefined ? undefined : stickyKeyText(parseStickyKey(v.sticky, '--sticky'));
  let canaryPercent = 0;
  if (strategy === 'canary') {
    const raw = v['canary-percent'] ?? String(DEFAULT_CANARY_PERCENT);
    canaryPercent = Number(raw);
    // A share as the parameter holds it (0-99), and a canary needs at least 1.
    if (!CANARY_SHARE.test(raw) || canaryPercent < 1)
      throw new ConfigError(`--canary-percent must be a whole number 1-99, got "${raw}"`);
  }
  const canarySeconds =
    v['canary-duration'] === undefined
      ? DEFAULT_CANARY_SECONDS
      : parseDuration(v['canary-duration'], '--canary-duration');
  const bakeSeconds = v.bake === undefined ? DEFAULT_BAKE_SECONDS : parseDuration(v.bake, '--bake');
  const maxBakeSeconds =
    v['max-bake'] === undefined
      ? Math.min(bakeSeconds * DEFAULT_MAX_BAKE_FACTOR, MAX_DURATION_SECONDS)
      : parseDuration(v['max-bake'], '--max-bake');
  if (maxBakeSeconds < bakeSeconds)
    throw new ConfigError(`--max-bake (${v['max-bake']}) must be at least --bake (${bakeSeconds} s)`);
  const { health, deployTimeoutSeconds } = parseHealthFlags(v, DEFAULT_DEPLOY_TIMEOUT_SECONDS);
  const maxConcurrency = v['max-concurrency'] ?? DEPLOY_RATE.maxConcurrency;
  if (!MAX_CONCURRENCY_PATTERN.test(maxConcurrency))
    throw new ConfigError(
      `--max-concurrency must be a number of hosts (1, 2, ...) or a percentage (1%-100%), got "${maxConcurrency}"`,
    );
  const maxErrors = v['max-errors'] ?? DEPLOY_RATE.maxErrors;
  if (!MAX_ERRORS_PATTERN.test(maxErrors))
    throw new ConfigError(
      `--max-errors must be a number of hosts (0, 1, ...) or a percentage (0%-100%), got "${maxErrors}"`,
    );
  return {
    options: {
      release: v.release,
      pool,
      image: v.image,
      env: parseEnvPairs(v.env ?? []),
      ...(v.secret ? { secrets: parseSecretNames(v.secret) } : {}),
      strategy,
      canaryPercent,
      canarySeconds: strategy === 'canary' ? canarySeconds : 0,
      ...(sticky ? { sticky } : {}),
      bakeSeconds,
      promote: !v['no-promote'],
      deployTimeoutSeconds,
      deployRate: { maxConcurrency, maxErrors },
      maxBakeSeconds,
      gate: parseGate(v),
      // The health flags given go to the pool's options (unset ones: the host's defaults).
      ...(Object.keys(health).length ? { poolOptions: health } : {}),
      ...parsePrePromote(v),
      ...(v.irreversible ? { irreversible: true } : {}),
    },
    aws: { stage: v.stage, region: v.region, profile: v.profile },
    ...(v.build !== undefined ? { build: v.build } : {}),
  };
}

function parsePrePromote(
  v: Record<string, string | boolean | string[] | undefined>,
): Pick<ReleaseOptions, 'prePromote'> {
  const command = v['pre-promote'];
  const timeout = v['pre-promote-timeout'];
  if (typeof command !== 'string') {
    if (timeout !== undefined) throw new ConfigError('--pre-promote-timeout needs --pre-promote CMD');
    return {};
  }
  const problem = prePromoteCommandProblem(command);
  if (problem) throw new ConfigError(`--pre-promote ${problem}`);
  const timeoutSeconds =
    typeof timeout === 'string'
      ? parseDuration(timeout, '--pre-promote-timeout', MAX_PRE_PROMOTE_TIMEOUT_SECONDS)
      : DEFAULT_PRE_PROMOTE_TIMEOUT_SECONDS;
  return { prePromote: { command, timeoutSeconds } };
}

function parseGate(v: Record<string, string | boolean | string[] | undefined>): RecordGate {
  const gate: RecordGate = {};
  const min = v['min-requests'];
  if (typeof min === 'string') {
    const n = Number(min);
    if (!/^\d+$/.test(min) || n < 1 || n > MAX_MIN_REQUESTS)
      throw new ConfigError(`--min-requests must be a whole number 1-${MAX_MIN_REQUESTS}, got "${min}"`);
    gate.minRequests = n;
  }
  const p99 = v['max-p99'];
  if (typeof p99 === 'string') gate.maxP99Ms = parseMilliseconds(p99, '--max-p99');
  const ratio = v['max-p99-ratio'];
  if (typeof ratio === 'string') {
    const n = Number(ratio);
    if (!/^\d+(\.\d+)?$/.test(ratio) || !(n > 1) || n > 1000)
      throw new ConfigError(`--max-p99-ratio must be a number above 1 (up to 1000), like 3 or 1.5, got "${ratio}"`);
    gate.maxP99Ratio = n;
  }
  return gate;
}

/** `bluegreen release promote ID`: the held release to promote. */
export function parsePromoteArgs(args: string[]): {
  id: string;
  aws: { stage?: string; region?: string; profile?: string };
} {
  let parsed;
  try {
    parsed = parseArgs({ args, strict: true, allowPositionals: true, options: { ...AWS_FLAGS } });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (see bluegreen release --help)`);
  }
  const [id, ...rest] = parsed.positionals;
  if (id === undefined || rest.length > 0)
    throw new ConfigError(
      'usage: bluegreen release promote ID [--stage S] (ID: the held release, as `history` lists it)',
    );
  const { stage, region, profile } = parsed.values;
  return { id, aws: { stage, region, profile } };
}

export function parseHistoryArgs(args: string[]): {
  limit: number;
  /** --json: the records as JSON instead of the table. */
  json?: boolean;
  /** --stats: the window (ms) the figures are over; undefined = the list. */
  statsWindowMs?: number;
  aws: { stage?: string; region?: string; profile?: string };
} {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        ...AWS_FLAGS,
        limit: { type: 'string' },
        json: { type: 'boolean' },
        stats: { type: 'boolean' },
        since: { type: 'string' },
      },
    });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (see bluegreen history --help)`);
  }
  if (parsed.values.since !== undefined && !parsed.values.stats)
    throw new ConfigError('--since goes with --stats (bluegreen history --stats --since 30d)');
  if (parsed.values.stats && parsed.values.json) throw new ConfigError('--json is for the list, not --stats');
  if (parsed.values.stats && parsed.values.limit !== undefined)
    throw new ConfigError('--limit is for the list; --stats counts every release in --since');
  let statsWindowMs: number | undefined;
  if (parsed.values.stats) {
    const since = parsed.values.since ?? '90d';
    const m = /^([1-9]\d{0,3})d$/.exec(since);
    if (!m || Number(m[1]) > 3650)
      throw new ConfigError(`--since must be whole days 1d-3650d, like 30d or 90d, got "${since}"`);
    statsWindowMs = Number(m[1]) * 24 * 3600_000;
  }
  const raw = parsed.values.limit ?? '20';
  const limit = Number(raw);
  if (!/^\d+$/.test(raw) || limit < 1 || limit > 1000)
    throw new ConfigError(`--limit must be a whole number 1-1000, got "${raw}"`);
  const { stage, region, profile } = parsed.values;
  return {
    limit,
    ...(parsed.values.json ? { json: true } : {}),
    ...(statsWindowMs ? { statsWindowMs } : {}),
    aws: { stage, region, profile },
  };
}
