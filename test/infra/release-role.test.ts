// The operators' policy and the GitHub Actions release role (lib/release-role.ts, lib/operator-policy.ts):
// - README's JSON block is what the code generates, placeholders and all: one source, no drift;
// - the stack's managed policy holds exactly that policy for the stage, the role exactly that policy;
// - the role's trust: the GitHub provider, sts:AssumeRoleWithWebIdentity, StringEquals on aud and the
//   exact sub, nothing else; evaluated on the tokens GitHub would give other repositories, other
//   environments, other branches and pull requests: none of them matches;
// - context githubRepo / githubOidcProviderArn, validated with an error naming the key.
// The IAM contract test runs every call of the CLI against the role's policy (iam-contract.test.ts).
import { parseConfig } from '../../lib/stack-config';
import { operatorPolicyDocument, README_PLACEHOLDERS } from '../../lib/operator-policy';
import { githubSubject, operatorPolicyName, releaseRoleName } from '../../lib/release-role';
import { synthTemplate } from '../helpers/cdk';
import {
  CfnTemplate,
  evaluate,
  identityPolicies,
  resolveStatement,
  roleStatements,
  Statement,
  TemplateResolver,
} from '../helpers/iam';
import { readmeOperatorPolicy, readmeOperatorPolicyText, TableAwareResolver } from '../helpers/iam-requests';

const ISSUER = 'token.actions.githubusercontent.com';
const PROVIDER_ARN = 'arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com';

interface Synth {
  template: CfnTemplate;
  resolver: TemplateResolver;
  outputs: string[];
  ids: (type: string) => string[];
}

function synth(context: Record<string, string>): Synth {
  const template = synthTemplate(context).toJSON() as CfnTemplate & { Outputs: Record<string, unknown> };
  const stage = context.stage ?? 'dev';
  return {
    template,
    resolver: new TableAwareResolver(template, `BlueGreen-${stage}`),
    outputs: Object.keys(template.Outputs),
    ids: (type) => Object.keys(template.Resources).filter((id) => template.Resources[id].Type === type),
  };
}

/** A token as GitHub issues it: its audience and subject (the two claims the trust reads). */
interface Token {
  issuer: string;
  aud: string;
  sub?: string;
}

/**
 * Whether STS would let a token assume the role: the trust's one statement names the token's provider
 * as its Federated principal and the action, and its condition holds on the token's claims (the
 * evaluator of the IAM tests: an operator it does not know throws; a claim absent fails StringEquals).
 */
function trustAllows(trust: { Statement: RawTrust[] }, providerArn: string, token: Token): boolean {
  const tokenProvider = `arn:aws:iam::111122223333:oidc-provider/${token.issuer}`;
  return trust.Statement.some((st) => {
    if (st.Principal.Federated !== providerArn || tokenProvider !== providerArn) return false;
    const statement: Statement = resolveStatement(
      { Effect: st.Effect, Action: st.Action, Resource: '*', Condition: st.Condition },
      (v) => v as string,
    );
    const context = { [`${ISSUER}:aud`]: token.aud, ...(token.sub ? { [`${ISSUER}:sub`]: token.sub } : {}) };
    return evaluate([statement], { action: 'sts:AssumeRoleWithWebIdentity', resource: '*', context }) === 'allow';
  });
}
interface RawTrust {
  Effect: 'Allow' | 'Deny';
  Action: string;
  Principal: { Federated: string };
  Condition: Record<string, Record<string, unknown>>;
}

/** A statement with its actions and resources in order: CDK sorts them as it synthesizes (IAM does not care). */
const sorted = (statements: Statement[]) =>
  statements.map((st) => ({ ...st, Action: [...(st.Action ?? [])].sort(), Resource: [...(st.Resource ?? [])].sort() }));

const token = (sub: string | undefined, aud = 'sts.amazonaws.com', issuer = ISSUER): Token => ({ issuer, aud, sub });

test("README's operator policy is the code's, placeholders and all: lib/operator-policy.ts is its one source", () => {
  const readme = JSON.parse(readmeOperatorPolicyText()) as unknown;
  // Compared as JSON: key order aside, every statement, action and ARN (a string stays a string).
  expect(readme).toEqual(JSON.parse(JSON.stringify(operatorPolicyDocument(README_PLACEHOLDERS))));
  expect(readmeOperatorPolicyText()).toContain(
    'arn:aws:ssm:<region>:<account>:parameter/bluegreen/<stage>/active-pool',
  );
});

