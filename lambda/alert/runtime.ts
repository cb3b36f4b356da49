// The alert function's logic with its dependencies passed in: the handler is a shell over this.
// Invocations are serialized (reserved concurrency 1), so one instance owns the state at a time.
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { annotateReleases } from './dashboard';
import { DynamoReleaseLedger } from '../../support/release-ledger';
import { stageGuardPorts } from '../stage-ports';
import { alarmChanges, AlarmStateChange, isNotified, isSnsEvent } from '../../core/alarm-notification';
import {
  loadState,
  ParameterCache,
  persistable,
  PersistedState,
  recentEntries,
  saveDue,
  saveState,
  sendAlarmToDeadLetter,
  sendToDeadLetter,
} from './aws';
import { decodeSubscription, PayloadError } from './decode';
import { deliveredEntry, deliveryKey, normalizeDelivered, pruneDelivered, wasDelivered } from './delivered';
import { insightsUrl, INSIGHTS_QUERIES } from '../../core/insights-queries';
import { logGroupNames } from '../../core/names';
import { parseHostsParameter } from '../../core/fleet-size';
import { emfLine, MetricName } from './metrics';
import { processLines } from '../../core/line-batch';
import { announced, releaseAnnouncements } from '../../core/release-events';
import { guardRelease, ReleaseGate } from '../../core/release-guard';
import { ActedOn, actOnGuard } from '../../core/guard-actuator';
import { isFinal, ReleaseRecord } from '../../core/release-record';
import { releaseOutcome } from '../../core/release-stats';
import { Decision, emptyState, EngineState, RuleConfig, seedWindow, windowFigures } from '../../core/rules';
import { alarmSlackMessage, slackMessage } from '../../core/slack-message';
import { deliver, DeliveryOptions } from '../../support/slack-webhook';

export interface AlertEnv {
  stage: string;
  region: string;
  logGroup: string;
  maintenanceParam: string;
  /**
   * The stage's hosts parameter (`fleet:<n>` in fleet mode, absent on a single host): messages say
   * "N of M hosts" in a fleet. Undefined (older stacks, tests) = the hosts seen logging decide M.
   */
  hostsParam?: string;
  webhookParam: string;
  stateParam: string;
  deadLetterQueueUrl: string;
  runbookUrl?: string;
  metricsNamespace: string;
  rules: RuleConfig;
  /** How far back a cold start looks to rebuild the error-rate window. */
  rebuildLookbackMs: number;
  parameterMaxAgeMs: number;
  /** The server-side release guard; undefined = no releases on this stage (older stacks, tests). */
  release?: ReleaseParams;
  /** The stage answers Slack's buttons (the Slack actions function): messages carry them. */
  slackActions?: boolean;
  /** The stage's dashboard: each release is drawn on its request and error graphs when it ends. */
  dashboardName?: string;
}

export interface ReleaseParams {
  /** The stage's release ledger table (core/release-ledger.ts): its head is the record the guard judges. */
  ledgerTable: string;
  /** Written with the previous pool on a rollback: the existing flip path takes it to the hosts. */
  activePoolParam: string;
  /** Set to 0 when a canary is aborted. */
  canaryParam: string;
  gate: ReleaseGate;
}

/**
 * An event for the release guard: the ledger's stream with a change of its head (the record: announce
 * it and judge it now; the stack's filter passes head items only) or EventBridge's one-minute
 * "Scheduled Event" (finish a bake that has no traffic). The records' content is not read: the guard
 * reads the head itself, consistently.
 */
export function isGuardEvent(event: unknown): boolean {
  const e = event as { source?: unknown; 'detail-type'?: unknown; Records?: unknown } | null;
  if (typeof e !== 'object' || e === null) return false;
  if (Array.isArray(e.Records))
    return (
      e.Records.length > 0 &&
      e.Records.every((r) => (r as { eventSource?: unknown } | null)?.eventSource === 'aws:dynamodb')
    );
  return e.source === 'aws.events' && e['detail-type'] === 'Scheduled Event';
}

