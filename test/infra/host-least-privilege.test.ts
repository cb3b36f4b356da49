// The host role reads what the host needs and nothing more, even where an
// AWS-managed policy would give more. Item 1: AmazonSSMManagedInstanceCore allows
// ssm:GetParameter(s) on *, so only an explicit Deny keeps the Slack webhook (and every other
// parameter that is not the host's pool state) out of the host's reach. Item 2: the host reads its
// three asset objects, not the whole CDK bootstrap bucket. Checked on every shape of the app the
// nag/lint test covers, with the IAM helper's evaluator (test/helpers/iam.ts: explicit Deny beats
// any Allow) standing in for IAM; test/infra/iam-contract.test.ts holds the same statements against
// AWS's Service Authorization Reference.
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { buildApp } from '../../bin/app';
import { hostReadParameterNames, parameterNames, STAGE_TAG_KEY } from '../../core/names';
import { newApp, synthTemplate } from '../helpers/cdk';
import {
  AWS_MANAGED_EXCERPTS,
  CfnTemplate,
  evaluate,
  list,
  RawStatement,
  resolveStatement,
  TemplateResolver,
  TEST_ENV,
} from '../helpers/iam';

const variants: Array<[string, Record<string, unknown>]> = [
  ['defaults', {}],
  ['prod with operators', { stage: 'prod', operatorCidr: '198.51.100.7/32', publicCidr: '0.0.0.0/0' }],
  [
    'existing VPC, Graviton',
    {
      stage: 'stg',
      createVpc: 'false',
      vpcId: 'vpc-0123456789abcdef0',
      publicSubnetIds: 'subnet-0123456789abcdef0',
      availabilityZones: 'eu-west-1a',
      instanceType: 't4g.small',
    },
  ],
  ['a pinned AMI', { stage: 'pin', amiId: 'ami-0123456789abcdef0' }],
];

const ssmArn = (name: string, account: string = TEST_ENV.account, region: string = TEST_ENV.region) =>
  `arn:aws:ssm:${region}:${account}:parameter${name}`;
const VALUE_ACTIONS = ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath', 'ssm:GetParameterHistory'];

/** A synthesized value as it resolves in the test account (the template is the variant's). */
let resolver: TemplateResolver;
const resolve = (value: unknown): string => resolver.resolve(value);

type Statement = RawStatement;
/** IAM's decision (test/helpers/iam.ts's evaluator) for one principal's statements, as synthesized. */
function decide(statements: Statement[], action: string, arn: string): 'allow' | 'deny' | 'implicit-deny' {
  const decision = evaluate(
    statements.map((s) => resolveStatement(s, resolve)),
    { action, resource: arn },
  );
  return decision === 'explicit-deny' ? 'deny' : decision;
}
// AmazonSSMManagedInstanceCore's parameter read (the excerpt the IAM helper keeps of the AWS-managed policy).
const MANAGED_CORE: Statement[] = AWS_MANAGED_EXCERPTS.AmazonSSMManagedInstanceCore;

function hostPolicy(template: Template): Statement[] {
  const policies = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([id]) =>
    id.startsWith('HostRoleDefaultPolicy'),
  );
  expect(policies).toHaveLength(1);
  // and the role carries no inline policy of its own that these checks would miss
  const roles = Object.entries(template.findResources('AWS::IAM::Role')).filter(([id]) => id.startsWith('HostRole'));
  expect(roles).toHaveLength(1);
  expect(roles[0][1].Properties.Policies).toBeUndefined();
  return policies[0][1].Properties.PolicyDocument.Statement as Statement[];
}

/** Every parameter name of a stage (the one definition in lib/stack-config.ts), flattened. */
function stageParameterNames(stage: string): string[] {
  const names: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') names.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  // secretsPath is a path (the stage's secrets: allowed below, by their own statement), not a parameter.
  const { root: _root, secretsPath: _secrets, ...rest } = parameterNames(stage);
  walk(rest);
  return names;
}

