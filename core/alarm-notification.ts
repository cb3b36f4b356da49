// CloudWatch alarm state changes as SNS delivers them to Lambda: {"Records":[{"EventSource":"aws:sns",
// "Sns":{"MessageId", "Message": JSON of the alarm}}]}. The alert pipeline's own alarms (their names
// and runbook sections) are defined here once: the stack names the alarms with them, the function
// titles its Slack messages and picks the runbook section with them.
import type { Severity } from './rules';

/** The alert pipeline's alarms, by the suffix of their name (`bluegreen-<stage>-<suffix>`). */
export const PIPELINE_ALARMS = {
  'alert-function-errors': {
    anchor: 'alert-function-errors',
    alarm: ':rotating_light: Alarm: the alert function is failing (alerts may be late or lost)',
    ok: ':white_check_mark: OK: the alert function runs without errors again',
  },
  'undelivered-alerts': {
    anchor: 'undelivered-alerts',
    alarm: ':rotating_light: Alarm: alerts did not reach Slack (waiting in the dead-letter queue)',
    ok: ':white_check_mark: OK: no undelivered alerts are waiting',
  },
  'log-rotation-failed': {
    anchor: 'a-failed-log-rotation',
    alarm:
      ':rotating_light: Alarm: a log rotation on the host failed (nginx may still write to access.log.1; lines will be lost)',
    ok: ':white_check_mark: OK: no further failed log rotation reported (check that nginx writes access.log again)',
  },
  // The release guard held a release (no verdict without evidence): a person decides, so it pages.
  'release-held': {
    anchor: 'release-held',
    alarm:
      ':rotating_light: Alarm: a release is held without a verdict (too few requests reached it): flip back or promote it by hand',
    ok: ':white_check_mark: OK: no release was held in the last minutes (check `bluegreen history` for how it was resolved)',
  },
  // The release guard froze an irreversible release that crossed its gate: someone fixes it forward.
  'release-frozen': {
    anchor: 'release-frozen',
    alarm:
      ':rotating_light: Alarm: an irreversible release failed its gate and is FROZEN (not flipped back): fix forward',
    ok: ':white_check_mark: OK: no release was frozen in the last minutes (check `bluegreen history` for how it was resolved)',
  },
  // Fleet mode only (context hosts >= 2): the load balancer's and the Auto Scaling group's view.
  'unhealthy-hosts': {
    anchor: 'unhealthy-hosts',
    alarm:
      ':rotating_light: Alarm: a fleet host fails the load balancer health check (the others carry its traffic; the group replaces it)',
    ok: ':white_check_mark: OK: every fleet host passes the load balancer health check again',
  },
  'hosts-below-desired': {
    anchor: 'fewer-hosts-in-service-than-desired',
    alarm: ':rotating_light: Alarm: fewer fleet hosts in service than desired (replacements are not joining)',
    ok: ':white_check_mark: OK: the fleet has its desired number of hosts in service again',
  },
} as const;
export type PipelineAlarm = keyof typeof PIPELINE_ALARMS;

/** The one definition of an alarm's name: the stack sets it, the function reads it back. */
export function pipelineAlarmName(stage: string, alarm: PipelineAlarm): string {
  return `bluegreen-${stage}-${alarm}`;
}

/** Which of the pipeline's alarms a name is, for this stage; undefined = some other alarm. */
export function pipelineAlarmOf(stage: string, alarmName: string): PipelineAlarm | undefined {
  return (Object.keys(PIPELINE_ALARMS) as PipelineAlarm[]).find((a) => pipelineAlarmName(stage, a) === alarmName);
}

export type AlarmState = 'ALARM' | 'OK' | 'INSUFFICIENT_DATA';
const STATES: readonly string[] = ['ALARM', 'OK', 'INSUFFICIENT_DATA'];

/** An alarm state's severity: the pipeline's alarms mean on-call may be blind, so ALARM is critical. */
export const ALARM_SEVERITY: Record<AlarmState, Severity> = {
  ALARM: 'critical',
  OK: 'ok',
  INSUFFICIENT_DATA: 'warning',
};

export interface AlarmTrigger {
  metricName?: string;
  namespace?: string;
  statistic?: string;
  period?: number;
  evaluationPeriods?: number;
  comparisonOperator?: string;
  threshold?: number;
}

/** One alarm state change, from one SNS record. */
export interface AlarmStateChange {
  /** SNS message id: the same notification delivered twice has the same id. */
  messageId: string;
  alarmName: string;
  description?: string;
  state: AlarmState;
  previousState?: string;
  reason: string;
  /** Epoch ms of the state change (StateChangeTime). */
  at: number;
  /** The alarm's ARN when the message carries it (region and account come from it). */
  alarmArn?: string;
  accountId?: string;
  trigger?: AlarmTrigger;
}

/** A record that is SNS but not an alarm state change (someone published by hand): said, not posted. */
export interface RejectedRecord {
  messageId: string;
  reason: string;
}