export interface AlertDeps {
  ssm: SSMClient;
  /** The release ledger's client; needed when the env has `release`. */
  ddb?: DynamoDBClient;
  /** For the dashboard's release lines (env dashboardName). */
  cloudwatch?: CloudWatchClient;
  logs: CloudWatchLogsClient;
  sqs: SQSClient;
  delivery?: Partial<DeliveryOptions>;
  log?: (record: Record<string, unknown>) => void;
  /** Where EMF metric lines go (stdout on Lambda, where CloudWatch picks them up). */
  emit?: (line: string) => void;
  now?: () => number;
  /**
   * Kept free of Slack at the end of the invocation's time: saving state and the dead-letter sends
   * happen in it. Default 10 s.
   */
  safetyMarginMs?: number;
}

/** Time left in this invocation (Lambda's `context.getRemainingTimeInMillis`). */
export type RemainingMs = () => number;

export const DEFAULT_SAFETY_MARGIN_MS = 10_000;
export interface HandleResult {
  status: 'ignored' | 'processed' | 'rejected';
  evaluated: number;
  duplicates: number;
  malformed: number;
  decisions: number;
  posted: number;
  suppressed: number;
  undelivered: number;
  /** Decisions skipped because an earlier try of this batch already posted them or sent them to the DLQ. */
  alreadyDelivered: number;
  /** What the release guard did in this invocation, if anything. */
  guard?: ActedOn;
}

const SEEN_IDS = 20_000;

export class AlertRuntime {
  private state: EngineState = emptyState();
  private loaded = false;
  private readonly seen = new Set<string>();
  /** Decisions posted or dead-lettered, with when (persisted with the state, see delivered.ts). */
  private delivered: string[] = [];
  /** The state a retry of the current invocation must start from: what the checkpoints write. */
  private checkpointBase: PersistedState | undefined;
  /** Epoch ms (Date.now) by which Slack delivery must be over in the current invocation. */
  private deadline: number | undefined;
  /** When the state was last saved (this.now()): last-seen times alone are saved at most every STATE_SAVE_INTERVAL_MS. */
  private savedAt = 0;
  private readonly params: ParameterCache;
  /** The release ledger, when this stage guards releases. */
  private readonly ledger: DynamoReleaseLedger | undefined;
  /** The release record as last read (the guard reads it on every batch and tick): a pool alert's button names it. */
  private lastRecord: ReleaseRecord | undefined;
  private readonly log: (record: Record<string, unknown>) => void;
  private readonly now: () => number;

  constructor(
    private readonly env: AlertEnv,
    private readonly deps: AlertDeps,
  ) {
    this.params = new ParameterCache(deps.ssm, env.parameterMaxAgeMs, deps.now);
    if (env.release && !deps.ddb) throw new Error('the release guard needs a DynamoDB client (deps.ddb)');
    this.ledger =
      env.release && deps.ddb ? new DynamoReleaseLedger({ ddb: deps.ddb, table: env.release.ledgerTable }) : undefined;
    this.log = deps.log ?? ((r) => console.log(JSON.stringify(r)));
    this.now = deps.now ?? Date.now;
  }

  /**
   * One invocation. `remainingMs` (the handler passes Lambda's `context.getRemainingTimeInMillis`)
   * bounds Slack delivery: what cannot be delivered in time goes to the dead-letter queue.
   */
  async handle(event: unknown, remainingMs?: RemainingMs): Promise<HandleResult> {
    this.deadline = remainingMs
      ? Date.now() + remainingMs() - (this.deps.safetyMarginMs ?? DEFAULT_SAFETY_MARGIN_MS)
      : undefined;
    try {
      return await this.handleEvent(event);
    } catch (err) {
      // The in-memory state may be ahead of what was saved: Lambda's retry starts from SSM (state
      // plus the checkpointed deliveries), so it makes the same decisions and skips those done.
      this.loaded = false;
      throw err;
    } finally {
      this.checkpointBase = undefined;
      this.deadline = undefined;
    }
  }