describe.each(variants)('%s', (_name, context) => {
  let template: Template;
  let statements: Statement[];
  let stage: string;
  beforeAll(() => {
    template = synthTemplate(context);
    resolver = new TemplateResolver(
      template.toJSON() as CfnTemplate,
      `BlueGreen-${(context.stage as string | undefined) ?? 'dev'}`,
    );
    statements = hostPolicy(template);
    stage = (context.stage as string | undefined) ?? 'dev';
  });

  describe('item 1: parameters', () => {
    test("an explicit Deny of the value-returning SSM actions on every parameter but the host's own ten and the stage's secrets", () => {
      const denies = statements.filter((s) => s.Effect === 'Deny');
      expect(denies).toHaveLength(1);
      const [deny] = denies;
      expect(deny.Sid).toBe('DenyOtherParameters');
      expect(list(deny.Action).sort()).toEqual([...VALUE_ACTIONS].sort());
      expect(deny.Resource).toBeUndefined();
      expect(deny.Condition).toBeUndefined();
      const own = hostReadParameterNames(stage);
      expect(own).toHaveLength(10);
      const secrets = ssmArn(`${parameterNames(stage).secretsPath}*`);
      expect(list(deny.NotResource).map(resolve).sort()).toEqual([...own.map((n) => ssmArn(n)), secrets].sort());
      // the Allows and the Deny's exemption are the same: the ten parameters, the secrets' path
      const read = statements.find((s) => s.Sid === 'ReadPoolState')!;
      expect(list(read.Resource).map(resolve).sort()).toEqual(own.map((n) => ssmArn(n)).sort());
      const readSecrets = statements.find((s) => s.Sid === 'ReadStageSecrets')!;
      expect(list(readSecrets.Action)).toEqual(['ssm:GetParameters']);
      expect(list(readSecrets.Resource).map(resolve)).toEqual([secrets]);
    });

    test("with the managed policy's GetParameter(s) on *, the host reads its own pool state and nothing else: not the webhook, the alert state, the release record, maintenance, another stage, another app", () => {
      const effective = [...MANAGED_CORE, ...statements];
      const own = hostReadParameterNames(stage);
      for (const name of own) {
        for (const action of ['ssm:GetParameter', 'ssm:GetParameters'])
          expect([name, action, decide(effective, action, ssmArn(name))]).toEqual([name, action, 'allow']);
      }
      const n = parameterNames(stage);
      const forbidden = [
        ...stageParameterNames(stage).filter((name) => !own.includes(name)),
        parameterNames(stage === 'prod' ? 'dev' : 'prod').slackWebhookUrl,
        '/other-app/database-password',
        'unrooted-secret',
      ];
      // the ones the issue names are among them
      expect(forbidden).toEqual(
        expect.arrayContaining([
          n.slackWebhookUrl,
          n.alertState,
          n.release,
          n.maintenance,
          n.publicUrl,
          n.instanceId,
          n.ecrRepository,
        ]),
      );
      for (const name of forbidden) {
        const arn = name.startsWith('/') ? ssmArn(name) : ssmArn(`/${name}`);
        for (const action of VALUE_ACTIONS)
          expect([name, action, decide(effective, action, arn)]).toEqual([name, action, 'deny']);
      }
      // a path read of the stage (GetParametersByPath's resource is the path) and another region or account
      expect(decide(effective, 'ssm:GetParametersByPath', ssmArn(`/bluegreen/${stage}`))).toBe('deny');
      expect(decide(effective, 'ssm:GetParameter', ssmArn(n.slackWebhookUrl, '111122223333', 'us-east-1'))).toBe(
        'deny',
      );
      expect(decide(effective, 'ssm:GetParameter', ssmArn(n.activePool, '444455556666'))).toBe('deny');
      // the stage's secrets: GetParameters only (what bluegreen-apply calls); another stage's: denied
      expect(decide(effective, 'ssm:GetParameters', ssmArn(`${n.secretsPath}DB_PASSWORD`))).toBe('allow');
      const other = parameterNames(stage === 'prod' ? 'dev' : 'prod').secretsPath;
      for (const action of VALUE_ACTIONS)
        expect([action, decide(effective, action, ssmArn(`${other}DB_PASSWORD`))]).toEqual([action, 'deny']);
    });

    test("kms:Decrypt only through SSM for the stage's secrets; Secrets Manager only for secrets tagged with the stage", () => {
      const decrypt = statements.find((s) => s.Sid === 'DecryptStageSecretsViaSsm')!;
      expect(list(decrypt.Action)).toEqual(['kms:Decrypt']);
      expect(JSON.stringify(decrypt.Condition)).toContain('"kms:ViaService"');
      expect(
        resolve(
          (decrypt.Condition as { StringLike: Record<string, unknown> }).StringLike[
            'kms:EncryptionContext:PARAMETER_ARN'
          ],
        ),
      ).toBe(ssmArn(`${parameterNames(stage).secretsPath}*`));
      const sm = statements.find((s) => s.Sid === 'ReadStageSecretsManagerSecrets')!;
      expect(list(sm.Action)).toEqual(['secretsmanager:GetSecretValue']);
      expect(sm.Condition).toEqual({ StringEquals: { [`aws:ResourceTag/${STAGE_TAG_KEY}`]: stage } });
    });

    test('nothing else of the role reads a parameter value or decrypts', () => {
      const readers = statements.filter(
        (s) => s.Effect === 'Allow' && list(s.Action).some((a) => /^(ssm:GetParameter|kms:)/.test(a)),
      );
      expect(readers.map((s) => s.Sid)).toEqual(['ReadPoolState', 'ReadStageSecrets', 'DecryptStageSecretsViaSsm']);
    });
  });

  describe('item 2: assets', () => {
    test('s3:GetObject on exactly the three asset objects the user data downloads, and no other S3 permission', () => {
      const s3 = statements.filter((s) => list(s.Action).some((a) => a.startsWith('s3:')));
      expect(s3).toHaveLength(1);
      const [read] = s3;
      expect(read).toMatchObject({ Sid: 'ReadOwnAssets', Effect: 'Allow', Action: 's3:GetObject' });
      const objects = list(read.Resource).map(resolve);
      expect(objects).toHaveLength(3);
      // the objects are the ones `aws s3 cp` fetches in the user data, key for key
      const [instance] = Object.values(template.findResources('AWS::EC2::Instance'));
      const userData = resolve(instance.Properties.UserData['Fn::Base64']);
      const downloads = [...userData.matchAll(/aws s3 cp '?s3:\/\/([^/']+)\/([^' ]+)'?/g)].map(
        ([, bucket, key]) => `arn:aws:s3:::${bucket}/${key}`,
      );
      expect(downloads).toHaveLength(3);
      expect(objects.sort()).toEqual(downloads.sort());
      for (const arn of objects)
        expect(arn).toMatch(/^arn:aws:s3:::cdk-[a-z0-9]+-assets-111122223333-eu-west-1\/[0-9a-f]{64}\.zip$/);
      // no wildcard anywhere in it: not the bucket, not bucket/*
      expect(JSON.stringify(read.Resource)).not.toContain('*');
    });

    test('no bucket-level or listing action, and no other object of the bootstrap bucket is readable', () => {
      const actions = statements.flatMap((s) => list(s.Action));
      expect(actions.filter((a) => /^s3:/.test(a))).toEqual(['s3:GetObject']);
      expect(actions.filter((a) => /^s3:(List|GetBucket|GetObject[A-Z*])/.test(a))).toEqual([]);
      const objects = list(statements.find((s) => s.Sid === 'ReadOwnAssets')!.Resource).map(resolve);
      const bucket = objects[0].split('/')[0];
      expect(decide(statements, 's3:GetObject', `${bucket}/${'0'.repeat(64)}.zip`)).toBe('implicit-deny');
      expect(decide(statements, 's3:ListBucket', bucket)).toBe('implicit-deny');
      for (const arn of objects) expect(decide(statements, 's3:GetObject', arn)).toBe('allow');
    });

    test('no cdk-nag acknowledgement for S3 wildcards is left on the role (nothing generates them now)', () => {
      const stack = buildApp(newApp(context));
      const role = stack.node.findAll().find((c) => c instanceof iam.Role && c.node.path.endsWith('/Host/Role'))!;
      expect(role).toBeDefined();
      const acknowledged = role.node.metadata
        .filter((m) => m.type === 'aws:cdk:acknowledged-rules')
        .flatMap((m) => Object.keys(m.data as object));
      expect(acknowledged.length).toBeGreaterThan(0);
      expect(acknowledged.filter((id) => /s3/i.test(id))).toEqual([]);
    });
  });
});
