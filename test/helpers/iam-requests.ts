// Every AWS request the project's code makes, as IAM sees it: who makes it (the principal), the
// action, each ARN AWS authorizes it on and the condition keys the request carries there. And the
// requests that must be refused (the webhook from a host, another stage, another group, ...). Built
// per stage from the config's names and from what a synthesized template holds that the code reads
// (the asset objects the user data fetches, generated names), never from the policies under test.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { appLogStreamName } from '../../core/app-log';
import {
  dashboardName,
  ecrRepositoryName,
  hostReadParameterNames,
  logGroupNames,
  parameterNames,
  slackActionsFunctionName,
} from '../../core/names';
import { POOLS } from '../../core/pools';
import {
  LEDGER_HEAD_KEY,
  LEDGER_RELEASES_PARTITION,
  ledgerClickPartition,
  ledgerEventsPartition,
  ledgerTableName,
} from '../../core/release-ledger';
import { BOOTSTRAP_HOOK_NAME, fleetGroupName } from '../../lib/fleet-hosts';
import { STAGE_TAG_KEY } from '../../core/names';
import { REPO_ROOT } from '../../local/paths';
import {
  CfnTemplate,
  ContextValue,
  list,
  resolveStatement,
  RawStatement,
  Statement,
  TemplateResolver,
  TEST_ENV,
} from './iam';

const { partition: P, region: R, account: A } = TEST_ENV;

export type Principal =
  | 'host'
  | 'alert-function'
  | 'slack-actions'
  | 'create-only-parameters'
  | 'pool-switch-rule'
  | 'default-sg-cleanup'
  | 'operator';

/** The role (logical id prefix) a principal runs as; the operator's policy is README's. */
export function roleOf(principal: Exclude<Principal, 'operator'>, fleet: boolean): string {
  const roles: Record<Exclude<Principal, 'operator'>, string> = {
    host: fleet ? 'FleetRole' : 'HostRole',
    'alert-function': 'AlertsRole',
    'slack-actions': 'SlackActionsRole',
    'create-only-parameters': 'ParametersRole',
    'pool-switch-rule': 'PoolSwitchRole',
    // CDK's custom resource that empties the created VPC's default security group (lib/host-network.ts).
    'default-sg-cleanup': 'CustomVpcRestrictDefaultSGCustomResourceProviderRole',
  };
  return roles[principal];
}

export interface Authorized {
  readonly arn: string;
  readonly context?: Readonly<Record<string, ContextValue>>;
}

export interface RequestRow {
  /** The code that makes the request (repository path), and how. */
  readonly source: string;
  readonly how: string;
  readonly principal: Principal;
  readonly action: string;
  /** Every resource AWS authorizes this one request on; all must be allowed for it to succeed. */
  readonly resources: readonly Authorized[];
  readonly expect: 'allow' | 'deny';
}

/** A call IAM identity policies do not decide (say so, and why), kept in the table so nothing is forgotten. */
export interface NotIamRow {
  readonly source: string;
  readonly how: string;
  readonly action: string;
  readonly why: string;
}

/** What a stage's template holds that the code reads: its asset objects and generated names. */
export interface StageFacts {
  readonly stage: string;
  readonly fleet: boolean;
  /** The objects the user data's `aws s3 cp` fetches, as ARNs. */
  readonly assetObjects: string[];
  readonly alertLogGroup: string;
  readonly createOnlyLogGroup: string;
  readonly deadLetterQueueArn: string;
  /** The created VPC's default security group (absent with an existing VPC). */
  readonly defaultSecurityGroupArn?: string;
  /** The release ledger's stream (its label is DynamoDB's, known once the table exists). */
  readonly ledgerStreamArn: string;
  /** The Slack actions function's log group, when the stage has Slack's buttons (slackActions). */
  readonly slackActionsLogGroup?: string;
}

/** A stream label as DynamoDB gives it (the stream's creation time); any fixed one stands for it. */
const STREAM_LABEL = '2026-11-23T10:00:00.000';

/**
 * TemplateResolver with DynamoDB tables (the release ledger): a table's ARN and name as AWS gives
 * them (its TableName, else a generated one), and its stream's ARN (GetAtt StreamArn, in the alert
 * role's stream grant and the event source mapping).
 */
export class TableAwareResolver extends TemplateResolver {
  constructor(
    private readonly cfn: CfnTemplate,
    stackName: string,
  ) {
    super(cfn, stackName);
  }

  private isTable(id: unknown): id is string {
    return typeof id === 'string' && this.cfn.Resources[id]?.Type === 'AWS::DynamoDB::Table';
  }

  override physicalName(id: string): string {
    const name = this.isTable(id) ? this.cfn.Resources[id].Properties?.TableName : undefined;
    return name === undefined ? super.physicalName(id) : this.resolve(name);
  }

  override arn(id: string): string {
    return this.isTable(id) ? `arn:${P}:dynamodb:${R}:${A}:table/${this.physicalName(id)}` : super.arn(id);
  }

  override resolve(value: unknown): string {
    const v = value as Record<string, unknown> | undefined;
    if (v && typeof v === 'object') {
      if (this.isTable(v.Ref)) return this.physicalName(v.Ref);
      const att = v['Fn::GetAtt'];
      if (Array.isArray(att) && this.isTable(att[0]) && att[1] === 'StreamArn')
        return `${this.arn(att[0])}/stream/${STREAM_LABEL}`;
    }
    return super.resolve(value);
  }
}

const one = (template: CfnTemplate, type: string, prefix: string): string => {
  const found = Object.entries(template.Resources).filter(([id, r]) => r.Type === type && id.startsWith(prefix));
  if (found.length !== 1) throw new Error(`expected one ${type} ${prefix}*, found ${found.length}`);
  return found[0][0];
};

export function stageFacts(template: CfnTemplate, resolver: TableAwareResolver, stage: string): StageFacts {
  const fleet = Object.values(template.Resources).some((r) => r.Type === 'AWS::AutoScaling::AutoScalingGroup');
  const host = fleet
    ? template.Resources[one(template, 'AWS::EC2::LaunchTemplate', 'Fleet')]
    : template.Resources[one(template, 'AWS::EC2::Instance', 'Host')];
  const userData = fleet
    ? (host.Properties!.LaunchTemplateData as { UserData: unknown }).UserData
    : host.Properties!.UserData;
  const script = resolver.resolve((userData as { 'Fn::Base64': unknown })['Fn::Base64']);
  const assetObjects = [...script.matchAll(/aws s3 cp '?s3:\/\/([^/']+)\/([^' ]+)'?/g)].map(
    ([, bucket, key]) => `arn:${P}:s3:::${bucket}/${key}`,
  );
  const vpc = Object.entries(template.Resources).find(([, r]) => r.Type === 'AWS::EC2::VPC')?.[0];
  return {
    stage,
    fleet,
    assetObjects,
    alertLogGroup: resolver.physicalName(one(template, 'AWS::Logs::LogGroup', 'AlertsFunctionLogs')),
    createOnlyLogGroup: resolver.physicalName(one(template, 'AWS::Logs::LogGroup', 'ParametersFunctionLogs')),
    deadLetterQueueArn: resolver.arn(one(template, 'AWS::SQS::Queue', 'AlertsUndelivered')),
    ledgerStreamArn: resolver.resolve({ 'Fn::GetAtt': [one(template, 'AWS::DynamoDB::Table', 'Ledger'), 'StreamArn'] }),
    ...(Object.keys(template.Resources).some((id) => id.startsWith('SlackActionsFunctionLogs'))
      ? {
          slackActionsLogGroup: resolver.physicalName(one(template, 'AWS::Logs::LogGroup', 'SlackActionsFunctionLogs')),
        }
      : {}),
    ...(vpc
      ? {
          defaultSecurityGroupArn: `arn:${P}:ec2:${R}:${A}:security-group/${resolver.resolve({ 'Fn::GetAtt': [vpc, 'DefaultSecurityGroup'] })}`,
        }
      : {}),
  };
}

