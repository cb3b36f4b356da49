// A pool's health settings: how long a new container may take to start, how long one /healthz probe
// may take, and how long a pool's container has to finish its in-flight requests when it is stopped.
// Defaults and bounds are the pool options' (core/pool-options.ts, the host Compose file's defaults);
// a release sets its own (`bluegreen release --health-start-period 120s`), carried in the pool's
// options. Here: the gate's timing built on them.
import type { PoolOptions } from './pool-options';
import { POOL_OPTIONS_RULE } from './pool-options';

/** One setting: its default and bounds, in whole seconds (core/pool-options.ts), and its CLI flag. */
export interface PoolHealthSetting {
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly flag: string;
}

const SECONDS = POOL_OPTIONS_RULE.seconds;
export const POOL_HEALTH = {
  /** How long a new container may fail /healthz before a failure counts (Docker's start_period). */
  startPeriodSeconds: { ...SECONDS.healthStartPeriodSeconds, flag: '--health-start-period' },
  /** How long one /healthz probe may take (Docker's healthcheck timeout, the gate's probe). */
  timeoutSeconds: { ...SECONDS.healthTimeoutSeconds, flag: '--health-timeout' },
  /** SIGTERM, then this long for in-flight requests before SIGKILL (Compose's stop_grace_period). */
  drainSeconds: { ...SECONDS.drainSeconds, flag: '--drain' },
} as const satisfies Record<string, PoolHealthSetting>;

/** Docker's health check interval and the failures in a row that make a container unhealthy. */
export const HEALTH_INTERVAL_SECONDS = 5;
export const HEALTH_RETRIES = 3;

/**
 * How often the host agent's gate probes a recreated pool's /healthz itself (through the pool's own
 * published port): an app up in a second passes in about a second, not at Docker's first check
 * (HEALTH_INTERVAL_SECONDS after the start).
 */
export const GATE_PROBE_MS = 200;

/**
 * The longest the gate waits for a recreated pool to answer /healthz 200: its start period, then as
 * long as Docker would take to call it unhealthy (HEALTH_RETRIES checks, each an interval plus at
 * most a timeout). bluegreen-apply computes the same from facts.sh.
 */
export function gateWaitSeconds(startPeriodSeconds: number, timeoutSeconds: number): number {
  return startPeriodSeconds + HEALTH_RETRIES * (HEALTH_INTERVAL_SECONDS + timeoutSeconds);
}

/** A release's health settings as the pool's options carry them. */
export type PoolHealthOptions = Pick<PoolOptions, 'healthStartPeriodSeconds' | 'healthTimeoutSeconds' | 'drainSeconds'>;

/** The settings a pool runs with: the release's, else the defaults. */
export function poolHealth(options: PoolHealthOptions | undefined): {
  startPeriodSeconds: number;
  timeoutSeconds: number;
  drainSeconds: number;
} {
  return {
    startPeriodSeconds: options?.healthStartPeriodSeconds ?? POOL_HEALTH.startPeriodSeconds.default,
    timeoutSeconds: options?.healthTimeoutSeconds ?? POOL_HEALTH.timeoutSeconds.default,
    drainSeconds: options?.drainSeconds ?? POOL_HEALTH.drainSeconds.default,
  };
}

/**
 * The longest one host's deploy can take with these settings: a failed gate is two recreations
 * (the release, then the previous one back), each stopping a container (up to its drain) and waiting
 * for the new one (up to the gate's wait), plus a margin for the pull, the smoke test and the lock.
 */
export function deployWorstCaseSeconds(options: PoolHealthOptions | undefined): number {
  const h = poolHealth(options);
  return 2 * (h.drainSeconds + gateWaitSeconds(h.startPeriodSeconds, h.timeoutSeconds)) + DEPLOY_MARGIN_SECONDS;
}
/** The pull, the smoke test, the lock held by another run: beside the recreations. */
export const DEPLOY_MARGIN_SECONDS = 60;
