// The alert path in the stack: function, subscription filter, IAM scope, dead-letter queue, alarms.
import { Match, Template } from 'aws-cdk-lib/assertions';
import { synthTemplate } from '../helpers/cdk';

let template: Template;
beforeAll(() => {
  template = synthTemplate({
    stage: 'prod',
    alertWindow: '300',
    alertErrorRate: '0.05',
    alarmFunctionErrors: '3',
    alarmUndeliveredAlerts: '2',
    runbookUrl: 'https://wiki.example.com/RUNBOOK.md',
    releaseMinRequests: '100',
    releaseMaxP99: '1.5s',
    releaseMaxP99Ratio: '2.5',
  });
});

const fnProps = () =>
  Object.values(
    template.findResources('AWS::Lambda::Function', {
      Properties: { Description: Match.stringLikeRegexp('alert rules') },
    }),
  )[0].Properties;

test('the function: Node 24 on arm64, source maps on, one invocation at a time, thresholds from context', () => {
  const props = fnProps();
  expect(props).toMatchObject({
    Runtime: 'nodejs24.x',
    Architectures: ['arm64'],
    ReservedConcurrentExecutions: 1,
    MemorySize: 256,
    Timeout: 120,
    Handler: 'index.handler',
  });
  expect(props.Environment.Variables).toMatchObject({
    NODE_OPTIONS: '--enable-source-maps',
    STAGE: 'prod',
    MAINTENANCE_PARAM: '/bluegreen/prod/maintenance',
    SLACK_WEBHOOK_PARAM: '/bluegreen/prod/slack-webhook-url',
    STATE_PARAM: '/bluegreen/prod/alert-state',
    RELEASE_PARAM: '/bluegreen/prod/release',
    ACTIVE_POOL_PARAM: '/bluegreen/prod/active-pool',
    CANARY_PARAM: '/bluegreen/prod/canary-percent',
    ALERT_WINDOW: '300',
    ALERT_ERROR_RATE: '0.05',
    ALERT_COOLDOWN_SECONDS: '300',
    RUNBOOK_URL: 'https://wiki.example.com/RUNBOOK.md',
    // The release gate's stage defaults, as core/rule-config.ts reads them.
    RELEASE_GATE_MIN_REQUESTS: '100',
    RELEASE_GATE_MAX_P99_MS: '1500',
    RELEASE_GATE_MAX_P99_RATIO: '2.5',
  });
  expect(props.LoggingConfig.LogGroup).toBeDefined();
});

test("the release-held alarm pages on the function's ReleasesHeld metric, at the first one", () => {
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    AlarmName: 'bluegreen-prod-release-held',
    Namespace: 'Bluegreen/prod/Alerts',
    MetricName: 'ReleasesHeld',
    Dimensions: [{ Name: 'Stage', Value: 'prod' }],
    Statistic: 'Sum',
    Period: 60,
    Threshold: 1,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    TreatMissingData: 'notBreaching',
    AlarmDescription: Match.stringLikeRegexp('https://wiki.example.com/RUNBOOK.md#release-held'),
  });
});

test("the release-frozen alarm pages on the function's ReleasesFrozen metric, at the first one", () => {
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    AlarmName: 'bluegreen-prod-release-frozen',
    Namespace: 'Bluegreen/prod/Alerts',
    MetricName: 'ReleasesFrozen',
    Dimensions: [{ Name: 'Stage', Value: 'prod' }],
    Statistic: 'Sum',
    Period: 60,
    Threshold: 1,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    TreatMissingData: 'notBreaching',
    AlarmDescription: Match.stringLikeRegexp('https://wiki.example.com/RUNBOOK.md#release-frozen'),
  });
});

test('async invocation: 2 retries, then the dead-letter queue', () => {
  template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
    MaximumRetryAttempts: 2,
    DestinationConfig: {
      OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsUndelivered'), 'Arn'] } },
    },
  });
});

test('the subscription filter sends every access-log event, and only that group, to the function', () => {
  template.resourceCountIs('AWS::Logs::SubscriptionFilter', 1);
  template.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
    LogGroupName: { Ref: Match.stringLikeRegexp('^LogsAccess') },
    FilterPattern: '',
    DestinationArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsFunction'), 'Arn'] },
  });
  template.hasResourceProperties('AWS::Lambda::Permission', {
    Action: 'lambda:InvokeFunction',
    Principal: 'logs.amazonaws.com',
  });
});

