// Where the host lives: a small VPC of its own (public subnets only, no NAT gateway: the host has a
// public address and needs nothing private), or an existing VPC's public subnets.
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { VpcConfig } from './stack-config';

export interface HostNetworkProps {
  readonly vpc: VpcConfig;
  /**
   * Retention of the VPC flow log (rejected traffic) when the VPC is created here.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly flowLogRetention?: logs.RetentionDays;
}

export class HostNetwork extends Construct {
  public readonly vpc: ec2.IVpc;
  public readonly subnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PUBLIC };

  constructor(scope: Construct, id: string, props: HostNetworkProps) {
    super(scope, id);
    const config = props.vpc;
    if (config.create) {
      const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
        retention: props.flowLogRetention ?? logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      this.vpc = new ec2.Vpc(this, 'Vpc', {
        ipAddresses: ec2.IpAddresses.cidr(config.cidr),
        maxAzs: 2,
        natGateways: 0,
        subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
        // Rejected traffic only: who knocked on ports that are closed, at a small cost.
        flowLogs: {
          Rejected: {
            destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
            trafficType: ec2.FlowLogTrafficType.REJECT,
          },
        },
      });
    } else {
      // fromVpcAttributes, not fromLookup: synth stays offline and account-independent.
      this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: config.vpcId,
        availabilityZones: config.availabilityZones,
        publicSubnetIds: config.publicSubnetIds,
      });
      Validations.of(this).acknowledge({
        id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
        reason:
          'Nothing here reads the route tables of the given subnets; the operator vouches that publicSubnetIds route to an internet gateway.',
      });
    }
  }
}
