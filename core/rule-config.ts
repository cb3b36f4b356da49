// Rule and release-gate settings from the environment: the Lambda's (set by the stack from CDK context) and local
// mode's. Bad values fail loudly, naming the variable.
import type { ReleaseGate } from './release-guard';
import { DEFAULT_RULE_CONFIG, RuleConfig } from './rules';
import { SAMPLES_PER_POOL } from './pool-samples';

export const RULE_ENV = {
  windowSize: 'ALERT_WINDOW',
  minWindow: 'ALERT_MIN_WINDOW',
  errorRateThreshold: 'ALERT_ERROR_RATE',
  recoveryRatio: 'ALERT_RECOVERY_RATIO',
  recoveryConsecutive: 'ALERT_RECOVERY_CONSECUTIVE',
  cooldownMs: 'ALERT_COOLDOWN_SECONDS',
} as const satisfies Record<keyof RuleConfig, string>;

export function ruleConfigFromEnv(env: Record<string, string | undefined>): RuleConfig {
  const num = (key: keyof RuleConfig, ok: (n: number) => boolean, what: string): number => {
    const name = RULE_ENV[key];
    const raw = env[name];
    if (raw === undefined || raw === '') return DEFAULT_RULE_CONFIG[key];
    const n = Number(raw);
    if (!Number.isFinite(n) || !ok(n)) throw new Error(`${name} must be ${what}, got "${raw}"`);
    return key === 'cooldownMs' ? n * 1000 : n;
  };
  const config: RuleConfig = {
    windowSize: num('windowSize', (n) => Number.isInteger(n) && n >= 1 && n <= 10_000, 'a whole number 1-10000'),
    minWindow: num('minWindow', (n) => Number.isInteger(n) && n >= 1, 'a whole number >= 1'),
    errorRateThreshold: num('errorRateThreshold', (n) => n > 0 && n < 1, 'a fraction between 0 and 1, e.g. 0.02'),
    recoveryRatio: num('recoveryRatio', (n) => n > 0 && n <= 1, 'a fraction between 0 and 1'),
    recoveryConsecutive: num('recoveryConsecutive', (n) => Number.isInteger(n) && n >= 1, 'a whole number >= 1'),
    cooldownMs: num('cooldownMs', (n) => n >= 0, 'seconds >= 0'),
  };
  if (config.minWindow > config.windowSize)
    throw new Error(
      `${RULE_ENV.minWindow} (${config.minWindow}) must not exceed ${RULE_ENV.windowSize} (${config.windowSize})`,
    );
  return config;
}

export const RELEASE_GATE_ENV = {
  errorRate: 'RELEASE_GATE_ERROR_RATE',
  minRequests: 'RELEASE_GATE_MIN_REQUESTS',
  maxP99Ms: 'RELEASE_GATE_MAX_P99_MS',
  maxP99Ratio: 'RELEASE_GATE_MAX_P99_RATIO',
  latencyMarginMs: 'RELEASE_GATE_LATENCY_MARGIN_MS',
} as const satisfies Record<keyof ReleaseGate, string>;

/**
 * The latency gate's defaults (DECISIONS "The gate's evidence", from bench/release's measured
 * variance of the demo app on a 2-core machine): a release's p99 may be up to 3× the previous
 * release's, and is judged against it only when also 100 ms above it; no absolute bound unless
 * the stage or the release sets one (a stage's slow paths may legitimately take seconds).
 */
export const DEFAULT_MAX_P99_RATIO = 3;
export const DEFAULT_LATENCY_MARGIN_MS = 100;
/** The most requests a gate may ask for: what a pool's samples hold (pool-samples.ts). */
export const MAX_MIN_REQUESTS = SAMPLES_PER_POOL;

/**
 * The release gate's settings: the error-rate alert's threshold (ALERT_ERROR_RATE) over at least
 * as many requests as the alert judges (ALERT_MIN_WINDOW, default 50), unless RELEASE_GATE_ERROR_RATE
 * / RELEASE_GATE_MIN_REQUESTS are set. 50, not fewer: at a 2% threshold one stray failure among 20
 * requests (5%) would roll a healthy release back; among 50 it is 2%, not above the gate. The latency
 * gate: RELEASE_GATE_MAX_P99_MS (none by default), RELEASE_GATE_MAX_P99_RATIO (3),
 * RELEASE_GATE_LATENCY_MARGIN_MS (100). A release may set its own (`--min-requests`, `--max-p99`,
 * `--max-p99-ratio`), carried in its record.
 */
export function releaseGateFromEnv(
  env: Record<string, string | undefined>,
  rules: RuleConfig = ruleConfigFromEnv(env),
): ReleaseGate {
  const read = (
    key: keyof typeof RELEASE_GATE_ENV,
    fallback: number | undefined,
    ok: (n: number) => boolean,
    what: string,
  ): number | undefined => {
    const name = RELEASE_GATE_ENV[key];
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || !ok(n)) throw new Error(`${name} must be ${what}, got "${raw}"`);
    return n;
  };
  const maxP99Ms = read('maxP99Ms', undefined, (n) => n > 0, 'milliseconds > 0');
  return {
    errorRate: read(
      'errorRate',
      rules.errorRateThreshold,
      (n) => n > 0 && n < 1,
      'a fraction between 0 and 1, e.g. 0.02',
    )!,
    minRequests: read(
      'minRequests',
      rules.minWindow,
      (n) => Number.isInteger(n) && n >= 1 && n <= MAX_MIN_REQUESTS,
      `a whole number 1-${MAX_MIN_REQUESTS}`,
    )!,
    ...(maxP99Ms !== undefined ? { maxP99Ms } : {}),
    maxP99Ratio: read('maxP99Ratio', DEFAULT_MAX_P99_RATIO, (n) => n > 1, 'a ratio above 1, e.g. 3')!,
    latencyMarginMs: read('latencyMarginMs', DEFAULT_LATENCY_MARGIN_MS, (n) => n >= 0, 'milliseconds >= 0')!,
  };
}
