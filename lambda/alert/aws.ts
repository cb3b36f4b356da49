// The Lambda's AWS edges, kept thin: parameters (cached), persisted engine state, the window rebuild
// from the log group after a cold start, and the dead-letter queue. Clients are passed in.
import { CloudWatchLogsClient, FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetParameterCommand, ParameterNotFound, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { AccessLogEntry, parseAccessLogLine } from '../../core/access-log';
import { ALARM_SEVERITY, AlarmStateChange } from '../../core/alarm-notification';
import { limit } from '../../core/aws-limits';
import { STATE_SAVE_INTERVAL_MS } from '../../core/ssm-budget';
import { Decision, EngineState } from '../../core/rules';

/** SSM parameters with a max age; `undefined` when the parameter does not exist. */
export class ParameterCache {
  private readonly values = new Map<string, { value: string | undefined; at: number }>();
  constructor(
    private readonly ssm: SSMClient,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(name: string, decrypt = false): Promise<string | undefined> {
    const hit = this.values.get(name);
    if (hit && this.now() - hit.at < this.maxAgeMs) return hit.value;
    let value: string | undefined;
    try {
      const res = await this.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: decrypt }));
      value = res.Parameter?.Value;
    } catch (err) {
      if (!(err instanceof ParameterNotFound) && (err as Error).name !== 'ParameterNotFound') throw err;
    }
    this.values.set(name, { value, at: this.now() });
    return value;
  }

  clear(): void {
    this.values.clear();
  }
}

/** What outlives a cold start: episodes, the error-rate episode and cooldowns (not the window). */
export type PersistedState = Omit<EngineState, 'window' | 'samples'> & {
  /**
   * Entries (delivered.ts: key and delivery time) of the decisions already posted or sent to the dead-letter queue,
   * written after each one: Lambda's retry of a batch that timed out half-way skips them.
   */
  delivered?: string[];
};

export function persistable(state: EngineState): PersistedState {
  const { window: _window, samples: _samples, ...rest } = state;
  return rest;
}

export async function loadState(ssm: SSMClient, name: string): Promise<PersistedState | undefined> {
  try {
    const res = await ssm.send(new GetParameterCommand({ Name: name }));
    const parsed = JSON.parse(res.Parameter?.Value ?? '{}') as Partial<PersistedState>;
    return {
      hosts: parsed.hosts ?? {},
      lastPosted: parsed.lastPosted ?? {},
      errorRate: parsed.errorRate,
      releaseAnnounced: parsed.releaseAnnounced,
      ...(parsed.fleetSwitches ? { fleetSwitches: parsed.fleetSwitches } : {}),
      delivered: Array.isArray(parsed.delivered) ? parsed.delivered.filter((k) => typeof k === 'string') : undefined,
    };
  } catch (err) {
    if ((err as Error).name === 'ParameterNotFound') return undefined;
    if (err instanceof SyntaxError) return undefined; // a hand-edited value: start clean rather than fail forever
    throw err;
  }
}

/** The state is a standard parameter: its value is measured in bytes (UTF-8), as SSM measures it. */
export const STATE_MAX_BYTES = limit('standardParameterValue');

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');

/**
 * The state cut to fit its parameter. A fleet keeps one entry per host (and per host cooldown) for
 * a day, so 50 hosts, or a rolling update that doubles them, outgrow 4 KB and the save would fail
 * the function. What goes first costs least: cooldowns posted before `spentBefore` (run out: they
 * decide nothing), oldest first; hosts with no open failover episode, least recently seen first (a
 * dropped host only misses a planned-switch notice); running cooldowns (one alert may repeat); hosts
 * in an episode; delivered keys, oldest first.
 */
export function fitState(
  state: PersistedState,
  spentBefore = 0,
  maxBytes = STATE_MAX_BYTES,
): { state: PersistedState; dropped: number } {
  if (bytes(state) <= maxBytes) return { state, dropped: 0 };
  const out: PersistedState = {
    ...state,
    hosts: { ...state.hosts },
    lastPosted: { ...state.lastPosted },
    ...(state.delivered ? { delivered: [...state.delivered] } : {}),
  };
  const byAge = (entries: Array<[string, number]>) => entries.sort((a, b) => a[1] - b[1]).map(([k]) => k);
  const quiet = byAge(
    Object.entries(out.hosts)
      .filter(([, h]) => !h.episode)
      .map(([k, h]) => [k, h.lastSeen ?? 0]),
  );
  const cooldowns = byAge(Object.entries(out.lastPosted));
  const spent = cooldowns.filter((k) => out.lastPosted[k] < spentBefore);
  const running = cooldowns.filter((k) => out.lastPosted[k] >= spentBefore);
  const inEpisode = byAge(
    Object.entries(out.hosts)
      .filter(([, h]) => h.episode)
      .map(([k, h]) => [k, h.lastSeen ?? 0]),
  );
  const steps: Array<() => void> = [
    ...spent.map((k) => () => delete out.lastPosted[k]),
    ...quiet.map((k) => () => delete out.hosts[k]),
    ...running.map((k) => () => delete out.lastPosted[k]),
    ...inEpisode.map((k) => () => delete out.hosts[k]),
    ...(out.delivered ?? []).map(() => () => out.delivered!.shift()),
  ];
  let dropped = 0;
  // Removing keys by the byte count of each: cheap enough for a state of a few KB.
  let size = bytes(out);
  for (const step of steps) {
    if (size <= maxBytes) break;
    step();
    dropped++;
    size = bytes(out);
  }
  return { state: out, dropped };
}

