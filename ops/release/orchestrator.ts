// `bluegreen release`: the flow an operator runs, the same for the local stack and a deployed stage
// (DECISIONS "Releases"). The CLI drives deploy → gate → canary → promote; the bake and its
// rollback belong to the server-side guard (the alert Lambda / the local watcher), so this process
// only watches the record once the new pool is active: killing it mid-bake disarms nothing.
import { ConfigError } from '../../core/config-error';
import { otherPool, Pool } from '../../core/pools';
import { isEmptyPoolOptions, serializePoolOptions } from '../../core/pool-options';
import { limit } from '../../core/aws-limits';
import { describePinned, pinSecrets } from '../../core/secrets';
import { describeFigures, HELD_STEP } from '../../core/release-guard';
import { frozenWayOut, heldWaysOut } from '../../core/release-events';
import {
  DesiredPool,
  inProgress,
  isFinal,
  isStale,
  parseRecordTime,
  PROMOTION_BOUND_MS,
  recordVerdict,
  PrePromoteResult,
  ReleaseRecord,
  ReleaseStep,
  STALE_AFTER_MS,
} from '../../core/release-record';
import { describePrePromote, PRE_PROMOTE_STEP } from '../../core/pre-promote';
import { ReleaseOptions } from './args';
import { groupHostGates, HostGateGroups, hostGates } from '../stage-hosts';
import { DeployReport, RecordChanged, ReleaseBackend } from '../../core/release-backend';
import { DEPLOY_RATE, EVERY_HOST_RATE, RunRate } from '../../core/run-rate';
import { CLI_RECORD_REFRESH_MS } from '../../core/ssm-budget';
import type { Out } from '../../support/output';
import { previewInstructions } from '../../core/preview';
import { newPreviewToken } from './preview';

/**
 * How long past bakeUntil the CLI waits for the server side before it finishes the record itself:
 * on AWS a bake with no traffic is finished by the alert function's one-minute tick, plus delivery.
 */
export const BAKE_GRACE_MS = 90_000;
// With the record: the bound limits how far ahead of updatedAt a record's bakeUntil may be.
export { PROMOTION_BOUND_MS };
/** How often a long phase writes the record again (see CLI_RECORD_REFRESH_MS: a record left alone goes stale). */
export const RECORD_REFRESH_MS = CLI_RECORD_REFRESH_MS;
/** How often the record is re-read while waiting, where the backend does not say (local: a file). */
const DEFAULT_POLL_MS = 250;

export const RUNBOOK = {
  failed: 'RUNBOOK.md#release-failed',
  rolledBack: 'RUNBOOK.md#release-rolled-back',
  promoted: 'RUNBOOK.md#release-promoted',
  held: 'RUNBOOK.md#release-held',
  preview: 'RUNBOOK.md#a-tester-reports-the-preview-broken',
  frozen: 'RUNBOOK.md#release-frozen',
} as const;

/**
 * Exit codes: promoted (or deployed), failed or rolled back, bad input, held without a verdict, frozen
 * (an irreversible release that crossed its gate and was not flipped back: someone fixes forward).
 */
export const EXIT = { ok: 0, failed: 1, badInput: 2, held: 3, frozen: 4 } as const;

export interface ReleaseIO {
  out: Out;
  /** A compact, replaceable status line while waiting (a TTY rewrites it in place); default: none. */
  progress?: Out;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** How often the record is re-read while waiting. */
  pollMs?: number;
  /** How often a long phase writes the record again (RECORD_REFRESH_MS). */
  refreshMs?: number;
  graceMs?: number;
  staleAfterMs?: number;
  /**
   * Aborted when the operator interrupts (Ctrl-C) before promotion: the canary share goes back to 0
   * and the record is marked failed. Once baking, the bake belongs to the server side.
   */
  signal?: AbortSignal;
  /** Called when the bake starts: from then on an interrupt may simply end this process. */
  onBaking?: () => void;
}

// Defined with the record (a joining fleet host applies the same rule: lib/fleet-hosts.ts).
export { inProgress, isStale, STALE_AFTER_MS };