  private async handleEvent(event: unknown): Promise<HandleResult> {
    const result: HandleResult = {
      status: 'ignored',
      evaluated: 0,
      duplicates: 0,
      malformed: 0,
      decisions: 0,
      posted: 0,
      suppressed: 0,
      undelivered: 0,
      alreadyDelivered: 0,
    };
    if (isGuardEvent(event)) return this.handleGuardEvent(result);
    if (isSnsEvent(event)) return this.handleAlarmEvent(event, result);
    let batch;
    try {
      batch = decodeSubscription(event);
    } catch (err) {
      if (!(err instanceof PayloadError)) throw err;
      // Retrying cannot fix a payload that is not ours: say so and let it go.
      this.log({ level: 'ERROR', msg: 'rejected payload', reason: err.message });
      return { ...result, status: 'rejected' };
    }
    if (batch.messageType === 'CONTROL_MESSAGE' || batch.logEvents.length === 0) {
      this.log({
        level: 'INFO',
        msg: 'nothing to evaluate',
        messageType: batch.messageType,
        events: batch.logEvents.length,
      });
      return result;
    }
    const fresh = batch.logEvents.filter((e) => !this.seen.has(e.id));
    result.duplicates = batch.logEvents.length - fresh.length;
    if (!this.loaded) await this.coldStart(Math.min(...batch.logEvents.map((e) => e.timestamp)));

    const maintenance = (await this.params.get(this.env.maintenanceParam)) === 'on';
    const fleetSize = await this.fleetSize();
    const out = processLines(
      this.state,
      fresh.map((e) => ({ message: e.message, host: batch.logStream, receivedAt: e.timestamp })),
      this.env.rules,
      maintenance,
      fleetSize,
    );
    result.status = 'processed';
    result.evaluated = out.evaluated;
    result.malformed = out.malformed.length;
    result.decisions = out.decisions.length;
    for (const m of out.malformed)
      this.log({ level: 'WARN', msg: 'malformed log line', reason: m.reason, line: m.line });

    for (const d of out.decisions) {
      this.log({ level: 'INFO', msg: 'decision', decision: d });
      if (d.suppressed) result.suppressed++;
    }
    this.checkpointBase = persistable(this.state);
    // A copy: the delivered keys are appended to in place while alerts are posted.
    const before = structuredClone(this.persisted());
    this.state = out.state;
    // The guard first: a bad release raises exactly these alerts, and a slow Slack must not hold
    // up the rollback (delivery can take seconds per alert with retries).
    await this.guardRelease(maintenance, result);
    for (const d of out.toPost) await this.postCounted(d, result);
    const after = this.persisted();
    if (saveDue(before, after, this.now() - this.savedAt)) await this.save(after);
    // Only now are these events done: if anything above threw, Lambda's retry must see them again.
    for (const e of fresh) this.remember(e.id);

    const figures = windowFigures(this.state.window);
    this.metrics({
      LinesEvaluated: result.evaluated,
      MalformedLines: result.malformed,
      AlertsPosted: result.posted,
      AlertsSuppressed: result.suppressed,
      AlertsUndelivered: result.undelivered,
      ErrorRatePercent: Math.round(figures.rate * 10_000) / 100,
      FailedOverRequests: out.failedOver,
    });
    return result;
  }

  /**
   * The stage's desired hosts (the hosts parameter), for the "N of M hosts" of fleet messages;
   * undefined on a single host (no HOSTS_PARAM). It only words the messages, so a value that cannot
   * be read or parsed is logged as an error and the hosts seen logging stand in (0): it never costs an alert.
   */
  private async fleetSize(): Promise<number | undefined> {
    const name = this.env.hostsParam;
    if (!name) return undefined;
    try {
      return parseHostsParameter(await this.params.get(name)) ?? 0;
    } catch (err) {
      this.log({
        level: 'ERROR',
        msg: 'hosts parameter not usable: counting the hosts seen logging instead',
        parameter: name,
        reason: (err as Error).message,
      });
      return 0;
    }
  }

