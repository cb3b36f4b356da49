// Parameter Store's request budget, modelled in one place. Every caller of Parameter Store
// in a stage shares one budget per account and Region (AWS_LIMITS.parameterStoreThroughput: 40
// requests a second for GetParameter, GetParameters and PutParameter together, by default): the
// hosts' one-minute timers, hosts waiting to join, the alert function and the release CLI. This
// module holds the cadence of each (the code reads them from here) and computes what they ask of the
// budget on the largest fleet; test/unit/ssm-budget.test.ts holds it under half the budget, leaving
// the other half to the account's other stages and applications.
//
// The busiest second, not the average: the hosts' timers all run on wall-clock minutes, so what
// throttles is a second in which many of them run together. Each source is callers that run every
// so often at a random point of a window; a caller's chance to run in a given second of that window
// is 1 / the window, independently of the others. The count of requests in a second is then a sum
// of binomials, computed exactly, and the busiest second is the count exceeded with probability
// below PEAK_MISS. Sources that run several times a second count as that many requests every second.
//
// Pure and dependency-free: the alert function bundles the cadences.
import { AWS_LIMITS, MAX_FLEET_HOSTS } from './aws-limits';
import { STALE_AFTER_MS } from './release-record';

/**
 * The hosts' bluegreen-apply.timer (userdata/bluegreen-apply.timer; a test holds the unit to this):
 * every wall-clock minute, each host at a fixed random offset within RandomizedDelaySec
 * (FixedRandomDelay: drawn once per host, so a host runs every 60 s), within AccuracySec of it.
 * Before: AccuracySec 5 s and no delay, every host of the account within the same ~5 s.
 */
export const HOST_TIMER = {
  onCalendar: 'minutely',
  periodSeconds: 60,
  randomizedDelaySeconds: 55,
  accuracySeconds: 1,
  fixedRandomDelay: true,
} as const;

/**
 * A joining fleet host re-reads the release record this often while a release holds it
 * (fleet/bluegreen-join.sh JOIN_POLL_SECONDS). A read of the ledger (DynamoDB), not of Parameter Store.
 */
export const JOIN_POLL_SECONDS = 15;

/**
 * The release CLI re-reads the record this often on a stage while it waits (canary, bake): a ledger read
 * (DynamoDB on demand), outside Parameter Store's budget. Locally it reads a file.
 */
export const CLI_RECORD_POLL_MS = 2_000;
/**
 * While a phase runs longer than this (a deploy in rounds, a long canary) the CLI writes the record
 * again: not final and not written for STALE_AFTER_MS means abandoned, to the next release and to a
 * fleet host waiting to join, which would otherwise join mid-release.
 */
export const CLI_RECORD_REFRESH_MS = STALE_AFTER_MS / 2;

/** The function's other parameters (maintenance, the hosts count, the webhook) are read at most this often. */
export const PARAMETER_MAX_AGE_MS = 60_000;
/**
 * The alert state is saved at once when something that matters changed (an episode, a cooldown, a
 * delivery, a switch); when only hosts' last-seen times and counters moved, at most this often. It
 * was saved on every batch: a fleet's hosts each ship a batch every few seconds.
 */
export const STATE_SAVE_INTERVAL_MS = 60_000;
/** The CloudWatch agent ships each host's log this often (userdata/cloudwatch-agent.json force_flush_interval): a batch per host. */
export const AGENT_FLUSH_SECONDS = 5;

/**
 * What a throttled call (ThrottlingException) gets: the SDK's and the AWS CLI's standard retry mode
 * (exponential backoff with jitter, at most 20 s a wait), 8 attempts in all: a second of 50 hosts
 * asking at once (a flip's Run Command) spreads out within a few retries, and a throttled host never
 * fails a release's gate for it. The SDK's and AWS CLI v2's default is 3 attempts; AWS CLI v1's
 * legacy mode 5.
 */
export const THROTTLE_RETRY = { mode: 'standard', maxAttempts: 8 } as const;

/** The SDK clients' configuration for it (the alert function, the CLI). */
export const sdkRetryConfig = () => ({ retryMode: THROTTLE_RETRY.mode, maxAttempts: THROTTLE_RETRY.maxAttempts });

/** The hosts' /etc/bluegreen/env lines for it: the aws CLI reads them (bluegreen-apply, bluegreen-join). */
export const hostRetryEnv = (): Record<string, string> => ({
  AWS_RETRY_MODE: THROTTLE_RETRY.mode,
  AWS_MAX_ATTEMPTS: String(THROTTLE_RETRY.maxAttempts),
});

/** The share of the account's budget one stage may use. */
export const BUDGET_SHARE = 0.5;
/** The busiest second is the request count exceeded in fewer than one second in a million (about once in 12 days of seconds). */
export const PEAK_MISS = 1e-6;

export interface RequestSource {
  readonly name: string;
  /** Independent callers: hosts, or 1. */
  readonly callers: number;
  /** Requests per run. */
  readonly requests: number;
  /** A run every this many seconds (below 1: several runs every second). */
  readonly everySeconds: number;
  /** Each run at a random point of a window this long (at most everySeconds). */
  readonly spreadSeconds: number;
}