/** 20261123-140233-green-v2: UTC start time, pool, release. */
export function releaseRecordId(at: number, pool: Pool, release: string): string {
  const iso = new Date(at).toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}-${pool}-${release}`;
}

const clock = (at: number) => new Date(at).toISOString().slice(11, 23) + 'Z';

const CANCELLED = 'cancelled by the operator before promotion';

/**
 * The per-host outcome of a deploy on a stage (the backend's `host` steps, one per host Run Command
 * listed); undefined when the backend reports no hosts (local mode).
 */
export function hostGate(report: DeployReport): HostGateGroups | undefined {
  const gates = hostGates(report.steps);
  return gates.length === 0 ? undefined : groupHostGates(gates);
}

/** Thrown inside the flow for an operator mistake: exit 2, nothing changed. */
class BadInput extends Error {}

/** Another release's first write won the one-release lock between this one's checks and its start. */
class LostStart extends Error {
  constructor(readonly record: ReleaseRecord | undefined) {
    super('another release started meanwhile');
  }
}

/** The record was written by someone else (the guard) since this command last wrote it. */
class Superseded extends Error {
  constructor(readonly record: ReleaseRecord | undefined) {
    super('the release record changed outside this command');
  }
}

/** ReleaseIO with every default filled in. */
type Settings = Required<Omit<ReleaseIO, 'progress' | 'signal' | 'onBaking'>> &
  Pick<ReleaseIO, 'progress' | 'signal' | 'onBaking'>;

/** What the checks found: the pools this release involves and what each of them ran. */
interface Target {
  active: Pool;
  pool: Pool;
  replaced: DesiredPool;
  previous: DesiredPool | undefined;
  /** Why a stored record does not count as in progress although its state says so: said once the release starts. */
  invalidRecord: string | undefined;
  /** The stage's secrets this release pins (names → versions), when the backend keeps secrets. */
  secrets?: Record<string, string>;
  /** The stored record the checks judged (undefined: none): the first write is conditional on it. */
  basis: ReleaseRecord | undefined;
  /** Days the stage keeps this release's history (record.historyDays); undefined = for good. */
  historyDays?: number;
}

/**
 * One release under way, shared by its phases. The record is the one this command last wrote: each
 * write is conditional on it still being the stored one (`basis` before the first write).
 */
interface Run {
  readonly options: ReleaseOptions;
  readonly backend: ReleaseBackend;
  readonly o: Settings;
  readonly say: Out;
  readonly progress: Out;
  readonly active: Pool;
  readonly pool: Pool;
  readonly replaced: DesiredPool;
  readonly startedAt: number;
  record: ReleaseRecord;
  /** The stored version the next write is conditional on: the checks' read, then this command's last write. */
  basis: ReleaseRecord | undefined;
  written: boolean;
  /** This command opened a preview that it must end (promoted, failed, cancelled, superseded). */
  previewOpen?: boolean;
  /** The hosts that passed the gate (AWS), in the order they reported; empty locally. */
  gatePassedHosts: string[];
}

/**
 * Runs one release. Returns the exit code (EXIT): 0 promoted (or deployed with --no-promote), 1 failed
 * gate, canary aborted or rolled back, 2 bad input (nothing changed), 3 held (no verdict without evidence).
 */
export async function runRelease(
  options: ReleaseOptions,
  backend: ReleaseBackend,
  io: ReleaseIO | Out,
): Promise<number> {
  const o = settings(backend, io);
  const target = await check(options, backend, o);
  if (typeof target === 'number') return target;
  // Pinned secrets are part of the pool's options: the new pool runs exactly these versions.
  if (target.secrets && Object.keys(target.secrets).length)
    options = { ...options, poolOptions: { ...options.poolOptions, secrets: target.secrets } };
  const run = newRun(options, backend, o, target);
  // A preview an earlier release left open (--no-promote) ends: its pool is about to be redeployed.
  const earlier = backend.setPreview ? await backend.readRecord() : undefined;
  try {
    await start(run, target.invalidRecord);
    if (earlier?.preview) await endPreview(run, `the preview of ${earlier.id} ended`);
    const gateFailed = await deployAndGate(run);
    if (gateFailed !== undefined) return gateFailed;
    const phaseFailed = await prePromote(run);
    if (phaseFailed !== undefined) return phaseFailed;
    // Testers reach the new release once its release phase (a migration it needs) has run, while it
    // waits: left idle (--no-promote) or in its canary. An all-at-once release is promoted the moment
    // after; a preview then would route nothing and cost the promotion a run on every host (1.1 s,
    // bench/release-docker).
    if (!options.promote || options.strategy === 'canary') await openPreview(run);
    if (!options.promote) {
      // Left open with the idle release: it ends at its promotion (a flip) or the next release.
      run.previewOpen = false;
      return await leaveIdle(run);
    }
    if (options.strategy === 'canary') {
      const canaryEnded = await canary(run);
      if (canaryEnded !== undefined) return canaryEnded;
    }
    const promoted = await promote(run);
    if (typeof promoted === 'number') return promoted;
    if (run.previewOpen) await endPreview(run, 'promoted: the preview ended');
    return await watchBake(run, promoted.bakeUntil, promoted.maxBakeUntil);
  } catch (err) {
    if (err instanceof Superseded) return finishedElsewhere(run, err.record);
    if (err instanceof LostStart) {
      o.out(
        `bluegreen release: ${err.record ? `release ${err.record.id} (${err.record.state})` : 'another release'} started ` +
          `on ${backend.target} since this command's checks; one release at a time. Nothing was changed.`,
      );
      return EXIT.badInput;
    }
    throw err;
  } finally {
    // Failed, cancelled, rolled back or superseded before promotion: testers no longer reach it.
    if (run.previewOpen) await endPreview(run, 'the preview ended with the release');
  }
}

/**
 * Preview (after the gate): a random token; requests carrying it go to the new pool only, with no
 * fallback, until the release is promoted or ends (DECISIONS "Preview a release"). A backend
 * without previews, or a preview that could not be opened, leaves the release as it was.
 */
async function openPreview(run: Run): Promise<void> {
  const { backend, pool, options, say } = run;
  if (!backend.setPreview) return;
  const token = newPreviewToken();
  let url: string | undefined;
  try {
    ({ url } = await backend.setPreview({ pool, token }));
  } catch (err) {
    say(`preview not opened (the release goes on without it): ${(err as Error).message}`);
    await backend.setPreview(undefined).catch(() => undefined);
    return;
  }
  run.previewOpen = true;
  await save(
    run,
    { preview: true },
    { step: 'preview', ok: true, detail: `requests carrying the token go to ${pool} only` },
  );
  say(
    `preview: requests carrying this release's token go to ${pool} (${options.release}) only, no fallback to the active pool, until it is promoted or ends:`,
  );
  for (const line of previewInstructions(url, token)) say(`  ${line}`);
}