  /** The record changed (the ledger's stream), or the minute ticked (EventBridge): announce, and judge with the window held. */
  private async handleGuardEvent(result: HandleResult): Promise<HandleResult> {
    if (!this.env.release) return result;
    if (!this.loaded) await this.coldStart(this.now());
    const maintenance = (await this.params.get(this.env.maintenanceParam)) === 'on';
    this.checkpointBase = persistable(this.state);
    // A copy: the delivered keys are appended to in place while alerts are posted.
    const before = structuredClone(this.persisted());
    await this.guardRelease(maintenance, result);
    const after = this.persisted();
    if (saveDue(before, after, this.now() - this.savedAt)) await this.save(after);
    return { ...result, status: 'processed' };
  }

  /**
   * The server-side release guard: while a release bakes (or runs a canary), the window decides.
   * Rollback = the previous pool written to the active-pool parameter (the flip path every host
   * follows), then the record; the record is written last so it never claims what did not happen.
   * Then whatever transition the record made is announced once.
   */
  private async guardRelease(maintenance: boolean, result: HandleResult): Promise<void> {
    const release = this.env.release;
    const ledger = this.ledger;
    if (!release || !ledger) return;
    // A consistent read each time: DynamoDB reads do not spend the stage's Parameter Store budget.
    let record = await ledger.head();
    if (record && !isFinal(record.state)) {
      const now = this.now();
      const action = guardRelease(record, this.state.samples, now, release.gate);
      const outcome = await actOnGuard(
        record,
        action,
        now,
        'alert-function',
        stageGuardPorts(this.deps.ssm, ledger, release),
      );
      if (outcome.kind === 'record-changed') {
        this.log({
          level: 'INFO',
          msg: 'release guard: the record changed while the guard acted; not overwriting it',
          action: outcome.action,
          record: record.id,
        });
        // The lost compare carried what is stored now: announce that.
        record = outcome.current;
      } else if (outcome.kind === 'written') {
        const next = outcome.record;
        this.log({
          level: 'INFO',
          msg: 'release guard',
          action: outcome.action,
          record: next.id,
          state: next.state,
          reason: next.reason,
          figures: next.figures,
        });
        result.guard = outcome.action;
        // The page: the release-held alarm (and with it the alarm topic's email) fires on this metric.
        if (outcome.action === 'hold') this.metrics({ ReleasesHeld: 1 });
        // Likewise the release-frozen alarm: an irreversible release failed and nobody flipped it back.
        if (outcome.action === 'freeze') this.metrics({ ReleasesFrozen: 1 });
        record = next;
      }
    }
    this.lastRecord = record;
    if (!record) return;
    const announcements = releaseAnnouncements(this.state.releaseAnnounced, record, maintenance);
    for (const d of announcements) {
      result.decisions++;
      this.log({ level: 'INFO', msg: 'decision', decision: d });
      if (d.suppressed) result.suppressed++;
      else await this.postCounted(d, result);
    }
    this.state = { ...this.state, releaseAnnounced: announced(record) };
    // A release's end, announced once: its part of the delivery figures (muted or not), then its
    // line on the dashboard; after Slack, so on-call's message never waits for the dashboard.
    if (isFinal(record.state) && announcements.length) {
      const o = releaseOutcome(record);
      this.metrics({
        Deployments: o.deployments,
        ReachedUsers: o.reachedUsers,
        ChangeFailures: o.changeFailures,
        ...(o.restoreSeconds !== undefined ? { RestoreSeconds: o.restoreSeconds } : {}),
        ...(o.leadTimeSeconds !== undefined ? { LeadTimeSeconds: o.leadTimeSeconds } : {}),
      });
      await this.drawReleases(release.ledgerTable);
    }
  }