describe('without githubRepo (the default)', () => {
  let s: Synth;
  beforeAll(() => {
    s = synth({});
  });

  test("the stack has the operators' managed policy, named for the stage, holding exactly README's policy for it", () => {
    const [id] = s.ids('AWS::IAM::ManagedPolicy').filter((i) => i.startsWith('OperatorsOperatorPolicy'));
    expect(s.template.Resources[id].Properties?.ManagedPolicyName).toBe(operatorPolicyName('dev'));
    expect(s.template.Resources[id].Properties).not.toHaveProperty('Roles');
    const policy = identityPolicies(s.template, s.resolver).find((p) => p.name === id)!;
    expect(sorted(policy.statements)).toEqual(sorted(readmeOperatorPolicy('dev')));
    expect(s.outputs).toContain('OperatorPolicyArn');
  });

  test('no release role, no OIDC provider, no CI outputs', () => {
    expect(s.ids('AWS::IAM::OIDCProvider')).toEqual([]);
    expect(s.ids('AWS::IAM::Role').filter((i) => i.startsWith('Operators'))).toEqual([]);
    expect(s.outputs).not.toContain('ReleaseRoleArn');
    expect(s.outputs).not.toContain('GithubOidcProviderArn');
  });
});

describe('githubRepo=acme/shop:production (an environment)', () => {
  let s: Synth;
  let role: { Properties: Record<string, unknown> };
  let roleId: string;
  let providerId: string;
  beforeAll(() => {
    s = synth({ stage: 'prod', githubRepo: 'acme/shop:production' });
    [roleId] = s.ids('AWS::IAM::Role').filter((i) => i.startsWith('OperatorsRole'));
    role = s.template.Resources[roleId] as typeof role;
    [providerId] = s.ids('AWS::IAM::OIDCProvider');
  });

  test("the stack creates GitHub's provider (native resource, no custom resource), audience sts.amazonaws.com, kept on destroy", () => {
    expect(s.ids('AWS::IAM::OIDCProvider')).toEqual([providerId]);
    const provider = s.template.Resources[providerId] as unknown as { Properties: unknown; DeletionPolicy: string };
    expect(provider.Properties).toEqual({
      Url: 'https://token.actions.githubusercontent.com',
      ClientIdList: ['sts.amazonaws.com'],
    });
    expect(provider.DeletionPolicy).toBe('Retain');
    expect(s.ids('Custom::AWSCDKOpenIdConnectProvider')).toEqual([]);
    expect(s.outputs).toEqual(expect.arrayContaining(['ReleaseRoleArn', 'GithubOidcProviderArn', 'OperatorPolicyArn']));
  });

  test("the role: bluegreen-<stage>-release, sessions of 1 h at most, the operators' policy and nothing else", () => {
    expect(role.Properties.RoleName).toBe(releaseRoleName('prod'));
    expect(role.Properties.MaxSessionDuration).toBe(3600);
    const [policyId] = s.ids('AWS::IAM::ManagedPolicy').filter((i) => i.startsWith('OperatorsOperatorPolicy'));
    expect(role.Properties.ManagedPolicyArns).toEqual([{ Ref: policyId }]);
    expect(role.Properties).not.toHaveProperty('Policies');
    expect(role.Properties).not.toHaveProperty('PermissionsBoundary');
    expect(sorted(roleStatements(s.template, s.resolver, roleId))).toEqual(sorted(readmeOperatorPolicy('prod')));
  });

  test('the trust: the provider as principal, AssumeRoleWithWebIdentity, StringEquals on aud and the exact sub, nothing else', () => {
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 'sts:AssumeRoleWithWebIdentity',
          Principal: { Federated: { Ref: providerId } },
          Condition: {
            StringEquals: {
              'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
              'token.actions.githubusercontent.com:sub': 'repo:acme/shop:environment:production',
            },
          },
        },
      ],
    });
    const text = JSON.stringify(role.Properties.AssumeRolePolicyDocument);
    expect(text).not.toMatch(/[*?]|Like|IfExists|Not/);
  });

  test("a token matches only from the repository's environment: not another repository, environment, branch or a pull request", () => {
    // The provider's ARN as IAM gives it (its URL without https://), for the principal's Ref.
    const url = (s.template.Resources[providerId].Properties as { Url: string }).Url;
    const provider = `arn:aws:iam::111122223333:oidc-provider/${url.replace(/^https:\/\//, '')}`;
    expect(provider).toBe(PROVIDER_ARN);
    const document = role.Properties.AssumeRolePolicyDocument as { Statement: RawTrust[] };
    const trust = {
      Statement: document.Statement.map((st) => ({
        ...st,
        Principal: {
          Federated: (st.Principal.Federated as unknown as { Ref: string }).Ref === providerId ? provider : '?',
        },
      })),
    };
    const cases: Array<[string, Token, boolean]> = [
      ['the release job, in production', token('repo:acme/shop:environment:production'), true],
      ['another repository of the owner', token('repo:acme/shop-fork:environment:production'), false],
      ['the same name under another owner (a fork)', token('repo:mallory/shop:environment:production'), false],
      ['another environment', token('repo:acme/shop:environment:staging'), false],
      ['the environment spelled otherwise (IAM compares case)', token('repo:acme/shop:environment:Production'), false],
      ['a pull request', token('repo:acme/shop:pull_request'), false],
      ['a push to main outside the environment', token('repo:acme/shop:ref:refs/heads/main'), false],
      ['another audience', token('repo:acme/shop:environment:production', 'https://github.com/acme'), false],
      ['a token without a subject', token(undefined), false],
      ['another issuer', token('repo:acme/shop:environment:production', 'sts.amazonaws.com', 'example.com'), false],
    ];
    expect(cases.map(([what, t]) => [what, trustAllows(trust, provider, t)])).toEqual(
      cases.map(([what, , allowed]) => [what, allowed]),
    );
  });
});