/** Ends a preview (every host): its token routes nothing from now on. Never fails the release. */
async function endPreview(run: Run, said: string): Promise<void> {
  if (!run.backend.setPreview) return;
  run.previewOpen = false;
  try {
    await run.backend.setPreview(undefined);
    run.say(said);
  } catch (err) {
    run.say(`the preview could not be ended everywhere (${(err as Error).message}); see ${RUNBOOK.preview}`);
  }
}

function settings(backend: ReleaseBackend, io: ReleaseIO | Out): Settings {
  return {
    now: Date.now,
    sleep: (ms: number) => new Promise((r) => setTimeout(r, ms)),
    pollMs: backend.recordPollMs ?? DEFAULT_POLL_MS,
    refreshMs: RECORD_REFRESH_MS,
    graceMs: BAKE_GRACE_MS,
    staleAfterMs: STALE_AFTER_MS,
    ...(typeof io === 'function' ? { out: io } : io),
  };
}

/** Checks: nothing is written before every check passed. Returns the target, or exit code 2. */
async function check(options: ReleaseOptions, backend: ReleaseBackend, o: Settings): Promise<Target | number> {
  let invalidRecord: string | undefined;
  try {
    if (options.image !== undefined && !backend.supportsImages) {
      throw new BadInput(
        `--image needs a deployed stage (--stage S): the ${backend.target} stack runs the project's app/ only; use --release and --env`,
      );
    }
    const existing = await backend.readRecord();
    // Not narrowed by inProgress below: a held record is final, never in progress.
    const last: ReleaseRecord | undefined = existing;
    const verdict = existing && recordVerdict(existing, o.now(), o.staleAfterMs);
    if (existing && verdict?.kind === 'invalid')
      invalidRecord = `release ${existing.id} (${existing.state}) is not in progress: ${verdict.reason}`;
    if (inProgress(existing, o.now(), o.staleAfterMs)) {
      throw new BadInput(
        `release ${existing.id} is in progress (${existing.state} since ${existing.updatedAt}); one release at a time. ` +
          `It counts as abandoned ${Math.round(o.staleAfterMs / 60_000)} min after its last update.`,
      );
    }
    const active = await backend.activePool();
    // A held release waits for a person: a new release would replace its backup (the previous pool).
    if (last?.state === 'held' && last.pool === active)
      throw new BadInput(
        `release ${last.id} is held (${last.reason ?? 'no verdict'}): ${last.pool} serves it without a verdict. ${heldWaysOut(last)}; then release again.`,
      );
    const pool = options.pool ?? otherPool(active);
    if (pool === active)
      throw new BadInput(
        `--pool ${pool} is the active pool: a release goes to the idle pool (${otherPool(active)}); flip first if you mean to replace ${pool}`,
      );
    const idleDesired = (await backend.desiredPool(pool)) ?? (await backend.currentPool(pool));
    if (!idleDesired)
      throw new Error(
        `the ${pool} pool's state is unknown on ${backend.target} (no desired or applied state): is the pool agent running?`,
      );
    const previous = (await backend.currentPool(active)) ?? (await backend.desiredPool(active));
    return {
      active,
      pool,
      replaced: idleDesired,
      previous,
      invalidRecord,
      basis: existing,
      historyDays: await backend.historyDays?.(),
      ...(await secretsToPin(options, backend)),
    };
  } catch (err) {
    if (err instanceof BadInput || err instanceof ConfigError) {
      o.out(`bluegreen release: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

/** The secrets the release pins, each at its current version: all of the stage's, or those --secret names. */
async function secretsToPin(
  options: ReleaseOptions,
  backend: ReleaseBackend,
): Promise<{ secrets?: Record<string, string> }> {
  if (!backend.secretStore) {
    if (options.secrets?.length) throw new BadInput(`--secret: ${backend.target} keeps no secrets`);
    return {};
  }
  const store = backend.secretStore();
  const stored = await store.list();
  let secrets: Record<string, string>;
  try {
    secrets = pinSecrets(stored, options.secrets, options.env, backend.target);
  } catch (err) {
    throw new BadInput((err as Error).message);
  }
  // A Secrets Manager secret is pinned to its current version too: a rotation after this release
  // starts reaches a pool only through the next release, never through a restart or a new host.
  for (const [name, pin] of Object.entries(secrets)) {
    if (/^\d+$/.test(pin)) continue;
    if (!store.pinReference)
      throw new BadInput(`secret ${name}: ${backend.target} cannot pin a Secrets Manager secret`);
    try {
      secrets[name] = await store.pinReference(pin);
    } catch (err) {
      throw new BadInput(`secret ${name}: ${(err as Error).message}`);
    }
  }
  // The pool's options parameter is a standard one: the pins (names, versions, references) must fit.
  const bytes = Buffer.byteLength(serializePoolOptions({ ...options.poolOptions, secrets }), 'utf8');
  if (bytes > limit('standardParameterValue'))
    throw new BadInput(
      `the pool's options with ${Object.keys(secrets).length} secrets take ${bytes} bytes, more than a standard parameter's ${limit('standardParameterValue')}: name fewer (--secret NAME)`,
    );
  return { secrets };
}

/** The release's record as first written: what the guard and a joining host need to put things back. */
function newRun(
  options: ReleaseOptions,
  backend: ReleaseBackend,
  o: Settings,
  { active, pool, replaced, previous, basis, historyDays }: Target,
): Run {
  const previousRelease = previous?.release ?? 'unknown';
  const startedAt = o.now();
  const record: ReleaseRecord = {
    id: releaseRecordId(startedAt, pool, options.release),
    pool,
    ...(options.image ? { image: options.image } : {}),
    release: options.release,
    env: options.env,
    ...(isEmptyPoolOptions(options.poolOptions) ? {} : { options: options.poolOptions }),
    previousPool: active,
    previousRelease,
    ...(previous?.image ? { previousImage: previous.image } : {}),
    ...(previous ? { previousEnv: previous.env } : {}),
    ...(isEmptyPoolOptions(previous?.options) ? {} : { previousOptions: previous?.options }),
    replacedRelease: replaced.release,
    ...(replaced.image ? { replacedImage: replaced.image } : {}),
    replacedEnv: replaced.env,
    ...(isEmptyPoolOptions(replaced.options) ? {} : { replacedOptions: replaced.options }),
    strategy: options.strategy,
    canaryPercent: options.strategy === 'canary' ? options.canaryPercent : 0,
    bakeSeconds: options.bakeSeconds,
    ...(options.gate && Object.keys(options.gate).length ? { gate: options.gate } : {}),
    ...(options.irreversible ? { irreversible: true } : {}),
    ...(options.builtAt ? { builtAt: options.builtAt } : {}),
    ...(imageDigestOf(options) ? { imageDigest: imageDigestOf(options) } : {}),
    ...(options.startedBy ? { startedBy: options.startedBy } : {}),
    ...(options.ciRunUrl ? { ciRunUrl: options.ciRunUrl } : {}),
    ...(historyDays ? { historyDays } : {}),
    state: 'deploying',
    startedAt: new Date(startedAt).toISOString(),
    updatedAt: new Date(startedAt).toISOString(),
    steps: [],
  };
  return {
    options,
    backend,
    o,
    say: (line: string) => o.out(`${clock(o.now())}  ${line}`),
    progress: (line: string) => o.progress?.(`${clock(o.now())}  ${line}`),
    active,
    pool,
    replaced,
    startedAt,
    record,
    basis,
    written: false,
    gatePassedHosts: [],
  };
}

/** Start: the record says a release runs, and no canary share is left from an earlier one. */
async function start(run: Run, invalidRecord: string | undefined): Promise<void> {
  const { options, backend, pool, active, say } = run;
  if (invalidRecord) say(invalidRecord);
  say(
    `release ${run.record.id}: ${options.release} → ${pool} (idle; ${active} stays active on ${run.record.previousRelease}) on ${backend.target}`,
  );
  await save(
    run,
    {},
    {
      step: 'start',
      ok: true,
      detail: `${options.strategy}${options.strategy === 'canary' ? ` ${options.canaryPercent}% for ${options.canarySeconds} s` : ''}, bake ${options.bakeSeconds} s`,
    },
  );
  // A canary share left by a release that never finished would send part of the traffic to the
  // pool this release is about to replace: back to 0 first.
  const leftover = await backend.canaryPercent();
  if (leftover !== 0) {
    await backend.setCanary(0);
    say(`canary: a share of ${leftover}% was left by an earlier release; set back to 0`);
    await save(run, {}, { step: 'canary-reset', ok: true, detail: `${leftover}% → 0%` });
  }
}

/** A release's own health settings for the deploy line (`; start period 120 s, …`); '' without. */
function healthText(o: ReleaseOptions['poolOptions']): string {
  const parts = [
    o?.healthStartPeriodSeconds !== undefined ? `start period ${o.healthStartPeriodSeconds} s` : '',
    o?.healthTimeoutSeconds !== undefined ? `health timeout ${o.healthTimeoutSeconds} s` : '',
    o?.drainSeconds !== undefined ? `drain ${o.drainSeconds} s` : '',
  ].filter(Boolean);
  return parts.length ? `; ${parts.join(', ')}` : '';
}

/** Deploy and gate: the idle pool runs the new release on every host, or is put back. Exit code 1 when the gate fails. */
async function deployAndGate(run: Run): Promise<number | undefined> {
  const { options, backend, pool, o, say } = run;
  const desired: DesiredPool = {
    release: options.release,
    env: options.env,
    ...(options.image ? { image: options.image } : {}),
    ...(isEmptyPoolOptions(options.poolOptions) ? {} : { options: options.poolOptions }),
  };
  say(
    `deploy: ${pool} ${run.replaced.release} → ${options.release}${Object.keys(options.env).length ? ` (env ${Object.keys(options.env).join(', ')})` : ''}${options.poolOptions?.secrets && Object.keys(options.poolOptions.secrets).length ? ` (secrets ${describePinned(options.poolOptions.secrets)})` : ''}${healthText(options.poolOptions)}`,
  );
  let report: DeployReport;
  try {
    await backend.setDesiredPool(pool, desired);
    report = await deployWithProgress(
      run,
      run.record.id,
      `deploying ${options.release} to ${pool}`,
      options.deployRate ?? DEPLOY_RATE,
    );
  } catch (err) {
    report = { ok: false, steps: [], reason: `deploy could not run: ${(err as Error).message}` };
  }
  printSteps(run, report);
  const gate = hostGate(report);
  const inService = gate ? gate.total - gate.joining.length : 0;
  if (gate) {
    say(
      `hosts: ${gate.passed.length} of ${inService} passed the gate${gate.failed.length ? `; failed: ${gate.failed.join(', ')}` : ''}${gate.notRun.length ? `; not run: ${gate.notRun.join(', ')}` : ''}` +
        (gate.joining.length
          ? `; ${gate.joining.length} still bootstrapping (${gate.joining.join(', ')}): not in service, they join after this release with its outcome`
          : ''),
    );
  }
  run.record = { ...run.record, steps: [...run.record.steps, ...report.steps] };
  // One host failing is the release failing: nothing is promoted anywhere.
  if (!report.ok) return failed(run, `gate failed on ${pool}: ${report.reason ?? 'a deploy step failed'}`, true);
  // A gate nobody took is no gate: every host answered that it is still bootstrapping.
  if (gate && gate.passed.length === 0)
    return failed(
      run,
      `gate not run on ${pool}: no host in service took the deploy (${gate.joining.length} still bootstrapping: ${gate.joining.join(', ')})`,
      true,
    );
  if (o.signal?.aborted) return failed(run, CANCELLED, true);
  run.gatePassedHosts = gate ? [...gate.passed] : [];
  say(
    `gate passed: ${pool} is healthy and answers ${options.release}${gate ? ` on ${inService === 1 ? 'the host' : `all ${inService} hosts`}` : ''}`,
  );
  await save(
    run,
    { state: 'verifying' },
    {
      step: 'gate',
      ok: true,
      ...(gate
        ? {
            detail: `${gate.passed.length} of ${inService} hosts${gate.joining.length ? ` (${gate.joining.length} joining)` : ''}`,
          }
        : {}),
    },
  );
  return undefined;
}

/**
 * The release phase (--pre-promote): once, on one host, in the new release's container, after the
 * gate and before any traffic (no canary share, no flip yet), under the host agent's lock. A non-zero
 * exit or a timeout fails the release like a failed gate: nothing promoted, the idle pool put back.
 * Exit code 1 when it failed.
 */
async function prePromote(run: Run): Promise<number | undefined> {
  const { options, backend, pool, o, say } = run;
  const phase = options.prePromote;
  if (!phase) return undefined;
  const passed = run.gatePassedHosts;
  say(
    `pre-promote: ${JSON.stringify(phase.command)} in ${pool}'s ${options.release} on ${passed.length ? passed[0] : 'one host'} (timeout ${phase.timeoutSeconds} s; no traffic yet)`,
  );
  let result: PrePromoteResult;
  try {
    result = await withRecordRefresh(run, () =>
      backend.prePromote(pool, {
        command: phase.command,
        release: options.release,
        timeoutMs: phase.timeoutSeconds * 1000,
        requestId: `${run.record.id}:pre-promote`,
        hosts: passed,
      }),
    );
  } catch (err) {
    result = { command: phase.command, ok: false, output: '', reason: `could not run: ${(err as Error).message}` };
  }
  for (const line of result.output ? result.output.split('\n') : []) o.out(`    | ${line}`);
  const detail = describePrePromote(result);
  run.record = {
    ...run.record,
    prePromote: { ...result, command: phase.command },
    steps: [
      ...run.record.steps,
      {
        at: new Date(o.now()).toISOString(),
        step: PRE_PROMOTE_STEP,
        ok: result.ok,
        detail,
        ...(result.host ? { host: result.host } : {}),
      },
    ],
  };
  if (!result.ok) return failed(run, `pre-promote failed (${detail}): nothing promoted`, true);
  if (o.signal?.aborted) return failed(run, CANCELLED, true);
  say(`pre-promote ok: ${detail}`);
  await save(run, {});
  return undefined;
}

/** Runs `fn` while the record is rewritten every refreshMs, so a long phase never looks abandoned. */
async function withRecordRefresh<T>(run: Run, fn: () => Promise<T>): Promise<T> {
  let refreshing: Promise<void> = Promise.resolve();
  const refresher = setInterval(() => {
    refreshing = refreshing.then(() =>
      save(run, {}).catch((err: Error) => run.say(`could not refresh the release record: ${err.message}`)),
    );
  }, run.o.refreshMs);
  try {
    return await fn();
  } finally {
    clearInterval(refresher);
    await refreshing;
  }
}

/** --no-promote: the release ends after the gate, its pool idle. */
async function leaveIdle(run: Run): Promise<number> {
  await save(run, { state: 'deployed' }, { step: 'deployed', ok: true, detail: 'left idle (--no-promote)' });
  run.say(`deployed: ${run.pool} runs ${run.options.release} idle; promote it with: bluegreen flip ${run.pool}`);
  return 0;
}

/** Canary: a share of the requests goes to the new pool while the guard watches. The exit code when the release ends here. */
async function canary(run: Run): Promise<number | undefined> {
  const { options, backend, pool, active, o, say, progress } = run;
  const sticky = options.sticky ? ` sticky on ${options.sticky}` : '';
  await save(run, options.sticky ? { sticky: options.sticky } : {}, {
    step: 'canary',
    ok: true,
    detail: `${options.canaryPercent}%${sticky} for ${options.canarySeconds} s`,
  });
  try {
    await backend.setCanary(options.canaryPercent, options.sticky);
  } catch (err) {
    await backend.setCanary(0).catch(() => undefined);
    return failed(run, `the canary share could not be set: ${(err as Error).message}`, false);
  }
  say(
    `canary: ${options.canaryPercent}% of requests go to ${pool} first (failures retried on ${active})${options.sticky ? `, a client carrying ${options.sticky} always on the side its value picks` : ''} for ${options.canarySeconds} s; the guard watches`,
  );
  const until = o.now() + options.canarySeconds * 1000;
  let refreshedAt = o.now();
  while (o.now() < until) {
    const r = await current(run);
    if (!r || r.state !== 'verifying') {
      // A frozen canary keeps its share: its clients are not sent back to the previous release.
      if (r?.state !== 'frozen') await backend.setCanary(0).catch(() => undefined);
      return finishedElsewhere(run, r);
    }
    // A long canary: the record says the release is alive (a fleet host waits to join).
    if (o.now() - refreshedAt >= o.refreshMs) {
      await save(run, {});
      refreshedAt = o.now();
    }
    if (o.signal?.aborted) {
      await backend.setCanary(0);
      return failed(run, CANCELLED, false);
    }
    progress(`canary ${options.canaryPercent}% on ${pool}: ${Math.ceil((until - o.now()) / 1000)} s left`);
    await o.sleep(Math.min(o.pollMs, Math.max(1, until - o.now())));
  }
  // A canary the guard froze meanwhile keeps its share (read first; the guard acts on a canary in
  // verifying only, so after this read it can still freeze it: then the share was set to 0 by this
  // command, which the record's canary step says).
  const before = await current(run);
  if (before?.state === 'frozen') return finishedElsewhere(run, before);
  await backend.setCanary(0);
  const r = await current(run);
  if (!r || r.state !== 'verifying') return finishedElsewhere(run, r);
  adopt(run, r);
  say(`canary held ${options.canarySeconds} s clean: promoting`);
  return undefined;
}

/** Promote = flip. Returns the end of the bake and of its longest extension, or exit code 1 when the flip was not confirmed. */
async function promote(run: Run): Promise<number | { bakeUntil: number; maxBakeUntil: number }> {
  const { options, backend, pool, active, o, say } = run;
  if (o.signal?.aborted) return failed(run, CANCELLED, false);
  // Baking BEFORE the flip: from the moment the new pool may take traffic the guard watches it,
  // even if this process dies while the flip is confirmed. The provisional end leaves room for
  // the confirmation; the real one is written once the flip is confirmed.
  const maxBakeMs = maxBakeSeconds(options) * 1000;
  await save(
    run,
    {
      state: 'baking',
      bakeUntil: new Date(o.now() + options.bakeSeconds * 1000 + PROMOTION_BOUND_MS).toISOString(),
      maxBakeUntil: new Date(o.now() + maxBakeMs + PROMOTION_BOUND_MS).toISOString(),
    },
    { step: 'promoting', ok: true, detail: `flip to ${pool}` },
  );
  const flip = await backend.flip(pool).catch((err: Error) => ({ ok: false, detail: err.message }));
  if (!flip.ok) {
    const nowActive = await backend.activePool().catch(() => undefined);
    if (nowActive === pool) await backend.flip(active).catch(() => undefined);
    return failed(run, `promotion not confirmed: ${flip.detail}`, false);
  }
  say(`promoted: ${flip.detail}`);
  const flippedAt = o.now();
  const bakeUntil = flippedAt + options.bakeSeconds * 1000;
  const maxBakeUntil = flippedAt + maxBakeMs;
  await save(
    run,
    { bakeUntil: new Date(bakeUntil).toISOString(), maxBakeUntil: new Date(maxBakeUntil).toISOString() },
    { step: 'promote', ok: true, detail: flip.detail },
  );
  return { bakeUntil, maxBakeUntil };
}

function maxBakeSeconds(options: ReleaseOptions): number {
  return Math.max(options.maxBakeSeconds ?? options.bakeSeconds, options.bakeSeconds);
}

/**
 * Bake: the server side finishes it (and rolls back on its own); this process only watches, so
 * an interrupt from here on disarms nothing. A bake without the gate's minimum is extended by the
 * guard up to maxBakeUntil; if the guard never answers, this process holds the release (it cannot
 * see the traffic, so it never promotes on its own).
 */
async function watchBake(run: Run, bakeUntil: number, maxBakeUntil: number): Promise<number> {
  const { options, pool, o, say, progress } = run;
  o.onBaking?.();
  say(
    `bake: ${options.bakeSeconds} s, until ${new Date(bakeUntil).toISOString()}; the server-side guard rolls back on its own if ${pool} fails or slows down (this terminal may close)`,
  );
  let saidExtended = false;
  for (;;) {
    const r = await current(run);
    if (!r || r.state !== 'baking') return finishedElsewhere(run, r);
    if (!saidExtended && r.steps.some((s) => s.step === 'bake-extended')) {
      saidExtended = true;
      say(`bake extended: ${r.steps.find((s) => s.step === 'bake-extended')?.detail ?? 'too few requests to judge'}`);
    }
    // A person may extend the bake (Slack's Extend bake): the record's times are the ones that count.
    const left = (parseRecordTime(r.bakeUntil) ?? bakeUntil) - o.now();
    const extensionLeft = (parseRecordTime(r.maxBakeUntil) ?? maxBakeUntil) - o.now();
    if (extensionLeft > -o.graceMs) {
      progress(
        left > 0
          ? `baking ${options.release} on ${pool}: ${Math.ceil(left / 1000)} s left`
          : extensionLeft > 0
            ? `bake over: waiting for the guard's verdict (without enough requests it is held in ${Math.ceil(extensionLeft / 1000)} s)`
            : `bake over: waiting for the guard to finish it (${Math.ceil((o.graceMs + extensionLeft) / 1000)} s)`,
      );
      await o.sleep(o.pollMs);
      continue;
    }
    // The guard did not answer: no one judged the traffic, so no verdict; a person decides.
    adopt(run, r);
    const reason = `the server-side guard gave no verdict within ${Math.round(o.graceMs / 1000)} s of the bake's end (is the watcher / alert function running?): held, neither promoted nor rolled back`;
    await save(run, { state: 'held', reason }, { step: HELD_STEP, ok: false, detail: 'by the CLI' });
    return heldSaid(run, run.record);
  }
}

/** What the CLI prints for a held release; exit 3. */
function heldSaid(run: Run, r: ReleaseRecord): number {
  run.say(`HELD: ${r.release} on ${r.pool}: ${r.reason ?? 'no verdict'}`);
  if (r.figures) run.say(`figures: ${describeFigures(r.pool, r.figures)}`);
  run.say(`${heldWaysOut(r)}. Runbook: ${RUNBOOK.held}`);
  return EXIT.held;
}

/**
 * Writes the record, unless the guard wrote it since this command last did (its rollback or
 * abort must never be overwritten): then the flow stops with what the guard decided.
 */
async function save(run: Run, changes: Partial<ReleaseRecord>, step?: Omit<ReleaseStep, 'at'>): Promise<void> {
  const at = new Date(run.o.now()).toISOString();
  const next: ReleaseRecord = {
    ...run.record,
    ...changes,
    updatedAt: at,
    steps: step ? [...run.record.steps, { at, ...step }] : run.record.steps,
  };
  if (changes.state && isFinal(changes.state)) {
    next.finishedAt = at;
    next.decidedBy ??= run.record.startedBy ?? 'the release command';
  }
  try {
    run.record = await run.backend.writeRecord(next, run.basis);
  } catch (err) {
    if (!(err instanceof RecordChanged)) throw err;
    if (!run.written) throw new LostStart(err.current);
    throw new Superseded(err.current && err.current.id === run.record.id ? err.current : undefined);
  }
  run.basis = run.record;
  run.written = true;
}

/** Who ended a release this command did not: the guard, or the person (Slack, another CLI) the ledger names. */
function decider(r: ReleaseRecord): string {
  return !r.decidedBy || r.decidedBy.startsWith('release guard') ? 'the guard' : r.decidedBy;
}

/** The image's digest: what --build pushed, or the one an --image reference names. */
function imageDigestOf(options: ReleaseOptions): string | undefined {
  return options.imageDigest ?? /@(sha256:[a-f0-9]{64})$/.exec(options.image ?? '')?.[1];
}

/** Takes the stored version as this command's own: its next write is conditional on it. */
function adopt(run: Run, stored: ReleaseRecord): void {
  run.record = stored;
  run.basis = stored;
}

/** This release's record as stored now; undefined once another release replaced it. */
async function current(run: Run): Promise<ReleaseRecord | undefined> {
  const r = await run.backend.readRecord();
  return r && r.id === run.record.id ? r : undefined;
}

async function failed(run: Run, reason: string, restore: boolean): Promise<number> {
  run.say(`FAILED: ${reason}`);
  // Restored first, then final: a final record lets the next release start on this pool.
  if (restore) await restorePool(run);
  await save(run, { state: 'failed', reason }, { step: 'release', ok: false, detail: reason });
  run.say(
    `release ${run.record.id} failed; ${run.record.previousPool} stays active on ${run.record.previousRelease}. Runbook: ${RUNBOOK.failed}`,
  );
  return 1;
}

async function restorePool(run: Run): Promise<void> {
  const { backend, pool, replaced, say } = run;
  const previous: DesiredPool = {
    release: replaced.release,
    env: replaced.env,
    ...(replaced.image ? { image: replaced.image } : {}),
    ...(isEmptyPoolOptions(replaced.options) ? {} : { options: replaced.options }),
  };
  try {
    await backend.setDesiredPool(pool, previous);
    say(`restore ${pool} to its previous release ${previous.release}`);
    // Every host, whatever fails: each one goes back to the release it ran (hosts the deploy never
    // reached are already there; the agent finds nothing to do).
    const report = await deployWithProgress(run, `${run.record.id}:restore`, `restoring ${pool}`, EVERY_HOST_RATE);
    printSteps(run, report);
    say(
      report.ok
        ? `restored: ${pool} runs ${previous.release} again`
        : `restore of ${pool} failed: ${report.reason ?? 'see the steps'} (it keeps serving as backup only if healthy)`,
    );
  } catch (err) {
    say(`restore of ${pool} failed: ${(err as Error).message}`);
  }
}

async function deployWithProgress(run: Run, requestId: string, what: string, rate: RunRate): Promise<DeployReport> {
  const { options, backend, pool, o, progress, say } = run;
  const began = o.now();
  const ticker = o.progress
    ? setInterval(
        () => progress(`${what}: waiting for the pool agent (${((o.now() - began) / 1000).toFixed(0)} s)`),
        1000,
      )
    : undefined;
  // Run Command in rounds can outlast the stale limit: the record says the release is alive.
  let refreshing: Promise<void> = Promise.resolve();
  const refresher = setInterval(() => {
    refreshing = refreshing.then(() =>
      save(run, {}).catch((err: Error) => say(`could not refresh the release record: ${err.message}`)),
    );
  }, o.refreshMs);
  try {
    return await backend.deploy(pool, { requestId, timeoutMs: options.deployTimeoutSeconds * 1000, rate });
  } finally {
    if (ticker) clearInterval(ticker);
    clearInterval(refresher);
    await refreshing;
  }
}

function printSteps(run: Run, report: DeployReport): void {
  for (const s of report.steps) {
    run.o.out(
      `${clock(Date.parse(s.at) || run.o.now())}    ${s.ok ? 'ok  ' : 'FAIL'} ${s.step}${s.host ? ` [${s.host}]` : ''}${s.detail ? `: ${s.detail}` : ''}`,
    );
  }
}

/** Says how the release ended when the record shows someone else (the guard, another release) ended it. */
function finishedElsewhere(run: Run, r: ReleaseRecord | undefined): number {
  const { say } = run;
  if (!r) {
    say(
      `the release record was replaced by another release while ${run.record.id} ran: stopping here. Runbook: ${RUNBOOK.failed}`,
    );
    return 1;
  }
  adopt(run, r);
  const took = `${((Date.parse(r.finishedAt ?? r.updatedAt) - run.startedAt) / 1000).toFixed(1)} s`;
  switch (r.state) {
    case 'promoted':
      say(`PROMOTED: ${r.release} on ${r.pool}, bake clean (${took} from start). Runbook: ${RUNBOOK.promoted}`);
      return 0;
    case 'rolled-back':
      say(`ROLLED BACK by ${decider(r)}: ${r.reason ?? 'no reason given'}`);
      if (r.figures) say(`figures: ${describeFigures(r.pool, r.figures)}`);
      say(
        `${r.previousPool} is active again on ${r.previousRelease}; ${r.pool} keeps ${r.release} idle for inspection. Runbook: ${RUNBOOK.rolledBack}`,
      );
      return 1;
    case 'held':
      return heldSaid(run, r);
    case 'frozen':
      say(`FROZEN by the guard (irreversible, not flipped back): ${r.reason ?? 'no reason given'}`);
      if (r.figures) say(`figures: ${describeFigures(r.pool, r.figures)}`);
      say(`${frozenWayOut(r)}. Runbook: ${RUNBOOK.frozen}`);
      return EXIT.frozen;
    case 'failed':
      say(`FAILED: ${r.reason ?? 'no reason given'}`);
      if (r.figures) say(`figures: ${describeFigures(r.pool, r.figures)}`);
      say(`${r.previousPool} stays active on ${r.previousRelease}. Runbook: ${RUNBOOK.failed}`);
      return 1;
    default:
      say(`the record is now ${r.state} (not written by this command): stopping here. Runbook: ${RUNBOOK.failed}`);
      return 1;
  }
}

/**
 * `bluegreen release promote ID`: a person looked at a held release and promotes it. Only a held
 * record, and only while its pool is still the active one (after a flip back there is nothing to
 * promote: release again). Exit 0 promoted, 2 anything else (nothing changed).
 */
export async function promoteHeld(
  id: string,
  backend: ReleaseBackend,
  io: ReleaseIO | Out,
  decidedBy?: string,
): Promise<number> {
  const o = settings(backend, io);
  const refuse = (why: string) => {
    o.out(`bluegreen release promote: ${why}`);
    return EXIT.badInput;
  };
  const record = await backend.readRecord();
  if (!record || record.id !== id)
    return refuse(
      `${id} is not the latest release${record ? ` (that is ${record.id}, ${record.state})` : ''}; only the latest release can be promoted`,
    );
  if (record.state !== 'held')
    return refuse(`${id} is ${record.state}, not held; only a held release is promoted by hand`);
  const active = await backend.activePool();
  if (active !== record.pool)
    return refuse(
      `${record.pool} is no longer the active pool (${active} is: someone flipped back); release ${record.release} again to promote it`,
    );
  const at = new Date(o.now()).toISOString();
  try {
    await backend.writeRecord(
      {
        ...record,
        state: 'promoted',
        reason: `promoted by hand after it was held (${record.reason ?? 'no verdict'})`,
        ...(decidedBy ? { decidedBy } : {}),
        updatedAt: at,
        finishedAt: at,
        steps: [...record.steps, { at, step: 'promoted', ok: true, detail: 'by hand (bluegreen release promote)' }],
      },
      record,
    );
  } catch (err) {
    if (err instanceof RecordChanged)
      return refuse(`${id} changed while it was promoted (${err.message}); nothing was written`);
    throw err;
  }
  o.out(`PROMOTED by hand: ${record.release} on ${record.pool} (release ${id}). Runbook: ${RUNBOOK.promoted}`);
  return EXIT.ok;
}
