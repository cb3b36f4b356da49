// The alert rule engine (README "Alerts"; DECISIONS "Alerts"): pure. Entries and a state value in, decisions and
// the next state out. The same module runs in the Lambda and in local mode's watcher.
import { AccessLogEntry, primaryPool, upstreamStatuses } from './access-log';
import { addSample, emptySamples, PoolSamples, sampleOf } from './pool-samples';
import type { ReleaseFigures } from './release-record';

export type TrafficAlertKind =
  'failover' | 'failover_recovered' | 'planned_switch' | 'error_rate' | 'error_rate_recovered' | 'users_see_errors';
/** Release events (release-events.ts): posted once per transition of the release record. */
export type ReleaseAlertKind =
  | 'release_started'
  | 'release_failed'
  | 'release_canary_aborted'
  | 'release_deployed'
  | 'release_promoted'
  | 'release_rolled_back'
  | 'release_held'
  | 'release_frozen';
export type AlertKind = TrafficAlertKind | ReleaseAlertKind;
export type Severity = 'critical' | 'warning' | 'info' | 'ok';

export interface RuleConfig {
  /** Requests in the error-rate window. */
  windowSize: number;
  /**
   * Share of requests failed by their primary pool (served by the other pool, a 5xx attempt, or a
   * 5xx status) above which the error-rate alert fires.
   */
  errorRateThreshold: number;
  /** Requests the window must hold before the error rate is judged. */
  minWindow: number;
  /** The error-rate alert recovers at or below threshold × this (hysteresis). */
  recoveryRatio: number;
  /** Consecutive answers from the active pool that end a failover episode. */
  recoveryConsecutive: number;
  /** Per-kind cooldown for alerts (recoveries and planned switches are never cooled down). */
  cooldownMs: number;
}

export const DEFAULT_RULE_CONFIG: RuleConfig = {
  windowSize: 200,
  errorRateThreshold: 0.02,
  minWindow: 50,
  recoveryRatio: 0.5,
  recoveryConsecutive: 3,
  cooldownMs: 300_000,
};

/** One request as the engine keeps it in the window: small, so state stays small. */
export interface WindowItem {
  /** Failed by its primary pool (`failedByPrimary`). */
  bad: boolean;
  /** The pool the request was first sent to ('' when the line names none): the release gate filters on it. */
  primary: string;
  /** Epoch ms of the request. */
  at: number;
  /** The client got a 5xx (set only when true). */
  saw5xx?: true;
  /** Set on failed requests only: what the alert message lists. */
  uri?: string;
  upstream?: string;
  /** Set on failed requests only: the host that logged it (a fleet's error-rate alert names them). */
  host?: string;
}

interface HostState {
  activePool?: string;
  /** The last planned switch, to tell old workers' late lines from a switch back. */
  lastSwitch?: { from: string; at: number };
  /** Last request seen from this host (epoch ms): hosts gone for a day are forgotten. */
  lastSeen?: number;
  /** Open failover episode: requests served by a pool other than their primary (`from`). */
  episode?: { since: number; from: string; to: string; posted: boolean; requests: number };
  /** Consecutive answers from the episode's pool to its own requests while an episode is open. */
  healthyStreak: number;
}

export interface EngineState {
  hosts: Record<string, HostState>;
  window: WindowItem[];
  /**
   * The latest requests first sent to each pool (pool-samples.ts): what the release guard judges a
   * release by. Kept in memory like the window (never persisted; a cold start rebuilds both).
   */
  samples?: PoolSamples;
  errorRate?: { since: number; posted: boolean; peak: number };
  /** Last time an alert of a cooldown key was posted (epoch ms). */
  lastPosted: Record<string, number>;
  /**
   * The release record (id, state) whose events were last announced (release-events.ts): kept
   * here so it is persisted with the rest of the state. The runtimes set it after posting.
   */
  releaseAnnounced?: { id: string; state: string };
  /**
   * On a fleet, when each direction of planned switch ("blue>green", "green>blue") was last posted:
   * the other hosts' same switch is not posted again (a slow host's flip after a quick flip back too).
   */
  fleetSwitches?: Record<string, number>;
}

