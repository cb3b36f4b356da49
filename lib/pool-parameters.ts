// The stage's SSM parameters: the active pool (the source of truth for which pool serves) and
// maintenance. The Slack webhook is a SecureString the operator creates: CloudFormation cannot.
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { parameterNames } from './config';

export const ACTIVE_POOL_PATTERN = '^(blue|green)$';
export const MAINTENANCE_PATTERN = '^(on|off)$';

export interface PoolParametersProps {
  readonly stage: string;
  /** @default 'blue' */
  readonly initialActivePool?: 'blue' | 'green';
}

export class PoolParameters extends Construct {
  public readonly activePool: ssm.StringParameter;
  public readonly maintenance: ssm.StringParameter;
  public readonly names: ReturnType<typeof parameterNames>;

  constructor(scope: Construct, id: string, props: PoolParametersProps) {
    super(scope, id);
    this.names = parameterNames(props.stage);
    this.activePool = new ssm.StringParameter(this, 'ActivePool', {
      parameterName: this.names.activePool,
      stringValue: props.initialActivePool ?? 'blue',
      allowedPattern: ACTIVE_POOL_PATTERN,
      description: `bluegreen ${props.stage}: the pool nginx sends traffic to first (blue|green). Changing it flips the pool.`,
    });
    this.maintenance = new ssm.StringParameter(this, 'Maintenance', {
      parameterName: this.names.maintenance,
      stringValue: 'off',
      allowedPattern: MAINTENANCE_PATTERN,
      description: `bluegreen ${props.stage}: on = alerts are evaluated and logged but not posted.`,
    });
  }
}
