// The alert path in the stack: function, subscription filter, the release ledger's stream, IAM
// scope, dead-letter queue, alarms.
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
    LEDGER_TABLE: 'bluegreen-prod-releases',
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
  // The record is the ledger's now: the old SSM parameter is named nowhere in the function's settings.
  expect(props.Environment.Variables.RELEASE_PARAM).toBeUndefined();
  expect(JSON.stringify(props.Environment.Variables)).not.toContain('/bluegreen/prod/release"');
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

const alertStatements = (t: Template = template) => {
  const policies = t.findResources('AWS::IAM::Policy', {
    Properties: { PolicyName: Match.stringLikeRegexp('^AlertsRole') },
  });
  expect(Object.keys(policies)).toHaveLength(1);
  return Object.values(policies)[0].Properties.PolicyDocument.Statement as Array<{
    Sid?: string;
    Effect: string;
    Action: unknown;
    Resource: unknown;
    Condition?: unknown;
  }>;
};
const tableId = () => Object.keys(template.findResources('AWS::DynamoDB::Table'))[0];
const ledgerArn = {
  'Fn::Join': [
    '',
    [
      'arn:',
      { Ref: 'AWS::Partition' },
      ':dynamodb:',
      { Ref: 'AWS::Region' },
      ':',
      { Ref: 'AWS::AccountId' },
      ':table/bluegreen-prod-releases',
    ],
  ],
};

test('IAM: the exact parameters, write only to its state, the ledger read and written on its own table, FilterLogEvents only on the access log, send only to its queue', () => {
  const statements = alertStatements();
  const bySid = Object.fromEntries(statements.filter((s) => s.Sid).map((s) => [s.Sid, s]));
  const read = JSON.stringify(bySid.ReadParameters.Resource);
  for (const name of ['bluegreen/prod/maintenance', 'bluegreen/prod/slack-webhook-url', 'bluegreen/prod/alert-state'])
    expect(read).toContain(`:parameter/${name}"`);
  expect(read).not.toContain('*');
  expect(bySid.WriteState).toMatchObject({ Action: 'ssm:PutParameter' });
  expect(JSON.stringify(bySid.WriteState.Resource)).toContain(':parameter/bluegreen/prod/alert-state"');
  // The release guard: the ledger (GetItem of the head, its conditional Puts) on the stage's table
  // alone; flip back (active-pool), end a canary; no history (no Query), no pool parameters.
  expect(bySid.ReleaseLedger).toEqual({
    Sid: 'ReleaseLedger',
    Effect: 'Allow',
    Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
    Resource: ledgerArn,
  });
  expect(bySid.GuardFlip).toMatchObject({ Action: 'ssm:PutParameter' });
  const flip = (bySid.GuardFlip.Resource as unknown[]).map((r) => JSON.stringify(r).match(/:parameter(\/[^"]+)"/)![1]);
  expect(flip).toEqual(['/bluegreen/prod/active-pool', '/bluegreen/prod/canary-percent']);
  expect(JSON.stringify(statements)).not.toMatch(/GetParameterHistory|\/pools\//);
  // Not the old SSM record: nothing reads or writes it any more but the CLI's one import.
  expect(JSON.stringify(statements)).not.toContain(':parameter/bluegreen/prod/release"');
  expect(bySid.RebuildWindow).toMatchObject({
    Action: 'logs:FilterLogEvents',
    Resource: { 'Fn::GetAtt': [expect.stringMatching(/^LogsAccess/), 'Arn'] },
  });
  const send = statements.filter((s) => JSON.stringify(s.Action).includes('sqs:SendMessage'));
  expect(send).toHaveLength(1);
  expect(send[0].Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^AlertsUndelivered/), 'Arn'] });
  // The one statement on "*": dynamodb:ListStreams (no resource-level permission; see the stream test).
  expect(statements.filter((s) => s.Resource === '*')).toEqual([
    { Effect: 'Allow', Action: 'dynamodb:ListStreams', Resource: '*' },
  ]);
});

