// Alerts: the access log group's subscription filter → the alert Lambda (the rule engine) → Slack.
// Undelivered alerts and failed invocations land in a dead-letter queue with an alarm.
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { LambdaDestination } from 'aws-cdk-lib/aws-logs-destinations';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { AlertSettings, parameterNames } from './config';

export const ALERT_ENTRY = path.join(__dirname, '..', 'lambda', 'alert', 'handler.ts');

export interface AlertingProps {
  readonly stage: string;
  readonly accessLogGroup: logs.ILogGroup;
  readonly settings: AlertSettings;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

export class Alerting extends Construct {
  public readonly function: NodejsFunction;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly stateParameter: ssm.StringParameter;
  public readonly errorsAlarm: cloudwatch.Alarm;
  public readonly undeliveredAlarm: cloudwatch.Alarm;
  public readonly metricsNamespace: string;

  constructor(scope: Construct, id: string, props: AlertingProps) {
    super(scope, id);
    const { stage, settings } = props;
    const names = parameterNames(stage);
    const stack = Stack.of(this);
    const parameterArn = (name: string) => stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: name.slice(1) });
    this.metricsNamespace = `Bluegreen/${stage}/Alerts`;

    this.deadLetterQueue = new sqs.Queue(this, 'Undelivered', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter destination for undelivered alerts and failed invocations; its alarm pages on the first message.',
    });

    this.stateParameter = new ssm.StringParameter(this, 'State', {
      parameterName: names.alertState,
      stringValue: '{}',
      description: `bluegreen ${stage}: alert engine state (episodes, cooldowns), written by the alert function`,
    });

    const logGroup = new logs.LogGroup(this, 'FunctionLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `bluegreen ${stage} alert function: its log group, its parameters, the access log, its dead-letter queue`,
    });
    role.addToPolicy(new iam.PolicyStatement({ sid: 'OwnLogs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadParameters',
        actions: ['ssm:GetParameter'],
        resources: [names.maintenance, names.slackWebhookUrl, names.alertState].map(parameterArn),
      }),
    );
    role.addToPolicy(new iam.PolicyStatement({ sid: 'WriteState', actions: ['ssm:PutParameter'], resources: [parameterArn(names.alertState)] }));
    role.addToPolicy(new iam.PolicyStatement({ sid: 'RebuildWindow', actions: ['logs:FilterLogEvents'], resources: [props.accessLogGroup.logGroupArn] }));
    this.deadLetterQueue.grantSendMessages(role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: ALERT_ENTRY,
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      // Room for a Slack outage: each alert may take ~14 s of retries before it goes to the queue.
      timeout: Duration.minutes(2),
      role,
      logGroup,
      description: `bluegreen ${stage}: access-log alert rules → Slack`,
      // One invocation at a time: the engine state (window, episodes, cooldowns) has one owner.
      reservedConcurrentExecutions: 1,
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new SqsDestination(this.deadLetterQueue),
      bundling: {
        minify: true,
        sourceMap: true,
        format: OutputFormat.CJS,
        target: 'node24',
        // The runtime's AWS SDK v3 is used as is: smaller bundle, faster init.
        externalModules: ['@aws-sdk/*'],
      },
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        STAGE: stage,
        ACCESS_LOG_GROUP: props.accessLogGroup.logGroupName,
        MAINTENANCE_PARAM: names.maintenance,
        SLACK_WEBHOOK_PARAM: names.slackWebhookUrl,
        STATE_PARAM: names.alertState,
        DEAD_LETTER_QUEUE_URL: this.deadLetterQueue.queueUrl,
        METRICS_NAMESPACE: this.metricsNamespace,
        ALERT_WINDOW: String(settings.window),
        ALERT_MIN_WINDOW: String(settings.minWindow),
        ALERT_ERROR_RATE: String(settings.errorRate),
        ALERT_COOLDOWN_SECONDS: String(settings.cooldownSeconds),
        ...(settings.runbookUrl ? { RUNBOOK_URL: settings.runbookUrl } : {}),
      },
    });

    new logs.SubscriptionFilter(this, 'AccessLogSubscription', {
      logGroup: props.accessLogGroup,
      destination: new LambdaDestination(this.function),
      filterPattern: logs.FilterPattern.allEvents(),
    });

    this.errorsAlarm = new cloudwatch.Alarm(this, 'FunctionErrors', {
      alarmDescription: `bluegreen ${stage}: the alert function fails; alerts may be late (RUNBOOK.md, "Undelivered alerts")`,
      metric: this.function.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: settings.alarmFunctionErrors,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.undeliveredAlarm = new cloudwatch.Alarm(this, 'UndeliveredAlerts', {
      alarmDescription: `bluegreen ${stage}: alerts that did not reach Slack are waiting in the dead-letter queue (RUNBOOK.md, "Undelivered alerts")`,
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: settings.alarmUndeliveredAlerts,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