/**
 * The state without what moves with every line (each host's last-seen time and healthy streak, an
 * episode's request count, the error-rate peak): what a save is needed for at once when it changes.
 */
export function lastingPart(state: PersistedState): PersistedState {
  const hosts = Object.fromEntries(
    Object.entries(state.hosts).map(([id, h]) => {
      const { lastSeen: _seen, healthyStreak: _streak, ...rest } = h;
      return [
        id,
        { ...rest, healthyStreak: 0, ...(rest.episode ? { episode: { ...rest.episode, requests: 0 } } : {}) },
      ];
    }),
  );
  return { ...state, hosts, ...(state.errorRate ? { errorRate: { ...state.errorRate, peak: 0 } } : {}) };
}

/**
 * Whether the state must be saved now: at once when its lasting part changed; when only last-seen
 * times and counters moved, once STATE_SAVE_INTERVAL_MS has passed since the last save (they cost
 * nothing to lose: a host that logs is seen again, a counter restarts). A fleet's hosts each send a
 * batch every few seconds, and a save per batch was most of the stage's Parameter Store requests.
 */
export function saveDue(before: PersistedState, after: PersistedState, msSinceSave: number): boolean {
  if (JSON.stringify(lastingPart(after)) !== JSON.stringify(lastingPart(before))) return true;
  return msSinceSave >= STATE_SAVE_INTERVAL_MS && JSON.stringify(after) !== JSON.stringify(before);
}

export async function saveState(ssm: SSMClient, name: string, state: PersistedState, spentBefore = 0): Promise<number> {
  const fitted = fitState(state, spentBefore);
  await ssm.send(
    new PutParameterCommand({ Name: name, Value: JSON.stringify(fitted.state), Type: 'String', Overwrite: true }),
  );
  return fitted.dropped;
}

/**
 * The last `limit` access-log entries written to the group in [end - lookback, end): a cold start
 * rebuilds the error-rate window from them. Malformed lines are skipped (they were counted when
 * they first arrived). `hosts[i]` is the log stream (the host) of `entries[i]`.
 */
export async function recentEntries(
  logs: CloudWatchLogsClient,
  logGroupName: string,
  endMs: number,
  lookbackMs: number,
  limit: number,
  maxPages = 20,
): Promise<{ entries: AccessLogEntry[]; hosts: string[]; ids: string[] }> {
  const events: Array<{ id: string; message: string; timestamp: number; stream: string }> = [];
  let nextToken: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const res = await logs.send(
      new FilterLogEventsCommand({ logGroupName, startTime: endMs - lookbackMs, endTime: endMs - 1, nextToken }),
    );
    for (const e of res.events ?? [])
      if (e.eventId && e.message)
        events.push({ id: e.eventId, message: e.message, timestamp: e.timestamp ?? 0, stream: e.logStreamName ?? '' });
    nextToken = res.nextToken;
    if (!nextToken) break;
  }
  events.sort((a, b) => a.timestamp - b.timestamp);
  const last = events.slice(-limit);
  const entries: AccessLogEntry[] = [];
  const hosts: string[] = [];
  for (const e of last) {
    const parsed = parseAccessLogLine(e.message);
    if (parsed.ok) {
      entries.push(parsed.entry);
      hosts.push(e.stream);
    }
  }
  return { entries, hosts, ids: last.map((e) => e.id) };
}

/** Writes the release record (core/release-record.ts), advanced tier only when it needs 8 KB. */
/** Sets a plain String parameter (the active pool on a rollback, the canary share on an abort). */
export async function putValue(ssm: SSMClient, name: string, value: string): Promise<void> {
  await ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: 'String', Overwrite: true }));
}

export async function sendToDeadLetter(
  sqs: SQSClient,
  queueUrl: string,
  decision: Decision,
  reason: string,
  stage: string,
): Promise<void> {
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: JSON.stringify({ stage, reason, decision }),
      MessageAttributes: {
        kind: { DataType: 'String', StringValue: decision.kind },
        severity: { DataType: 'String', StringValue: decision.severity },
      },
    }),
  );
}

/** An alarm state change Slack did not take: the same queue, the same shape (`alarm` instead of `decision`). */
export async function sendAlarmToDeadLetter(
  sqs: SQSClient,
  queueUrl: string,
  alarm: AlarmStateChange,
  reason: string,
  stage: string,
): Promise<void> {
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: JSON.stringify({ stage, reason, alarm }),
      MessageAttributes: {
        kind: { DataType: 'String', StringValue: 'alarm' },
        severity: { DataType: 'String', StringValue: ALARM_SEVERITY[alarm.state] },
      },
    }),
  );
}
