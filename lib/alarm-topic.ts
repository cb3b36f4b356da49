// The stage's alarm topic: where the alert pipeline's alarms go on ALARM and on OK. Two kinds of
// subscriber: email addresses from context (the path that needs neither Slack nor the alert
// function, so it still works when they are what broke) and the alert function (the same Slack
// channel, the same message style as the alerts).
//
// Encrypted with a customer-managed key: CloudWatch alarms cannot publish to a topic encrypted with
// the AWS-managed aws/sns key (its policy cannot be changed to let cloudwatch.amazonaws.com use it),
// so the key is ours, rotated, and grants CloudWatch exactly what publishing needs.
import { Annotations, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Id of the synth warning for a stage whose alarms reach nobody outside Slack. */
export const NO_ALARM_EMAIL_WARNING = 'bluegreen:alarmTopic:noEmail';

export interface AlarmTopicProps {
  readonly stage: string;
  /** The alarms whose ALARM and OK transitions are published to the topic. */
  readonly alarms: readonly cloudwatch.Alarm[];
  /**
   * Addresses subscribed by email (each confirms once, from the message SNS sends).
   * @default none: a synth warning says the alarms then reach only Slack
   */
  readonly emails?: readonly string[];
  /**
   * The function that posts alarm state changes to Slack.
   * @default none: email only
   */
  readonly slackFunction?: lambda.IFunction;
  /**
   * Where SNS puts a notification it could not hand to `slackFunction` (so its alarm pages too).
   * @default none
   */
  readonly deadLetterQueue?: sqs.IQueue;
}

export class AlarmTopic extends Construct {
  public readonly topic: sns.Topic;
  public readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: AlarmTopicProps) {
    super(scope, id);
    const { stage } = props;
    const stack = Stack.of(this);

    this.key = new kms.Key(this, 'Key', {
      description: `bluegreen ${stage}: encrypts the alarm topic; CloudWatch alarms may use it to publish`,
      alias: `alias/bluegreen/${stage}/alarm-topic`,
      enableKeyRotation: true,
      // It protects messages in flight only, nothing at rest: no reason to keep it (and pay for it)
      // after the stage is gone.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    // What AWS documents for CloudWatch → an encrypted topic, without source conditions: a condition
    // the KMS request does not carry would drop every notification silently. The topic policy below
    // is the gate (only these alarms, only this account); this key encrypts nothing else.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );

    this.topic = new sns.Topic(this, 'Topic', {
      topicName: `bluegreen-${stage}-alarms`,
      displayName: `bluegreen ${stage} alarms`,
      masterKey: this.key,
      enforceSSL: true,
    });
    // A topic policy replaces SNS's default one, so CloudWatch needs its own statement: publish, for
    // the stage's alarms of this account only (confused-deputy conditions).
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          ArnEquals: { 'aws:SourceArn': props.alarms.map((a) => a.alarmArn) },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
    );

    const action = new SnsAction(this.topic);
    for (const alarm of props.alarms) {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }

    // No subscription filter policy, on purpose: CloudWatch's alarm email is formatted text, not the
    // JSON a MessageBody policy reads, and nothing documented says SNS would let an ALARM through such
    // a policy to an email address. A dropped ALARM email is the failure this topic exists to prevent;
    // an OK email after a deploy creates an alarm is noise. The function drops that first OK itself
    // (isNotified), so Slack stays quiet (DECISIONS.md, "A new alarm's first OK").
    const emails = props.emails ?? [];
    for (const address of emails) this.topic.addSubscription(new subscriptions.EmailSubscription(address));
    if (emails.length === 0) {
      Annotations.of(this).addWarningV2(
        NO_ALARM_EMAIL_WARNING,
        `No alarmEmails for stage ${stage}: the stage's alarms (function errors, undelivered alerts, a held or frozen release, a failed log rotation) reach only Slack, through the very function and webhook the first two report on. Set -c alarmEmails=oncall@example.com so they also reach someone when Slack or the function is down.`,
      );
    }
    if (props.slackFunction) {
      this.topic.addSubscription(
        new subscriptions.LambdaSubscription(props.slackFunction, { deadLetterQueue: props.deadLetterQueue }),
      );
    }
  }
}
