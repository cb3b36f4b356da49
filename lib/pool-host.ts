// The EC2 host that runs the Compose set (nginx + blue + green): Amazon Linux 2023, IMDSv2 with a
// hop limit of 1 (no IMDS from containers), an encrypted gp3 root volume, no SSH (Session Manager
// only), a role limited to what the host does, a fixed Elastic IP, and the repo's nginx/, app/ and
// userdata/ delivered as assets (inline user data is capped at 16 KB).
//
// The host is replaced only when its own files change (the asset hashes in the user data). Nothing
// else reaches its properties: the AMI is resolved by EC2 at launch (or pinned by amiId), and the
// pools' images and releases live in SSM (PoolParameters), applied live by bluegreen-apply.
import * as path from 'node:path';
import { ArnFormat, Aws, Duration, Stack, Tags, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { parameterArn } from './parameter-arn';
import { ecrRepositoryName, hostReadParameterNames, parameterNames } from '../core/names';
import { hostArch } from '../core/image-platform';
import { DEFAULT_PROXY_SETTINGS, ProxySettings, proxySettingsEnv } from '../core/proxy-settings';
import { hostRetryEnv } from '../core/ssm-budget';
import { STAGE_TAG_KEY } from '../core/names';
import { PORTS } from '../core/ports';
import { allowPreviewRead } from './host-preview-access';

const REPO_ROOT = path.join(__dirname, '..');

/** The SSM actions that return parameter values: the host role is denied them on every parameter but its own. */
export const HOST_DENIED_PARAMETER_ACTIONS = [
  'ssm:GetParameter',
  'ssm:GetParameters',
  'ssm:GetParametersByPath',
  'ssm:GetParameterHistory',
];

/** Amazon Linux 2023's public SSM parameter for the instance type's architecture. */
export function al2023Parameter(instanceType: string): string {
  const arch = cpuTypeFor(instanceType) === ec2.AmazonLinuxCpuType.ARM_64 ? 'arm64' : 'x86_64';
  return `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-${arch}`;
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
  /**
   * An exact AMI id (one region). Changing it replaces the host.
   * @default Amazon Linux 2023 from its public SSM parameter, resolved by EC2 when the instance is launched
   */
  readonly amiId?: string;
  /** The stage's release image repository (named ecrRepositoryName(stage)): the host may pull from it, and from no other ECR repository. */
  readonly repository: ecr.IRepository;
  /** Pool health check command for images without node. @default the node one in docker-compose.yml */
  readonly poolHealthcheck?: string;
  readonly accessLogGroup: logs.ILogGroup;
  readonly errorLogGroup: logs.ILogGroup;
  /** The pools' stdout/stderr (Docker's awslogs driver, userdata/docker-compose.yml). */
  readonly appLogGroup: logs.ILogGroup;
  /** CloudWatch namespace for the host's CPU/memory/disk metrics. */
  readonly metricsNamespace: string;
  /**
   * How long CloudFormation waits for the bootstrap's success signal before failing the deploy.
   * @default Duration.minutes(20)
   */
  readonly bootstrapTimeout?: Duration;
  /** @default 20 GiB */
  readonly rootVolumeGiB?: number;
  /**
   * nginx's timeouts to the pools and the slow path prefixes, checked (parseProxySettings); the
   * host's render-upstream.sh renders them into routes.conf. Changing them replaces the host.
   * @default DEFAULT_PROXY_SETTINGS
   */
  readonly proxy?: ProxySettings;
}

/** Graviton instance families (a1, t4g, m7g, c7gn, ...) need the arm64 AMI (core/image-platform.ts: the images' platform too). */
export function cpuTypeFor(instanceType: string): ec2.AmazonLinuxCpuType {
  return hostArch(instanceType) === 'arm64' ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64;
}

export interface HostPartsProps extends Omit<
  PoolHostProps,
  'vpc' | 'subnets' | 'instanceType' | 'amiId' | 'bootstrapTimeout' | 'rootVolumeGiB' | 'publicCidr'
> {
  readonly vpc: ec2.IVpc;
  /** Who reaches the public entry (nginx, 8080): the public CIDR for the single host, the load balancer for a fleet. */
  readonly publicPeer: ec2.IPeer;
  /** The security group's description (it names who reaches the public entry). */
  readonly securityGroupDescription: string;
}

/** The repository folders every host gets (to /opt/bluegreen/<name>), in download order, with their construct ids. */
const HOST_FILES: ReadonlyArray<{ readonly name: string; readonly id: string }> = [
  { name: 'nginx', id: 'NginxFiles' },
  { name: 'app', id: 'AppFiles' },
  { name: 'userdata', id: 'HostFiles' },
];

/**
 * The one source of a host's security group, role, files and user data: the single host (PoolHost)
 * and the fleet's launch template (FleetHosts) both build theirs here, so a host is the same
 * machine in both modes. Construct ids are the single host's (its logical ids must not move).
 *
 * A kind of host that needs more says so with the methods of HostParts and its role, before it
 * renders the user data (a fleet host: its grant on the release ledger's head, its fleet/ files, its
 * join settings and its bootstrapping marker); what it runs after bootstrap.sh, it appends to the
 * rendered user data.
 */
export function buildHostParts(scope: Construct, props: HostPartsProps): HostParts {
  return new HostParts(scope, props);
}

/** What every host of a stage shares, single or fleet: its security group, role, files and boot script. */
export class HostParts {
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly role: iam.Role;
  private readonly scope: Construct;
  private readonly readOwnAssets: iam.PolicyStatement;
  private readonly files: Record<string, Asset> = {};
  private readonly env: Record<string, string>;
  private readonly beforeBootstrap: string[] = [];
  private rendered?: ec2.UserData;

  constructor(scope: Construct, props: HostPartsProps) {
    if (props.operatorCidr?.endsWith('/0')) {
      throw new Error(`PoolHost: operatorCidr must not be world-open, got "${props.operatorCidr}"`);
    }
    this.scope = scope;
    this.securityGroup = hostSecurityGroup(scope, props);
    const role = hostRole(scope, props);
    this.role = role;
    for (const { name, id } of HOST_FILES)
      this.files[name] = new Asset(scope, id, { path: path.join(REPO_ROOT, name) });
    // The host reads its asset objects (three; a fleet host four) and nothing else of the bootstrap bucket (which holds
    // every asset of every stack in the account and region): `aws s3 cp` of one object (the
    // download commands in the user data) needs s3:GetObject on that object only. (Asset.grantRead would give
    // s3:GetObject*, GetBucket* and List* on the whole bucket.)
    this.readOwnAssets = new iam.PolicyStatement({
      sid: 'ReadOwnAssets',
      actions: ['s3:GetObject'],
      resources: Object.values(this.files).map(assetObjectArn),
    });
    role.addToPolicy(this.readOwnAssets);
    this.env = hostEnv(props);
    acknowledgeHostRole(role, props.metricsNamespace, props.stage);
  }

  /**
   * One more repository folder delivered like nginx/, app/ and userdata/ (to /opt/bluegreen/<folder>):
   * a fleet host's fleet/. Kept out of userdata/ so that fleet-only files never change the single
   * host's assets (a changed asset replaces it).
   */
  public addFiles(folder: string): void {
    this.assertNotRendered('addFiles');
    if (this.files[folder]) throw new Error(`HostParts: ${folder}/ is already delivered`);
    const asset = new Asset(this.scope, `${folder[0].toUpperCase()}${folder.slice(1)}Files`, {
      path: path.join(REPO_ROOT, folder),
    });
    this.files[folder] = asset;
    this.readOwnAssets.addResources(assetObjectArn(asset));
  }

  /**
   * Lines for /etc/bluegreen/env beyond the common ones (a fleet host's join settings); none may
   * replace a common one, and each must be a line the file can hold (envFileLine).
   */
  public addEnv(env: Readonly<Record<string, string>>): void {
    this.assertNotRendered('addEnv');
    const taken = Object.keys(env).filter((key) => key in this.env);
    if (taken.length > 0) throw new Error(`HostParts: /etc/bluegreen/env already sets ${taken.join(', ')}`);
    for (const [key, value] of Object.entries(env)) envFileLine(key, value);
    Object.assign(this.env, env);
  }

  /** Commands right before bootstrap.sh (a fleet host marks itself bootstrapping). */
  public addBeforeBootstrap(...commands: string[]): void {
    this.assertNotRendered('addBeforeBootstrap');
    this.beforeBootstrap.push(...commands);
  }

  /**
   * The user data, rendered once: downloads the host files, writes /etc/bluegreen/env and runs
   * bootstrap.sh (which checks GET /version through nginx). The caller appends what follows it.
   */
  public renderUserData(): ec2.UserData {
    this.assertNotRendered('renderUserData');
    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      'set -euo pipefail',
      'dnf install -y -q aws-cfn-bootstrap unzip',
      'mkdir -p /opt/bluegreen /etc/bluegreen',
    );
    for (const [name, asset] of Object.entries(this.files)) {
      const zip = userData.addS3DownloadCommand({
        bucket: asset.bucket,
        bucketKey: asset.s3ObjectKey,
        localFile: `/tmp/bluegreen-${name}.zip`,
        region: Aws.REGION,
      });
      userData.addCommands(`rm -rf /opt/bluegreen/${name}`, `unzip -q -o ${zip} -d /opt/bluegreen/${name}`);
    }
    userData.addCommands(
      "cat > /etc/bluegreen/env <<'ENV'",
      ...Object.entries(this.env).map(([k, v]) => envFileLine(k, v)),
      'ENV',
      ...this.beforeBootstrap,
      'bash /opt/bluegreen/userdata/bootstrap.sh',
    );
    this.rendered = userData;
    return userData;
  }

  private assertNotRendered(step: string): void {
    if (this.rendered)
      throw new Error(
        `HostParts.${step}: the user data is already rendered (add files, env and commands before renderUserData)`,
      );
  }
}

