// Fleet mode (context hosts >= 2): the same host, N times, behind an Application Load Balancer.
// A launch template with the single host's user data, files, role and security group logic
// (buildHostParts), an Auto Scaling group across the VPC's two zones, an internet-facing ALB
// (from publicCidr) forwarding to the hosts' nginx port, HTTPS when the context gives a certificate
// or a domain, the ALB's access logs, the two alarms that say the fleet is short of hosts and the
// fleet's dashboard row.
//
// How a host joins (issue 10, item 3): it boots, bootstrap.sh brings up the stage's current state
// from SSM (active pool, each pool's image and release) and checks GET /version through nginx;
// if a release is in progress (the release ledger's head says so) it waits until the release is over
// (bluegreen-join, heartbeating the lifecycle action: a scale-out never brings up a half-released
// host), bluegreen-apply reconciles once more (the release's outcome, a flip during the boot); only
// then does the user data complete the launch lifecycle hook, so the group puts it InService and
// registers it with the target group; it then waits for the target group to call it healthy and
// only then sends the CloudFormation signal. A host that fails its bootstrap never serves: its
// lifecycle action is abandoned (the group terminates it) and its signal says failure.
//
// Rolling host changes (item 5): a change to the launch template (the host files' asset hashes in
// the user data, a pinned AMI, the instance type) rolls through the group by CloudFormation's
// AutoScalingRollingUpdate, one host at a time, keeping minHealthyPercentage of the hosts in
// service and waiting on each new host's signal (DECISIONS.md "Fleet mode: the stack").
import { Annotations, ArnFormat, Aws, Duration, Stack, Tags, Validations } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import * as path from 'node:path';
import { BOOTSTRAPPING_MARKER } from '../core/host-command';
import { PIPELINE_ALARMS, PipelineAlarm, pipelineAlarmName, runbookLink } from '../core/alarm-notification';
import { FleetConfig, FleetHttps, minInstancesInService } from './stack-config';
import { ledgerHeadKeyJson, LEDGER_HEAD_KEY } from '../core/release-ledger';
import { ReleaseLedger } from './release-ledger';
import { buildHostParts, HostParts, hostBlockDevices, hostMachineImage, PoolHostProps } from './pool-host';
import { PORTS } from '../core/ports';
import { STAGE_TAG_KEY } from '../core/names';
import { LoadBalancerLogs } from './load-balancer-logs';
import {
  loadBalancerIdleSeconds,
  longestProxyWaitSeconds,
  ProxySettings,
  WAIT_MARGIN_SECONDS,
} from '../core/proxy-settings';

/** The launch lifecycle hook the user data completes once bootstrap.sh has succeeded. */
export const BOOTSTRAP_HOOK_NAME = 'bluegreen-bootstrap';
/** The health check path through nginx: 200 while nginx and at least one pool answer. */
export const FLEET_HEALTH_CHECK_PATH = '/version';
/** Below desired this long = a replacement is failing, not just booting (a bootstrap takes minutes). */
export const BELOW_DESIRED_MINUTES = 15;

/** The role Amazon EC2 Auto Scaling launches a group's instances with (the group names no other). */
export const AUTOSCALING_SERVICE_LINKED_ROLE =
  'aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling';

/**
 * What a customer managed key's policy must grant the Auto Scaling service-linked role for the group
 * to launch hosts whose volumes it encrypts (EC2 Auto Scaling User Guide, "Required AWS KMS key policy
 * for use with encrypted volumes"): using the key, and grants for the volumes it attaches. Without
 * them every launch fails (Client.InternalError), and the deploy with it.
 */
export function autoScalingKeyPolicyStatements(roleArn: string) {
  const principal = { AWS: roleArn };
  return [
    {
      Sid: 'Allow service-linked role use of the customer managed key',
      Effect: 'Allow',
      Principal: principal,
      Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey'],
      Resource: '*',
    },
    {
      Sid: 'Allow attachment of persistent resources',
      Effect: 'Allow',
      Principal: principal,
      Action: ['kms:CreateGrant'],
      Resource: '*',
      Condition: { Bool: { 'kms:GrantIsForAWSResource': true } },
    },
  ];
}

/** The Auto Scaling group's name: fixed, so the user data can complete its lifecycle action (a Ref would be circular). */
export function fleetGroupName(stage: string): string {
  return `bluegreen-${stage}-hosts`;
}

