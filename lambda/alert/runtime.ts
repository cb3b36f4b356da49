// The alert function's logic with its dependencies passed in: the handler is a shell over this.
// Invocations are serialized (reserved concurrency 1), so one instance owns the state at a time.
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { SQSClient } from '@aws-sdk/client-sqs';
import { loadState, ParameterCache, persistable, recentEntries, saveState, sendToDeadLetter } from './aws';
import { decodeSubscription, PayloadError } from './decode';
import { insightsUrl, INSIGHTS_QUERIES } from './insights';
import { emfLine, MetricName } from './metrics';
import { processLines } from './pipeline';
import { Decision, emptyState, EngineState, RuleConfig, seedWindow, windowFigures } from './rules';
import { deliver, DeliveryOptions, slackMessage } from './slack';

export interface AlertEnv {
  stage: string;
  region: string;
  logGroup: string;
  maintenanceParam: string;
  webhookParam: string;
  stateParam: string;
  deadLetterQueueUrl: string;
  runbookUrl?: string;
  metricsNamespace: string;
  rules: RuleConfig;
  /** How far back a cold start looks to rebuild the error-rate window. */
  rebuildLookbackMs: number;
  parameterMaxAgeMs: number;
}

export interface AlertDeps {
  ssm: SSMClient;
  logs: CloudWatchLogsClient;
  sqs: SQSClient;
  delivery?: Partial<DeliveryOptions>;
  log?: (record: Record<string, unknown>) => void;
  /** Where EMF metric lines go (stdout on Lambda, where CloudWatch picks them up). */
  emit?: (line: string) => void;
  now?: () => number;
}

export interface HandleResult {
  status: 'ignored' | 'processed' | 'rejected';
  evaluated: number;
  duplicates: number;
  malformed: number;
  decisions: number;
  posted: number;
  suppressed: number;
  undelivered: number;
}

const SEEN_IDS = 20_000;

export class AlertRuntime {
  private state: EngineState = emptyState();
  private loaded = false;
  private readonly seen = new Set<string>();
  private readonly params: ParameterCache;
  private readonly log: (record: Record<string, unknown>) => void;
  private readonly now: () => number;

  constructor(
    private readonly env: AlertEnv,
    private readonly deps: AlertDeps,
  ) {
    this.params = new ParameterCache(deps.ssm, env.parameterMaxAgeMs, deps.now);
    this.log = deps.log ?? ((r) => console.log(JSON.stringify(r)));
    this.now = deps.now ?? Date.now;
  }

  async handle(event: unknown): Promise<HandleResult> {
    const result: HandleResult = { status: 'ignored', evaluated: 0, duplicates: 0, malformed: 0, decisions: 0, posted: 0, suppressed: 0, undelivered: 0 };
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
      this.log({ level: 'INFO', msg: 'nothing to evaluate', messageType: batch.messageType, events: batch.logEvents.length });
      return result;
    }
    const fresh = batch.logEvents.filter((e) => !this.seen.has(e.id));
    result.duplicates = batch.logEvents.length - fresh.length;
    if (!this.loaded) await this.coldStart(Math.min(...batch.logEvents.map((e) => e.timestamp)));

    const maintenance = (await this.params.get(this.env.maintenanceParam)) === 'on';
    const out = processLines(this.state, fresh.map((e) => ({ message: e.message, host: batch.logStream, receivedAt: e.timestamp })), this.env.rules, maintenance);
    result.status = 'processed';
    result.evaluated = out.evaluated;
    result.malformed = out.malformed.length;
    result.decisions = out.decisions.length;
    for (const m of out.malformed) this.log({ level: 'WARN', msg: 'malformed log line', reason: m.reason, line: m.line });

    for (const d of out.decisions) {
      this.log({ level: 'INFO', msg: 'decision', decision: d });
      if (d.suppressed) result.suppressed++;
    }
    for (const d of out.toPost) {
      if (await this.post(d)) result.posted++;
      else result.undelivered++;
    }
    const before = JSON.stringify(persistable(this.state));
    this.state = out.state;
    const after = persistable(this.state);
    if (JSON.stringify(after) !== before) await saveState(this.deps.ssm, this.env.stateParam, after);
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

  /** After a cold start: episodes and cooldowns from SSM, the window from the log group. */
  private async coldStart(batchStart: number): Promise<void> {
    const persisted = await loadState(this.deps.ssm, this.env.stateParam);
    let state: EngineState = { ...emptyState(), ...persisted, window: [] };
    const { entries, ids } = await recentEntries(this.deps.logs, this.env.logGroup, batchStart, this.env.rebuildLookbackMs, this.env.rules.windowSize);
    state = seedWindow(state, entries, this.env.rules);
    for (const id of ids) this.remember(id);
    this.state = state;
    this.loaded = true;
    this.log({ level: 'INFO', msg: 'cold start', restoredState: persisted !== undefined, windowRebuiltFrom: entries.length });
  }

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > SEEN_IDS) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  /** Posts to Slack; whatever cannot be delivered goes to the dead-letter queue. */
  private async post(d: Decision): Promise<boolean> {
    const webhook = await this.params.get(this.env.webhookParam, true);
    let reason: string;
    if (!webhook) {
      reason = `no Slack webhook: SecureString ${this.env.webhookParam} does not exist`;
    } else {
      const message = slackMessage(d, {
        stage: this.env.stage,
        logsUrl: insightsUrl(this.env.region, this.env.logGroup, INSIGHTS_QUERIES['around-an-alert'], new Date(d.at - 5 * 60_000), new Date(d.at + 5 * 60_000)),
        runbookUrl: this.env.runbookUrl,
      });
      const delivery = await deliver(webhook, message, this.deps.delivery);
      if (delivery.delivered) {
        this.log({ level: 'INFO', msg: 'alert posted', kind: d.kind, attempts: delivery.attempts });
        return true;
      }
      reason = `Slack did not take it: ${delivery.last} after ${delivery.attempts} attempts`;
    }
    this.log({ level: 'ERROR', msg: 'alert undelivered', kind: d.kind, reason, decision: d });
    // If this throws too, the invocation fails and Lambda's retries and on-failure destination take over.
    await sendToDeadLetter(this.deps.sqs, this.env.deadLetterQueueUrl, d, reason, this.env.stage);
    return false;
  }

  private metrics(values: Partial<Record<MetricName, number>>): void {
    (this.deps.emit ?? console.log)(emfLine(this.env.metricsNamespace, { Stage: this.env.stage }, values, this.now()));
  }
}
