// A parameter's ARN from its name (/bluegreen/...): SSM's ARN drops the name's leading slash.
import { Stack } from 'aws-cdk-lib';
import type { Construct } from 'constructs';

export function parameterArn(scope: Construct, name: string): string {
  return Stack.of(scope).formatArn({ service: 'ssm', resource: 'parameter', resourceName: name.slice(1) });
}