/**
 * The group's ARN as IAM evaluates the lifecycle actions on it, any generated id:
 * `arn:…:autoScalingGroup:<id>:autoScalingGroupName/<name>` (a colon after autoScalingGroup, as in
 * the Service Authorization Reference; with a slash there the role is denied on a real account and every
 * fleet's first deploy rolls back). The id is unknown until the group exists, and a Ref would be
 * circular (the launch template's user data names the group).
 */
export function fleetGroupArnPattern(stack: Stack, groupName: string): string {
  return stack.formatArn({
    service: 'autoscaling',
    resource: 'autoScalingGroup',
    resourceName: `*:autoScalingGroupName/${groupName}`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/**
 * An instance refresh started by hand (a new Amazon Linux AMI, which EC2 resolves at launch, or
 * recycling every host): the same pace as the rolling update, one extra host at a time.
 */
export function instanceRefreshPreferences(fleet: Pick<FleetConfig, 'desired' | 'minHealthyPercentage'>) {
  return {
    MinHealthyPercentage: fleet.minHealthyPercentage,
    // One host above desired: 100 + the share one host is of the group (what AWS allows: at most 200, at most 100 above the minimum).
    MaxHealthyPercentage: Math.min(200, fleet.minHealthyPercentage + Math.ceil(100 / fleet.desired)),
    InstanceWarmup: 60,
    SkipMatching: false,
  };
}

export interface FleetHostsProps extends Omit<PoolHostProps, 'subnets'> {
  readonly subnets: ec2.SubnetSelection;
  readonly fleet: FleetConfig;
  /** The stage's release ledger: a joining host reads its head (is a release in progress?). */
  readonly ledger: ReleaseLedger;
  /** nginx's timeouts: the ALB's idle timeout and the deregistration delay must outlast its longest wait. */
  readonly proxy: ProxySettings;
  /** Days the load balancer's access logs are kept (the stage's log retention). */
  readonly logRetentionDays: number;
  /** RUNBOOK.md as the team reads it (the alarm descriptions link its sections). */
  readonly runbookUrl?: string;
}

export class FleetHosts extends Construct {
  public readonly group: autoscaling.AutoScalingGroup;
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  public readonly targetGroup: elbv2.ApplicationTargetGroup;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly role: iam.Role;
  /** What clients use: https://<domainName> with HTTPS, else http://<the ALB's DNS name>. */
  public readonly publicUrl: string;
  /** The load balancer's access logs (S3). */
  public readonly accessLogs: LoadBalancerLogs;
  public readonly unhealthyHostsAlarm: cloudwatch.Alarm;
  /** With ebsKmsKeyArn: the statements that key's policy must hold (autoScalingKeyPolicyStatements). */
  public readonly volumeKeyPolicyStatements?: ReturnType<typeof autoScalingKeyPolicyStatements>;
  public readonly belowDesiredAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: FleetHostsProps) {
    super(scope, id);
    const { stage } = props;
    const groupName = fleetGroupName(stage);

    const lbSecurityGroup = this.createLoadBalancerSecurityGroup(props);
    const parts = buildHostParts(this, {
      ...props,
      publicPeer: lbSecurityGroup,
      securityGroupDescription: `bluegreen ${stage} fleet host: ${PORTS.nginx} from the load balancer only, ${PORTS.blue}-${PORTS.green} from operators; no SSH`,
    });
    this.prepareJoin(parts, props.ledger);
    this.securityGroup = parts.securityGroup;
    this.role = parts.role;
    lbSecurityGroup.addEgressRule(this.securityGroup, ec2.Port.tcp(PORTS.nginx), 'to the hosts (nginx)');

    // The target group ARN is known before the group: the join steps wait for its verdict.
    this.targetGroup = this.createTargetGroup(props);
    const userData = parts.renderUserData();
    this.addJoinSteps(userData, groupName);
    this.grantJoin(groupName);

    this.launchTemplate = this.createLaunchTemplate(props, userData);
    if (props.fleet.ebsKmsKeyArn) this.volumeKeyPolicyStatements = this.warnOfVolumeKeyPolicy(props.fleet.ebsKmsKeyArn);
    this.group = this.createGroup(props, groupName);
    // The exit trap signals the group after the join steps' abandon on failure: the group waits on it.
    userData.addSignalOnExitCommand(this.group);

    this.loadBalancer = this.createLoadBalancer(props, lbSecurityGroup);
    this.publicUrl = this.listen(props.fleet.https, stage);
    this.accessLogs = new LoadBalancerLogs(this, 'AccessLogs', {
      stage,
      loadBalancer: this.loadBalancer,
      retentionDays: props.logRetentionDays,
    });

    this.unhealthyHostsAlarm = this.createUnhealthyHostsAlarm(stage, props.runbookUrl);
    this.belowDesiredAlarm = this.createBelowDesiredAlarm(stage, groupName, props.runbookUrl);
    this.acknowledgeGroup();
  }

  /** The load balancer's own group: the only way in from publicCidr (listeners are not "open"). */
  private createLoadBalancerSecurityGroup(props: FleetHostsProps): ec2.SecurityGroup {
    const { stage, fleet } = props;
    const lbSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: props.vpc,
      description: `bluegreen ${stage} load balancer: ${fleet.https.kind === 'none' ? '80' : '80 and 443'} from the public CIDR`,
      allowAllOutbound: false,
    });
    const ports = fleet.https.kind === 'none' ? [80] : [80, 443];
    for (const port of ports)
      lbSecurityGroup.addIngressRule(
        ec2.Peer.ipv4(props.publicCidr),
        ec2.Port.tcp(port),
        `public entry (${port === 443 ? 'HTTPS' : 'HTTP'})`,
      );
    if (props.publicCidr.endsWith('/0')) {
      Validations.of(lbSecurityGroup).acknowledge({
        id: 'AwsSolutions-EC23',
        reason: `The load balancer is the service's public entry (${ports.join(' and ')}), meant to be reachable from anywhere (context publicCidr); the hosts take ${PORTS.nginx} from this group only.`,
      });
    }
    return lbSecurityGroup;
  }

  /** The hosts' nginx behind the load balancer, checked through GET /version. */
  private createTargetGroup(props: FleetHostsProps): elbv2.ApplicationTargetGroup {
    return new elbv2.ApplicationTargetGroup(this, 'Targets', {
      vpc: props.vpc,
      port: PORTS.nginx,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.INSTANCE,
      healthCheck: {
        path: FLEET_HEALTH_CHECK_PATH,
        port: 'traffic-port',
        healthyHttpCodes: '200',
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
      // A leaving host finishes its requests first: as long as nginx may wait on a pool, at least 30 s.
      deregistrationDelay: Duration.seconds(Math.max(30, longestProxyWaitSeconds(props.proxy) + WAIT_MARGIN_SECONDS)),
    });
  }

  // How a host joins (see the top of this file): what it gets before its bootstrap, the user data after
  // bootstrap.sh, what its role may do for it.

  /** What a join needs on the host before its user data is rendered: the ledger's head, fleet/, its settings, the bootstrapping marker. */
  private prepareJoin(parts: HostParts, ledger: ReleaseLedger): void {
    // A new host joins between releases (fleet/bluegreen-join.sh): it reads the ledger's head, the
    // release in progress or last finished (`aws dynamodb get-item --table-name "$LEDGER_TABLE"
    // --key "$LEDGER_HEAD_KEY" --consistent-read`), by the CLI's rule, which ships beside it as
    // fleet/record-verdict.jq (generated from core/release-record.ts); bluegreen-apply reads the same
    // head when a new host boots a pool from the record. What the head holds (images, releases, env
    // values) is the pool state the host already reads.
    this.allowReadLedgerHead(parts.role, ledger);
    // fleet/bluegreen-join.sh and its rule, in their own asset: the single host's files stay as they are.
    parts.addFiles('fleet');
    // The key is JSON (quotes, braces): HostParts writes each value single-quoted and refuses one
    // that holds a single quote or a line break, so `. /etc/bluegreen/env` gives it back verbatim.
    parts.addEnv({ LEDGER_TABLE: ledger.tableName, LEDGER_HEAD_KEY: ledgerHeadKeyJson() });
    // Until bootstrap.sh has succeeded, Run Command's bluegreen-apply answers `step=join` here
    // (core/host-command.ts): a host launched during a release or flip does not fail it.
    parts.addBeforeBootstrap(`mkdir -p ${path.posix.dirname(BOOTSTRAPPING_MARKER)}`, `touch ${BOOTSTRAPPING_MARKER}`);
  }

  /**
   * GetItem on the stage's ledger, of the head alone: dynamodb:LeadingKeys (the partition key a
   * request names) must be the head's. Not the releases' history, no write, no Query or Scan, no
   * other table. A plain GetItem on a KMS-encrypted table: the aws/dynamodb key needs no grant.
   */
  private allowReadLedgerHead(role: iam.Role, ledger: ReleaseLedger): void {
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadLedgerHead',
        actions: ['dynamodb:GetItem'],
        resources: [ledger.tableArn],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [LEDGER_HEAD_KEY.pk] } },
      }),
    );
  }

  /**
   * Join only when ready: after bootstrap.sh, complete the launch hook (or abandon it at once when the
   * script failed), wait for the target group's verdict, then signal (the group's signal, added to the
   * exit trap after these steps, reports the exit code).
   *
   * Inline, not a script under fleet/: moving the steps would change the launch template's user data
   * (and the fleet/ asset's hash in it), and a changed launch template rolls through the group,
   * replacing every host of a fleet on upgrade.
   */
  private addJoinSteps(userData: ec2.UserData, groupName: string): void {
    const imds = (p: string) =>
      `curl -fsS -H "X-aws-ec2-metadata-token: $(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')" http://169.254.169.254/latest/meta-data/${p}`;
    const lifecycle = (result: string) =>
      `aws autoscaling complete-lifecycle-action --region ${Aws.REGION} --auto-scaling-group-name ${groupName} --lifecycle-hook-name ${BOOTSTRAP_HOOK_NAME} --instance-id "$(${imds('instance-id')})" --lifecycle-action-result ${result}`;
    userData.addOnExitCommands(`if [ "$exitCode" -ne 0 ]; then ${lifecycle('ABANDON')} || true; fi`);
    userData.addCommands(
      '# fleet: bootstrap.sh succeeded (the stage state is applied, GET /version answers through nginx).',
      '# From now on Run Command runs bluegreen-apply here (a release that reaches this host gates it like the others).',
      `rm -f ${BOOTSTRAPPING_MARKER}`,
      // Assigned first: a failed IMDS call inside an argument would not stop the script (set -e).
      `instance_id="$(${imds('instance-id')})"`,
      '# Never join during a release: wait until it is promoted, rolled back or failed (holding the lifecycle action).',
      `sh /opt/bluegreen/fleet/bluegreen-join.sh ${groupName} ${BOOTSTRAP_HOOK_NAME} "$instance_id"`,
      "# Reconcile with SSM as it is now: the release's outcome, or a flip during the boot, may not have reached this host.",
      '# A failed step here (say, an idle pool whose release failed) is no reason to refuse a host whose active pool answers.',
      '/usr/local/bin/bluegreen-apply || echo "bluegreen: bluegreen-apply before joining exited $?; joining (the timer retries)" >&2',
      '# A preview left open (a release deployed with --no-promote): a tester behind the balancer reaches this host too.',
      '/usr/local/bin/bluegreen-apply --preview || echo "bluegreen: bluegreen-apply --preview before joining exited $?; joining without the preview" >&2',
      '# ...then join the group',
      lifecycle('CONTINUE'),
      'for attempt in $(seq 1 90); do',
      `  state="$(aws elbv2 describe-target-health --region ${Aws.REGION} --target-group-arn ${this.targetGroup.targetGroupArn} --targets Id="$instance_id",Port=${PORTS.nginx} --query 'TargetHealthDescriptions[0].TargetHealth.State' --output text || true)"`,
      '  [ "$state" = healthy ] && break',
      '  sleep 10',
      'done',
      '[ "$state" = healthy ] || { echo "bluegreen: the target group never called this host healthy (last state: $state)" >&2; exit 1; }',
    );
  }

  /** What the host role may do to join: complete and hold its own launch, read its target's health. */
  private grantJoin(groupName: string): void {
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'CompleteOwnLaunch',
        // The heartbeat holds the launch while a release is in progress (bluegreen-join).
        actions: ['autoscaling:CompleteLifecycleAction', 'autoscaling:RecordLifecycleActionHeartbeat'],
        resources: [fleetGroupArnPattern(Stack.of(this), groupName)],
      }),
    );
    // No resource-level permission exists for DescribeTargetHealth (read-only).
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadOwnTargetHealth',
        actions: ['elasticloadbalancing:DescribeTargetHealth'],
        resources: ['*'],
      }),
    );
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/${groupName}]`,
      reason: `The * is the group's generated id in its ARN (unknown until it exists, and a Ref would be circular: the launch template names the group); the name pins it to this stage's group ${groupName}, and the only actions are completing a host's own launch and holding it with heartbeats while a release is in progress.`,
    });
  }

  /** The hosts' launch template: the single host's image, user data, role and metadata rule. */
  private createLaunchTemplate(props: FleetHostsProps, userData: ec2.UserData): ec2.LaunchTemplate {
    const instanceType = props.instanceType ?? 't3.small';
    const { ebsKmsKeyArn } = props.fleet;
    return new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType: new ec2.InstanceType(instanceType),
      machineImage: hostMachineImage(instanceType, props.amiId),
      userData,
      role: this.role,
      securityGroup: this.securityGroup,
      // The same instance metadata rule as the single host: IMDSv2 only, hop limit 1 (no
      // credentials for the pools' containers).
      httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
      httpPutResponseHopLimit: 1,
      httpEndpoint: true,
      detailedMonitoring: true,
      associatePublicIpAddress: true,
      blockDevices: hostBlockDevices(
        props.rootVolumeGiB,
        ebsKmsKeyArn ? kms.Key.fromKeyArn(this, 'VolumeKey', ebsKmsKeyArn) : undefined,
      ),
    });
  }

  /**
   * Nothing at synth or deploy can check another key's policy: say what it must hold, before the
   * deploy that would otherwise fail at its first launch. Returns the statements.
   */
  private warnOfVolumeKeyPolicy(ebsKmsKeyArn: string): ReturnType<typeof autoScalingKeyPolicyStatements> {
    const statements = autoScalingKeyPolicyStatements(
      Stack.of(this).formatArn({
        service: 'iam',
        region: '',
        resource: 'role',
        resourceName: AUTOSCALING_SERVICE_LINKED_ROLE,
      }),
    );
    Annotations.of(this.launchTemplate).addWarningV2(
      '@bluegreen/ebs-kms-key-policy',
      `The hosts' volumes are encrypted with ${ebsKmsKeyArn} and the Auto Scaling service-linked role launches them: that key's policy must allow arn:aws:iam::<this account>:role/${AUTOSCALING_SERVICE_LINKED_ROLE} kms:Encrypt, kms:Decrypt, kms:ReEncrypt*, kms:GenerateDataKey*, kms:DescribeKey and kms:CreateGrant with kms:GrantIsForAWSResource, or every launch fails. The statements: the EbsKeyPolicyStatements output, and README "Encrypted volumes with your own key"; add them before deploying.`,
    );
    return statements;
  }

  /**
   * The Auto Scaling group: the launch hook the join completes, the signals creation and rolling
   * updates wait for, the stage tag on every host, registered with the target group.
   */
  private createGroup(props: FleetHostsProps, groupName: string): autoscaling.AutoScalingGroup {
    const { stage, fleet } = props;
    const timeout = props.bootstrapTimeout ?? Duration.minutes(20);
    const group = new autoscaling.AutoScalingGroup(this, 'Group', {
      autoScalingGroupName: groupName,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      launchTemplate: this.launchTemplate,
      minCapacity: fleet.min,
      maxCapacity: fleet.max,
      desiredCapacity: fleet.desired,
      // EC2 and the target group's health check: a host nginx no longer answers on is replaced.
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: Duration.minutes(5),
      }),
      // Creation waits for every host's signal (sent after it is healthy in the target group).
      signals: autoscaling.Signals.waitForAll({ timeout }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: minInstancesInService(fleet),
        waitOnResourceSignals: true,
        pauseTime: timeout,
      }),
      groupMetrics: [
        new autoscaling.GroupMetrics(
          autoscaling.GroupMetric.IN_SERVICE_INSTANCES,
          autoscaling.GroupMetric.DESIRED_CAPACITY,
        ),
      ],
    });
    // In the group's own definition, so it holds for the very first hosts too (a separate
    // LifecycleHook resource would be created after them).
    (group.node.defaultChild as autoscaling.CfnAutoScalingGroup).lifecycleHookSpecificationList = [
      {
        lifecycleHookName: BOOTSTRAP_HOOK_NAME,
        lifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING',
        defaultResult: 'ABANDON',
        heartbeatTimeout: timeout.toSeconds(),
      },
    ];
    // Every host carries the stage tag from launch: Run Command and the CLI find the fleet by it.
    Tags.of(group).add(STAGE_TAG_KEY, stage, { applyToLaunchedInstances: true });
    Tags.of(group).add('Name', `bluegreen-${stage}`, { applyToLaunchedInstances: true });
    // ...and the launch template's own tags (instances and volumes), so the tag is there from the first second.
    Tags.of(this.launchTemplate).add(STAGE_TAG_KEY, stage);
    group.attachToApplicationTargetGroup(this.targetGroup);
    return group;
  }

  private createLoadBalancer(props: FleetHostsProps, securityGroup: ec2.SecurityGroup): elbv2.ApplicationLoadBalancer {
    return new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      internetFacing: true,
      securityGroup,
      dropInvalidHeaderFields: true,
      // Set explicitly (idle_timeout.timeout_seconds), from the stage's timeouts: longer than nginx's
      // longest wait on a pool, so a slow route is not cut by the ALB first, and shorter than nginx's
      // keepalive_timeout (routes.conf renders keepaliveSeconds from the same settings), so nginx never
      // closes a connection the ALB is about to reuse.
      idleTimeout: Duration.seconds(loadBalancerIdleSeconds(props.proxy)),
    });
  }

  private createUnhealthyHostsAlarm(stage: string, runbookUrl: string | undefined): cloudwatch.Alarm {
    return this.alarm('unhealthy-hosts', stage, runbookUrl, {
      description: `bluegreen ${stage}: at least one host fails the load balancer's health check (GET ${FLEET_HEALTH_CHECK_PATH} through nginx) for 2 minutes; the group replaces it, the others carry the traffic.`,
      metric: this.targetGroup.metrics.unhealthyHostCount({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
  }

  private createBelowDesiredAlarm(stage: string, groupName: string, runbookUrl: string | undefined): cloudwatch.Alarm {
    const groupMetric = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/AutoScaling',
        metricName,
        dimensionsMap: { AutoScalingGroupName: groupName },
        statistic: 'Minimum',
        period: Duration.minutes(1),
      });
    return this.alarm('hosts-below-desired', stage, runbookUrl, {
      description: `bluegreen ${stage}: fewer hosts in service than desired for ${BELOW_DESIRED_MINUTES} minutes: replacements are failing to join (bootstrap or health check), or the zone has no capacity.`,
      metric: new cloudwatch.MathExpression({
        expression: 'desired - inService',
        usingMetrics: {
          desired: groupMetric('GroupDesiredCapacity'),
          inService: groupMetric('GroupInServiceInstances'),
        },
        label: 'hosts missing',
        period: Duration.minutes(1),
      }),
      threshold: 1,
      evaluationPeriods: BELOW_DESIRED_MINUTES,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    });
  }

  /** cdk-nag's and CDK's findings on the group, each acknowledged with its reason. */
  private acknowledgeGroup(): void {
    Validations.of(this.group).acknowledge({
      id: 'Annotation::@aws-cdk/aws-autoscaling:desiredCapacitySet',
      reason:
        'The desired count is context hosts, on purpose: no scaling policy changes it, and a deploy with a new hosts value is how the fleet is resized.',
    });
    Validations.of(this.group).acknowledge({
      id: 'AwsSolutions-AS3',
      reason:
        'Scaling events reach on-call through the two fleet alarms (unhealthy hosts, in service below desired) on the stage alarm topic; a notification per launch would page for every rolling update.',
    });
  }

  /** The fleet's row on the stage dashboard: hosts in service against desired and target health; the load balancer's view of requests. */
  public dashboardWidgets(): cloudwatch.IWidget[] {
    const groupName = this.group.autoScalingGroupName;
    const group = (metricName: string, label: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/AutoScaling',
        metricName,
        dimensionsMap: { AutoScalingGroupName: groupName },
        statistic: 'Minimum',
        period: Duration.minutes(1),
        label,
      });
    const tg = this.targetGroup.metrics;
    const lb = this.loadBalancer.metrics;
    return [
      new cloudwatch.GraphWidget({
        title: 'Fleet hosts',
        left: [
          group('GroupDesiredCapacity', 'desired'),
          group('GroupInServiceInstances', 'in service'),
          tg.healthyHostCount({ period: Duration.minutes(1), statistic: 'Minimum', label: 'healthy targets' }),
          tg.unhealthyHostCount({ period: Duration.minutes(1), statistic: 'Maximum', label: 'unhealthy targets' }),
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Load balancer requests and errors',
        left: [
          lb.requestCount({ period: Duration.minutes(1), label: 'requests' }),
          lb.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, {
            period: Duration.minutes(1),
            label: '5xx from the ALB itself',
          }),
          lb.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
            period: Duration.minutes(1),
            label: '5xx from the hosts',
          }),
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Load balancer target response time',
        left: [
          lb.targetResponseTime({ period: Duration.minutes(1), statistic: 'p99', label: 'p99' }),
          lb.targetResponseTime({ period: Duration.minutes(1), statistic: 'p50', label: 'p50' }),
        ],
        width: 8,
      }),
    ];
  }

  /** The listeners: HTTPS on 443 and 80 redirecting to it, or HTTP on 80 alone. Returns the public URL. */
  private listen(https: FleetHttps, stage: string): string {
    if (https.kind === 'none') {
      this.loadBalancer.addListener('Http', {
        port: 80,
        protocol: elbv2.ApplicationProtocol.HTTP,
        open: false,
        defaultTargetGroups: [this.targetGroup],
      });
      return `http://${this.loadBalancer.loadBalancerDnsName}`;
    }
    const zone =
      https.hostedZoneId === undefined
        ? undefined
        : // fromHostedZoneAttributes, not fromLookup: synth stays offline.
          // The zone's name only resolves relative record names; ours are fully qualified (trailing dot).
          route53.HostedZone.fromHostedZoneAttributes(this, 'Zone', {
            hostedZoneId: https.hostedZoneId,
            zoneName: https.domainName,
          });
    const certificate =
      https.kind === 'certificate'
        ? acm.Certificate.fromCertificateArn(this, 'Certificate', https.certificateArn)
        : new acm.Certificate(this, 'Certificate', {
            domainName: https.domainName,
            validation: acm.CertificateValidation.fromDns(zone),
            certificateName: `bluegreen-${stage}`,
          });
    this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      open: false,
      certificates: [certificate],
      // TLS 1.3 and 1.2 with post-quantum hybrid key exchange: AWS's recommended policy for new listeners.
      sslPolicy: elbv2.SslPolicy.TLS13_12_PQ,
      defaultTargetGroups: [this.targetGroup],
    });
    this.loadBalancer.addListener('Http', {
      port: 80,
      protocol: elbv2.ApplicationProtocol.HTTP,
      open: false,
      defaultAction: elbv2.ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
    });
    if (zone) {
      const target = route53.RecordTarget.fromAlias(new targets.LoadBalancerTarget(this.loadBalancer));
      // A only: the load balancer is IPv4 (the stage's VPC has no IPv6 range), so an AAAA alias would answer nothing.
      new route53.ARecord(this, 'AliasA', { zone, recordName: `${https.domainName}.`, target });
    }
    return `https://${https.domainName}`;
  }

  private alarm(
    name: PipelineAlarm,
    stage: string,
    runbookUrl: string | undefined,
    p: { description: string } & Omit<cloudwatch.AlarmProps, 'alarmName' | 'alarmDescription'>,
  ): cloudwatch.Alarm {
    const { description, ...props } = p;
    return new cloudwatch.Alarm(this, name === 'unhealthy-hosts' ? 'UnhealthyHostsAlarm' : 'BelowDesiredAlarm', {
      ...props,
      alarmName: pipelineAlarmName(stage, name),
      alarmDescription: `${description} Runbook: ${runbookLink(runbookUrl ?? 'RUNBOOK.md', PIPELINE_ALARMS[name].anchor)}`,
      // No data = no hosts reporting yet (a new stack): not a breach; the signals gate creation.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