test("the ledger's stream reaches the function with the stream's read actions on that stream alone; nothing else of DynamoDB", () => {
  const statements = alertStatements();
  const dynamo = statements.filter((s) => JSON.stringify(s.Action).includes('dynamodb:'));
  expect(dynamo).toEqual([
    expect.objectContaining({ Sid: 'ReleaseLedger' }),
    // The latest releases for the dashboard's lines: a Query of the releases' partition, nothing else.
    {
      Sid: 'LatestReleases',
      Effect: 'Allow',
      Action: 'dynamodb:Query',
      Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['release'] } },
      Resource: expect.anything(),
    },
    { Effect: 'Allow', Action: 'dynamodb:ListStreams', Resource: '*' },
    {
      Effect: 'Allow',
      Action: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'],
      Resource: { 'Fn::GetAtt': [tableId(), 'StreamArn'] },
    },
  ]);
  // Every DynamoDB action the role has: no write beyond PutItem, no Scan, no delete, no table administration.
  expect(
    [...JSON.stringify(statements.map((st) => st.Action)).matchAll(/"(dynamodb:[A-Za-z*]+)"/g)].map((m) => m[1]).sort(),
  ).toEqual([
    'dynamodb:DescribeStream',
    'dynamodb:GetItem',
    'dynamodb:GetRecords',
    'dynamodb:GetShardIterator',
    'dynamodb:ListStreams',
    'dynamodb:PutItem',
    'dynamodb:Query',
  ]);
});

test("the dashboard's release lines: Get and Put of the stage's own dashboard only", () => {
  const statements = alertStatements();
  const draw = statements.find((s) => s.Sid === 'DrawReleases')!;
  expect(draw.Action).toEqual(['cloudwatch:GetDashboard', 'cloudwatch:PutDashboard']);
  expect(JSON.stringify(draw.Resource)).toMatch(
    /:cloudwatch::",\{"Ref":"AWS::AccountId"\},":dashboard\/bluegreen-prod"/,
  );
  expect(JSON.stringify(statements.map((st) => st.Action)).match(/cloudwatch:/g)).toHaveLength(2);
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

test("a write of the ledger's head invokes the function through the table's stream: head items only, from the stream's end, bounded retries, failures to the dead-letter queue", () => {
  template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
  const [mapping] = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'));
  expect(mapping.Properties).toEqual({
    FunctionName: { Ref: expect.stringMatching(/^AlertsFunction/) },
    EventSourceArn: { 'Fn::GetAtt': [tableId(), 'StreamArn'] },
    StartingPosition: 'LATEST',
    BatchSize: 10,
    BisectBatchOnFunctionError: true,
    MaximumRetryAttempts: 2,
    MaximumRecordAgeInSeconds: 3600,
    DestinationConfig: {
      OnFailure: { Destination: { 'Fn::GetAtt': [expect.stringMatching(/^AlertsUndelivered/), 'Arn'] } },
    },
    FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ dynamodb: { Keys: { pk: { S: ['head'] } } } }) }] },
  });
  // The filter, as Lambda applies it to a record: a head write passes, a release's or event item does not.
  const pattern = JSON.parse(mapping.Properties.FilterCriteria.Filters[0].Pattern);
  const passes = (pk: string) => pattern.dynamodb.Keys.pk.S.includes(pk);
  expect([passes('head'), passes('release'), passes('events#r-1')]).toEqual([true, false, false]);
  // still one invocation at a time
  expect(fnProps().ReservedConcurrentExecutions).toBe(1);
});

test('no EventBridge rule on the old SSM record any more: the only rule aimed at the function is the guard tick', () => {
  const rules = Object.values(template.findResources('AWS::Events::Rule')).filter((r) =>
    JSON.stringify(r.Properties.Targets).includes('AlertsFunction'),
  );
  expect(rules.map((r) => r.Properties.ScheduleExpression)).toEqual(['rate(1 minute)']);
  expect(JSON.stringify(template.findResources('AWS::Events::Rule'))).not.toContain('/bluegreen/prod/release"');
  expect(Object.keys(template.findResources('AWS::Events::Rule')).join()).not.toContain('ReleaseRecordChanged');
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