/** A fleet's hosts all switch within this of each other (Run Command at once, the one-minute timer at worst). */
export const FLEET_SWITCH_MS = 2 * 60_000;

/** After a reload, old nginx workers still finish requests under the old config for a moment. */
export const STALE_AFTER_SWITCH_MS = 10_000;
/** A host that has logged nothing for this long was replaced: its state is dropped. */
export const FORGET_HOST_MS = 86_400_000;
/**
 * A host counts as one of the stage's hosts (the "M" of "N of M hosts") while it logged within this
 * long. In a fleet the load balancer's health check (GET /version every 10 s, through nginx) makes
 * every host in service log several lines a minute even without traffic, so 5 minutes of silence
 * means the host is gone (terminated by a rolling update or the group) or cannot ship its log; a
 * longer span would keep counting a replaced host, a shorter one would drop a host whose log
 * shipping lags. Its open episode stops counting then too.
 */
export const FLEET_SEEN_MS = 5 * 60_000;

export function emptyState(): EngineState {
  return { hosts: {}, window: [], lastPosted: {} };
}

export interface EngineInput {
  entry: AccessLogEntry;
  /** Which host wrote the line (log stream on AWS, the machine locally). */
  host: string;
  /** Epoch ms of the request. */
  at: number;
}

export interface WindowFigures {
  requests: number;
  /** Requests failed by their primary pool. */
  bad: number;
  rate: number;
  /** Requests answered to the client with a 5xx (what users saw; normally 0 thanks to failover). */
  usersSaw5xx: number;
  /** The primary pools of the failed requests, most first. */
  failedPools: Array<[string, number]>;
  topUris: Array<[string, number]>;
  topUpstreams: Array<[string, number]>;
  /**
   * In a fleet only (windowFigures with byHost): every host the failed requests came from, most
   * first ('?' for a request whose host is not known, e.g. rebuilt from history without it).
   */
  failedHosts?: Array<[string, number]>;
}

export interface Decision {
  kind: AlertKind;
  severity: Severity;
  at: number;
  host?: string;
  /** The pool that served (failover), the pool switched to (planned switch). */
  pool?: string;
  activePool?: string;
  previousPool?: string;
  release?: string;
  /** Release events: the record's id, previous release, strategy, gate figures and reason. */
  releaseId?: string;
  previousRelease?: string;
  strategy?: string;
  figures?: ReleaseFigures;
  reason?: string;
  summary: string;
  window?: WindowFigures;
  /** Why it is not posted: null = post it; 'fleet' = the same planned switch already posted for another host. */
  suppressed: null | 'cooldown' | 'maintenance' | 'fleet';
  /** Details an on-call engineer wants in the message. */
  details: Record<string, string | number>;
}

export interface EvaluateOptions {
  config: RuleConfig;
  maintenance: boolean;
  /**
   * Desired hosts of the stage (the hosts parameter, `fleet:<n>`); 0 = a fleet whose size could not
   * be read (the hosts seen stand in); undefined = a single host (no hosts parameter, local mode).
   * Messages say "N of M hosts" only when M (hostTotal) is above 1; a single host's stay as they were.
   */
  fleetSize?: number;
}

const POOLS = new Set(['blue', 'green']);

/**
 * The one failure measure (error-rate alert and release gate): the request's primary pool failed it
 * when it was served by another pool (a failover inside the request, or sent straight to the backup
 * because nginx had marked the primary down), or any attempt was a 5xx, or the client got a 5xx.
 * A planned switch never counts: every line names its own primary.
 */
export function failedByPrimary(
  entry: Pick<AccessLogEntry, 'status' | 'upstream_status' | 'pool' | 'primary_pool' | 'active_pool'>,
): boolean {
  if (entry.status >= 500) return true;
  const primary = primaryPool(entry);
  if (entry.pool !== primary && POOLS.has(entry.pool) && POOLS.has(primary)) return true;
  // Hot path: most lines are a single "200"; only a line holding a "5" can have a 5xx attempt.
  return entry.upstream_status.includes('5') && upstreamStatuses(entry).some((s) => s >= 500);
}