describe('githubRepo=acme/shop (main only) with the account provider given', () => {
  let s: Synth;
  let trust: { Statement: RawTrust[] };
  beforeAll(() => {
    s = synth({ stage: 'prod', hosts: '2', githubRepo: 'acme/shop', githubOidcProviderArn: PROVIDER_ARN });
    const [roleId] = s.ids('AWS::IAM::Role').filter((i) => i.startsWith('OperatorsRole'));
    trust = (s.template.Resources[roleId].Properties as { AssumeRolePolicyDocument: typeof trust })
      .AssumeRolePolicyDocument;
  });

  test('no second provider: the role trusts the given one', () => {
    expect(s.ids('AWS::IAM::OIDCProvider')).toEqual([]);
    expect(trust.Statement).toHaveLength(1);
    expect(trust.Statement[0].Principal).toEqual({ Federated: PROVIDER_ARN });
    expect(trust.Statement[0].Condition).toEqual({
      StringEquals: {
        'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
        'token.actions.githubusercontent.com:sub': 'repo:acme/shop:ref:refs/heads/main',
      },
    });
  });

  test('a token matches only from a push to main: not another branch, a tag, a pull request or an environment', () => {
    const cases: Array<[string, string, boolean]> = [
      ['main', 'repo:acme/shop:ref:refs/heads/main', true],
      ['another branch', 'repo:acme/shop:ref:refs/heads/feature', false],
      ['a branch whose name starts with main', 'repo:acme/shop:ref:refs/heads/main-old', false],
      ['a tag', 'repo:acme/shop:ref:refs/tags/v1', false],
      ['a pull request', 'repo:acme/shop:pull_request', false],
      ['a job in an environment', 'repo:acme/shop:environment:production', false],
      ['another repository', 'repo:acme/other:ref:refs/heads/main', false],
    ];
    expect(cases.map(([what, sub]) => [what, trustAllows(trust, PROVIDER_ARN, token(sub))])).toEqual(
      cases.map(([what, , allowed]) => [what, allowed]),
    );
  });
});

describe('context githubRepo and githubOidcProviderArn', () => {
  test.each([
    ['acme/shop', { repository: 'acme/shop' }],
    ['acme/shop:production', { repository: 'acme/shop', environment: 'production' }],
    ['Acme-Corp/shop.api_v2:prod-eu.1', { repository: 'Acme-Corp/shop.api_v2', environment: 'prod-eu.1' }],
  ])('%s', (githubRepo, github) => {
    expect(parseConfig({ githubRepo }).github).toEqual(github);
  });

  test('the subject: the environment when there is one, else main', () => {
    expect(githubSubject({ repository: 'acme/shop', environment: 'production' })).toBe(
      'repo:acme/shop:environment:production',
    );
    expect(githubSubject({ repository: 'acme/shop' })).toBe('repo:acme/shop:ref:refs/heads/main');
  });

  test('the given provider is kept; no role without githubRepo', () => {
    expect(parseConfig({ githubRepo: 'acme/shop', githubOidcProviderArn: PROVIDER_ARN }).github).toEqual({
      repository: 'acme/shop',
      oidcProviderArn: PROVIDER_ARN,
    });
    expect(parseConfig({}).github).toBeUndefined();
  });

  test.each([
    [{ githubRepo: 'acme' }, 'context key "githubRepo" must be owner/repo or owner/repo:environment'],
    [{ githubRepo: 'acme/*' }, 'no wildcard'],
    [{ githubRepo: 'acme/shop:prod*' }, 'no wildcard'],
    [{ githubRepo: 'acme/shop@release' }, 'a branch is not read'],
    [{ githubRepo: '-acme/shop' }, 'got "-acme/shop"'],
    [{ githubRepo: 'ac--me/shop' }, 'got "ac--me/shop"'],
    [{ githubRepo: 'acme/shop/extra' }, 'got "acme/shop/extra"'],
    [{ githubRepo: 'acme/..' }, 'got "acme/.."'],
    [{ githubRepo: 'acme/shop:' }, 'got "acme/shop:"'],
    [{ githubRepo: 'acme/shop:prod eu' }, 'got "acme/shop:prod eu"'],
    [{ githubRepo: 'acme/shop:prod:eu' }, 'got "acme/shop:prod:eu"'],
    [{ githubOidcProviderArn: PROVIDER_ARN }, 'context key "githubOidcProviderArn" is only read with githubRepo'],
    [
      { githubRepo: 'acme/shop', githubOidcProviderArn: 'arn:aws:iam::111122223333:oidc-provider/example.com' },
      'context key "githubOidcProviderArn" must be the ARN of the account\'s OIDC provider for GitHub Actions',
    ],
  ])('%p fails naming the key', (context, message) => {
    expect(() => parseConfig(context)).toThrow(message);
  });
});
