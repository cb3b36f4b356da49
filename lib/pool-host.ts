// The EC2 host that runs the Compose set (nginx + blue + green): Amazon Linux 2023, IMDSv2, an
// encrypted gp3 root volume, no SSH (Session Manager only), a role limited to what the host does,
// and the repo's nginx/, app/ and userdata/ delivered as assets (inline user data is capped at 16 KB).
import * as path from 'node:path';
import { Aws, Duration, Stack, Tags, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { parameterNames } from './config';

const REPO_ROOT = path.join(__dirname, '..');

/** Host ports (DESIGN.md "Ports"): the one definition the security group and the docs use. */
export const HOST_PORTS = { public: 8080, poolFirst: 8081, poolLast: 8082 } as const;

/** The EC2 tag Run Command targets to reach a stage's hosts. */
export const STAGE_TAG_KEY = 'BluegreenStage';

export interface PoolImages {
  /** Registry image; undefined = the project's app/ image built on the host. */
  readonly image?: string;
  readonly release: string;
}

export interface PoolHostProps {
  readonly stage: string;
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** @default t3.small */
  readonly instanceType?: string;
  /** Who reaches 8080. */
  readonly publicCidr: string;
  /** Who reaches 8081-8082; undefined closes them (operators use Session Manager port forwarding). */
  readonly operatorCidr?: string;
  readonly blue: PoolImages;
  readonly green: PoolImages;
  /** Pool health check command for images without node. @default the node one in docker-compose.yml */
  readonly poolHealthcheck?: string;
  readonly accessLogGroup: logs.ILogGroup;
  readonly errorLogGroup: logs.ILogGroup;
  /** CloudWatch namespace for the host's CPU/memory/disk metrics. */
  readonly metricsNamespace: string;
  /**
   * How long CloudFormation waits for the bootstrap's success signal before failing the deploy.
   * @default Duration.minutes(20)
   */
  readonly bootstrapTimeout?: Duration;
  /** @default 20 GiB */
  readonly rootVolumeGiB?: number;
}

/** Graviton instance families (a1, t4g, m7g, c7gn, ...) need the arm64 AMI. */
export function cpuTypeFor(instanceType: string): ec2.AmazonLinuxCpuType {
  const family = instanceType.split('.')[0];
  return family === 'a1' || /^[a-z]+\d+g/.test(family) ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64;
}

export class PoolHost extends Construct {
  public readonly instance: ec2.Instance;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly role: iam.Role;
  public readonly address: ec2.CfnEIP;
  public readonly publicUrl: string;

  constructor(scope: Construct, id: string, props: PoolHostProps) {
    super(scope, id);
    const { stage } = props;
    const instanceType = props.instanceType ?? 't3.small';
    if (props.operatorCidr?.endsWith('/0')) {
      throw new Error(`PoolHost: operatorCidr must not be world-open, got "${props.operatorCidr}"`);
    }

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: `bluegreen ${stage}: ${HOST_PORTS.public} from the public CIDR, ${HOST_PORTS.poolFirst}-${HOST_PORTS.poolLast} from operators; no SSH`,
      // The host pulls packages and images and talks to SSM, Logs and CloudWatch over HTTPS.
      allowAllOutbound: true,
    });
    this.securityGroup.addIngressRule(ec2.Peer.ipv4(props.publicCidr), ec2.Port.tcp(HOST_PORTS.public), 'public entry (nginx)');
    if (props.operatorCidr) {
      this.securityGroup.addIngressRule(
        ec2.Peer.ipv4(props.operatorCidr),
        ec2.Port.tcpRange(HOST_PORTS.poolFirst, HOST_PORTS.poolLast),
        'direct pool access for operators (blue 8081, green 8082)',
      );
    }
    if (props.publicCidr.endsWith('/0')) {
      Validations.of(this.securityGroup).acknowledge({
        id: 'AwsSolutions-EC23',
        reason: `Port ${HOST_PORTS.public} is the service's public entry and is meant to be reachable from anywhere (context publicCidr). The operator ports and every other port stay closed.`,
      });
    }

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `bluegreen ${stage} host: Session Manager, its own log groups and metrics, the active-pool parameter, its own assets`,
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    const params = parameterNames(stage);
    // Only the active pool: the stage path also holds the Slack webhook SecureString, which the
    // account's aws/ssm key would let any reader of the path decrypt.
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadActivePool',
        actions: ['ssm:GetParameter'],
        resources: [Stack.of(this).formatArn({ service: 'ssm', resource: 'parameter', resourceName: params.activePool.slice(1) })],
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ShipNginxLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [props.accessLogGroup, props.errorLogGroup].map((g) => `${g.logGroupArn}`),
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PublishHostMetrics',
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': props.metricsNamespace } },
      }),
    );

    const assets = {
      nginx: new Asset(this, 'NginxFiles', { path: path.join(REPO_ROOT, 'nginx') }),
      app: new Asset(this, 'AppFiles', { path: path.join(REPO_ROOT, 'app') }),
      userdata: new Asset(this, 'HostFiles', { path: path.join(REPO_ROOT, 'userdata') }),
    };

    const userData = ec2.UserData.forLinux();
    userData.addCommands('set -euo pipefail', 'dnf install -y -q aws-cfn-bootstrap unzip', 'mkdir -p /opt/bluegreen /etc/bluegreen');
    for (const [name, asset] of Object.entries(assets)) {
      asset.grantRead(this.role);
      const zip = userData.addS3DownloadCommand({ bucket: asset.bucket, bucketKey: asset.s3ObjectKey, localFile: `/tmp/bluegreen-${name}.zip`, region: Aws.REGION });
      userData.addCommands(`rm -rf /opt/bluegreen/${name}`, `unzip -q -o ${zip} -d /opt/bluegreen/${name}`);
    }
    const env: Record<string, string> = {
      STAGE: stage,
      AWS_REGION: Aws.REGION,
      AWS_DEFAULT_REGION: Aws.REGION,
      ACCESS_LOG_GROUP: props.accessLogGroup.logGroupName,
      ERROR_LOG_GROUP: props.errorLogGroup.logGroupName,
      METRICS_NAMESPACE: props.metricsNamespace,
      BLUE_IMAGE: props.blue.image ?? '',
      GREEN_IMAGE: props.green.image ?? '',
      RELEASE_ID_BLUE: props.blue.release,
      RELEASE_ID_GREEN: props.green.release,
      POOL_HEALTHCHECK: props.poolHealthcheck ?? '',
    };
    userData.addCommands(
      "cat > /etc/bluegreen/env <<'ENV'",
      // Values are validated at synth to hold no quotes, so single quotes keep spaces intact.
      ...Object.entries(env).map(([k, v]) => `export ${k}='${v}'`),
      'ENV',
      'bash /opt/bluegreen/userdata/bootstrap.sh',
    );

    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      instanceType: new ec2.InstanceType(instanceType),
      machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: cpuTypeFor(instanceType) }),
      securityGroup: this.securityGroup,
      role: this.role,
      userData,
      // A change to any host file replaces the host: it boots from scratch with the new files.
      userDataCausesReplacement: true,
      requireImdsv2: true,
      detailedMonitoring: true,
      associatePublicIpAddress: true,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeGiB ?? 20, {
            encrypted: true,
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            deleteOnTermination: true,
          }),
        },
      ],
      resourceSignalTimeout: props.bootstrapTimeout ?? Duration.minutes(20),
    });
    userData.addSignalOnExitCommand(this.instance);
    Tags.of(this.instance).add(STAGE_TAG_KEY, stage);
    Tags.of(this.instance).add('Name', `bluegreen-${stage}`);

    // A fixed address: the public URL survives host replacement.
    this.address = new ec2.CfnEIP(this, 'Address', { domain: 'vpc', tags: [{ key: 'Name', value: `bluegreen-${stage}` }] });
    new ec2.CfnEIPAssociation(this, 'AddressAssociation', { allocationId: this.address.attrAllocationId, instanceId: this.instance.instanceId });
    this.publicUrl = `http://${this.address.ref}:${HOST_PORTS.public}`;

    const ack = (id: string, reason: string) => Validations.of(this.role).acknowledge({ id: `AwsSolutions::${id}`, reason });
    ack(
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      'AWS-maintained minimum for the SSM agent (Session Manager instead of SSH, Run Command for pool switches); AWS keeps it in step with the agent.',
    );
    ack(
      'AwsSolutions-IAM5[Resource::*]',
      `cloudwatch:PutMetricData has no resource-level permissions; the statement is limited to the ${props.metricsNamespace} namespace by condition.`,
    );
    for (const action of ['s3:GetBucket*', 's3:GetObject*', 's3:List*']) {
      ack(`AwsSolutions-IAM5[Action::${action}]`, 'Generated by Asset.grantRead: read-only access to the host files asset objects in the CDK bootstrap bucket.');
    }
    ack(
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]',
      'Generated by Asset.grantRead for the host files assets: the CDK bootstrap asset bucket, read-only.',
    );

    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions-EC29',
      reason: 'The host is stateless and CloudFormation replaces it whenever its files change (userDataCausesReplacement); termination protection would block those replacements and cdk destroy.',
    });
  }
}
