// The Slack actions function: a thin shell. Clients and configuration once per container, then the
// runtime: Slack's request through the function URL, or the work it handed on to itself.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SSMClient } from '@aws-sdk/client-ssm';
import { sdkRetryConfig } from '../../core/ssm-budget';
import { SLACK_RESPONSE_URL_PREFIX } from '../../core/slack-click';
import { FunctionUrlEvent, isWorkEvent, SlackActionsEnv, SlackActionsRuntime } from './runtime';

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

export function slackActionsEnvFrom(env: NodeJS.ProcessEnv): SlackActionsEnv {
  return {
    stage: required(env, 'STAGE'),
    ledgerTable: required(env, 'LEDGER_TABLE'),
    signingSecretParam: required(env, 'SIGNING_SECRET_PARAM'),
    allowlistParam: required(env, 'ALLOWED_USERS_PARAM'),
    activePoolParam: required(env, 'ACTIVE_POOL_PARAM'),
    canaryParam: required(env, 'CANARY_PARAM'),
    responseUrlPrefix: SLACK_RESPONSE_URL_PREFIX,
  };
}

const config = sdkRetryConfig();
const clients = { ssm: new SSMClient(config), ddb: new DynamoDBClient(config), lambda: new LambdaClient(config) };
let runtime: SlackActionsRuntime | undefined;

export const handler = async (event: unknown) => {
  runtime ??= new SlackActionsRuntime(slackActionsEnvFrom(process.env), {
    ...clients,
    invokeSelf: async (work) => {
      await clients.lambda.send(
        new InvokeCommand({
          FunctionName: required(process.env, 'AWS_LAMBDA_FUNCTION_NAME'),
          InvocationType: 'Event',
          Payload: Buffer.from(JSON.stringify({ bluegreenSlackWork: work })),
        }),
      );
    },
  });
  if (isWorkEvent(event)) return runtime.act(event.bluegreenSlackWork);
  return runtime.receive(event as FunctionUrlEvent);
};
