// The pool state parameters (README "What the stack creates"): created once by CloudFormation, never written by it
// again. Checked on the template, and on the very handler AwsCustomResource deploys.
import * as path from 'node:path';
import { SSMClient } from '@aws-sdk/client-ssm';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { synthTemplate } from '../helpers/cdk';

const PREFIX = '/bluegreen/prod';
const POOL_PARAMS = ['blue', 'green'].flatMap((p) =>
  ['image', 'release', 'env', 'options'].map((k) => `${PREFIX}/pools/${p}/${k}`),
);
const ALL = [
  `${PREFIX}/active-pool`,
  `${PREFIX}/maintenance`,
  `${PREFIX}/canary-percent`,
  `${PREFIX}/release`,
  ...POOL_PARAMS,
];

interface SdkCall {
  service: string;
  action: string;
  parameters: Record<string, unknown>;
  physicalResourceId?: { id: string };
  ignoreErrorCodesMatching?: string;
}

let template: Template;
beforeAll(() => {
  template = synthTemplate({
    stage: 'prod',
    releaseBlue: 'shop-41',
    greenImage: 'ghcr.io/acme/shop:1.5.0',
    initialActivePool: 'green',
  });
});

/** The create-only resources by parameter name, with their Create/Delete calls parsed. */
function createOnly(t: Template) {
  const resources = t.findResources('Custom::CreateOnlyParameter');
  return Object.fromEntries(
    Object.entries(resources).map(([logicalId, r]) => {
      const create = JSON.parse(r.Properties.Create) as SdkCall;
      return [
        create.parameters.Name as string,
        { logicalId, resource: r, create, delete: JSON.parse(r.Properties.Delete) as SdkCall },
      ];
    }),
  );
}

test('every pool state parameter is a create-only resource, none an AWS::SSM::Parameter', () => {
  const byName = createOnly(template);
  expect(Object.keys(byName).sort()).toEqual([...ALL].sort());
  const cfnOwned = Object.values(template.findResources('AWS::SSM::Parameter')).map((r) => r.Properties.Name);
  for (const name of ALL) expect(cfnOwned).not.toContain(name);
});

test('Create: PutParameter without overwrite, an existing value kept (ParameterAlreadyExists ignored); Delete removes it', () => {
  for (const [name, { create, delete: del }] of Object.entries(createOnly(template))) {
    expect(create).toMatchObject({
      service: 'SSM',
      action: 'PutParameter',
      physicalResourceId: { id: name },
      ignoreErrorCodesMatching: '^ParameterAlreadyExists$',
    });
    expect(create.parameters).toMatchObject({ Name: name, Type: 'String', Tier: 'Standard', Overwrite: false });
    expect(del).toEqual({
      service: 'SSM',
      action: 'DeleteParameter',
      parameters: { Name: name },
      ignoreErrorCodesMatching: '^ParameterNotFound$',
    });
  }
});

test('no Update call: on a stack update CloudFormation has nothing to write', () => {
  for (const { resource } of Object.values(createOnly(template))) {
    expect(Object.keys(resource.Properties).sort()).toEqual([
      'Create',
      'Delete',
      'InstallLatestAwsSdk',
      'ServiceToken',
    ]);
    expect(resource.Properties.InstallLatestAwsSdk).toBe(false);
  }
});

test('initial values: context where given, defaults otherwise (the app/ image, canary 0, empty record and env)', () => {
  const value = (name: string) => createOnly(template)[name].create.parameters.Value;
  expect(value(`${PREFIX}/active-pool`)).toBe('green');
  expect(value(`${PREFIX}/maintenance`)).toBe('off');
  expect(value(`${PREFIX}/canary-percent`)).toBe('0');
  expect(value(`${PREFIX}/release`)).toBe('{}');
  expect(value(`${PREFIX}/pools/blue/image`)).toBe('bluegreen-app:local');
  expect(value(`${PREFIX}/pools/green/image`)).toBe('ghcr.io/acme/shop:1.5.0');
  expect(value(`${PREFIX}/pools/blue/release`)).toBe('shop-41');
  expect(value(`${PREFIX}/pools/green/release`)).toBe('green-1');
  expect(value(`${PREFIX}/pools/blue/env`)).toBe('{}');
});