// ARNs as AWS evaluates them.
export const HOST_INSTANCE = 'i-0a1b2c3d4e5f67890';
const OTHER_INSTANCE = 'i-0fedcba9876543210';
const param = (name: string) => `arn:${P}:ssm:${R}:${A}:parameter${name}`;
/** Log-group-level actions (DescribeLogStreams, FilterLogEvents, StartQuery) are authorized on this form of the group's ARN. */
const groupScope = (group: string) => `arn:${P}:logs:${R}:${A}:log-group:${group}:log-stream:`;
const stream = (group: string, name: string) => `arn:${P}:logs:${R}:${A}:log-group:${group}:log-stream:${name}`;
/** The group's ARN as the lifecycle actions are authorized on it: the group's generated id, then its name. */
const groupArn = (name: string) =>
  `arn:${P}:autoscaling:${R}:${A}:autoScalingGroup:7b1c3a52-9d0e-4f6b-8a21-3c4d5e6f7a8b:autoScalingGroupName/${name}`;
/** AWS-owned documents have no account in their ARN. */
const documentArn = (name: string) => `arn:${P}:ssm:${R}::document/${name}`;
const instance = (id: string, stage?: string): Authorized => ({
  arn: `arn:${P}:ec2:${R}:${A}:instance/${id}`,
  ...(stage
    ? { context: { [`ssm:resourceTag/${STAGE_TAG_KEY}`]: stage, [`aws:ResourceTag/${STAGE_TAG_KEY}`]: stage } }
    : {}),
});
const repository = (name: string) => `arn:${P}:ecr:${R}:${A}:repository/${name}`;
const OVERWRITE = { 'ssm:Overwrite': 'true' };
/** The stage's release ledger table (by its fixed name, as the CLI, the function and the hosts find it). */
const ledgerTable = (stage: string) => `arn:${P}:dynamodb:${R}:${A}:table/${ledgerTableName(stage)}`;
/** An item request on the ledger as IAM sees it: the table's ARN and the partition key it names (dynamodb:LeadingKeys). */
const ledgerItem = (stage: string, partition: string): Authorized => ({
  arn: ledgerTable(stage),
  context: { 'dynamodb:LeadingKeys': [partition] },
});
/**
 * A ledger write (support/release-ledger.ts write): three PutItem requests, the head's conditional on
 * the revision read (the condition is no action of its own), then the release's item and an event item.
 */
const LEDGER_WRITES: ReadonlyArray<[string, string]> = [
  ['the head (conditional on the revision read)', LEDGER_HEAD_KEY.pk],
  ["the release's item", LEDGER_RELEASES_PARTITION],
  ['an event item', ledgerEventsPartition('r-42')],
];
/** The stage's dashboard (CloudWatch dashboards are global: no region in the ARN). */
const dashboardArn = (stage: string) => `arn:${P}:cloudwatch::${A}:dashboard/${dashboardName(stage)}`;
/** A Lambda runtime's log stream name (the function writes its own logs with its role). */
const LAMBDA_STREAM = '2026/11/23/[$LATEST]0123456789abcdef0123456789abcdef';

/** The README's operator policy (section "4. Release"): the JSON block after "Operators' IAM", as written. */
export function readmeOperatorPolicyText(readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8')): string {
  const at = readme.indexOf("Operators' IAM");
  const start = readme.indexOf('```json\n', at);
  if (at < 0 || start < 0) throw new Error('README has no operator policy (a ```json block after "Operators\' IAM")');
  const end = readme.indexOf('\n```', start + 8);
  return readme.slice(start + 8, end);
}

/** The README's operator policy, placeholders filled for the stage. */
export function readmeOperatorPolicy(
  stage: string,
  readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8'),
): Statement[] {
  const text = readmeOperatorPolicyText(readme)
    .replaceAll('<region>', R)
    .replaceAll('<account>', A)
    .replaceAll('<stage>', stage);
  if (/<[a-z]+>/.test(text))
    throw new Error(`README's operator policy has a placeholder the test does not fill: ${text.match(/<[a-z]+>/)![0]}`);
  const doc = JSON.parse(text) as { Statement: RawStatement[] };
  return list(doc.Statement).map((s) => resolveStatement(s, (v) => v as string));
}

/** The calls IAM identity policies do not decide. */
export const NOT_IAM: readonly NotIamRow[] = [
  {
    source: 'lib/pool-host.ts',
    how: "cfn-signal in the user data's exit trap (UserData.addSignalOnExitCommand)",
    action: 'cloudformation:SignalResource',
    why: 'cfn-signal sends no credentials unless given --role or keys; CloudFormation accepts the signal from an instance of the stack. (CDK still grants a fleet role cloudformation:SignalResource on the stack; that statement is held against the reference like the others.)',
  },
  {
    source: 'lambda/alert/aws.ts',
    how: 'GetParameter WithDecryption of the webhook SecureString',
    action: 'kms:Decrypt',
    why: "the aws/ssm key is AWS-managed: its key policy lets the account's principals use it through SSM (kms:ViaService), so no IAM statement is involved; the SSM read itself is a row of the table",
  },
];