test('IAM: the exact parameters, write only to its state, FilterLogEvents only on the access log, send only to its queue', () => {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { PolicyName: Match.stringLikeRegexp('^AlertsRole') },
  });
  const statements = Object.values(policies)[0].Properties.PolicyDocument.Statement as Array<{
    Sid?: string;
    Action: unknown;
    Resource: unknown;
  }>;
  const bySid = Object.fromEntries(statements.filter((s) => s.Sid).map((s) => [s.Sid, s]));
  const read = JSON.stringify(bySid.ReadParameters.Resource);
  for (const name of ['bluegreen/prod/maintenance', 'bluegreen/prod/slack-webhook-url', 'bluegreen/prod/alert-state'])
    expect(read).toContain(`:parameter/${name}"`);
  expect(read).not.toContain('*');
  expect(bySid.WriteState).toMatchObject({ Action: 'ssm:PutParameter' });
  expect(JSON.stringify(bySid.WriteState.Resource)).toContain(':parameter/bluegreen/prod/alert-state"');
  // The release guard: read/write the record, flip back (active-pool), end a canary; no history, no pool parameters.
  expect(bySid.ReleaseRecord).toMatchObject({ Action: ['ssm:GetParameter', 'ssm:PutParameter'] });
  expect(JSON.stringify(bySid.ReleaseRecord.Resource)).toMatch(
    /^\{"Fn::Join":.*:parameter\/bluegreen\/prod\/release"\]\]\}$/,
  );
  expect(bySid.GuardFlip).toMatchObject({ Action: 'ssm:PutParameter' });
  const flip = (bySid.GuardFlip.Resource as unknown[]).map((r) => JSON.stringify(r).match(/:parameter(\/[^"]+)"/)![1]);
  expect(flip).toEqual(['/bluegreen/prod/active-pool', '/bluegreen/prod/canary-percent']);
  expect(JSON.stringify(statements)).not.toMatch(/GetParameterHistory|\/pools\//);
  expect(bySid.RebuildWindow).toMatchObject({
    Action: 'logs:FilterLogEvents',
    Resource: { 'Fn::GetAtt': [expect.stringMatching(/^LogsAccess/), 'Arn'] },
  });
  const send = statements.find((s) => JSON.stringify(s.Action).includes('sqs:SendMessage'))!;
  expect(send.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^AlertsUndelivered/), 'Arn'] });
  expect(JSON.stringify(statements)).not.toMatch(/"Resource":"\*"/);
});

test('the dead-letter queue is encrypted, refuses plain HTTP, keeps messages 14 days', () => {
  template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
  template.hasResourceProperties('AWS::SQS::QueuePolicy', {
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      ]),
    },
  });
});

test('alarms: function errors and undelivered alerts, thresholds from context', () => {
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'Errors',
    Namespace: 'AWS/Lambda',
    Threshold: 3,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    Period: 300,
  });
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Namespace: 'AWS/SQS',
    Threshold: 2,
  });
});

test('the state parameter starts empty', () => {
  template.hasResourceProperties('AWS::SSM::Parameter', {
    Name: '/bluegreen/prod/alert-state',
    Type: 'String',
    Value: '{}',
  });
});

test('a change of the release record invokes the function (release events reach Slack without waiting for traffic)', () => {
  template.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: {
      source: ['aws.ssm'],
      'detail-type': ['Parameter Store Change'],
      detail: { name: ['/bluegreen/prod/release'], operation: ['Create', 'Update'] },
    },
    State: 'ENABLED',
    Targets: [
      Match.objectLike({
        Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsFunction'), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 4, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsUndelivered'), 'Arn'] } },
      }),
    ],
  });
  template.hasResourceProperties('AWS::Lambda::Permission', {
    Action: 'lambda:InvokeFunction',
    Principal: 'events.amazonaws.com',
    SourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsReleaseRecordChanged'), 'Arn'] },
  });
  // still one invocation at a time
  expect(fnProps().ReservedConcurrentExecutions).toBe(1);
});

test('a one-minute tick runs the release guard, so a bake ends with no traffic and no CLI', () => {
  template.hasResourceProperties('AWS::Events::Rule', {
    ScheduleExpression: 'rate(1 minute)',
    State: 'ENABLED',
    Targets: [
      Match.objectLike({
        Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsFunction'), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 120 },
      }),
    ],
  });
  template.hasResourceProperties('AWS::Lambda::Permission', {
    Principal: 'events.amazonaws.com',
    SourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsReleaseGuardTick'), 'Arn'] },
  });
});

describe('fleet mode: the function reads the hosts parameter for "N of M hosts"', () => {
  const readResources = (t: Template) => {
    const policies = t.findResources('AWS::IAM::Policy', {
      Properties: { PolicyName: Match.stringLikeRegexp('^AlertsRole') },
    });
    const statements = Object.values(policies)[0].Properties.PolicyDocument.Statement as Array<{
      Sid?: string;
      Resource: unknown[];
    }>;
    // Sorted: CDK orders a statement's resources itself.
    return statements
      .find((s) => s.Sid === 'ReadParameters')!
      .Resource.map((r) => JSON.stringify(r).match(/:parameter(\/[^"]+)"/)![1])
      .sort();
  };
  const env = (t: Template) =>
    Object.values(
      t.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('alert rules') } }),
    )[0].Properties.Environment.Variables;

  test('hosts=3: HOSTS_PARAM names /bluegreen/<stage>/hosts, and GetParameter is granted on exactly that parameter besides the three', () => {
    const fleet = synthTemplate({ stage: 'prod', hosts: '3', operatorCidr: '198.51.100.7/32' });
    expect(env(fleet).HOSTS_PARAM).toBe('/bluegreen/prod/hosts');
    expect(readResources(fleet)).toEqual([
      '/bluegreen/prod/alert-state',
      '/bluegreen/prod/hosts',
      '/bluegreen/prod/maintenance',
      '/bluegreen/prod/slack-webhook-url',
    ]);
  });

  test('the single host: no HOSTS_PARAM, no grant (there is no such parameter)', () => {
    expect(env(template).HOSTS_PARAM).toBeUndefined();
    expect(readResources(template)).toEqual([
      '/bluegreen/prod/alert-state',
      '/bluegreen/prod/maintenance',
      '/bluegreen/prod/slack-webhook-url',
    ]);
  });
});