test('allowed patterns: SSM itself refuses a bad active pool, canary share, release id or image', () => {
  const pattern = (name: string) => new RegExp(createOnly(template)[name].create.parameters.AllowedPattern as string);
  expect(['blue', 'green'].every((v) => pattern(`${PREFIX}/active-pool`).test(v))).toBe(true);
  expect(pattern(`${PREFIX}/active-pool`).test('purple')).toBe(false);
  expect(['0', '10', '99'].every((v) => pattern(`${PREFIX}/canary-percent`).test(v))).toBe(true);
  expect(['100', '-1', '05', ''].some((v) => pattern(`${PREFIX}/canary-percent`).test(v))).toBe(false);
  expect(pattern(`${PREFIX}/pools/green/release`).test('v2; rm -rf /')).toBe(false);
  expect(
    pattern(`${PREFIX}/pools/blue/image`).test('123456789012.dkr.ecr.eu-west-1.amazonaws.com/bluegreen-prod:v2'),
  ).toBe(true);
  expect(pattern(`${PREFIX}/pools/blue/image`).test("x' && curl evil")).toBe(false);
});

test('logical ids are fixed: a renamed construct must not delete a live parameter', () => {
  // A new logical id = a new resource (its Create keeps the existing value) + the old one deleted,
  // whose Delete removes the parameter. So the ids are pinned, and this list changes only on purpose.
  expect(Object.fromEntries(Object.entries(createOnly(template)).map(([name, r]) => [name, r.logicalId]))).toEqual({
    [`${PREFIX}/active-pool`]: 'PoolStateActivePool',
    [`${PREFIX}/maintenance`]: 'PoolStateMaintenance',
    [`${PREFIX}/canary-percent`]: 'PoolStateCanaryPercent',
    [`${PREFIX}/release`]: 'PoolStateRelease',
    [`${PREFIX}/pools/blue/image`]: 'PoolStateBlueImage',
    [`${PREFIX}/pools/blue/release`]: 'PoolStateBlueRelease',
    [`${PREFIX}/pools/blue/env`]: 'PoolStateBlueEnv',
    [`${PREFIX}/pools/blue/options`]: 'PoolStateBlueOptions',
    [`${PREFIX}/pools/green/image`]: 'PoolStateGreenImage',
    [`${PREFIX}/pools/green/release`]: 'PoolStateGreenRelease',
    [`${PREFIX}/pools/green/env`]: 'PoolStateGreenEnv',
    [`${PREFIX}/pools/green/options`]: 'PoolStateGreenOptions',
  });
});

test('their function may put and delete exactly these twelve parameters (no wildcard: the webhook lives on the same path)', () => {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { PolicyName: Match.stringLikeRegexp('^ParametersRole') },
  });
  const statements = Object.values(policies)[0].Properties.PolicyDocument.Statement as Array<{
    Sid: string;
    Action: unknown;
    Resource: unknown;
  }>;
  const bySid = Object.fromEntries(statements.map((s) => [s.Sid, s]));
  expect(Object.keys(bySid).sort()).toEqual(['CreateAndDeleteOnly', 'OwnLogs']);
  expect(bySid.CreateAndDeleteOnly.Action).toEqual(['ssm:DeleteParameter', 'ssm:PutParameter']);
  const names = (bySid.CreateAndDeleteOnly.Resource as unknown[]).map(
    (r) => JSON.stringify(r).match(/:parameter(\/[^"]+)"/)![1],
  );
  expect(names.sort()).toEqual([...ALL].sort());
  expect(JSON.stringify(statements)).not.toMatch(/\*|slack-webhook-url/);
  const fn = Object.values(
    template.findResources('AWS::Lambda::Function', {
      Properties: {
        Handler: 'index.handler',
        Role: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ParametersRole'), 'Arn'] },
      },
    }),
  );
  expect(fn).toHaveLength(1);
});

test('created one after another (no PutParameter burst to throttle): all but the first depend on another one', () => {
  const resources = template.findResources('Custom::CreateOnlyParameter');
  const ids = Object.keys(resources);
  expect(ids).toHaveLength(ALL.length);
  const dependsOn = (id: string) => ((resources[id].DependsOn ?? []) as string[]).filter((d) => ids.includes(d));
  const roots = ids.filter((id) => dependsOn(id).length === 0);
  expect(roots).toEqual(['PoolStateActivePool']);
  // A single chain: each one is the dependency of at most one other, and following it from the root reaches all.
  const next = new Map<string, string>();
  for (const id of ids)
    for (const d of dependsOn(id)) {
      expect(next.has(d)).toBe(false);
      next.set(d, id);
    }
  const chain = [roots[0]];
  while (next.has(chain[chain.length - 1])) chain.push(next.get(chain[chain.length - 1])!);
  expect([...chain].sort()).toEqual([...ids].sort());
});

