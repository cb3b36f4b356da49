// The host's access to the stage's preview parameter (core/preview.ts): a SecureString the release
// CLI writes and a host reads only when asked (bluegreen-apply --preview). GetParameter on that one
// parameter, and kms:Decrypt only through Parameter Store for that parameter (SSM's encryption
// context names the parameter), whichever key the account's SecureStrings use (aws/ssm by default).
import { Aws, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { parameterNames } from '../core/names';

export interface HostPreviewAccessProps {
  readonly stage: string;
  /** The host role's Deny of every parameter but its own: the preview parameter is one of its own. */
  readonly denyOtherParameters: iam.PolicyStatement;
}

/** Adds the two statements to `role`. */
export function allowPreviewRead(role: iam.Role, props: HostPreviewAccessProps): void {
  const stack = Stack.of(role);
  const name = parameterNames(props.stage).preview;
  const arn = stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: name.slice(1) });
  role.addToPolicy(new iam.PolicyStatement({ sid: 'ReadPreview', actions: ['ssm:GetParameter'], resources: [arn] }));
  props.denyOtherParameters.addNotResources(arn);
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'DecryptPreviewViaSsm',
      actions: ['kms:Decrypt'],
      resources: [stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
      conditions: {
        StringEquals: {
          'kms:ViaService': `ssm.${Aws.REGION}.amazonaws.com`,
          'kms:EncryptionContext:PARAMETER_ARN': arn,
        },
      },
    }),
  );
  Validations.of(role).acknowledge({
    id: 'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]',
    reason:
      "kms:Decrypt of the stage's preview SecureString: the key (the account's aws/ssm key unless SecureStrings use another) has no id known at synth; the grant holds only through Parameter Store (kms:ViaService) and only for that one parameter (kms:EncryptionContext:PARAMETER_ARN).",
  });
}
