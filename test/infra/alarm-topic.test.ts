// The alert pipeline's alarms page someone: an encrypted topic per stage as their ALARM and OK
// action, email subscribers from context (the path without Slack), the alert function (Slack),
// and a synth warning when nobody gets them by email.
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../bin/app';
import { NO_ALARM_EMAIL_WARNING } from '../../lib/alarm-topic';
import { ConfigError } from '../../core/config-error';
import { parseConfig } from '../../lib/stack-config';
import { newApp, synthTemplate } from '../helpers/cdk';

const EMAILS = 'oncall@example.com, Platform.Team+alarms@example.org';
let template: Template;
beforeAll(() => {
  template = synthTemplate({ stage: 'prod', alarmEmails: EMAILS, runbookUrl: 'https://wiki.example.com/RUNBOOK.md' });
});

const topicRef = () => ({ Ref: Object.keys(template.findResources('AWS::SNS::Topic'))[0] });

test('one topic per stage, encrypted with a rotated customer-managed key, plain HTTP refused', () => {
  template.resourceCountIs('AWS::SNS::Topic', 1);
  const [keyId] = Object.keys(template.findResources('AWS::KMS::Key'));
  template.hasResourceProperties('AWS::SNS::Topic', {
    TopicName: 'bluegreen-prod-alarms',
    KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
  });
  template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  template.hasResourceProperties('AWS::SNS::TopicPolicy', {
    Topics: [topicRef()],
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({
          Effect: 'Deny',
          Action: 'sns:Publish',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      ]),
    },
  });
});

test("the stage's alarms have the topic as their ALARM and their OK action, and are named for the function to recognise", () => {
  const alarms = template.findResources('AWS::CloudWatch::Alarm', {
    Properties: { AlarmName: Match.stringLikeRegexp('^bluegreen-prod-') },
  });
  const byName: Record<string, Record<string, unknown>> = Object.fromEntries(
    Object.values(alarms).map((a) => [a.Properties.AlarmName, a.Properties]),
  );
  expect(Object.keys(byName).sort()).toEqual([
    'bluegreen-prod-alert-function-errors',
    'bluegreen-prod-log-rotation-failed',
    'bluegreen-prod-release-frozen',
    'bluegreen-prod-release-held',
    'bluegreen-prod-undelivered-alerts',
  ]);
  for (const props of Object.values(byName)) {
    expect(props.AlarmActions).toEqual([topicRef()]);
    expect(props.OKActions).toEqual([topicRef()]);
  }
  // The email body is the description: it says where the runbook section is.
  expect(String(byName['bluegreen-prod-undelivered-alerts'].AlarmDescription)).toContain(
    'https://wiki.example.com/RUNBOOK.md#undelivered-alerts',
  );
  expect(String(byName['bluegreen-prod-alert-function-errors'].AlarmDescription)).toContain(
    'https://wiki.example.com/RUNBOOK.md#alert-function-errors',
  );
});

test('a runbookUrl with a fragment: the email body links the section once (runbookLink, as the Slack button does)', () => {
  const t = synthTemplate({
    stage: 'prod',
    alarmEmails: 'oncall@example.com',
    runbookUrl: 'https://github.com/o/r/blob/main/RUNBOOK.md#top',
  });
  const descriptions = Object.values(
    t.findResources('AWS::CloudWatch::Alarm', {
      Properties: { AlarmName: Match.stringLikeRegexp('^bluegreen-prod-') },
    }),
  ).map((a) => String(a.Properties.AlarmDescription));
  expect(descriptions.join('\n')).toContain('Runbook: https://github.com/o/r/blob/main/RUNBOOK.md#undelivered-alerts');
  for (const d of descriptions) expect(d).not.toContain('#top');
});

test("the key lets CloudWatch publish (Decrypt, GenerateDataKey*), and nothing else beyond the account's own administration", () => {
  const key = Object.values(template.findResources('AWS::KMS::Key'))[0];
  const statements = key.Properties.KeyPolicy.Statement as Array<{
    Principal: Record<string, unknown>;
    Action: unknown;
  }>;
  const services = statements.filter((s) => s.Principal.Service);
  expect(services).toEqual([
    expect.objectContaining({
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
    }),
  ]);
});

test('the topic policy lets CloudWatch publish for these two alarms of this account only', () => {
  const policy = Object.values(template.findResources('AWS::SNS::TopicPolicy'))[0];
  const allow = (policy.Properties.PolicyDocument.Statement as Array<Record<string, any>>).filter(
    (s) => s.Effect === 'Allow',
  );
  expect(allow).toHaveLength(1);
  expect(allow[0]).toMatchObject({
    Principal: { Service: 'cloudwatch.amazonaws.com' },
    Action: 'sns:Publish',
    Resource: topicRef(),
    Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
  });
  const sources = (allow[0].Condition.ArnEquals['aws:SourceArn'] as Array<{ 'Fn::GetAtt': [string, string] }>).map(
    (r) => r['Fn::GetAtt'][0],
  );
  expect(sources.sort()).toEqual(
    Object.keys(
      template.findResources('AWS::CloudWatch::Alarm', {
        Properties: { AlarmName: Match.stringLikeRegexp('^bluegreen-prod-') },
      }),
    ).sort(),
  );
});

