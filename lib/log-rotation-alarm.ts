// Pages on-call when the host's log rotation failed: nobody reads a host's journal or
// `systemctl --failed`. bluegreen-log-reopen (userdata/bluegreen-log-reopen.sh) appends one line to
// /var/log/bluegreen/log-rotation-failures when nginx did not reopen its logs after its retries; the
// CloudWatch agent ships that file to the error log group (userdata/cloudwatch-agent.json); a metric
// filter counts the line, and the alarm goes to the stage's alarm topic (email and Slack).
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { PIPELINE_ALARMS, pipelineAlarmName, runbookLink } from '../core/alarm-notification';

/**
 * The phrase every final-failure line of bluegreen-log-reopen carries (its tag and the start of its
 * message), as a CloudWatch Logs term pattern: quoted, so the whole phrase must occur as it is
 * (case-sensitive). Its retry warnings ("try 1 of 5: ...") never reach the file.
 */
export const LOG_ROTATION_FAILED_PATTERN = '"bluegreen-logrotate: nginx did not reopen its logs"';
/** The metric the filter publishes: one per failed rotation. */
export const LOG_ROTATION_FAILURES_METRIC = 'LogRotationFailures';

export interface LogRotationAlarmProps {
  readonly stage: string;
  /** The log group the agent ships /var/log/bluegreen/log-rotation-failures to (nginx's error log group). */
  readonly errorLogGroup: logs.ILogGroup;
  /** Namespace of the metric (the host's). */
  readonly metricsNamespace: string;
  /**
   * RUNBOOK.md as the team reads it; the alarm description (the email body) links its section.
   * @default RUNBOOK.md#<anchor>
   */
  readonly runbookUrl?: string;
}

export class LogRotationAlarm extends Construct {
  public readonly metricFilter: logs.MetricFilter;
  public readonly alarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: LogRotationAlarmProps) {
    super(scope, id);
    const { stage } = props;
    this.metricFilter = new logs.MetricFilter(this, 'Failures', {
      logGroup: props.errorLogGroup,
      filterPattern: logs.FilterPattern.literal(LOG_ROTATION_FAILED_PATTERN),
      metricNamespace: props.metricsNamespace,
      metricName: LOG_ROTATION_FAILURES_METRIC,
      metricValue: '1',
    });
    const anchor = PIPELINE_ALARMS['log-rotation-failed'].anchor;
    this.alarm = new cloudwatch.Alarm(this, 'Alarm', {
      alarmName: pipelineAlarmName(stage, 'log-rotation-failed'),
      // The email body: what it means, that OK does not mean fixed, where the runbook is.
      alarmDescription:
        `bluegreen ${stage}: a log rotation on the host failed, nginx did not reopen its logs and may still write into access.log.1, which the next rotation compresses (lines lost, and the CloudWatch agent ships nothing new). ` +
        `OK only means no further failure was reported: check the host. Runbook: ${runbookLink(props.runbookUrl ?? 'RUNBOOK.md', anchor)}`,
      metric: this.metricFilter.metric({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // No line = no failure: the filter publishes nothing when nothing matches.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
