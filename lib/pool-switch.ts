// The pool-switch path: a change of the stage's active pool or canary share reaches the stage's hosts
// within seconds. EventBridge's "Parameter Store Change" event → SSM Run Command (AWS-RunShellScript)
// on the hosts tagged with the stage → bluegreen-apply (reads the parameters and reconciles: flag
// files for the active pool and canary, the idle pool's container for a new image/release/env).
// The event carries no value: the host reads the parameter itself.
// The rule does not fire on the six pool parameters (a pool's image/release/env): `bluegreen release`
// writes three of them per deploy and then runs bluegreen-apply itself through Run Command, reading
// each host's steps. Rule-triggered runs would only race it (serialized by the host's lock) and, for
// a failing release, repeat its deploy and restore. A pool's new desired state is deployed by the
// release's own Run Command (or `bluegreen-apply` by hand), at the pace it sets: a fleet's rule runs
// bluegreen-apply --no-deploy, and so does the host's timer.
// Delivery is best effort, so the host also reconciles every minute (bluegreen-apply.timer): the
// safety net for the active pool and the canary share, the rule or not.
import { Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { APPLY_PATH } from '../core/host-command';

export interface PoolSwitchProps {
  readonly stage: string;
  /**
   * Names of the parameters whose changes trigger bluegreen-apply (exact names, no prefix): the
   * active pool and the canary share, not the parameters the release deploy writes itself.
   */
  readonly parameterNames: string[];
  /** EC2 tag key/value that marks the stage's hosts. */
  readonly hostTagKey: string;
  /** @default bluegreen-apply (a fleet passes hostApplyCommand(): the join step on a host still bootstrapping) */
  readonly command?: string;
  /** Seconds Run Command lets the command run. @default 120 */
  readonly executionTimeoutSeconds?: number;
}

/** The EventBridge pattern of a change to any of the parameters: exported for the tests and the docs. */
export function parameterChangePattern(parameterNames: string[]) {
  return {
    source: ['aws.ssm'],
    'detail-type': ['Parameter Store Change'],
    detail: { name: [...parameterNames], operation: ['Create', 'Update'] },
  };
}

export class PoolSwitch extends Construct {
  public readonly rule: events.CfnRule;
  public readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: PoolSwitchProps) {
    super(scope, id);
    const stack = Stack.of(this);
    // CDK has no L2 Run Command target (aws/aws-cdk#15662): the L1 rule with RunCommandParameters.
    const documentArn = stack.formatArn({
      service: 'ssm',
      account: '',
      resource: 'document',
      resourceName: 'AWS-RunShellScript',
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: `bluegreen ${props.stage}: EventBridge runs bluegreen-apply on the stage's hosts`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'RunShellScriptDocument',
        actions: ['ssm:SendCommand'],
        resources: [documentArn],
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OnlyThisStagesHosts',
        actions: ['ssm:SendCommand'],
        resources: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
        conditions: { StringEquals: { [`ssm:resourceTag/${props.hostTagKey}`]: props.stage } },
      }),
    );
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
      reason: `Hosts are replaced on every change of their files, so their ids are not known in advance; ssm:SendCommand is limited by condition to instances tagged ${props.hostTagKey}=${props.stage}, and to the AWS-RunShellScript document.`,
    });
    this.rule = new events.CfnRule(this, 'Rule', {
      description: `bluegreen ${props.stage}: run bluegreen-apply on the hosts when the pool state changes`,
      eventPattern: parameterChangePattern(props.parameterNames),
      state: 'ENABLED',
      targets: [
        {
          id: 'ApplyPoolState',
          arn: documentArn,
          roleArn: this.role.roleArn,
          input: JSON.stringify({
            commands: [props.command ?? APPLY_PATH],
            executionTimeout: [String(props.executionTimeoutSeconds ?? 120)],
          }),
          runCommandParameters: { runCommandTargets: [{ key: `tag:${props.hostTagKey}`, values: [props.stage] }] },
        },
      ],
    });
  }
}