  /**
   * Alarm state changes from the stage's alarm topic (SNS) → Slack, in the alerts' style. This path
   * touches nothing else (no engine state, no log group, no maintenance flag: it reports on the
   * alert pipeline itself, which planned work does not excuse), so it still posts when the rest of
   * the function is what fails. What Slack does not take goes to the dead-letter queue like an
   * alert; the topic's email subscribers have it from SNS in any case.
   */
  private async handleAlarmEvent(event: unknown, result: HandleResult): Promise<HandleResult> {
    const { changes, rejected } = alarmChanges(event);
    for (const r of rejected)
      this.log({ level: 'ERROR', msg: 'rejected SNS record', messageId: r.messageId, reason: r.reason });
    result.status = changes.length ? 'processed' : 'rejected';
    for (const change of changes) {
      // SNS delivers at least once: the same message id is posted once per container.
      const seenKey = `sns:${change.messageId}`;
      if (change.messageId && this.seen.has(seenKey)) {
        result.duplicates++;
        this.log({
          level: 'INFO',
          msg: 'alarm notification already handled',
          messageId: change.messageId,
          alarm: change.alarmName,
        });
        continue;
      }
      result.decisions++;
      this.log({
        level: 'INFO',
        msg: 'alarm state change',
        alarm: change.alarmName,
        state: change.state,
        previousState: change.previousState,
        reason: change.reason,
      });
      // The topic's subscriptions carry no filter policy (lib/alarm-topic.ts says why), so a new
      // alarm's first OK arrives here and is dropped by the same rule a policy would apply.
      if (!isNotified(change)) {
        result.suppressed++;
        this.log({
          level: 'INFO',
          msg: 'alarm state change not posted',
          alarm: change.alarmName,
          why: "not into or out of ALARM (a new alarm's first evaluation)",
        });
      } else if (await this.postAlarm(change)) result.posted++;
      else result.undelivered++;
      if (change.messageId) this.remember(seenKey);
    }
    this.metrics({ AlertsPosted: result.posted, AlertsUndelivered: result.undelivered });
    return result;
  }

  private postAlarm(change: AlarmStateChange): Promise<boolean> {
    return this.toSlack(
      () => alarmSlackMessage(change, { stage: this.env.stage, runbookUrl: this.env.runbookUrl }),
      { kind: 'alarm', alarm: change.alarmName, state: change.state },
      (reason) => sendAlarmToDeadLetter(this.deps.sqs, this.env.deadLetterQueueUrl, change, reason, this.env.stage),
    );
  }