/** Every request of one stage, allowed and must-deny, in one table. */
export function requestTable(f: StageFacts): RequestRow[] {
  const { stage } = f;
  const n = parameterNames(stage);
  const other = stage === 'prod' ? 'dev' : 'prod';
  const logs = logGroupNames(stage);
  const rows: RequestRow[] = [];
  const add = (
    expect: RequestRow['expect'],
    principal: Principal,
    source: string,
    how: string,
    action: string,
    ...resources: Array<string | Authorized>
  ) =>
    rows.push({
      expect,
      principal,
      source,
      how,
      action,
      resources: resources.map((r) => (typeof r === 'string' ? { arn: r } : r)),
    });
  const allow = (
    principal: Principal,
    source: string,
    how: string,
    action: string,
    ...resources: Array<string | Authorized>
  ) => add('allow', principal, source, how, action, ...resources);
  const deny = (
    principal: Principal,
    source: string,
    how: string,
    action: string,
    ...resources: Array<string | Authorized>
  ) => add('deny', principal, source, how, action, ...resources);
  const withOverwrite = (name: string): Authorized => ({ arn: param(name), context: OVERWRITE });

  // --- the host (single or each fleet host) ---
  for (const object of f.assetObjects)
    allow(
      'host',
      'lib/pool-host.ts',
      'user data: aws s3 cp of an asset (UserData.addS3DownloadCommand)',
      's3:GetObject',
      object,
    );
  allow(
    'host',
    'userdata/bluegreen-apply.sh',
    'aws ssm get-parameters of the pool state (one request, each name authorized)',
    'ssm:GetParameters',
    ...hostReadParameterNames(stage).map(param),
  );
  // The stage's secrets (README "Secrets"): a pool's pinned versions, decrypted through SSM.
  const secret = (stageName: string, name: string) => `${parameterNames(stageName).secretsPath}${name}`;
  allow(
    'host',
    'userdata/bluegreen-apply.sh',
    "aws ssm get-parameters --with-decryption of a pool's pinned secrets (NAME:version)",
    'ssm:GetParameters',
    param(secret(stage, 'DB_PASSWORD')),
  );
  allow(
    'host',
    'userdata/bluegreen-apply.sh',
    'KMS decrypts a secret SecureString for SSM (a customer managed key whose policy defers to IAM)',
    'kms:Decrypt',
    {
      arn: `arn:${P}:kms:${R}:${A}:key/0123abcd-0123-4567-89ab-0123456789ab`,
      context: {
        'kms:ViaService': `ssm.${R}.amazonaws.com`,
        'kms:EncryptionContext:PARAMETER_ARN': param(secret(stage, 'DB_PASSWORD')),
      },
    },
  );
  const smSecret = `arn:${P}:secretsmanager:${R}:${A}:secret:shop/api-AbCdEf`;
  allow(
    'host',
    'userdata/bluegreen-apply.sh',
    'aws secretsmanager get-secret-value of a reference, the secret tagged with the stage',
    'secretsmanager:GetSecretValue',
    { arn: smSecret, context: { [`aws:ResourceTag/${STAGE_TAG_KEY}`]: stage } },
  );
  allow(
    'host',
    'userdata/bootstrap.sh',
    'amazon-ecr-credential-helper: the registry login for docker',
    'ecr:GetAuthorizationToken',
    '*',
  );
  for (const action of ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'])
    allow(
      'host',
      'userdata/bluegreen-apply.sh',
      'docker compose pulls a release image',
      action,
      repository(ecrRepositoryName(stage)),
    );
  for (const group of [logs.access, logs.error]) {
    allow(
      'host',
      'userdata/cloudwatch-agent.json',
      'the CloudWatch agent (configured by bootstrap.sh) finds its stream',
      'logs:DescribeLogStreams',
      groupScope(group),
    );
    allow(
      'host',
      'userdata/cloudwatch-agent.json',
      "the CloudWatch agent creates the host's stream",
      'logs:CreateLogStream',
      stream(group, HOST_INSTANCE),
    );
    allow(
      'host',
      'userdata/cloudwatch-agent.json',
      "the CloudWatch agent ships nginx's log",
      'logs:PutLogEvents',
      stream(group, HOST_INSTANCE),
    );
  }
  for (const pool of ['blue', 'green'] as const) {
    const appStream = stream(logs.app, appLogStreamName({ pool, release: 'r-42', host: HOST_INSTANCE }));
    allow(
      'host',
      'userdata/docker-compose.yml',
      "dockerd's awslogs driver creates the pool container's stream",
      'logs:CreateLogStream',
      appStream,
    );
    allow(
      'host',
      'userdata/docker-compose.yml',
      "dockerd's awslogs driver ships the pool's stdout/stderr",
      'logs:PutLogEvents',
      appStream,
    );
  }
  deny(
    'host',
    'userdata/docker-compose.yml',
    'the awslogs driver never creates a group (awslogs-create-group is false)',
    'logs:CreateLogGroup',
    `arn:${P}:logs:${R}:${A}:log-group:${logs.app}`,
  );
  allow(
    'host',
    'userdata/bluegreen-log-reopen.sh',
    'its failure line, shipped by the agent to its own stream',
    'logs:CreateLogStream',
    stream(logs.error, `${HOST_INSTANCE}-log-rotation`),
  );
  allow(
    'host',
    'userdata/bluegreen-log-reopen.sh',
    'its failure line, shipped by the agent to its own stream',
    'logs:PutLogEvents',
    stream(logs.error, `${HOST_INSTANCE}-log-rotation`),
  );
  // The preview token (bluegreen-apply --preview): one GetParameter WithDecryption; SSM decrypts it
  // with the account's key, through KMS on the host's behalf (kms:ViaService, the parameter's ARN as
  // the encryption context).
  allow(
    'host',
    'userdata/bluegreen-apply.sh',
    'bluegreen-apply --preview: GetParameter WithDecryption of the preview SecureString',
    'ssm:GetParameter',
    param(n.preview),
  );
  const previewKey = `arn:${P}:kms:${R}:${A}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
  const decryptVia = (name: string, service = `ssm.${R}.amazonaws.com`): Authorized => ({
    arn: previewKey,
    context: { 'kms:ViaService': service, 'kms:EncryptionContext:PARAMETER_ARN': param(name) },
  });
  allow(
    'host',
    'userdata/bluegreen-apply.sh',
    'bluegreen-apply --preview: SSM decrypts the preview token',
    'kms:Decrypt',
    decryptVia(n.preview),
  );
  allow('host', 'userdata/cloudwatch-agent.json', "the CloudWatch agent's host metrics", 'cloudwatch:PutMetricData', {
    arn: '*',
    context: { 'cloudwatch:namespace': `Bluegreen/${stage}/Host` },
  });
  if (f.fleet) {
    allow(
      'host',
      'lib/fleet-hosts.ts',
      `user data: aws autoscaling complete-lifecycle-action (${BOOTSTRAP_HOOK_NAME}, CONTINUE or ABANDON)`,
      'autoscaling:CompleteLifecycleAction',
      groupArn(fleetGroupName(stage)),
    );
    allow(
      'host',
      'fleet/bluegreen-join.sh',
      'aws autoscaling record-lifecycle-action-heartbeat while a release is in progress',
      'autoscaling:RecordLifecycleActionHeartbeat',
      groupArn(fleetGroupName(stage)),
    );
    allow(
      'host',
      'fleet/bluegreen-join.sh',
      'aws dynamodb get-item --consistent-read of the ledger head ($LEDGER_TABLE, $LEDGER_HEAD_KEY)',
      'dynamodb:GetItem',
      ledgerItem(stage, LEDGER_HEAD_KEY.pk),
    );
    allow(
      'host',
      'userdata/bluegreen-apply.sh',
      'a new fleet host boots a pool from the release record: aws dynamodb get-item of the ledger head',
      'dynamodb:GetItem',
      ledgerItem(stage, LEDGER_HEAD_KEY.pk),
    );
    allow(
      'host',
      'lib/fleet-hosts.ts',
      'user data: aws elbv2 describe-target-health until the target is healthy',
      'elasticloadbalancing:DescribeTargetHealth',
      '*',
    );
  }
  // must fail
  const own = hostReadParameterNames(stage);
  const stageNames = [
    n.activePool,
    n.maintenance,
    n.canaryPercent,
    n.release,
    ...POOLS.flatMap((p) => Object.values(n.pools[p])),
    n.slackWebhookUrl,
    n.alertState,
    n.publicUrl,
    n.instanceId,
    n.hosts,
    n.ecrRepository,
  ];
  for (const name of stageNames.filter((x) => !own.includes(x))) {
    for (const action of ['ssm:GetParameter', 'ssm:GetParameters'])
      deny(
        'host',
        'userdata/bluegreen-apply.sh',
        `a read of ${name} (not the host's: the webhook SecureString among them)`,
        action,
        param(name),
      );
  }
  for (const name of [
    parameterNames(other).slackWebhookUrl,
    parameterNames(other).activePool,
    '/other-app/database-password',
  ])
    deny('host', 'userdata/bluegreen-apply.sh', 'a read outside the stage', 'ssm:GetParameter', param(name));
  deny(
    'host',
    'userdata/bluegreen-apply.sh',
    "another stage's secret",
    'ssm:GetParameters',
    param(`${parameterNames(other).secretsPath}DB_PASSWORD`),
  );
  deny(
    'host',
    'userdata/bluegreen-apply.sh',
    'a Secrets Manager secret tagged for another stage, or not tagged',
    'secretsmanager:GetSecretValue',
    {
      arn: `arn:${P}:secretsmanager:${R}:${A}:secret:shop/api-AbCdEf`,
      context: { [`aws:ResourceTag/${STAGE_TAG_KEY}`]: other },
    },
    `arn:${P}:secretsmanager:${R}:${A}:secret:shop/untagged-AbCdEf`,
  );
  deny(
    'host',
    'userdata/bluegreen-apply.sh',
    'KMS decrypting anything else for SSM (the Slack webhook SecureString)',
    'kms:Decrypt',
    {
      arn: `arn:${P}:kms:${R}:${A}:key/0123abcd-0123-4567-89ab-0123456789ab`,
      context: {
        'kms:ViaService': `ssm.${R}.amazonaws.com`,
        'kms:EncryptionContext:PARAMETER_ARN': param(n.slackWebhookUrl),
      },
    },
  );
  deny(
    'host',
    'userdata/bluegreen-apply.sh',
    'a path read of the whole stage (its resource is the path)',
    'ssm:GetParametersByPath',
    param(n.root),
  );
  deny(
    'host',
    'userdata/bluegreen-apply.sh',
    'an older value of its own pool state',
    'ssm:GetParameterHistory',
    param(n.activePool),
  );
  deny(
    'host',
    'userdata/bluegreen-apply.sh',
    'a write of the pool state (the host only reads it)',
    'ssm:PutParameter',
    withOverwrite(n.activePool),
  );
  const bucket = f.assetObjects[0].slice(0, f.assetObjects[0].lastIndexOf('/'));
  deny(
    'host',
    'lib/pool-host.ts',
    "another object of the bootstrap bucket (another stack's asset)",
    's3:GetObject',
    `${bucket}/${'0'.repeat(64)}.zip`,
  );
  deny(
    'host',
    'userdata/bluegreen-apply.sh',
    "a pull from another stage's repository",
    'ecr:BatchGetImage',
    repository(ecrRepositoryName(other)),
  );
  deny(
    'host',
    'userdata/cloudwatch-agent.json',
    "writing into the alert function's log group",
    'logs:PutLogEvents',
    stream(f.alertLogGroup, HOST_INSTANCE),
  );
  deny(
    'host',
    'userdata/bluegreen-apply.sh',
    "decrypting another SecureString through SSM (the stage's Slack webhook)",
    'kms:Decrypt',
    decryptVia(n.slackWebhookUrl),
  );
  deny(
    'host',
    'userdata/bluegreen-apply.sh',
    'decrypting the preview token other than through SSM',
    'kms:Decrypt',
    decryptVia(n.preview, `secretsmanager.${R}.amazonaws.com`),
  );
  deny(
    'host',
    'userdata/bluegreen-apply.sh',
    "another stage's preview token",
    'ssm:GetParameter',
    param(parameterNames(other).preview),
  );
  deny('host', 'userdata/cloudwatch-agent.json', "metrics in another stage's namespace", 'cloudwatch:PutMetricData', {
    arn: '*',
    context: { 'cloudwatch:namespace': `Bluegreen/${other}/Host` },
  });
  deny('host', 'userdata/cloudwatch-agent.json', 'metrics in an AWS namespace', 'cloudwatch:PutMetricData', {
    arn: '*',
    context: { 'cloudwatch:namespace': 'AWS/EC2' },
  });
  for (const group of [fleetGroupName(other), 'other-app-asg']) {
    deny(
      'host',
      'lib/fleet-hosts.ts',
      `completing a launch of another group (${group})`,
      'autoscaling:CompleteLifecycleAction',
      groupArn(group),
    );
    deny(
      'host',
      'fleet/bluegreen-join.sh',
      `holding a launch of another group (${group})`,
      'autoscaling:RecordLifecycleActionHeartbeat',
      groupArn(group),
    );
  }
  // The ledger: a fleet host reads the head and nothing else of it; the single host not even that.
  deny(
    'host',
    'fleet/bluegreen-join.sh',
    "a release's item (the ledger's history is not the host's)",
    'dynamodb:GetItem',
    ledgerItem(stage, LEDGER_RELEASES_PARTITION),
  );
  deny(
    'host',
    'fleet/bluegreen-join.sh',
    'a Query of the ledger',
    'dynamodb:Query',
    ledgerItem(stage, LEDGER_HEAD_KEY.pk),
  );
  deny('host', 'fleet/bluegreen-join.sh', 'a Scan of the ledger', 'dynamodb:Scan', ledgerTable(stage));
  deny('host', 'fleet/bluegreen-join.sh', 'a write of the ledger (the host only reads it)', 'dynamodb:PutItem', {
    arn: ledgerTable(stage),
    context: { 'dynamodb:LeadingKeys': [LEDGER_HEAD_KEY.pk] },
  });
  deny(
    'host',
    'fleet/bluegreen-join.sh',
    "another stage's ledger head",
    'dynamodb:GetItem',
    ledgerItem(other, LEDGER_HEAD_KEY.pk),
  );
  if (!f.fleet)
    deny(
      'host',
      'lib/fleet-hosts.ts',
      'the single host does not join: no ledger read',
      'dynamodb:GetItem',
      ledgerItem(stage, LEDGER_HEAD_KEY.pk),
    );
  if (!f.fleet)
    deny(
      'host',
      'lib/fleet-hosts.ts',
      'the single host has no launch to complete',
      'autoscaling:CompleteLifecycleAction',
      groupArn(fleetGroupName(stage)),
    );

  // --- the alert function ---
  const fn = 'alert-function';
  for (const name of [n.maintenance, n.slackWebhookUrl, ...(f.fleet ? [n.hosts] : [])])
    allow(
      fn,
      'lambda/alert/aws.ts',
      'ParameterCache.get (maintenance, the webhook with decryption, the fleet size)',
      'ssm:GetParameter',
      param(name),
    );
  allow(fn, 'lambda/alert/aws.ts', 'loadState', 'ssm:GetParameter', param(n.alertState));
  allow(fn, 'lambda/alert/aws.ts', 'saveState', 'ssm:PutParameter', withOverwrite(n.alertState));
  allow(
    fn,
    'support/release-ledger.ts',
    'the release guard reads the ledger head (GetItem, consistent read)',
    'dynamodb:GetItem',
    ledgerItem(stage, LEDGER_HEAD_KEY.pk),
  );
  for (const [item, partition] of LEDGER_WRITES)
    allow(
      fn,
      'support/release-ledger.ts',
      `the guard finishes a release: PutItem of ${item}`,
      'dynamodb:PutItem',
      ledgerItem(stage, partition),
    );
  deny(
    fn,
    'lib/alerting.ts',
    'the guard never reads history: no Query',
    'dynamodb:Query',
    ledgerItem(stage, ledgerEventsPartition('r-42')),
  );
  // The event source mapping reads the ledger's stream with the function's role.
  for (const action of ['dynamodb:DescribeStream', 'dynamodb:GetShardIterator', 'dynamodb:GetRecords'])
    allow(fn, 'lib/alerting.ts', "Lambda's event source mapping polls the ledger's stream", action, f.ledgerStreamArn);
  allow(
    fn,
    'lib/alerting.ts',
    "Lambda's event source mapping finds the table's stream (no resource-level permission)",
    'dynamodb:ListStreams',
    '*',
  );
  allow(
    fn,
    'lambda/alert/aws.ts',
    "putValue: the guard's rollback flips back",
    'ssm:PutParameter',
    withOverwrite(n.activePool),
  );
  allow(
    fn,
    'lambda/alert/aws.ts',
    'putValue: the guard ends a canary',
    'ssm:PutParameter',
    withOverwrite(n.canaryPercent),
  );
  allow(
    fn,
    'lambda/alert/aws.ts',
    'recentEntries: the window after a cold start',
    'logs:FilterLogEvents',
    groupScope(logs.access),
  );
  allow(
    fn,
    'lambda/alert/aws.ts',
    "sendToDeadLetter (and Lambda's on-failure destination, sent with the function's role)",
    'sqs:SendMessage',
    f.deadLetterQueueArn,
  );
  allow(
    fn,
    'lib/alerting.ts',
    "the Lambda runtime writes the function's log",
    'logs:CreateLogStream',
    stream(f.alertLogGroup, LAMBDA_STREAM),
  );
  allow(
    fn,
    'lib/alerting.ts',
    "the Lambda runtime writes the function's log",
    'logs:PutLogEvents',
    stream(f.alertLogGroup, LAMBDA_STREAM),
  );
  deny(fn, 'lambda/alert/aws.ts', 'a write of the webhook', 'ssm:PutParameter', withOverwrite(n.slackWebhookUrl));
  deny(
    fn,
    'lambda/alert/aws.ts',
    "another stage's webhook",
    'ssm:GetParameter',
    param(parameterNames(other).slackWebhookUrl),
  );
  deny(
    fn,
    'lambda/alert/aws.ts',
    "a pool's desired state (the release CLI's)",
    'ssm:PutParameter',
    withOverwrite(n.pools.blue.image),
  );
  deny(
    fn,
    'lambda/alert/aws.ts',
    "a pool's environment (may hold app settings)",
    'ssm:GetParameter',
    param(n.pools.blue.env),
  );
  deny(
    fn,
    'lambda/alert/aws.ts',
    "maintenance is the operators' switch",
    'ssm:PutParameter',
    withOverwrite(n.maintenance),
  );
  if (!f.fleet)
    deny(fn, 'lambda/alert/aws.ts', 'no fleet size to read on a single host', 'ssm:GetParameter', param(n.hosts));
  // The old SSM record: the CLI imports it once; nothing writes it any more, the function not even reads it.
  deny(fn, 'lambda/alert/aws.ts', 'a write of the old SSM record', 'ssm:PutParameter', withOverwrite(n.release));
  deny(fn, 'lambda/alert/aws.ts', 'a read of the old SSM record', 'ssm:GetParameter', param(n.release));
  deny(
    fn,
    'support/release-ledger.ts',
    "another stage's ledger",
    'dynamodb:PutItem',
    ledgerItem(other, LEDGER_HEAD_KEY.pk),
  );
  deny(
    fn,
    'support/release-ledger.ts',
    'a delete in the ledger',
    'dynamodb:DeleteItem',
    ledgerItem(stage, LEDGER_HEAD_KEY.pk),
  );
  deny(fn, 'support/release-ledger.ts', 'a Scan of the ledger', 'dynamodb:Scan', ledgerTable(stage));
  deny(
    fn,
    'support/release-ledger.ts',
    "another stage's stream",
    'dynamodb:GetRecords',
    `${ledgerTable(other)}/stream/${STREAM_LABEL}`,
  );

  // The dashboard's release lines (lambda/alert/dashboard.ts): the latest releases, the stage's dashboard.
  allow(
    fn,
    'lambda/alert/dashboard.ts',
    'the latest releases for the dashboard (Query of the releases partition, newest first)',
    'dynamodb:Query',
    ledgerItem(stage, LEDGER_RELEASES_PARTITION),
  );
  for (const action of ['cloudwatch:GetDashboard', 'cloudwatch:PutDashboard'])
    allow(fn, 'lambda/alert/dashboard.ts', 'each release drawn on the graphs', action, dashboardArn(stage));
  deny(fn, 'lambda/alert/dashboard.ts', "another stage's dashboard", 'cloudwatch:PutDashboard', dashboardArn(other));
  deny(fn, 'lambda/alert/dashboard.ts', 'a dashboard deleted', 'cloudwatch:DeleteDashboards', dashboardArn(stage));

  // --- the Slack actions function (slackActions) ---
  if (f.slackActionsLogGroup) {
    const sa = 'slack-actions';
    const runtime = 'lambda/slack-actions/runtime.ts';
    allow(
      sa,
      runtime,
      'the signing secret, decrypted (ParameterCache)',
      'ssm:GetParameter',
      param(n.slackSigningSecret),
    );
    allow(sa, runtime, 'who may act (ParameterCache)', 'ssm:GetParameter', param(n.slackAllowedUsers));
    allow(sa, runtime, 'the active pool a decision is checked against', 'ssm:GetParameter', param(n.activePool));
    for (const name of [n.activePool, n.canaryPercent])
      allow(sa, 'lambda/stage-ports.ts', "a decision's switch (the guard's)", 'ssm:PutParameter', withOverwrite(name));
    allow(
      sa,
      'support/release-ledger.ts',
      'the head, consistently',
      'dynamodb:GetItem',
      ledgerItem(stage, LEDGER_HEAD_KEY.pk),
    );
    for (const [item, partition] of LEDGER_WRITES)
      allow(
        sa,
        'support/release-ledger.ts',
        `a decision written: PutItem of ${item}`,
        'dynamodb:PutItem',
        ledgerItem(stage, partition),
      );
    allow(
      sa,
      runtime,
      'the replay check: a conditional put of the click',
      'dynamodb:PutItem',
      ledgerItem(stage, ledgerClickPartition('1337.42.abc')),
    );
    allow(
      sa,
      'lambda/slack-actions/handler.ts',
      'the work after the answer: itself, asynchronously',
      'lambda:InvokeFunction',
      `arn:${P}:lambda:${R}:${A}:function:${slackActionsFunctionName(stage)}`,
    );
    for (const action of ['logs:CreateLogStream', 'logs:PutLogEvents'])
      allow(
        sa,
        'lib/slack-actions.ts',
        "the Lambda runtime writes the function's log",
        action,
        stream(f.slackActionsLogGroup, LAMBDA_STREAM),
      );
    deny(sa, runtime, 'the alerts webhook', 'ssm:GetParameter', param(n.slackWebhookUrl));
    deny(sa, runtime, "maintenance is the operators' switch", 'ssm:PutParameter', withOverwrite(n.maintenance));
    deny(sa, runtime, "a pool's desired state", 'ssm:PutParameter', withOverwrite(n.pools.blue.image));
    deny(sa, runtime, 'the history (no Query)', 'dynamodb:Query', ledgerItem(stage, LEDGER_RELEASES_PARTITION));
    deny(sa, runtime, 'a delete in the ledger', 'dynamodb:DeleteItem', ledgerItem(stage, LEDGER_HEAD_KEY.pk));
    deny(sa, runtime, "another stage's ledger", 'dynamodb:PutItem', ledgerItem(other, LEDGER_HEAD_KEY.pk));
    deny(
      sa,
      'lambda/slack-actions/handler.ts',
      'another function',
      'lambda:InvokeFunction',
      `arn:${P}:lambda:${R}:${A}:function:${slackActionsFunctionName(other)}`,
    );
  }

  // --- the create-only parameters' custom resource ---
  const cr = 'create-only-parameters';
  const created = [
    n.activePool,
    n.maintenance,
    n.canaryPercent,
    n.release,
    ...POOLS.flatMap((p) => [n.pools[p].image, n.pools[p].release, n.pools[p].env]),
  ];
  allow(
    cr,
    'lib/create-only-parameter.ts',
    'onCreate: PutParameter, Overwrite false (one request per parameter)',
    'ssm:PutParameter',
    ...created.map((name) => ({ arn: param(name), context: { 'ssm:Overwrite': 'false' } })),
  );
  allow(
    cr,
    'lib/create-only-parameter.ts',
    'onDelete: DeleteParameter (one request per parameter)',
    'ssm:DeleteParameter',
    ...created.map(param),
  );
  allow(
    cr,
    'lib/pool-parameters.ts',
    "the Lambda runtime writes the provider's log",
    'logs:CreateLogStream',
    stream(f.createOnlyLogGroup, LAMBDA_STREAM),
  );
  allow(
    cr,
    'lib/pool-parameters.ts',
    "the Lambda runtime writes the provider's log",
    'logs:PutLogEvents',
    stream(f.createOnlyLogGroup, LAMBDA_STREAM),
  );
  deny(cr, 'lib/create-only-parameter.ts', 'the webhook', 'ssm:PutParameter', {
    arn: param(n.slackWebhookUrl),
    context: { 'ssm:Overwrite': 'false' },
  });
  deny(cr, 'lib/create-only-parameter.ts', "the alert function's state", 'ssm:DeleteParameter', param(n.alertState));
  deny(
    cr,
    'lib/create-only-parameter.ts',
    "another stage's pool state",
    'ssm:PutParameter',
    param(parameterNames(other).activePool),
  );

  // --- the pool-switch rule (EventBridge's Run Command target, with the rule's role) ---
  const rule = 'pool-switch-rule';
  allow(
    rule,
    'lib/pool-switch.ts',
    'Run Command to the hosts tagged with the stage: the document and each target instance',
    'ssm:SendCommand',
    documentArn('AWS-RunShellScript'),
    instance(HOST_INSTANCE, stage),
  );
  deny(
    rule,
    'lib/pool-switch.ts',
    'a host of another stage',
    'ssm:SendCommand',
    documentArn('AWS-RunShellScript'),
    instance(OTHER_INSTANCE, other),
  );
  deny(
    rule,
    'lib/pool-switch.ts',
    'an instance without the stage tag',
    'ssm:SendCommand',
    documentArn('AWS-RunShellScript'),
    instance(OTHER_INSTANCE),
  );
  deny(
    rule,
    'lib/pool-switch.ts',
    'another AWS document',
    'ssm:SendCommand',
    documentArn('AWS-RunPowerShellScript'),
    instance(HOST_INSTANCE, stage),
  );
  deny(
    rule,
    'lib/pool-switch.ts',
    'a document of the account',
    'ssm:SendCommand',
    `arn:${P}:ssm:${R}:${A}:document/RunAnything`,
    instance(HOST_INSTANCE, stage),
  );

  // --- CDK's default security group cleanup (the created VPC) ---
  if (f.defaultSecurityGroupArn) {
    const sg = 'default-sg-cleanup';
    for (const action of ['ec2:RevokeSecurityGroupIngress', 'ec2:RevokeSecurityGroupEgress'])
      allow(
        sg,
        'lib/host-network.ts',
        "Custom::VpcRestrictDefaultSG on create: the default group's rules removed",
        action,
        f.defaultSecurityGroupArn,
      );
    for (const action of ['ec2:AuthorizeSecurityGroupIngress', 'ec2:AuthorizeSecurityGroupEgress'])
      allow(
        sg,
        'lib/host-network.ts',
        'Custom::VpcRestrictDefaultSG on delete: the rules put back',
        action,
        f.defaultSecurityGroupArn,
      );
    deny(
      sg,
      'lib/host-network.ts',
      'another security group',
      'ec2:RevokeSecurityGroupIngress',
      `arn:${P}:ec2:${R}:${A}:security-group/sg-0123456789abcdef0`,
    );
  }

  // --- the operator's CLI (npx bluegreen ... --stage), under README's operator policy ---
  const op = 'operator';
  const runCommandReads = (source: string, how: string) => {
    for (const action of ['ssm:ListCommands', 'ssm:ListCommandInvocations', 'ssm:GetCommandInvocation'])
      allow(op, source, how, action, '*');
  };
  allow(op, 'ops/aws-flip.ts', 'flip: writes the active pool', 'ssm:PutParameter', withOverwrite(n.activePool));
  allow(op, 'ops/aws-flip.ts', 'flip: confirms through the public URL', 'ssm:GetParameter', param(n.publicUrl));
  runCommandReads(
    'ops/stage-hosts.ts',
    "flip, status, release: the pool-switch rule's and the release's commands per host",
  );
  allow(op, 'ops/stage-commands.ts', 'maintenance on|off', 'ssm:PutParameter', withOverwrite(n.maintenance));
  allow(
    op,
    'ops/stage-commands.ts',
    'status: one GetParameter each',
    'ssm:GetParameter',
    ...[n.activePool, n.maintenance, n.publicUrl, n.instanceId, n.alertState].map(param),
  );
  allow(op, 'ops/stage-hosts.ts', "status: the stage's SSM agents by tag", 'ssm:DescribeInstanceInformation', '*');
  allow(
    op,
    'ops/insights-query.ts',
    'insights: a saved query on the access log',
    'logs:StartQuery',
    groupScope(logs.access),
  );
  allow(
    op,
    'ops/app-logs.ts',
    "logs: the pools' app log by stream prefix",
    'logs:FilterLogEvents',
    groupScope(logs.app),
  );
  allow(op, 'ops/app-logs.ts', 'logs --pool active|idle', 'ssm:GetParameter', param(n.activePool));
  // The request names a query id, not a group: the policy grants it on "*".
  allow(op, 'ops/insights-query.ts', "insights: the query's rows", 'logs:GetQueryResults', groupScope(logs.access));
  allow(
    op,
    'ops/release/aws-backend.ts',
    'release: the active pool, the canary share, how long the stage keeps its history',
    'ssm:GetParameter',
    ...[n.activePool, n.canaryPercent, n.releaseHistoryDays].map(param),
  );
  allow(
    op,
    'ops/release/aws-backend.ts',
    "release: a pool's desired state (either pool may be the idle one)",
    'ssm:GetParameters',
    ...POOLS.flatMap((p) => Object.values(n.pools[p]).map(param)),
  );
  allow(
    op,
    'ops/release/aws-backend.ts',
    "release: writes the canary share and the idle pool's desired state",
    'ssm:PutParameter',
    ...[n.canaryPercent, ...POOLS.flatMap((p) => Object.values(n.pools[p]))].map(withOverwrite),
  );
  // The release ledger (support/release-ledger.ts): the head with a consistent read, every write a
  // PutItem (the head's conditional), history a Query per partition.
  allow(
    op,
    'support/release-ledger.ts',
    'release, status: the ledger head (GetItem, consistent read)',
    'dynamodb:GetItem',
    ledgerItem(stage, LEDGER_HEAD_KEY.pk),
  );
  for (const [item, partition] of LEDGER_WRITES)
    allow(
      op,
      'support/release-ledger.ts',
      `release: PutItem of ${item}`,
      'dynamodb:PutItem',
      ledgerItem(stage, partition),
    );
  allow(
    op,
    'ops/release/ledger-history.ts',
    "history: every release's item (Query of the release partition)",
    'dynamodb:Query',
    ledgerItem(stage, LEDGER_RELEASES_PARTITION),
  );
  allow(
    op,
    'ops/release/ledger-history.ts',
    "history <id>: one release's versions (Query of its events partition)",
    'dynamodb:Query',
    ledgerItem(stage, ledgerEventsPartition('r-42')),
  );
  deny(
    op,
    'support/release-ledger.ts',
    "another stage's ledger: its head",
    'dynamodb:GetItem',
    ledgerItem(other, LEDGER_HEAD_KEY.pk),
  );
  deny(
    op,
    'support/release-ledger.ts',
    "another stage's ledger: a write",
    'dynamodb:PutItem',
    ledgerItem(other, LEDGER_HEAD_KEY.pk),
  );
  deny(
    op,
    'support/release-ledger.ts',
    'a delete in the ledger',
    'dynamodb:DeleteItem',
    ledgerItem(stage, LEDGER_HEAD_KEY.pk),
  );
  deny(op, 'support/release-ledger.ts', 'an update in place (every write is a Put)', 'dynamodb:UpdateItem', {
    arn: ledgerTable(stage),
    context: { 'dynamodb:LeadingKeys': [LEDGER_HEAD_KEY.pk] },
  });
  deny(op, 'support/release-ledger.ts', 'a Scan of the ledger', 'dynamodb:Scan', ledgerTable(stage));
  deny(op, 'support/release-ledger.ts', 'deleting the ledger table', 'dynamodb:DeleteTable', ledgerTable(stage));
  allow(
    op,
    'ops/release/aws-backend.ts',
    'release: writes the preview token (a SecureString: the aws/ssm key, through SSM)',
    'ssm:PutParameter',
    withOverwrite(n.preview),
  );
  allow(
    op,
    'ops/release/aws-backend.ts',
    "the first ledger read on a stage: the old SSM record's versions, imported into the ledger once",
    'ssm:GetParameterHistory',
    param(n.release),
  );
  allow(
    op,
    'ops/release/run-command.ts',
    'release: Run Command to the hosts tagged with the stage',
    'ssm:SendCommand',
    documentArn('AWS-RunShellScript'),
    instance(HOST_INSTANCE, stage),
  );
  const opSecret = param(`${n.secretsPath}DB_PASSWORD`);
  allow(op, 'ops/secrets/aws-store.ts', 'secret set: a new version', 'ssm:PutParameter', {
    arn: opSecret,
    context: OVERWRITE,
  });
  allow(op, 'ops/secrets/aws-store.ts', 'secret rm', 'ssm:DeleteParameter', opSecret);
  allow(
    op,
    'ops/secrets/aws-store.ts',
    'secret list, release: the secrets (names, versions; no decryption)',
    'ssm:GetParametersByPath',
    param(n.secretsPath.replace(/\/$/, '')),
  );
  allow(
    op,
    'ops/secrets/aws-store.ts',
    "release: a Secrets Manager reference's current version id (DescribeSecret: no value), the secret tagged with the stage",
    'secretsmanager:DescribeSecret',
    {
      arn: `arn:${P}:secretsmanager:${R}:${A}:secret:shop/api-AbCdEf`,
      context: { [`aws:ResourceTag/${STAGE_TAG_KEY}`]: stage },
    },
  );
  deny(
    op,
    'ops/secrets/aws-store.ts',
    'release: DescribeSecret of a secret tagged for another stage, or not tagged',
    'secretsmanager:DescribeSecret',
    {
      arn: `arn:${P}:secretsmanager:${R}:${A}:secret:shop/api-AbCdEf`,
      context: { [`aws:ResourceTag/${STAGE_TAG_KEY}`]: other },
    },
    `arn:${P}:secretsmanager:${R}:${A}:secret:shop/untagged-AbCdEf`,
  );
  allow(
    op,
    'ops/release/aws-backend.ts',
    'release --pre-promote: Run Command to one host of the stage, by instance id',
    'ssm:SendCommand',
    documentArn('AWS-RunShellScript'),
    instance(HOST_INSTANCE, stage),
  );
  deny(
    op,
    'ops/release/aws-backend.ts',
    "release --pre-promote: another stage's host, by instance id",
    'ssm:SendCommand',
    documentArn('AWS-RunShellScript'),
    instance(OTHER_INSTANCE, other),
  );
  allow(op, 'README.md', '"4. Release": docker login to the stage registry', 'ecr:GetAuthorizationToken', '*');
  allow(
    op,
    'ops/build/image-build.ts',
    'build / release --build: the docker login token',
    'ecr:GetAuthorizationToken',
    '*',
  );
  allow(
    op,
    'ops/build/image-build.ts',
    "build / release --build: the stage's repository and its hosts' platform",
    'ssm:GetParameters',
    ...[n.ecrRepository, n.imagePlatform].map(param),
  );
  for (const action of [
    'ecr:BatchCheckLayerAvailability',
    'ecr:InitiateLayerUpload',
    'ecr:UploadLayerPart',
    'ecr:CompleteLayerUpload',
    'ecr:PutImage',
  ]) {
    allow(
      op,
      'README.md',
      '"4. Release": docker push to the stage repository',
      action,
      repository(ecrRepositoryName(stage)),
    );
  }
  deny(
    op,
    'ops/stage-commands.ts',
    'the webhook (created once by an administrator, read by the function only)',
    'ssm:GetParameter',
    param(n.slackWebhookUrl),
  );
  deny(op, 'ops/stage-commands.ts', 'a write of the webhook', 'ssm:PutParameter', withOverwrite(n.slackWebhookUrl));
  deny(
    op,
    'ops/stage-commands.ts',
    "a write of the alert function's state",
    'ssm:PutParameter',
    withOverwrite(n.alertState),
  );
  deny(
    op,
    'ops/aws-flip.ts',
    "another stage's active pool",
    'ssm:PutParameter',
    withOverwrite(parameterNames(other).activePool),
  );
  deny(
    op,
    'ops/release/run-command.ts',
    "Run Command on another stage's host",
    'ssm:SendCommand',
    documentArn('AWS-RunShellScript'),
    instance(OTHER_INSTANCE, other),
  );
  deny(op, 'README.md', "a push to another stage's repository", 'ecr:PutImage', repository(ecrRepositoryName(other)));
  return rows;
}

