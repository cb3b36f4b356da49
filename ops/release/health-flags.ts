// `bluegreen release --health-start-period 120s --health-timeout 5s --drain 30s`: a release's own
// health settings (core/pool-health.ts), carried to the host in the pool's options. Bad values are
// one line naming the flag (exit 2, nothing changed).
import { ConfigError } from '../../core/config-error';
import { parseDuration } from '../../core/duration';
import { deployWorstCaseSeconds, POOL_HEALTH, PoolHealthOptions, PoolHealthSetting } from '../../core/pool-health';

export const HEALTH_FLAGS = {
  'health-start-period': { type: 'string' },
  'health-timeout': { type: 'string' },
  drain: { type: 'string' },
} as const;

export const HEALTH_USAGE = `  --health-start-period D  how long the new release may take to start (default ${POOL_HEALTH.startPeriodSeconds.default}s, at most ${POOL_HEALTH.startPeriodSeconds.max}s): its
                        /healthz failing meanwhile does not count; the gate waits that long, then
                        Docker's 3 checks (the host probes /healthz every 200 ms: a fast app passes at once)
  --health-timeout D    how long one /healthz probe may take (default ${POOL_HEALTH.timeoutSeconds.default}s, ${POOL_HEALTH.timeoutSeconds.min}-${POOL_HEALTH.timeoutSeconds.max}s)
  --drain D             when the pool's container is stopped later (the next release recreates it), how
                        long its requests in flight have to finish before SIGKILL (default ${POOL_HEALTH.drainSeconds.default}s, ${POOL_HEALTH.drainSeconds.min}-${POOL_HEALTH.drainSeconds.max}s)`;

/** A whole number of seconds within the setting's bounds (0 allowed where the bound is 0). */
function seconds(value: string, s: PoolHealthSetting): number {
  const n = /^0s?$/.test(value.trim()) ? 0 : parseDuration(value, s.flag, Number.MAX_SAFE_INTEGER);
  if (n < s.min || n > s.max)
    throw new ConfigError(`${s.flag} must be between ${s.min}s and ${s.max}s, got "${value}"`);
  return n;
}

/**
 * The health flags given (only those: an unset one is the host's default), and the deploy timeout:
 * --deploy-timeout, or by default the longer of `defaultSeconds` and the worst case these settings
 * allow; a --deploy-timeout shorter than one gate's worst case is refused.
 */
export function parseHealthFlags(
  v: { 'health-start-period'?: string; 'health-timeout'?: string; drain?: string; 'deploy-timeout'?: string },
  defaultDeployTimeoutSeconds: number,
): { health: PoolHealthOptions; deployTimeoutSeconds: number } {
  const health: PoolHealthOptions = {};
  if (v['health-start-period'] !== undefined)
    health.healthStartPeriodSeconds = seconds(v['health-start-period'], POOL_HEALTH.startPeriodSeconds);
  if (v['health-timeout'] !== undefined)
    health.healthTimeoutSeconds = seconds(v['health-timeout'], POOL_HEALTH.timeoutSeconds);
  if (v.drain !== undefined) health.drainSeconds = seconds(v.drain, POOL_HEALTH.drainSeconds);
  const worst = deployWorstCaseSeconds(health);
  if (v['deploy-timeout'] === undefined)
    return { health, deployTimeoutSeconds: Math.max(defaultDeployTimeoutSeconds, worst) };
  const given = parseDuration(v['deploy-timeout'], '--deploy-timeout');
  // Only with a health flag: without one the host's defaults apply, as they always did.
  if (Object.keys(health).length > 0 && given < worst)
    throw new ConfigError(
      `--deploy-timeout ${v['deploy-timeout']} is shorter than a deploy can take with these health settings (${worst} s: two recreations, each a drain plus the gate's wait); give at least ${worst}s or leave it out`,
    );
  return { health, deployTimeoutSeconds: given };
}