/**
 * One line of /etc/bluegreen/env: `export KEY='value'`. The file is written by a quoted here-document
 * (no expansion) and read by `. /etc/bluegreen/env` (bootstrap.sh, bluegreen-apply, bluegreen-join):
 * inside single quotes sh takes every character as it is, spaces, `$`, backslashes, double quotes
 * and braces included (a JSON value such as the ledger's head key), except a single quote, which
 * ends the quoting, and a line break, which would split the line (and could end the here-document).
 * Those two are refused here, at synth. Values with CDK tokens (the region, a log group's name) are
 * checked as the tokens' placeholders: what they resolve to holds neither.
 * systemd's EnvironmentFile= parser takes a single-quoted value verbatim as well, but knows no
 * `export`: a unit reading this file that way would get none of its variables. None does; every
 * reader sources it with sh.
 */
export function envFileLine(key: string, value: string): string {
  if (!/^[A-Z_][A-Z0-9_]*$/.test(key))
    throw new Error(`HostParts: /etc/bluegreen/env: "${key}" is not a variable name (A-Z, 0-9, _)`);
  if (/['\n\r\0]/.test(value))
    throw new Error(
      `HostParts: /etc/bluegreen/env: the value of ${key} holds a single quote or a line break, which sh cannot take inside single quotes: ${JSON.stringify(value)}`,
    );
  return `export ${key}='${value}'`;
}

/** The host's security group: the public entry from publicPeer, the pools from operatorCidr, nothing else in. */
function hostSecurityGroup(scope: Construct, props: HostPartsProps): ec2.SecurityGroup {
  const securityGroup = new ec2.SecurityGroup(scope, 'SecurityGroup', {
    vpc: props.vpc,
    description: props.securityGroupDescription,
    // The host pulls packages and images and talks to SSM, Logs and CloudWatch over HTTPS.
    allowAllOutbound: true,
  });
  securityGroup.addIngressRule(props.publicPeer, ec2.Port.tcp(PORTS.nginx), 'public entry (nginx)');
  if (props.operatorCidr) {
    securityGroup.addIngressRule(
      ec2.Peer.ipv4(props.operatorCidr),
      ec2.Port.tcpRange(PORTS.blue, PORTS.green),
      'direct pool access for operators (blue 8081, green 8082)',
    );
  }
  return securityGroup;
}

function assetObjectArn(asset: Asset): string {
  return asset.bucket.arnForObjects(asset.s3ObjectKey);
}

/** The host role and what every host may do with it (its asset objects are granted with the files). */
function hostRole(scope: Construct, props: HostPartsProps): iam.Role {
  const role = new iam.Role(scope, 'Role', {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description: `bluegreen ${props.stage} host: Session Manager, its own log groups and metrics, the pool state parameters, its release repository, its own assets`,
    managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
  });
  const ownParameters = hostReadParameterNames(props.stage).map((name) => parameterArn(scope, name));
  // Exactly the pool state the agent reconciles (active pool, canary share, each pool's image,
  // release and env), no wildcard.
  const readPoolState = new iam.PolicyStatement({
    sid: 'ReadPoolState',
    actions: ['ssm:GetParameter', 'ssm:GetParameters'],
    resources: ownParameters,
  });
  role.addToPolicy(readPoolState);
  // ...and nothing else: AmazonSSMManagedInstanceCore allows ssm:GetParameter(s) on *, which would
  // let the host read (and, through the account's aws/ssm key, decrypt) the stage's Slack webhook,
  // the alert state, the release record, and every other parameter of the account, other stages'
  // included. An explicit Deny of every parameter but its own beats that Allow; NotResource keeps
  // it true for parameters added later. These are the four actions that return parameter values.
  // The stage's secrets (README "Secrets"): the agent fetches a pool's pinned versions when it
  // (re)creates the pool. Only this stage's path: another stage's secrets and the webhook stay denied.
  const secretsArn = parameterArn(scope, `${parameterNames(props.stage).secretsPath}*`);
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'ReadStageSecrets',
      actions: ['ssm:GetParameters'],
      resources: [secretsArn],
    }),
  );
  const denyOtherParameters = new iam.PolicyStatement({
    sid: 'DenyOtherParameters',
    effect: iam.Effect.DENY,
    actions: HOST_DENIED_PARAMETER_ACTIONS,
    notResources: [...ownParameters, secretsArn],
  });
  role.addToPolicy(denyOtherParameters);
  // The release's preview token, read only when the CLI asks (bluegreen-apply --preview).
  allowPreviewRead(role, { stage: props.stage, denyOtherParameters });
  // A SecureString is decrypted by KMS for SSM: only through SSM, and only for this stage's secrets
  // (SSM's encryption context names the parameter). Needed where the key is a customer managed key
  // whose policy defers to IAM; the account's aws/ssm key allows it through its own policy.
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'DecryptStageSecretsViaSsm',
      actions: ['kms:Decrypt'],
      resources: [Stack.of(scope).formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
      conditions: {
        StringEquals: { 'kms:ViaService': `ssm.${Aws.REGION}.amazonaws.com` },
        StringLike: { 'kms:EncryptionContext:PARAMETER_ARN': secretsArn },
      },
    }),
  );
  // Secrets Manager references: only secrets tagged for this stage (the operator tags them:
  // BluegreenStage=<stage>); a secret's name is free, its tag is the boundary.
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'ReadStageSecretsManagerSecrets',
      actions: ['secretsmanager:GetSecretValue'],
      resources: [
        Stack.of(scope).formatArn({
          service: 'secretsmanager',
          resource: 'secret',
          resourceName: '*',
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
      conditions: { StringEquals: { [`aws:ResourceTag/${STAGE_TAG_KEY}`]: props.stage } },
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'PullReleaseImages',
      actions: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
      resources: [props.repository.repositoryArn],
    }),
  );
  // The registry login (docker's ECR credential helper) has no resource-level permission.
  role.addToPolicy(
    new iam.PolicyStatement({ sid: 'EcrLogin', actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'ShipNginxLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
      resources: [props.accessLogGroup, props.errorLogGroup].map((g) => `${g.logGroupArn}`),
    }),
  );
  // Docker's awslogs driver (dockerd, with the instance role) makes its stream and writes to it;
  // the group exists (the stack made it, awslogs-create-group stays false). Both actions take a
  // log-stream ARN (Service Authorization Reference): the group's ARN `...:log-group:<name>:*`
  // covers its streams and nothing else.
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'ShipAppLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [props.appLogGroup.logGroupArn],
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'PublishHostMetrics',
      actions: ['cloudwatch:PutMetricData'],
      resources: ['*'],
      conditions: { StringEquals: { 'cloudwatch:namespace': props.metricsNamespace } },
    }),
  );
  return role;
}

