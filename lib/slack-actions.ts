// Slack's buttons (Roll back now, Promote now, Extend bake, Abort) reach this function through its
// function URL. Slack cannot sign a request with SigV4, so the URL's auth type is NONE and the
// function itself authenticates every request: Slack's signature with the app's signing secret (a
// SecureString the operator puts), a 5-minute window, a replay check in the ledger, and the stage's
// allowlist of Slack users. It answers Slack at once and does the work in an asynchronous invocation
// of itself: the same actuator and conditional write as the release guard.
import * as path from 'node:path';
import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { FUNCTION_DEFAULTS, FUNCTION_ENV } from './function-defaults';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { parameterNames, slackActionsFunctionName } from '../core/names';
import type { ReleaseLedger } from './release-ledger';
import { functionRole } from './function-role';
import { parameterArn as parameterArnOf } from './parameter-arn';

export const SLACK_ACTIONS_ENTRY = path.join(__dirname, '..', 'lambda', 'slack-actions', 'handler.ts');

/**
 * At most this many clicks are handled at once: a click is two short invocations, and a person
 * clicks seldom; the bound keeps a flood of (rejected) requests from taking the account's concurrency.
 */
export const SLACK_ACTIONS_RESERVED_CONCURRENCY = 5;

export interface SlackActionsProps {
  readonly stage: string;
  /** The stage's release ledger: the decision's conditional write, and the replay check's clicks. */
  readonly ledger: ReleaseLedger;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

export class SlackActions extends Construct {
  public readonly function: NodejsFunction;
  public readonly url: lambda.FunctionUrl;

  constructor(scope: Construct, id: string, props: SlackActionsProps) {
    super(scope, id);
    const { stage } = props;
    const names = parameterNames(stage);
    const functionName = slackActionsFunctionName(stage);
    const stack = Stack.of(this);
    const parameterArn = (name: string) => parameterArnOf(this, name);
    const logGroup = new logs.LogGroup(this, 'FunctionLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = functionRole(
      this,
      'Role',
      `bluegreen ${stage} Slack actions: its log group, the signing secret and allowlist, the flip, the ledger`,
      logGroup,
    );
    // The signing secret (SecureString, the account's aws/ssm key: its key policy allows use through
    // SSM), who may act, and the active pool a decision is checked against.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadParameters',
        actions: ['ssm:GetParameter'],
        resources: [names.slackSigningSecret, names.slackAllowedUsers, names.activePool].map(parameterArn),
      }),
    );
    // A decision's switch: the flip back, or the canary share to 0 (the guard's two parameters).
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'Switch',
        actions: ['ssm:PutParameter'],
        resources: [names.activePool, names.canaryPercent].map(parameterArn),
      }),
    );
    // The head (read, and written conditionally with the release's item and event), and each click's
    // item (a conditional put: the replay check). No Query, no delete.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReleaseLedger',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        resources: [props.ledger.table.tableArn],
      }),
    );
    // The work after Slack's answer: an asynchronous invocation of itself, by name (the function's
    // own ARN would make the role depend on the function that depends on the role).
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'InvokeSelf',
        actions: ['lambda:InvokeFunction'],
        resources: [
          stack.formatArn({
            service: 'lambda',
            resource: 'function',
            resourceName: functionName,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
    this.function = new NodejsFunction(this, 'Function', {
      functionName,
      entry: SLACK_ACTIONS_ENTRY,
      handler: 'handler',
      ...FUNCTION_DEFAULTS,
      memorySize: 256,
      // Slack's 3 s is the receive path's (a signature, two reads, a put, an invoke); the work
      // (a switch, a write, a post to Slack with retries) has the rest.
      timeout: Duration.seconds(30),
      role,
      logGroup,
      description: `bluegreen ${stage}: Slack's release buttons → the release guard's actuator`,
      reservedConcurrentExecutions: SLACK_ACTIONS_RESERVED_CONCURRENCY,
      // A lost asynchronous invocation is a click that did nothing: the person sees no update and
      // clicks again (a new trigger id). Retrying could act twice on a changed record: none.
      retryAttempts: 0,
      environment: {
        ...FUNCTION_ENV,
        STAGE: stage,
        LEDGER_TABLE: props.ledger.tableName,
        SIGNING_SECRET_PARAM: names.slackSigningSecret,
        ALLOWED_USERS_PARAM: names.slackAllowedUsers,
        ACTIVE_POOL_PARAM: names.activePool,
        CANARY_PARAM: names.canaryPercent,
      },
    });
    // Slack signs its requests with the app's secret, not SigV4: the function checks every request.
    this.url = this.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    new CfnOutput(stack, 'SlackActionsUrl', {
      value: this.url.url,
      description: `The Slack app's Interactivity Request URL for stage ${stage} (README "Slack buttons")`,
    });
  }
}