/** `npx bluegreen` and the host's scripts, as IAM actions: what the table must cover. */
export function callsInCode(): Array<{ source: string; action: string }> {
  const files = [
    ...[
      'userdata/bluegreen-apply.sh',
      'userdata/bootstrap.sh',
      'userdata/bluegreen-log-reopen.sh',
      'fleet/bluegreen-join.sh',
      'lib/pool-host.ts',
      'lib/fleet-hosts.ts',
    ],
    ...['lambda/alert/aws.ts', 'lambda/alert/runtime.ts', 'lambda/alert/handler.ts', 'lambda/alert/dashboard.ts'],
    ...['lambda/slack-actions/runtime.ts', 'lambda/slack-actions/handler.ts'],
    ...[
      'ops/aws-flip.ts',
      'ops/aws-target.ts',
      'ops/stage-commands.ts',
      'ops/stage-hosts.ts',
      'ops/insights-query.ts',
      'ops/release/aws-backend.ts',
      'ops/release/ledger-history.ts',
      'ops/release/run-command.ts',
      'ops/build/image-build.ts',
      'ops/secrets/aws-store.ts',
    ],
    // The release ledger's reads and writes, the CLI's and the alert function's.
    'support/release-ledger.ts',
  ];
  const cliService: Record<string, string> = { elbv2: 'elasticloadbalancing' };
  const sdkService: Record<string, string> = {
    'client-ssm': 'ssm',
    'client-cloudwatch-logs': 'logs',
    'client-sqs': 'sqs',
    'client-ecr': 'ecr',
    'client-secrets-manager': 'secretsmanager',
    'client-dynamodb': 'dynamodb',
    'client-cloudwatch': 'cloudwatch',
    'client-lambda': 'lambda',
  };
  // No IAM action TransactWriteItems exists (Service Authorization Reference): each item of one is
  // authorized by its own action.
  const transactItemAction: Record<string, string> = {
    Put: 'dynamodb:PutItem',
    Update: 'dynamodb:UpdateItem',
    Delete: 'dynamodb:DeleteItem',
    ConditionCheck: 'dynamodb:ConditionCheckItem',
  };
  // Where the API's name is not the IAM action's (Service Authorization Reference: Lambda's Invoke
  // API is authorized as lambda:InvokeFunction).
  const SDK_COMMAND_ACTIONS: Record<string, string> = { 'lambda:Invoke': 'lambda:InvokeFunction' };
  const pascal = (kebab: string) => kebab.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());
  const calls: Array<{ source: string; action: string }> = [];
  for (const file of files) {
    const text = readFileSync(path.join(REPO_ROOT, file), 'utf8');
    const code = text
      .split('\n')
      .filter((l) => !/^\s*(#|\/\/|\*|\/\*)/.test(l))
      .join('\n');
    for (const [, service, op] of code.matchAll(
      /\baws (autoscaling|elbv2|ssm|s3|logs|ecr|sqs|secretsmanager|dynamodb) ([a-z][a-z-]+)/g,
    )) {
      calls.push({
        source: file,
        action: service === 's3' && op === 'cp' ? 's3:GetObject' : `${cliService[service] ?? service}:${pascal(op)}`,
      });
    }
    const imported = new Map<string, string>();
    for (const [, names, client] of text.matchAll(/import \{([^}]+)\} from '@aws-sdk\/([a-z-]+)'/g)) {
      for (const name of names.split(',').map((s) => s.trim()))
        if (name.endsWith('Command')) imported.set(name, sdkService[client]);
    }
    for (const [, name] of code.matchAll(/new ([A-Za-z]+Command)\(/g)) {
      const service = imported.get(name);
      if (service === 'dynamodb' && name === 'TransactWriteItemsCommand') {
        for (const [, item] of code.matchAll(/\b(Put|Update|Delete|ConditionCheck): \{/g))
          calls.push({ source: file, action: transactItemAction[item] });
      } else if (service) {
        const action = `${service}:${name.slice(0, -'Command'.length)}`;
        calls.push({ source: file, action: SDK_COMMAND_ACTIONS[action] ?? action });
      }
    }
  }
  return calls;
}