/** The window item for one request; `host` is kept on failed requests only (state stays small). */
export function windowItem(entry: AccessLogEntry, at: number, host?: string): WindowItem {
  const p = primaryPool(entry);
  const primary = POOLS.has(p) ? p : '';
  if (!failedByPrimary(entry)) return { bad: false, primary, at };
  const item: WindowItem = {
    bad: true,
    primary,
    at,
    uri: entry.uri.split('?')[0],
    upstream: entry.upstream_addr || undefined,
  };
  if (entry.status >= 500) item.saw5xx = true;
  if (host) item.host = host;
  return item;
}

function top(items: string[], n: number): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, n);
}

/**
 * Seeds the error-rate window from history (a cold start's rebuild): no decisions, no episodes.
 * `hosts[i]`, when given, is the host that logged `entries[i]` (its log stream).
 */
export function seedWindow(
  state: EngineState,
  entries: readonly AccessLogEntry[],
  config: RuleConfig,
  hosts?: readonly string[],
): EngineState {
  const from = Math.max(0, entries.length - config.windowSize);
  const window = entries.slice(from).map((entry, i) => windowItem(entry, entryTime(entry, 0), hosts?.[from + i]));
  const samples = emptySamples();
  entries.forEach((entry, i) => {
    const sampled = sampleOf(entry, entryTime(entry, 0), hosts?.[i] ?? '?');
    if (sampled) addSample(samples, sampled.pool, sampled.sample);
  });
  for (const pool of ['blue', 'green'] as const)
    for (const s of state.samples?.[pool] ?? []) addSample(samples, pool, s);
  return { ...state, window: [...window, ...state.window].slice(-config.windowSize), samples };
}

export function windowFigures(window: readonly WindowItem[], options: { byHost?: boolean } = {}): WindowFigures {
  const badItems = window.filter((w) => w.bad);
  const figures: WindowFigures = {
    requests: window.length,
    bad: badItems.length,
    rate: window.length ? badItems.length / window.length : 0,
    usersSaw5xx: badItems.reduce((n, w) => n + (w.saw5xx ? 1 : 0), 0),
    failedPools: top(
      badItems.map((w) => w.primary || '?'),
      2,
    ),
    topUris: top(
      badItems.map((w) => w.uri ?? '?'),
      5,
    ),
    topUpstreams: top(
      badItems.flatMap((w) => (w.upstream ? w.upstream.split(/,\s*/) : [])),
      3,
    ),
  };
  if (options.byHost)
    figures.failedHosts = top(
      badItems.map((w) => w.host ?? '?'),
      Infinity,
    );
  return figures;
}

/** Hosts that logged within FLEET_SEEN_MS of `at` (an open episode of a host gone longer is not counted). */
function recentHosts(state: EngineState, at: number): HostState[] {
  return Object.values(state.hosts).filter((h) => h.lastSeen !== undefined && at - h.lastSeen <= FLEET_SEEN_MS);
}

/**
 * The "M" of "N of M hosts": the desired count, or more when more hosts are logging (a rolling update
 * runs one extra host; a missing or stale hosts parameter must not make the count wrong). Above 1 = a fleet.
 */
export function hostTotal(state: EngineState, at: number, fleetSize: number | undefined): number {
  // No fleet size = a single host: a replaced instance logging next to its successor is not a fleet.
  if (fleetSize === undefined) return 1;
  return Math.max(fleetSize, recentHosts(state, at).length);
}

/** The hosts a fleet's error-rate message names: a few, most failed requests first. */
const HOSTS_LISTED = 3;