/**
 * What /etc/bluegreen/env holds on every host. Only values fixed for the life of the stage: anything that
 * changed per deploy here would replace the host. Pool images/releases are read from SSM.
 */
function hostEnv(props: HostPartsProps): Record<string, string> {
  const { stage } = props;
  const params = parameterNames(stage);
  const registry = `${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}`;
  return {
    STAGE: stage,
    AWS_REGION: Aws.REGION,
    AWS_DEFAULT_REGION: Aws.REGION,
    ACCESS_LOG_GROUP: props.accessLogGroup.logGroupName,
    ERROR_LOG_GROUP: props.errorLogGroup.logGroupName,
    APP_LOG_GROUP: props.appLogGroup.logGroupName,
    METRICS_NAMESPACE: props.metricsNamespace,
    POOL_HEALTHCHECK: props.poolHealthcheck ?? '',
    ECR_REGISTRY: registry,
    ECR_REPOSITORY: `${registry}/${ecrRepositoryName(stage)}`,
    ACTIVE_POOL_PARAM: params.activePool,
    CANARY_PARAM: params.canaryPercent,
    BLUE_IMAGE_PARAM: params.pools.blue.image,
    BLUE_RELEASE_PARAM: params.pools.blue.release,
    BLUE_ENV_PARAM: params.pools.blue.env,
    GREEN_IMAGE_PARAM: params.pools.green.image,
    GREEN_RELEASE_PARAM: params.pools.green.release,
    GREEN_ENV_PARAM: params.pools.green.env,
    // Every value written, defaults included: `cat /etc/bluegreen/env` shows what nginx runs with.
    ...proxySettingsEnv(props.proxy ?? DEFAULT_PROXY_SETTINGS),
    // A throttled Parameter Store call (the account's budget, shared with every host and stage) is
    // retried with backoff by the aws CLI, not failed: bluegreen-apply and bluegreen-join source this file.
    ...hostRetryEnv(),
  };
}

