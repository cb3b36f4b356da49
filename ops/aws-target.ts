// Which deployed stage an operator command talks to, and the SDK clients for it. --stage, --region
// and --profile behave as an AWS user expects (flags first, then BLUEGREEN_STAGE / AWS_REGION /
// AWS_PROFILE, then the SDK's own resolution).
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { STSClient } from '@aws-sdk/client-sts';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { logGroupNames, parameterNames } from '../core/names';
import { STAGE_PATTERN } from '../core/patterns';
import { ConfigError } from '../core/config-error';
import { sdkRetryConfig } from '../core/ssm-budget';

export const AWS_FLAGS = {
  stage: { type: 'string' },
  region: { type: 'string' },
  profile: { type: 'string' },
} as const;

export interface AwsTarget {
  stage: string;
  params: ReturnType<typeof parameterNames>;
  logGroups: ReturnType<typeof logGroupNames>;
  ssm: SSMClient;
  logs: CloudWatchLogsClient;
  /** The stage's release ledger (core/release-ledger.ts). */
  ddb: DynamoDBClient;
  /** Who the caller is (GetCallerIdentity needs no permission). */
  sts: STSClient;
}

export function awsTarget(
  flags: { stage?: string; region?: string; profile?: string },
  env: NodeJS.ProcessEnv,
): AwsTarget {
  const stage = flags.stage ?? env.BLUEGREEN_STAGE ?? 'dev';
  if (!STAGE_PATTERN.test(stage)) throw new ConfigError(`--stage must be a stage name like prod, got "${stage}"`);
  // A throttled call is retried with backoff (Parameter Store's budget is the account's, shared with the hosts).
  const config = { region: flags.region, profile: flags.profile, ...sdkRetryConfig() };
  return {
    stage,
    params: parameterNames(stage),
    logGroups: logGroupNames(stage),
    ssm: new SSMClient(config),
    logs: new CloudWatchLogsClient(config),
    ddb: new DynamoDBClient(config),
    sts: new STSClient(config),
  };
}

/**
 * True when the command line (before parsing) or the environment names a deployed stage: the
 * command then acts on AWS, not on local mode.
 */
export function namesStage(args: readonly string[], env: NodeJS.ProcessEnv): boolean {
  return args.some((a) => a === '--stage' || a.startsWith('--stage=')) || Boolean(env.BLUEGREEN_STAGE);
}

/** A parameter's value, or undefined when it does not exist; any other failure throws. */
export async function getParameter(ssm: SSMClient, name: string): Promise<string | undefined> {
  try {
    return (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  } catch (err) {
    if ((err as Error).name === 'ParameterNotFound') return undefined;
    throw err;
  }
}
