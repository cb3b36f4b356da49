// The alert Lambda: a thin shell. Clients and configuration once per container, then the runtime.
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { releaseGateFromEnv, ruleConfigFromEnv } from '../../core/rule-config';
import { AlertEnv, AlertRuntime } from './runtime';
import { PARAMETER_MAX_AGE_MS, sdkRetryConfig } from '../../core/ssm-budget';

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

export function alertEnvFrom(env: NodeJS.ProcessEnv): AlertEnv {
  const rules = ruleConfigFromEnv(env);
  return {
    stage: required(env, 'STAGE'),
    region: required(env, 'AWS_REGION'),
    logGroup: required(env, 'ACCESS_LOG_GROUP'),
    maintenanceParam: required(env, 'MAINTENANCE_PARAM'),
    // Set by the stack; without it (an older stack) M of "N of M hosts" is the hosts seen logging.
    hostsParam: env.HOSTS_PARAM || undefined,
    webhookParam: required(env, 'SLACK_WEBHOOK_PARAM'),
    stateParam: required(env, 'STATE_PARAM'),
    deadLetterQueueUrl: required(env, 'DEAD_LETTER_QUEUE_URL'),
    runbookUrl: env.RUNBOOK_URL || undefined,
    metricsNamespace: required(env, 'METRICS_NAMESPACE'),
    rules,
    rebuildLookbackMs: Number(env.REBUILD_LOOKBACK_SECONDS ?? 300) * 1000,
    parameterMaxAgeMs: env.PARAMETER_MAX_AGE_SECONDS
      ? Number(env.PARAMETER_MAX_AGE_SECONDS) * 1000
      : PARAMETER_MAX_AGE_MS,
    slackActions: env.SLACK_ACTIONS === 'on',
    dashboardName: env.DASHBOARD_NAME || undefined,
    // The stack sets all three; without them (an older stack) the function guards no releases.
    release: env.LEDGER_TABLE
      ? {
          ledgerTable: env.LEDGER_TABLE,
          activePoolParam: required(env, 'ACTIVE_POOL_PARAM'),
          canaryParam: required(env, 'CANARY_PARAM'),
          gate: releaseGateFromEnv(env, rules),
        }
      : undefined,
  };
}

/**
 * The clients' configuration: a throttled call (Parameter Store's budget is the account's, shared with
 * every host and stage) is retried with backoff inside the invocation, not failed.
 */
export const CLIENT_CONFIG = sdkRetryConfig();

// Created once per container, during init.
const clients = {
  ssm: new SSMClient(CLIENT_CONFIG),
  logs: new CloudWatchLogsClient(CLIENT_CONFIG),
  sqs: new SQSClient(CLIENT_CONFIG),
  ddb: new DynamoDBClient(CLIENT_CONFIG),
  cloudwatch: new CloudWatchClient(CLIENT_CONFIG),
};
let runtime: AlertRuntime | undefined;

/** The part of Lambda's context the function uses: the time left, which bounds Slack delivery. */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

export const handler = async (event: unknown, context?: InvocationContext) => {
  runtime ??= new AlertRuntime(alertEnvFrom(process.env), clients);
  return runtime.handle(event, context ? () => context.getRemainingTimeInMillis() : undefined);
};