/** cdk-nag's findings on the host role, each acknowledged with its reason. */
function acknowledgeHostRole(role: iam.Role, metricsNamespace: string, stage: string): void {
  const ack = (id: string, reason: string) => Validations.of(role).acknowledge({ id: `AwsSolutions::${id}`, reason });
  const arn = (service: string, resource: string) =>
    `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:${service}:<AWS::Region>:<AWS::AccountId>:${resource}]`;
  ack(
    arn('ssm', `parameter/bluegreen/${stage}/secrets/*`),
    `The stage's secrets (README "Secrets"): ssm:GetParameters on /bluegreen/${stage}/secrets/* only, a path that holds nothing else; a release pins which names and versions a pool gets, and names are added by operators (bluegreen secret set) without a stack deploy.`,
  );
  ack(
    arn('kms', 'key/*'),
    `kms:Decrypt for SecureString secrets: the key is the account's choice (aws/ssm or a customer managed key), so not known here; limited by condition to calls made through SSM (kms:ViaService) for parameters under /bluegreen/${stage}/secrets/ (kms:EncryptionContext:PARAMETER_ARN).`,
  );
  ack(
    arn('secretsmanager', 'secret:*'),
    `Secrets Manager references (bluegreen secret set --from-secrets-manager): secretsmanager:GetSecretValue on secrets tagged ${STAGE_TAG_KEY}=${stage} only (aws:ResourceTag condition); a secret's ARN ends in random characters, so the tag is the boundary.`,
  );
  ack(
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
    "AWS-maintained minimum for the SSM agent (Session Manager instead of SSH, Run Command for pool switches); AWS keeps it in step with the agent. Its ssm:GetParameter(s) on * is cut back to the host's own pool state by the DenyOtherParameters statement.",
  );
  ack(
    'AwsSolutions-IAM5[Resource::*]',
    `Actions without resource-level permissions: cloudwatch:PutMetricData, limited to the ${metricsNamespace} namespace by condition, and ecr:GetAuthorizationToken (the registry login); image pulls are limited to the stage's repository. In fleet mode also elasticloadbalancing:DescribeTargetHealth (read-only: the host waits until its target is healthy before it signals).`,
  );
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
    const parts = buildHostParts(this, {
      ...props,
      publicPeer: ec2.Peer.ipv4(props.publicCidr),
      securityGroupDescription: `bluegreen ${stage}: ${PORTS.nginx} from the public CIDR, ${PORTS.blue}-${PORTS.green} from operators; no SSH`,
    });
    this.securityGroup = parts.securityGroup;
    this.role = parts.role;
    const userData = parts.renderUserData();
    if (props.publicCidr.endsWith('/0')) this.acknowledgeWorldOpenEntry();

    this.instance = this.createInstance(props, userData);
    this.address = this.createAddress(stage);
    this.publicUrl = `http://${this.address.ref}:${PORTS.nginx}`;
    this.acknowledgeInstance(props.amiId);
  }

  private acknowledgeWorldOpenEntry(): void {
    Validations.of(this.securityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason: `Port ${PORTS.nginx} is the service's public entry and is meant to be reachable from anywhere (context publicCidr). The operator ports and every other port stay closed.`,
    });
  }

  /** The instance, tagged with its stage, signalling CloudFormation when its user data exits. */
  private createInstance(props: PoolHostProps, userData: ec2.UserData): ec2.Instance {
    const { stage } = props;
    const instanceType = props.instanceType ?? 't3.small';
    const instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      instanceType: new ec2.InstanceType(instanceType),
      machineImage: hostMachineImage(instanceType, props.amiId),
      securityGroup: this.securityGroup,
      role: this.role,
      userData,
      // A change to any host file replaces the host: it boots from scratch with the new files.
      userDataCausesReplacement: true,
      // IMDSv2 only, and a PUT response hop limit of 1: the token answer cannot cross the extra hop
      // into a container's network namespace, so a pool image cannot take the host role's
      // credentials. The host's own scripts call IMDS from the host itself. (The metadata props put
      // MetadataOptions on the instance; requireImdsv2 cannot set the hop limit.)
      httpTokens: ec2.HttpTokens.REQUIRED,
      httpPutResponseHopLimit: 1,
      detailedMonitoring: true,
      associatePublicIpAddress: true,
      blockDevices: hostBlockDevices(props.rootVolumeGiB),
      resourceSignalTimeout: props.bootstrapTimeout ?? Duration.minutes(20),
    });
    userData.addSignalOnExitCommand(instance);
    Tags.of(instance).add(STAGE_TAG_KEY, stage);
    Tags.of(instance).add('Name', `bluegreen-${stage}`);
    return instance;
  }

  /**
   * A fixed address: the public URL survives host replacement. Attached by the EIP's own
   * InstanceId (an in-place update that moves it to the new host), not by a separate
   * EIPAssociation: on a replacement CloudFormation would delete the old association in cleanup,
   * after the address had moved, and could detach it from the new host.
   */
  private createAddress(stage: string): ec2.CfnEIP {
    return new ec2.CfnEIP(this, 'Address', {
      domain: 'vpc',
      instanceId: this.instance.instanceId,
      tags: [{ key: 'Name', value: `bluegreen-${stage}` }],
    });
  }

  /** cfn-lint's and cdk-nag's findings on the instance, each acknowledged with its reason. */
  private acknowledgeInstance(amiId: string | undefined): void {
    if (!amiId) {
      // cfn-lint's AMI id format check predates EC2's launch-time resolution of public SSM parameters.
      const reason =
        'ImageId is resolve:ssm:<public AL2023 parameter>, which EC2 RunInstances resolves when it launches the host (MachineImage.resolveSsmParameterAtLaunch), so a deploy never changes ImageId; the format check only knows ami-... ids.';
      Validations.of(this.instance).acknowledge({ id: 'CloudFormation-Validate::E1152', reason });
      (this.instance.node.defaultChild as ec2.CfnInstance).addMetadata('cfn-lint', {
        config: { ignore_checks: ['E1152'] },
      });
    }
    if (amiId) {
      Validations.of(this.instance).acknowledge({
        id: 'CloudFormation-Validate::W9010',
        reason:
          'An exact AMI id on purpose (context amiId): the host must not change image behind the operator; moving to a new AMI is a deliberate context change that replaces the host.',
      });
    }
    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions-EC29',
      reason:
        'The host is stateless and CloudFormation replaces it whenever its files change (userDataCausesReplacement); termination protection would block those replacements and cdk destroy.',
    });
  }
}