/** What one stage asks of Parameter Store while a release runs on `hosts` hosts, source by source (today's cadences). */
export function releaseSources(hosts: number = MAX_FLEET_HOSTS): RequestSource[] {
  const s = (ms: number) => ms / 1000;
  return [
    // bluegreen-apply: the host's 10 parameters in one GetParameters (AWS_LIMITS.getParametersNames: 10, all of it).
    {
      name: "hosts' timers",
      callers: hosts,
      requests: 1,
      everySeconds: HOST_TIMER.periodSeconds,
      spreadSeconds: HOST_TIMER.randomizedDelaySeconds + HOST_TIMER.accuracySeconds,
    },
    // The release record (the CLI's polls and writes, the guard's reads, joining hosts) is in the
    // ledger (DynamoDB) since the ledger: none of it is here any more.
    // maintenance, the hosts count and the webhook.
    {
      name: 'alert function: other parameters',
      callers: 1,
      requests: 3,
      everySeconds: s(PARAMETER_MAX_AGE_MS),
      spreadSeconds: s(PARAMETER_MAX_AGE_MS),
    },
    {
      name: 'alert function: state saves',
      callers: 1,
      requests: 1,
      everySeconds: s(STATE_SAVE_INTERVAL_MS),
      spreadSeconds: s(STATE_SAVE_INTERVAL_MS),
    },
  ];
}

/**
 * The same before the budget model (the earlier cadences): timers within AccuracySec 5 s, the alert state saved on every batch (one
 * per host every AGENT_FLUSH_SECONDS), the CLI polling the record every 250 ms.
 */
export function previousReleaseSources(hosts: number = MAX_FLEET_HOSTS): RequestSource[] {
  return releaseSources(hosts).map((src) => {
    if (src.name === "hosts' timers") return { ...src, spreadSeconds: 5 };
    if (src.name === 'alert function: state saves')
      return { ...src, everySeconds: AGENT_FLUSH_SECONDS / hosts, spreadSeconds: AGENT_FLUSH_SECONDS / hosts };
    return src;
  });
}

/** P(X = k) for X ~ Binomial(n, p), k = 0..n. */
function binomial(n: number, p: number): number[] {
  if (p >= 1) return [...new Array<number>(n).fill(0), 1];
  const pmf = [(1 - p) ** n];
  for (let k = 1; k <= n; k++) pmf.push((pmf[k - 1] * (n - k + 1) * p) / (k * (1 - p)));
  return pmf;
}

function convolve(a: number[], b: number[]): number[] {
  const out = new Array<number>(a.length + b.length - 1).fill(0);
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) for (let j = 0; j < b.length; j++) out[i + j] += a[i] * b[j];
  return out;
}

/** The distribution of one source's requests in a second of its window. */
function perSecond(src: RequestSource): number[] {
  if (src.everySeconds < 1) {
    // Several runs each second: that many, every second.
    const n = Math.ceil(1 / src.everySeconds) * src.callers * src.requests;
    return [...new Array<number>(n).fill(0), 1];
  }
  const runs = binomial(src.callers, 1 / Math.max(1, src.spreadSeconds));
  const pmf = new Array<number>(src.callers * src.requests + 1).fill(0);
  runs.forEach((p, k) => (pmf[k * src.requests] += p));
  return pmf;
}

export interface Load {
  /** Requests a second, on average over a minute. */
  readonly averagePerSecond: number;
  /** Requests in the busiest second (exceeded with probability below PEAK_MISS). */
  readonly busiestSecond: number;
  /** The source's own busiest second, for the table. */
  readonly bySource: ReadonlyArray<{ name: string; averagePerSecond: number; busiestSecond: number }>;
}

function busiest(pmf: number[]): number {
  let above = 1;
  for (let k = 0; k < pmf.length; k++) {
    above -= pmf[k];
    if (above < PEAK_MISS) return k;
  }
  return pmf.length - 1;
}

export function parameterStoreLoad(sources: readonly RequestSource[]): Load {
  const average = (src: RequestSource) => (src.callers * src.requests) / src.everySeconds;
  const pmfs = sources.map(perSecond);
  return {
    averagePerSecond: sources.reduce((sum, src) => sum + average(src), 0),
    busiestSecond: busiest(pmfs.reduce(convolve, [1])),
    bySource: sources.map((src, i) => ({
      name: src.name,
      averagePerSecond: average(src),
      busiestSecond: busiest(pmfs[i]),
    })),
  };
}

/** What one stage may use of the account's budget. */
export const STAGE_BUDGET_PER_SECOND = AWS_LIMITS.parameterStoreThroughput.value * BUDGET_SHARE;

/**
 * A Run Command that reaches every host at once (a flip through the pool-switch rule, a canary share)
 * is one GetParameters per host in about a second: on the largest fleet more than the account's whole
 * budget for that second. Not avoidable without slowing flips; THROTTLE_RETRY spreads the throttled
 * ones over the next seconds. Returned so the docs and the test can say how large it is.
 */
export const fanOutBurst = (hosts: number = MAX_FLEET_HOSTS) => hosts;
