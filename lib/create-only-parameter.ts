// An SSM String parameter that CloudFormation creates once and never writes again: operators and
// releases own its value. An AWS::SSM::Parameter would not do: CloudFormation writes the template's
// value back whenever that resource updates (a description or tag change would flip the pool).
//
// Create: PutParameter with Overwrite=false; ParameterAlreadyExists is ignored, so a value that is
// already there (an earlier stack, an operator) is kept as it is.
// Update: nothing. There is no onUpdate call, and AwsCustomResource makes no SDK call for an Update
// request without one (it answers SUCCESS with the same physical id): a changed Create payload (a new
// initial value from context, another description) reaches CloudFormation as an Update and is dropped.
// Delete (cdk destroy, or the resource leaving the template): DeleteParameter.
import { CfnResource, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';

export interface CreateOnlyParameterProps {
  /** Full parameter name, e.g. /bluegreen/dev/active-pool. */
  readonly parameterName: string;
  /** The value written when the parameter does not exist yet. */
  readonly initialValue: string;
  readonly description: string;
  /** SSM refuses values that do not match. @default no pattern */
  readonly allowedPattern?: string;
  /**
   * The role the custom resource's function runs with; it must allow ssm:PutParameter and
   * ssm:DeleteParameter on this parameter. One role for every CreateOnlyParameter of a stack: the
   * function is a stack-wide singleton.
   */
  readonly role: iam.IRole;
  /** The singleton function's log group. */
  readonly logGroup: logs.ILogGroup;
  /**
   * The CloudFormation logical id, fixed. A changed logical id means a new resource (its Create
   * finds the parameter and keeps it) and the deletion of the old one, whose Delete removes the
   * parameter: so it must never change by accident (a construct renamed or moved).
   */
  readonly logicalId: string;
}

export class CreateOnlyParameter extends Construct {
  public readonly parameterName: string;
  public readonly resource: cr.AwsCustomResource;

  constructor(scope: Construct, id: string, props: CreateOnlyParameterProps) {
    super(scope, id);
    this.parameterName = props.parameterName;
    this.resource = new cr.AwsCustomResource(this, 'Resource', {
      resourceType: 'Custom::CreateOnlyParameter',
      onCreate: {
        service: 'SSM',
        action: 'PutParameter',
        parameters: {
          Name: props.parameterName,
          Value: props.initialValue,
          Type: 'String',
          Tier: 'Standard',
          Overwrite: false,
          Description: props.description,
          ...(props.allowedPattern ? { AllowedPattern: props.allowedPattern } : {}),
        },
        physicalResourceId: cr.PhysicalResourceId.of(props.parameterName),
        ignoreErrorCodesMatching: '^ParameterAlreadyExists$',
      },
      // No onUpdate on purpose (see the top of this file).
      onDelete: {
        service: 'SSM',
        action: 'DeleteParameter',
        parameters: { Name: props.parameterName },
        ignoreErrorCodesMatching: '^ParameterNotFound$',
      },
      role: props.role,
      logGroup: props.logGroup,
      installLatestAwsSdk: false,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    (this.resource.node.findChild('Resource').node.defaultChild as CfnResource).overrideLogicalId(props.logicalId);
  }
}