test('the host boots after the pool state exists', () => {
  const [instance] = Object.values(template.findResources('AWS::EC2::Instance'));
  for (const id of Object.values(createOnly(template)).map((r) => r.logicalId))
    expect(instance.DependsOn).toContain(id);
});

describe('the deployed handler (aws-cdk-lib AwsCustomResource) on these payloads', () => {
  // The exact code CloudFormation runs for Custom::CreateOnlyParameter; SSM is stubbed at the client.
  const { handler } = require(
    path.join(
      path.dirname(require.resolve('aws-cdk-lib')),
      'custom-resource-handlers/dist/custom-resources/aws-custom-resource-handler/index.js',
    ),
  ) as {
    handler: (event: Record<string, unknown>, context: Record<string, unknown>) => Promise<void>;
  };
  let sent: Array<{ name: string; input: Record<string, unknown> }>;
  let responses: Array<{ Status: string; PhysicalResourceId: string; Reason: string }>;
  let failWith: string | undefined;

  beforeEach(() => {
    sent = [];
    responses = [];
    failWith = undefined;
    process.env.AWS_REGION = 'eu-west-1';
    jest.spyOn(console, 'log').mockImplementation(() => undefined);
    jest.spyOn(SSMClient.prototype, 'send').mockImplementation((async (command: {
      constructor: { name: string };
      input: Record<string, unknown>;
    }) => {
      sent.push({ name: command.constructor.name, input: command.input });
      if (failWith) throw Object.assign(new Error(failWith), { name: failWith });
      return {};
    }) as never);
    // The handler calls require('https').request; spy on that very module object.
    jest.spyOn(require('https') as typeof import('https'), 'request').mockImplementation(((
      _opts: unknown,
      done: (res: unknown) => void,
    ) => {
      let body = '';
      return {
        on: () => undefined,
        write: (b: string) => (body += b),
        end: () => (responses.push(JSON.parse(body)), done({})),
      };
    }) as never);
  });
  afterEach(() => jest.restoreAllMocks());

  const event = (
    type: 'Create' | 'Update' | 'Delete',
    props: Record<string, unknown>,
    oldProps?: Record<string, unknown>,
  ) => ({
    RequestType: type,
    ResponseURL: 'https://cloudformation-custom-resource-response.example/x',
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/BlueGreen-prod/1',
    RequestId: 'r1',
    LogicalResourceId: 'PoolStateActivePool',
    ResourceType: 'Custom::CreateOnlyParameter',
    ...(type === 'Create' ? {} : { PhysicalResourceId: `${PREFIX}/active-pool` }),
    ResourceProperties: props,
    ...(oldProps ? { OldResourceProperties: oldProps } : {}),
  });
  const props = (t: Template) => {
    const { ServiceToken: _token, ...rest } = createOnly(t)[`${PREFIX}/active-pool`].resource.Properties;
    return rest as Record<string, unknown>;
  };

  test('Update with a changed Create payload (another initial value): no SDK call, same physical id', async () => {
    // GIVEN the stack created with initialActivePool=green, now synthesized with blue
    const before = props(template);
    const after = props(synthTemplate({ stage: 'prod', initialActivePool: 'blue' }));
    expect(after.Create).not.toEqual(before.Create);
    // WHEN CloudFormation sends the Update
    await handler(event('Update', after, before), { logStreamName: 'test' });
    // THEN nothing reached SSM, and the resource keeps its identity (no replacement, so no Delete)
    expect(sent).toEqual([]);
    expect(responses).toEqual([
      expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: `${PREFIX}/active-pool` }),
    ]);
  });

  test('Create over an existing parameter: PutParameter(Overwrite=false) fails with ParameterAlreadyExists, the value stays, SUCCESS', async () => {
    failWith = 'ParameterAlreadyExists';
    await handler(event('Create', props(template)), { logStreamName: 'test' });
    expect(sent).toEqual([
      {
        name: 'PutParameterCommand',
        input: expect.objectContaining({ Name: `${PREFIX}/active-pool`, Value: 'green', Overwrite: false }),
      },
    ]);
    expect(responses).toEqual([
      expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: `${PREFIX}/active-pool` }),
    ]);
  });

  test('Delete: DeleteParameter', async () => {
    await handler(event('Delete', props(template)), { logStreamName: 'test' });
    expect(sent).toEqual([{ name: 'DeleteParameterCommand', input: { Name: `${PREFIX}/active-pool` } }]);
    expect(responses[0].Status).toBe('SUCCESS');
  });
});