test('an email subscription per address from context', () => {
  const emails = Object.values(
    template.findResources('AWS::SNS::Subscription', { Properties: { Protocol: 'email' } }),
  ).map((s) => s.Properties);
  expect(emails.map((e) => e.Endpoint).sort()).toEqual(['Platform.Team+alarms@example.org', 'oncall@example.com']);
  for (const e of emails) expect(e.TopicArn).toEqual(topicRef());
});

test('the alert function is subscribed (Slack), SNS may invoke it for this topic only, and what it cannot hand over goes to the dead-letter queue', () => {
  template.hasResourceProperties('AWS::SNS::Subscription', {
    Protocol: 'lambda',
    TopicArn: topicRef(),
    Endpoint: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsFunction'), 'Arn'] },
    RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsUndelivered'), 'Arn'] } },
  });
  template.hasResourceProperties('AWS::Lambda::Permission', {
    Action: 'lambda:InvokeFunction',
    Principal: 'sns.amazonaws.com',
    SourceArn: topicRef(),
  });
  template.hasResourceProperties('AWS::SQS::QueuePolicy', {
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({
          Effect: 'Allow',
          Principal: { Service: 'sns.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Condition: { ArnEquals: { 'aws:SourceArn': topicRef() } },
        }),
      ]),
    },
  });
});

test('no subscription filters: an email gets every change CloudWatch sends (the function drops a first OK itself)', () => {
  // A body filter policy on CloudWatch's formatted-text email could drop the ALARM itself.
  const subscriptions = Object.values(template.findResources('AWS::SNS::Subscription')).map((s) => s.Properties);
  expect(subscriptions.map((s) => s.Protocol).sort()).toEqual(['email', 'email', 'lambda']);
  for (const s of subscriptions) {
    expect(s.TopicArn).toEqual(topicRef());
    expect(s.FilterPolicy).toBeUndefined();
    expect(s.FilterPolicyScope).toBeUndefined();
  }
});

test('least privilege: the function gets no SNS or KMS rights (SNS invokes it; it only posts to Slack)', () => {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { PolicyName: Match.stringLikeRegexp('^AlertsRole') },
  });
  expect(JSON.stringify(policies)).not.toMatch(/"(sns|kms):/);
});

test('the AlarmTopic output names the topic (for a pager subscription)', () => {
  template.hasOutput('AlarmTopic', { Value: topicRef() });
});

describe('without alarmEmails', () => {
  test('synth warns, naming the key; no email subscription', () => {
    const app = newApp({ stage: 'prod' });
    const stack = buildApp(app);
    const warnings = Annotations.fromStack(stack).findWarning(
      '*',
      Match.stringLikeRegexp('No alarmEmails for stage prod'),
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0].entry.data).toContain(`[ack: ${NO_ALARM_EMAIL_WARNING}]`);
    expect(warnings[0].entry.data).toContain('-c alarmEmails=');
    Template.fromStack(stack).resourceCountIs('AWS::SNS::Subscription', 1); // the function's
  });

  test('with addresses, no warning', () => {
    const stack = buildApp(newApp({ stage: 'prod', alarmEmails: 'oncall@example.com' }));
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('alarmEmails'))).toEqual([]);
  });
});

describe('context alarmEmails', () => {
  test('comma-separated (from -c) or a list (cdk.json); duplicates dropped', () => {
    expect(parseConfig({ alarmEmails: ' a@example.com ,b@example.org,A@example.com' }).alarmEmails).toEqual([
      'A@example.com',
      'b@example.org',
    ]);
    expect(parseConfig({ alarmEmails: ['a@example.com', 'b@example.org'] }).alarmEmails).toEqual([
      'a@example.com',
      'b@example.org',
    ]);
    expect(parseConfig({}).alarmEmails).toEqual([]);
  });

  test.each([
    ['not-an-email', 'not-an-email'],
    ['oncall@example.com,oncall@localhost', 'oncall@localhost'],
    ['on call@example.com', 'on call@example.com'],
    ['"Ops" <ops@example.com>', '"Ops" <ops@example.com>'],
    ['ops@example.com;dev@example.com', 'ops@example.com;dev@example.com'],
  ])('a bad address fails synth naming the key: %s', (value, bad) => {
    expect(() => parseConfig({ alarmEmails: value })).toThrow(ConfigError);
    expect(() => parseConfig({ alarmEmails: value })).toThrow(
      `context key "alarmEmails" must be email addresses like oncall@example.com, got "${bad}"`,
    );
  });

  test('a value of the wrong type, or too many addresses, fails naming the key', () => {
    expect(() => parseConfig({ alarmEmails: { to: 'a@example.com' } })).toThrow(
      'context key "alarmEmails" must be comma-separated email addresses or a list of them',
    );
    const many = Array.from({ length: 11 }, (_, i) => `p${i}@example.com`).join(',');
    expect(() => parseConfig({ alarmEmails: many })).toThrow(
      'context key "alarmEmails" lists 11 addresses; at most 10',
    );
  });
});