/** The host's image: Amazon Linux 2023 resolved by EC2 at launch, or the pinned amiId. */
export function hostMachineImage(instanceType: string, amiId?: string): ec2.IMachineImage {
  return amiId ? pinnedImage(amiId) : ec2.MachineImage.resolveSsmParameterAtLaunch(al2023Parameter(instanceType));
}

/**
 * The host's root volume: encrypted gp3, gone with the host (it is stateless). Encrypted with `kmsKey`
 * when given, else with the account's default EBS key for the region.
 */
export function hostBlockDevices(rootVolumeGiB = 20, kmsKey?: kms.IKey): ec2.BlockDevice[] {
  return [
    {
      deviceName: '/dev/xvda',
      volume: ec2.BlockDeviceVolume.ebs(rootVolumeGiB, {
        encrypted: true,
        ...(kmsKey ? { kmsKey } : {}),
        volumeType: ec2.EbsDeviceVolumeType.GP3,
        deleteOnTermination: true,
      }),
    },
  ];
}

/** An exact AMI: the same image on every deploy until the operator changes it. */
function pinnedImage(amiId: string): ec2.IMachineImage {
  return {
    getImage: () => ({ imageId: amiId, osType: ec2.OperatingSystemType.LINUX, userData: ec2.UserData.forLinux() }),
  };
}
