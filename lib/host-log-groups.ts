// The log groups the host ships to: nginx's logs (the CloudWatch agent) and the pools' stdout/stderr
// (Docker's awslogs driver). Created by the stack (with retention) so the host needs no right to
// create them.
import * as logs from 'aws-cdk-lib/aws-logs';
import { RemovalPolicy } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { logGroupNames } from '../core/names';

export interface HostLogGroupsProps {
  readonly stage: string;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly retention?: logs.RetentionDays;
  /**
   * Logs outlive the stack by default: they are the record of what happened, and an on-call
   * investigation must not lose them to a `cdk destroy`.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

export class HostLogGroups extends Construct {
  public readonly access: logs.LogGroup;
  public readonly error: logs.LogGroup;
  /** The pools' app log: streams `<pool>/<release>/<host>` (core/app-log.ts). */
  public readonly app: logs.LogGroup;

  constructor(scope: Construct, id: string, props: HostLogGroupsProps) {
    super(scope, id);
    const names = logGroupNames(props.stage);
    const common = {
      retention: props.retention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    };
    this.access = new logs.LogGroup(this, 'Access', { logGroupName: names.access, ...common });
    this.error = new logs.LogGroup(this, 'Error', { logGroupName: names.error, ...common });
    this.app = new logs.LogGroup(this, 'App', { logGroupName: names.app, ...common });
  }
}