/** An SNS event (what an SNS subscription invokes Lambda with). */
export function isSnsEvent(event: unknown): boolean {
  const records = (event as { Records?: unknown } | null)?.Records;
  return (
    Array.isArray(records) &&
    records.length > 0 &&
    records.every((r) => (r as { EventSource?: unknown } | null)?.EventSource === 'aws:sns')
  );
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The alarm state changes in an SNS event; records that are not one are listed with the reason. */
export function alarmChanges(event: unknown): { changes: AlarmStateChange[]; rejected: RejectedRecord[] } {
  const changes: AlarmStateChange[] = [];
  const rejected: RejectedRecord[] = [];
  const records = ((event as { Records?: unknown[] } | null)?.Records ?? []) as Array<{
    Sns?: { MessageId?: unknown; Message?: unknown; Timestamp?: unknown };
  }>;
  for (const record of records) {
    const sns = record?.Sns ?? {};
    const messageId = str(sns.MessageId) ?? '';
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(String(sns.Message ?? '')) as Record<string, unknown>;
      if (typeof m !== 'object' || m === null) throw new Error('not an object');
    } catch {
      rejected.push({ messageId, reason: 'the SNS message is not JSON: not a CloudWatch alarm notification' });
      continue;
    }
    const alarmName = str(m.AlarmName);
    const state = str(m.NewStateValue);
    if (!alarmName || !state || !STATES.includes(state)) {
      rejected.push({
        messageId,
        reason: 'the SNS message has no AlarmName or NewStateValue: not a CloudWatch alarm notification',
      });
      continue;
    }
    const at = Date.parse(str(m.StateChangeTime) ?? '') || Date.parse(str(sns.Timestamp) ?? '') || 0;
    const t = (m.Trigger ?? {}) as Record<string, unknown>;
    changes.push({
      messageId,
      alarmName,
      description: str(m.AlarmDescription),
      state: state as AlarmState,
      previousState: str(m.OldStateValue),
      reason: str(m.NewStateReason) ?? '',
      at,
      alarmArn: str(m.AlarmArn),
      accountId: str(m.AWSAccountId),
      trigger: m.Trigger
        ? {
            metricName: str(t.MetricName),
            namespace: str(t.Namespace),
            statistic: str(t.Statistic),
            period: num(t.Period),
            evaluationPeriods: num(t.EvaluationPeriods),
            comparisonOperator: str(t.ComparisonOperator),
            threshold: num(t.Threshold),
          }
        : undefined,
    });
  }
  return { changes, rejected };
}

/**
 * The state changes anyone hears about: into ALARM, and out of it (the recovery). A new or replaced
 * alarm starts in INSUFFICIENT_DATA and goes to OK at its first evaluation, which fires its OK
 * actions ("OK: ... again" after every deploy that creates one): the function does not post that
 * change (`isNotified`). Written in SNS filter-policy form so a pager subscribed by hand to the JSON
 * message can take it as its FilterPolicy (scope MessageBody); the topic's own email subscriptions
 * carry no policy (lib/alarm-topic.ts says why).
 */
export const NOTIFIED_CHANGES = { $or: [{ NewStateValue: ['ALARM'] }, { OldStateValue: ['ALARM'] }] } as const;

/** Whether `NOTIFIED_CHANGES` lets a change through: the function posts only those. */
export function isNotified(change: Pick<AlarmStateChange, 'state' | 'previousState'>): boolean {
  const body: Record<string, string | undefined> = { NewStateValue: change.state, OldStateValue: change.previousState };
  return NOTIFIED_CHANGES.$or.some((rule) =>
    Object.entries(rule).every(([key, values]) => (values as readonly string[]).includes(body[key] ?? '')),
  );
}

/** A RUNBOOK.md section's link: the runbook's URL (any fragment it has replaced) and the section's anchor. */
export function runbookLink(runbookUrl: string, anchor: string): string {
  return `${runbookUrl.replace(/#.*$/, '')}#${anchor}`;
}

/** The alarm's page in the CloudWatch console, from its ARN (arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>). */
export function alarmConsoleUrl(change: AlarmStateChange): string | undefined {
  const region = change.alarmArn?.split(':')[3];
  if (!region) return undefined;
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#alarmsV2:alarm/${encodeURIComponent(change.alarmName)}`;
}

const COMPARISONS: Record<string, string> = {
  GreaterThanOrEqualToThreshold: '>=',
  GreaterThanThreshold: '>',
  LessThanThreshold: '<',
  LessThanOrEqualToThreshold: '<=',
};

/** "Errors (AWS/Lambda) Sum over 300 s >= 1", as far as the trigger tells. */
export function describeTrigger(t: AlarmTrigger | undefined): string | undefined {
  if (!t?.metricName) return undefined;
  const op = t.comparisonOperator ? (COMPARISONS[t.comparisonOperator] ?? t.comparisonOperator) : undefined;
  return [
    `${t.metricName}${t.namespace ? ` (${t.namespace})` : ''}`,
    t.statistic ? t.statistic.toLowerCase() : undefined,
    t.period !== undefined ? `over ${t.period} s` : undefined,
    op && t.threshold !== undefined ? `${op} ${t.threshold}` : undefined,
  ]
    .filter(Boolean)
    .join(' ');
}
