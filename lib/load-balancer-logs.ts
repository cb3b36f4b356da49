// The fleet load balancer's access logs, in an environment-agnostic template. ELB writes them as a
// principal that depends on the region: the region's ELB account in regions opened before August
// 2022, the log delivery service in newer ones. The stack sets no region (one template for any
// region), so the bucket policy picks the account from a table of every region this CDK version
// knows (RegionInfo), and names the service principal for the rest; in a new region the account
// slot names the bucket's own account, which grants nothing new.
import { Aws, CfnCondition, CfnMapping, Duration, Fn, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { FactName, RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';

/** The ELB log delivery service (regions opened in or after August 2022). */
export const ELB_LOG_DELIVERY_SERVICE = 'logdelivery.elasticloadbalancing.amazonaws.com';
const NO_ACCOUNT = 'none';

export interface LoadBalancerLogsProps {
  readonly stage: string;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  /** How long the logs are kept (the stage's log retention). */
  readonly retentionDays: number;
}

export class LoadBalancerLogs extends Construct {
  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: LoadBalancerLogsProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      // ELB access logs support SSE-S3 only.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(props.retentionDays) }],
      // Kept after cdk destroy, like the nginx log groups: the record of what happened.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const regions = RegionInfo.regionMap(FactName.ELBV2_ACCOUNT);
    const table = new CfnMapping(this, 'ElbAccounts', {
      mapping: Object.fromEntries(RegionInfo.regions.map((r) => [r.name, { account: regions[r.name] ?? NO_ACCOUNT }])),
    });
    const account = table.findInMap(Aws.REGION, 'account');
    const newRegion = new CfnCondition(this, 'NewRegion', { expression: Fn.conditionEquals(account, NO_ACCOUNT) });
    const writer = Fn.conditionIf(newRegion.logicalId, Aws.ACCOUNT_ID, account).toString();
    const objects = this.bucket.arnForObjects(`AWSLogs/${Aws.ACCOUNT_ID}/*`);
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'ElbWritesAccessLogs',
        actions: ['s3:PutObject'],
        principals: [
          new iam.ArnPrincipal(`arn:${Aws.PARTITION}:iam::${writer}:root`),
          new iam.ServicePrincipal(ELB_LOG_DELIVERY_SERVICE),
        ],
        resources: [objects],
      }),
    );
    props.loadBalancer.setAttribute('access_logs.s3.enabled', 'true');
    props.loadBalancer.setAttribute('access_logs.s3.bucket', this.bucket.bucketName);
    // ELB checks it may write when the attribute is set: the policy must exist first.
    props.loadBalancer.node.addDependency(this.bucket.policy!);

    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        "This bucket is itself the load balancer's access log; logging reads and writes of the log into another bucket would be logs of logs. Nothing but ELB writes to it (bucket policy) and public access is blocked.",
    });
  }
}
