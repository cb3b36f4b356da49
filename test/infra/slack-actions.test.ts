// Slack's buttons in the stack (lib/slack-actions.ts, context slackActions): the function and its
// URL only when asked for; its role the guard's and no more; the alert function told to add buttons.
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parameterNames, slackActionsFunctionName } from '../../core/names';
import { SLACK_ACTIONS_RESERVED_CONCURRENCY } from '../../lib/slack-actions';
import { synthTemplate } from '../helpers/cdk';

let on: Template;
let off: Template;
beforeAll(() => {
  on = synthTemplate({ stage: 'prod', slackActions: 'true' });
  off = synthTemplate({ stage: 'prod' });
});

const names = parameterNames('prod');
const fn = (t: Template) =>
  Object.values(t.findResources('AWS::Lambda::Function')).find(
    (r) => r.Properties.FunctionName === slackActionsFunctionName('prod'),
  );

test('off by default: no function, no URL, no buttons on the alert messages', () => {
  expect(fn(off)).toBeUndefined();
  off.resourceCountIs('AWS::Lambda::Url', 0);
  const alert = Object.values(off.findResources('AWS::Lambda::Function')).find(
    (r) => r.Properties.Environment?.Variables?.STAGE === 'prod',
  )!;
  expect(alert.Properties.Environment.Variables.SLACK_ACTIONS).toBeUndefined();
});

test('on: the function with its name, bounded concurrency, no retries of the work, the names it reads; its URL without IAM auth; the output', () => {
  const f = fn(on)!;
  expect(f.Properties).toMatchObject({
    Runtime: 'nodejs24.x',
    Architectures: ['arm64'],
    Timeout: 30,
    ReservedConcurrentExecutions: SLACK_ACTIONS_RESERVED_CONCURRENCY,
  });
  expect(f.Properties.Environment.Variables).toEqual({
    NODE_OPTIONS: '--enable-source-maps',
    STAGE: 'prod',
    LEDGER_TABLE: 'bluegreen-prod-releases',
    SIGNING_SECRET_PARAM: names.slackSigningSecret,
    ALLOWED_USERS_PARAM: names.slackAllowedUsers,
    ACTIVE_POOL_PARAM: names.activePool,
    CANARY_PARAM: names.canaryPercent,
  });
  on.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 0 });
  // Slack signs with the app's secret, not SigV4: the function authenticates every request itself.
  on.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'NONE' });
  on.hasOutput('SlackActionsUrl', { Value: { 'Fn::GetAtt': [Match.anyValue(), 'FunctionUrl'] } });
  const alert = Object.values(on.findResources('AWS::Lambda::Function')).find(
    (r) => r.Properties.Environment?.Variables?.ACCESS_LOG_GROUP !== undefined,
  )!;
  expect(alert.Properties.Environment.Variables.SLACK_ACTIONS).toBe('on');
});

test("its role: own logs, the secret, allowlist and active pool read, the guard's two switches, the ledger's GetItem/PutItem, itself invoked; nothing else", () => {
  const roles = on.findResources('AWS::IAM::Role', {
    Properties: { Description: Match.stringLikeRegexp('Slack actions') },
  });
  const [roleId] = Object.keys(roles);
  const policy = Object.values(on.findResources('AWS::IAM::Policy')).find((p) =>
    JSON.stringify(p.Properties.Roles).includes(roleId),
  )!;
  const statements = policy.Properties.PolicyDocument.Statement as Array<{
    Sid: string;
    Action: string | string[];
    Resource: unknown;
  }>;
  const text = (v: unknown) => JSON.stringify(v);
  expect(statements.map((s) => [s.Sid, [s.Action].flat().join(',')])).toEqual([
    ['OwnLogs', 'logs:CreateLogStream,logs:PutLogEvents'],
    ['ReadParameters', 'ssm:GetParameter'],
    ['Switch', 'ssm:PutParameter'],
    ['ReleaseLedger', 'dynamodb:GetItem,dynamodb:PutItem'],
    ['InvokeSelf', 'lambda:InvokeFunction'],
  ]);
  const bySid = Object.fromEntries(statements.map((s) => [s.Sid, text(s.Resource)]));
  for (const name of [names.slackSigningSecret, names.slackAllowedUsers, names.activePool])
    expect(bySid.ReadParameters).toContain(`:parameter${name}"`);
  expect(bySid.ReadParameters).not.toContain('slack-webhook-url');
  expect(bySid.Switch).toContain(`:parameter${names.activePool}"`);
  expect(bySid.Switch).toContain(`:parameter${names.canaryPercent}"`);
  expect((bySid.Switch.match(/:parameter\//g) ?? []).length).toBe(2);
  expect(bySid.ReleaseLedger).toContain('Arn');
  expect(bySid.InvokeSelf).toContain(`:function:${slackActionsFunctionName('prod')}"`);
});

test('the context key takes true or false only, and says so', () => {
  expect(() => synthTemplate({ stage: 'prod', slackActions: 'yes' })).toThrow(
    'context key "slackActions" must be true or false, got "yes"',
  );
});