/** " — failed requests from N of M hosts: i-a 40, i-b 2" for the error-rate messages of a fleet. */
function failedHostsText(figures: WindowFigures, total: number): { text: string; count: string } {
  const hosts = figures.failedHosts ?? [];
  const known = hosts.filter(([host]) => host !== '?').length;
  const of = Math.max(total, known);
  if (figures.bad === 0) return { text: ` — no failed requests from any of the ${of} hosts`, count: `0 of ${of}` };
  const listed = hosts.slice(0, HOSTS_LISTED).map(([host, n]) => `${host} ${n}`);
  const more = hosts.length > HOSTS_LISTED ? `, … (${hosts.length - HOSTS_LISTED} more)` : '';
  return {
    text: ` — failed requests from ${known} of ${of} hosts: ${listed.join(', ')}${more}`,
    count: `${known} of ${of}`,
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Evaluates a batch of entries in order. Returns every decision (posted or suppressed: the caller
 * logs them all) and the next state. Does not mutate `state`.
 *
 * Per line, in this order (each step sees what the steps before it recorded): the host's planned
 * switch and active pool, its failover episode, the stage's error-rate window, users seeing a 5xx.
 * Then the state is pruned. The steps work on `next`, the batch's own copy of the state.
 */
export function evaluate(
  state: EngineState,
  inputs: readonly EngineInput[],
  options: EvaluateOptions,
): { state: EngineState; decisions: Decision[] } {
  // The samples are the bulk of the state and hold flat objects never changed once made: the lists
  // are copied (pointers, cheap), the samples shared, where structuredClone would copy 20,000 objects a batch.
  const { samples: before = emptySamples(), ...rest } = state;
  const samples: PoolSamples = { blue: before.blue.slice(), green: before.green.slice() };
  const next: EngineState = { ...structuredClone(rest), samples };
  const decisions: Decision[] = [];
  const decide = decider(next.lastPosted, options, decisions);
  // Kept incrementally: recounting the window per request made the engine O(window) per line.
  let badInWindow = next.window.reduce((n, w) => n + (w.bad ? 1 : 0), 0);

  for (const input of inputs) {
    const line = readLine(input);
    const h = observeHost(next.hosts, line);
    plannedSwitchRule(next, h, line, options.fleetSize, decide);
    failoverRule(next, h, line, options, decide);
    badInWindow = slideWindow(
      next.window,
      windowItem(line.entry, line.at, line.host),
      badInWindow,
      options.config.windowSize,
    );
    errorRateRule(next, badInWindow, line, options, decide);
    usersSeeErrorsRule(line, decide);
    const sampled = sampleOf(line.entry, line.at, line.host);
    if (sampled) addSample(samples, sampled.pool, sampled.sample);
  }
  pruneState(next, latestAt(inputs), options.config.cooldownMs);
  return { state: next, decisions };
}

/** One input line as the rules read it: the pools it names, each only when it is blue or green. */
interface Line {
  entry: AccessLogEntry;
  host: string;
  at: number;
  /** The configured primary when nginx wrote the line. */
  active?: string;
  /** The pool that answered. */
  served?: string;
  /** The pool the request was first sent to. */
  primary?: string;
}

function readLine({ entry, host, at }: EngineInput): Line {
  const pool = (p: string) => (POOLS.has(p) ? p : undefined);
  return {
    entry,
    host,
    at,
    active: pool(entry.active_pool),
    served: pool(entry.pool),
    primary: pool(primaryPool(entry)),
  };
}

/** Records a decision (posted, or suppressed by maintenance or its cooldown key's cooldown) and returns it. */
type Decide = (d: Omit<Decision, 'suppressed'>, cooldownKey?: string) => Decision;

/** The one place decisions are made: appends to `decisions`, and to `lastPosted` when one is posted under a cooldown key. */
function decider(
  lastPosted: EngineState['lastPosted'],
  options: Pick<EvaluateOptions, 'config' | 'maintenance'>,
  decisions: Decision[],
): Decide {
  return (d, cooldownKey) => {
    let suppressed: Decision['suppressed'] = null;
    if (options.maintenance) suppressed = 'maintenance';
    else if (cooldownKey !== undefined) {
      const last = lastPosted[cooldownKey];
      if (last !== undefined && d.at - last < options.config.cooldownMs) suppressed = 'cooldown';
      else lastPosted[cooldownKey] = d.at;
    }
    const decision = { ...d, suppressed };
    decisions.push(decision);
    return decision;
  };
}

/** The state of the host that wrote the line (new hosts start empty), marked as seen at the line's time. */
function observeHost(hosts: EngineState['hosts'], line: Line): HostState {
  const h = (hosts[line.host] ??= { healthyStreak: 0 });
  h.lastSeen = line.at;
  return h;
}

/** A line from an old worker finishing a request under the previous config: not a switch back. */
function isStaleLine(h: HostState, line: Line): boolean {
  const { active, at } = line;
  return (
    active !== undefined &&
    h.lastSwitch !== undefined &&
    active === h.lastSwitch.from &&
    active !== h.activePool &&
    at - h.lastSwitch.at < STALE_AFTER_SWITCH_MS
  );
}

/**
 * Planned switch: the configured primary changed. Info, never a failover. Then the host's active
 * pool follows the line (a stale line changes neither).
 */
function plannedSwitchRule(
  next: EngineState,
  h: HostState,
  line: Line,
  fleetSize: number | undefined,
  decide: Decide,
): void {
  const { active, host, at } = line;
  if (!active || isStaleLine(h, line)) return;
  if (h.activePool && active !== h.activePool) {
    // On a fleet one flip is N hosts switching: posted once, for the first host that logs it.
    const total = hostTotal(next, at, fleetSize);
    const direction = `${h.activePool}>${active}`;
    const seen = next.fleetSwitches?.[direction];
    const sameFlip = total > 1 && seen !== undefined && at - seen < FLEET_SWITCH_MS;
    const d = decide({
      kind: 'planned_switch',
      severity: 'info',
      at,
      host,
      pool: active,
      previousPool: h.activePool,
      activePool: active,
      summary: `Planned switch on ${host}: active pool ${h.activePool} → ${active}${total > 1 ? ` — the fleet's ${total} hosts follow (posted once, for the first)` : ''}`,
      details: { from: h.activePool, to: active, ...(total > 1 ? { hosts: total } : {}) },
    });
    if (sameFlip && d.suppressed === null) d.suppressed = 'fleet';
    else if (total > 1 && !sameFlip) next.fleetSwitches = { ...next.fleetSwitches, [direction]: at };
    h.lastSwitch = { from: h.activePool, at };
    // An episode against the old primary is over: the operator moved traffic on purpose.
    if (h.episode) {
      h.episode = undefined;
      h.healthyStreak = 0;
    }
  }
  h.activePool = active;
}

/**
 * Failover episodes, per host: a request served by a pool other than the one it was first sent
 * to. Every line names its own primary (older lines: the active pool), so a canary request
 * answered by the canary pool is no failover, and neither is an old worker's late line.
 */
function failoverRule(next: EngineState, h: HostState, line: Line, options: EvaluateOptions, decide: Decide): void {
  const { primary, served } = line;
  if (!primary || !served) return;
  if (served !== primary) {
    if (!h.episode) openEpisode(next, h, line, options.fleetSize, decide);
    else {
      h.episode.requests++;
      if (primary === h.episode.from) h.healthyStreak = 0;
    }
  } else if (h.episode && primary === h.episode.from) {
    h.healthyStreak++;
    if (h.healthyStreak >= options.config.recoveryConsecutive) closeEpisode(next, h, line, options.fleetSize, decide);
  }
}

/** The first request of a host served by another pool than its primary: a failover alert (cooled down per host). */
function openEpisode(next: EngineState, h: HostState, line: Line, fleetSize: number | undefined, decide: Decide): void {
  const { entry, host, at, active } = line;
  const primary = line.primary!;
  const served = line.served!;
  const canary = active !== undefined && primary !== active;
  // In a fleet: how many hosts have the backup answering now, this one included.
  const total = hostTotal(next, at, fleetSize);
  const onServed = 1 + recentHosts(next, at).filter((o) => o !== h && o.episode?.to === served).length;
  const fleet =
    total > 1
      ? { text: ` — ${served} answering on ${onServed} of ${total} hosts`, count: `${onServed} of ${total}` }
      : undefined;
  const d = decide(
    {
      kind: 'failover',
      severity: 'warning',
      at,
      host,
      pool: served,
      activePool: active,
      release: entry.release,
      summary: `Failover on ${host}: ${primary} is failing, ${served} is answering${canary ? ` (canary requests first sent to ${primary})` : ''}${fleet?.text ?? ''}`,
      details: {
        ...(canary ? { primary_pool: primary } : {}),
        upstream_status: entry.upstream_status || '-',
        upstream_addr: entry.upstream_addr || '-',
        uri: entry.uri,
        request_id: entry.request_id,
        ...(fleet ? { hosts_failing_over: fleet.count } : {}),
      },
    },
    `failover:${host}`,
  );
  h.episode = { since: at, from: primary, to: served, posted: d.suppressed === null, requests: 1 };
  h.healthyStreak = 0;
}

/** Enough answers in a row from the primary again: the episode ends, with a recovery when its failover was posted. */
function closeEpisode(
  next: EngineState,
  h: HostState,
  line: Line,
  fleetSize: number | undefined,
  decide: Decide,
): void {
  const { entry, host, at, active, primary, served } = line;
  const episode = h.episode!;
  h.episode = undefined;
  h.healthyStreak = 0;
  if (!episode.posted) return;
  const total = hostTotal(next, at, fleetSize);
  const fleet = total > 1 ? stillFailingOver(recentHosts(next, at), episode.to, total) : undefined;
  decide({
    kind: 'failover_recovered',
    severity: 'ok',
    at,
    host,
    pool: served,
    activePool: active,
    release: entry.release,
    summary: `Recovered on ${host}: ${primary} is answering again after ${Math.round((at - episode.since) / 1000)} s${fleet?.text ?? ''}`,
    details: {
      duration_s: Math.round((at - episode.since) / 1000),
      requests_on_backup: episode.requests,
      ...(fleet ? { hosts_failing_over: fleet.count } : {}),
    },
  });
}

/** Appends `item` to the window and drops the oldest beyond `windowSize`; returns the window's new count of bad items. */
function slideWindow(window: WindowItem[], item: WindowItem, badInWindow: number, windowSize: number): number {
  let bad = badInWindow;
  window.push(item);
  if (item.bad) bad++;
  while (window.length > windowSize) if (window.shift()!.bad) bad--;
  return bad;
}

/**
 * Error rate over the last N requests, stage-wide: the share failed by their primary pool. Judged
 * once the window holds minWindow requests; fires above the threshold, recovers at or below
 * threshold × recoveryRatio.
 */
function errorRateRule(
  next: EngineState,
  badInWindow: number,
  line: Line,
  options: EvaluateOptions,
  decide: Decide,
): void {
  const { config } = options;
  if (next.window.length < config.minWindow) return;
  const rate = badInWindow / next.window.length;
  if (!next.errorRate && rate > config.errorRateThreshold) errorRateFired(next, line, options, decide);
  else if (next.errorRate) {
    next.errorRate.peak = Math.max(next.errorRate.peak, rate);
    if (rate <= config.errorRateThreshold * config.recoveryRatio)
      errorRateRecovered(next, line, options.fleetSize, decide);
  }
}

/** The window's figures for a message, by host on a fleet, and the fleet's "N of M hosts" text. */
function errorRateFigures(
  next: EngineState,
  at: number,
  fleetSize: number | undefined,
): { figures: WindowFigures; fleet?: { text: string; count: string } } {
  const total = hostTotal(next, at, fleetSize);
  const figures = windowFigures(next.window, { byHost: total > 1 });
  return { figures, fleet: total > 1 ? failedHostsText(figures, total) : undefined };
}

function errorRateFired(next: EngineState, line: Line, options: EvaluateOptions, decide: Decide): void {
  const { host, at, active } = line;
  const { figures, fleet } = errorRateFigures(next, at, options.fleetSize);
  const d = decide(
    {
      kind: 'error_rate',
      severity: 'warning',
      at,
      host,
      activePool: active,
      summary: `Error rate ${pct(figures.rate)} over the last ${figures.requests} requests (threshold ${pct(options.config.errorRateThreshold)}): ${figures.bad} failed by their primary pool${figures.failedPools.length ? ` (${figures.failedPools.map(([pool, n]) => `${pool} ${n}`).join(', ')})` : ''}, users saw 5xx on ${figures.usersSaw5xx} (${pct(figures.usersSaw5xx / figures.requests)})${fleet?.text ?? ''}`,
      window: figures,
      details: {
        failed: figures.bad,
        requests: figures.requests,
        users_saw_5xx: figures.usersSaw5xx,
        ...(fleet ? { hosts_with_failures: fleet.count } : {}),
      },
    },
    'error_rate',
  );
  next.errorRate = { since: at, posted: d.suppressed === null, peak: figures.rate };
}

function errorRateRecovered(next: EngineState, line: Line, fleetSize: number | undefined, decide: Decide): void {
  const { host, at, active } = line;
  const { figures, fleet } = errorRateFigures(next, at, fleetSize);
  const episode = next.errorRate!;
  next.errorRate = undefined;
  if (!episode.posted) return;
  decide({
    kind: 'error_rate_recovered',
    severity: 'ok',
    at,
    host,
    activePool: active,
    summary: `Error rate back to ${pct(figures.rate)} over the last ${figures.requests} requests (peak ${pct(episode.peak)})${fleet?.text ?? ''}`,
    window: figures,
    details: {
      duration_s: Math.round((at - episode.since) / 1000),
      peak: pct(episode.peak),
      ...(fleet ? { hosts_with_failures: fleet.count } : {}),
    },
  });
}

/** Users see errors: a 5xx reached the client (both pools failed for this request). */
function usersSeeErrorsRule(line: Line, decide: Decide): void {
  const { entry, host, at, active, served } = line;
  if (!(entry.status >= 500)) return;
  decide(
    {
      kind: 'users_see_errors',
      severity: 'critical',
      at,
      host,
      pool: served,
      activePool: active,
      release: entry.release,
      summary: `Users see errors on ${host}: ${entry.method} ${entry.uri.split('?')[0]} answered ${entry.status} (upstream ${entry.upstream_status || 'none'})`,
      details: {
        status: entry.status,
        upstream_status: entry.upstream_status || '-',
        upstream_addr: entry.upstream_addr || '-',
        request_id: entry.request_id,
      },
    },
    'users_see_errors',
  );
}

/** The latest request time of a batch (undefined for an empty batch: nothing is pruned). */
function latestAt(inputs: readonly EngineInput[]): number | undefined {
  return inputs.length ? Math.max(...inputs.map((i) => i.at)) : undefined;
}

/** Keeps the state small (it is persisted): forgets replaced hosts and cooldowns that have run out. */
function pruneState(next: EngineState, latest: number | undefined, cooldownMs: number): void {
  if (latest === undefined) return;
  for (const [host, h] of Object.entries(next.hosts))
    if (h.lastSeen !== undefined && latest - h.lastSeen > FORGET_HOST_MS) delete next.hosts[host];
  for (const [key, last] of Object.entries(next.lastPosted))
    if (latest - last >= cooldownMs && latest - last > FORGET_HOST_MS) delete next.lastPosted[key];
}

/**
 * " — still on green on 1 of 3 hosts" for a fleet's recovery message: the hosts whose backup `to`
 * still answers (the recovered one is already out of them); else those failing over the other way;
 * else none.
 */
function stillFailingOver(hosts: readonly HostState[], to: string, total: number): { text: string; count: string } {
  const open = hosts.filter((h) => h.episode !== undefined);
  const sameWay = open.filter((h) => h.episode!.to === to).length;
  if (sameWay > 0)
    return { text: ` — still on ${to} on ${sameWay} of ${total} hosts`, count: `${sameWay} of ${total}` };
  if (open.length > 0)
    return {
      text: ` — no host on ${to} now, still failing over on ${open.length} of ${total} hosts`,
      count: `${open.length} of ${total}`,
    };
  return { text: ' — no host failing over now', count: `0 of ${total}` };
}

/** Epoch ms of an entry: `msec` when nginx wrote it, else the ISO `time`, else the fallback. */
export function entryTime(entry: AccessLogEntry, fallback: number): number {
  if (typeof entry.msec === 'number') return Math.round(entry.msec * 1000);
  const parsed = Date.parse(entry.time);
  return Number.isNaN(parsed) ? fallback : parsed;
}