  /** After a cold start: episodes and cooldowns from SSM, the window from the log group. */
  private async coldStart(batchStart: number): Promise<void> {
    const persisted = await loadState(this.deps.ssm, this.env.stateParam);
    const { delivered, ...engine } = persisted ?? {};
    this.delivered = normalizeDelivered(delivered ?? [], this.now());
    let state: EngineState = { ...emptyState(), ...engine, window: [] };
    const { entries, hosts, ids } = await recentEntries(
      this.deps.logs,
      this.env.logGroup,
      batchStart,
      this.env.rebuildLookbackMs,
      this.env.rules.windowSize,
    );
    state = seedWindow(state, entries, this.env.rules, hosts);
    for (const id of ids) this.remember(id);
    this.state = state;
    this.loaded = true;
    // What SSM holds is as fresh as a save.
    this.savedAt = this.now();
    this.log({
      level: 'INFO',
      msg: 'cold start',
      restoredState: persisted !== undefined,
      windowRebuiltFrom: entries.length,
    });
  }

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > SEEN_IDS) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  /** Saves the state, cut to fit its parameter (fitState); what had to go is logged. */
  private async save(state: PersistedState): Promise<void> {
    // Cooldowns posted before this have run out: the first to go when the state must shrink.
    const dropped = await saveState(this.deps.ssm, this.env.stateParam, state, this.now() - this.env.rules.cooldownMs);
    this.savedAt = this.now();
    if (dropped > 0) this.log({ level: 'WARN', msg: 'alert state cut to fit its parameter (4 KB)', dropped });
  }

  /** The state to save: the engine's, and the recent delivery keys (pruned by age and count). */
  private persisted(base: PersistedState = persistable(this.state)): PersistedState {
    this.delivered = pruneDelivered(this.delivered, this.now());
    return this.delivered.length ? { ...base, delivered: this.delivered } : base;
  }

  /**
   * Posts a decision unless an earlier try of this batch already did (or dead-lettered it), then
   * records it as done in SSM at once: a Lambda timeout kills the process without a goodbye, so
   * what is saved at the end of the invocation cannot be relied on. The checkpoint holds the state
   * from before this batch, so the retry makes the same decisions and skips the ones done.
   */
  private async postCounted(d: Decision, result: HandleResult): Promise<void> {
    const key = deliveryKey(d);
    if (wasDelivered(this.delivered, key)) {
      result.alreadyDelivered++;
      this.log({ level: 'INFO', msg: 'alert already delivered by an earlier try of this batch', kind: d.kind, key });
      return;
    }
    if (await this.post(d)) result.posted++;
    else result.undelivered++;
    this.delivered.push(deliveredEntry(key, this.now()));
    if (this.checkpointBase) await this.save(this.persisted(this.checkpointBase));
  }

  /** Posts to Slack; whatever cannot be delivered goes to the dead-letter queue. */
  private post(d: Decision): Promise<boolean> {
    return this.toSlack(
      () =>
        slackMessage(d, {
          stage: this.env.stage,
          logsUrl: insightsUrl(
            this.env.region,
            this.env.logGroup,
            INSIGHTS_QUERIES['around-an-alert'],
            new Date(d.at - 5 * 60_000),
            new Date(d.at + 5 * 60_000),
          ),
          runbookUrl: this.env.runbookUrl,
          appLog: { region: this.env.region, logGroup: logGroupNames(this.env.stage).app },
          ...(this.env.slackActions ? { releaseActions: { current: this.lastRecord } } : {}),
        }),
      { kind: d.kind, decision: d },
      (reason) => sendToDeadLetter(this.deps.sqs, this.env.deadLetterQueueUrl, d, reason, this.env.stage),
    );
  }

  /**
   * The one Slack path (alerts and alarm notifications): the webhook from its SecureString, delivery
   * within the invocation's budget, and the dead-letter queue with the reason when Slack does not
   * take it. `what` says in the log which message it was.
   */
  private async toSlack(
    message: () => Record<string, unknown>,
    what: Record<string, unknown>,
    deadLetter: (reason: string) => Promise<void>,
  ): Promise<boolean> {
    const webhook = await this.params.get(this.env.webhookParam, true);
    let reason: string;
    if (!webhook) {
      reason = `no Slack webhook: SecureString ${this.env.webhookParam} does not exist`;
    } else {
      const delivery = await deliver(webhook, message(), { ...this.deps.delivery, deadline: this.deadline });
      if (delivery.delivered) {
        this.log({ level: 'INFO', msg: 'alert posted', kind: what.kind, attempts: delivery.attempts });
        return true;
      }
      reason = delivery.outOfTime
        ? `no time left in this invocation: ${delivery.last} after ${delivery.attempts} attempts`
        : `Slack did not take it: ${delivery.last} after ${delivery.attempts} attempts`;
    }
    this.log({ level: 'ERROR', msg: 'alert undelivered', reason, ...what });
    // If this throws too, the invocation fails and Lambda's retries and on-failure destination take over.
    await deadLetter(reason);
    return false;
  }

  /** The releases on the dashboard's graphs; a failure is logged, never the invocation's (the guard's work is done). */
  private async drawReleases(table: string): Promise<void> {
    const { dashboardName } = this.env;
    if (!dashboardName || !this.deps.cloudwatch || !this.deps.ddb) return;
    try {
      const result = await annotateReleases(this.deps.cloudwatch, this.deps.ddb, table, dashboardName);
      this.log({ level: 'INFO', msg: 'releases drawn on the dashboard', dashboard: dashboardName, result });
    } catch (err) {
      this.log({ level: 'WARN', msg: 'could not draw the releases on the dashboard', error: (err as Error).message });
    }
  }

  private metrics(values: Partial<Record<MetricName, number>>): void {
    (this.deps.emit ?? console.log)(emfLine(this.env.metricsNamespace, { Stage: this.env.stage }, values, this.now()));
  }
}
