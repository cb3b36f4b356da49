// The operators' IAM policy for one stage: what `npx bluegreen` needs with --stage (flip, status,
// maintenance, release, release --build, history, secret, insights, logs). One source: the stack's
// managed policy (lib/release-role.ts) is built from it, and README's JSON block ("Operators' IAM")
// must equal it with placeholders (test/infra/release-role.test.ts), so the two cannot drift apart.
// Every call of the CLI is run against it in test/infra/iam-contract.test.ts.
import { ecrRepositoryName, logGroupNames, parameterNames, STAGE_TAG_KEY } from '../core/names';
import { ledgerTableName } from '../core/release-ledger';

/** Where the policy applies. Plain strings, or CloudFormation tokens (Aws.PARTITION, ...) in the stack. */
export interface OperatorPolicyTarget {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
  readonly stage: string;
}

/** README's placeholders: its block reads `arn:aws:…:<region>:<account>:…/<stage>/…`. */
export const README_PLACEHOLDERS: OperatorPolicyTarget = {
  partition: 'aws',
  region: '<region>',
  account: '<account>',
  stage: '<stage>',
};

/**
 * One statement as an IAM policy document holds it. A single action or resource is a string, as
 * README writes it (IAM treats both forms alike; the comparison with README is exact).
 */
export interface OperatorStatement {
  readonly Sid: string;
  readonly Effect: 'Allow';
  readonly Action: string | string[];
  readonly Resource: string | string[];
  readonly Condition?: Record<string, Record<string, string>>;
}

export interface OperatorPolicyDocument {
  readonly Version: '2012-10-17';
  readonly Statement: OperatorStatement[];
}

/** The statements, in README's order (their Sids are what an operator reads in an access-denied message). */
export function operatorPolicyStatements(t: OperatorPolicyTarget): OperatorStatement[] {
  const n = parameterNames(t.stage);
  const logs = logGroupNames(t.stage);
  const arn = (service: string, resource: string, account = t.account) =>
    `arn:${t.partition}:${service}:${t.region}:${account}:${resource}`;
  const param = (name: string) => arn('ssm', `parameter${name}`);
  // Log-group-level actions (StartQuery, FilterLogEvents) are authorized on `log-group:<name>:*`.
  const logGroup = (name: string) => arn('logs', `log-group:${name}:*`);
  return [
    {
      Sid: 'StageState',
      Effect: 'Allow',
      Action: ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:PutParameter'],
      Resource: [n.activePool, n.canaryPercent, n.maintenance, n.preview, `${n.root}/pools/*`].map(param),
    },
    {
      Sid: 'StageSecrets',
      Effect: 'Allow',
      Action: ['ssm:PutParameter', 'ssm:DeleteParameter', 'ssm:GetParametersByPath'],
      Resource: [param(n.secretsPath.replace(/\/$/, '')), param(`${n.secretsPath}*`)],
    },
    {
      // A secret's ARN ends in random characters: the stage's tag is the boundary.
      Sid: 'PinSecretsManagerVersions',
      Effect: 'Allow',
      Action: 'secretsmanager:DescribeSecret',
      Resource: arn('secretsmanager', 'secret:*'),
      Condition: { StringEquals: { [`aws:ResourceTag/${STAGE_TAG_KEY}`]: t.stage } },
    },
    {
      Sid: 'StageReadOnly',
      Effect: 'Allow',
      Action: 'ssm:GetParameter',
      Resource: [n.publicUrl, n.instanceId, n.alertState, n.releaseHistoryDays].map(param),
    },
    {
      Sid: 'BuildTarget',
      Effect: 'Allow',
      Action: 'ssm:GetParameters',
      Resource: [n.ecrRepository, n.imagePlatform].map(param),
    },
    {
      // The old release record: imported into the ledger once, on the first ledger read.
      Sid: 'ReleaseHistory',
      Effect: 'Allow',
      Action: 'ssm:GetParameterHistory',
      Resource: param(n.release),
    },
    {
      Sid: 'ReleaseLedger',
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'],
      Resource: arn('dynamodb', `table/${ledgerTableName(t.stage)}`),
    },
    {
      // AWS-owned documents have no account in their ARN.
      Sid: 'RunShellScriptDocument',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: arn('ssm', 'document/AWS-RunShellScript', ''),
    },
    {
      Sid: 'OnlyThisStagesHosts',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: arn('ec2', 'instance/*'),
      Condition: { StringEquals: { [`ssm:resourceTag/${STAGE_TAG_KEY}`]: t.stage } },
    },
    {
      // No resource-level permissions exist for these (Service Authorization Reference).
      Sid: 'RunCommandResults',
      Effect: 'Allow',
      Action: [
        'ssm:ListCommands',
        'ssm:ListCommandInvocations',
        'ssm:GetCommandInvocation',
        'ssm:DescribeInstanceInformation',
      ],
      Resource: '*',
    },
    { Sid: 'Insights', Effect: 'Allow', Action: 'logs:StartQuery', Resource: logGroup(logs.access) },
    { Sid: 'AppLogs', Effect: 'Allow', Action: 'logs:FilterLogEvents', Resource: logGroup(logs.app) },
    // A query's rows are read by its id, not its group: no resource-level permission.
    { Sid: 'InsightsResults', Effect: 'Allow', Action: 'logs:GetQueryResults', Resource: '*' },
    { Sid: 'RegistryLogin', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
    {
      Sid: 'PushReleaseImages',
      Effect: 'Allow',
      Action: [
        'ecr:BatchCheckLayerAvailability',
        'ecr:InitiateLayerUpload',
        'ecr:UploadLayerPart',
        'ecr:CompleteLayerUpload',
        'ecr:PutImage',
      ],
      Resource: arn('ecr', `repository/${ecrRepositoryName(t.stage)}`),
    },
  ];
}

export function operatorPolicyDocument(t: OperatorPolicyTarget): OperatorPolicyDocument {
  return { Version: '2012-10-17', Statement: operatorPolicyStatements(t) };
}
