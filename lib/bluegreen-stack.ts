// One stage of bluegreen: the host and its network, the SSM-held pool state (active pool, canary,
// each pool's image/release/env) and the path that applies it, the release ledger (DynamoDB), the
// stage's ECR repository, the log groups, alerts, and the outputs an operator needs.
import { CfnOutput, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic';
import { Alerting } from './alerting';
import { SlackActions } from './slack-actions';
import { BlueGreenConfig, FleetConfig, hostsParameterValue } from './stack-config';
import { FleetHosts, FleetHostsProps, instanceRefreshPreferences } from './fleet-hosts';
import { HostLogGroups } from './host-log-groups';
import { LogRotationAlarm } from './log-rotation-alarm';
import { HostNetwork } from './host-network';
import { Operations } from './operations';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { PoolHost } from './pool-host';
import { STAGE_TAG_KEY } from '../core/names';
import { PoolParameters } from './pool-parameters';
import { PoolSwitch } from './pool-switch';
import { hostApplyCommand, NO_DEPLOY } from '../core/host-command';
import { ReleaseLedger } from './release-ledger';
import { ReleaseRepository } from './release-repository';
import { ReleaseRole } from './release-role';
import { imagePlatform } from '../core/image-platform';

export interface BlueGreenStackProps extends StackProps {
  readonly config: BlueGreenConfig;
}

/** What a host is made of, the single host's and a fleet's alike (a fleet adds its own settings). */
type HostProps = Omit<FleetHostsProps, 'fleet' | 'ledger' | 'runbookUrl' | 'logRetentionDays'>;

export function stackName(stage: string): string {
  return `BlueGreen-${stage}`;
}

export class BlueGreenStack extends Stack {
  /** The single host (context hosts=1); undefined in fleet mode. */
  public readonly host?: PoolHost;
  /** The fleet (context hosts >= 2); undefined in single-host mode. */
  public readonly fleet?: FleetHosts;
  public readonly parameters: PoolParameters;
  public readonly logGroups: HostLogGroups;
  public readonly poolSwitch: PoolSwitch;
  public readonly alerting: Alerting;
  /** Slack's release buttons (context slackActions); undefined when off. */
  public readonly slackActions?: SlackActions;
  public readonly alarmTopic: AlarmTopic;
  public readonly logRotationAlarm: LogRotationAlarm;
  public readonly operations: Operations;
  public readonly releases: ReleaseRepository;
  /** The release ledger (every release, its head and events): single host and fleet alike. */
  public readonly ledger: ReleaseLedger;
  /** The operators' managed policy, and the GitHub Actions release role (context githubRepo). */
  public readonly releaseRole: ReleaseRole;

  constructor(scope: Construct, id: string, props: BlueGreenStackProps) {
    super(scope, id, props);
    const { config } = props;
    const network = new HostNetwork(this, 'Network', { vpc: config.vpc, flowLogRetention: config.logRetentionDays });
    this.logGroups = new HostLogGroups(this, 'Logs', { stage: config.stage, retention: config.logRetentionDays });
    this.parameters = this.createParameters(config);
    this.ledger = new ReleaseLedger(this, 'Ledger', { stage: config.stage, historyDays: config.releaseHistoryDays });
    this.releases = new ReleaseRepository(this, 'Releases', {
      stage: config.stage,
      keepImages: config.ecrKeepImages,
      imagePlatform: imagePlatform(config.instanceType),
    });

    const hostMetricsNamespace = `Bluegreen/${config.stage}/Host`;
    const hostProps = this.hostProps(config, network, hostMetricsNamespace);
    let publicUrl: string;
    if (config.fleet) {
      this.fleet = this.createFleet(config, config.fleet, hostProps);
      publicUrl = this.fleet.publicUrl;
    } else {
      this.host = this.createHost(config, hostProps);
      publicUrl = this.host.publicUrl;
    }
    this.poolSwitch = this.createPoolSwitch(config);

    this.alerting = this.createAlerting(config);
    if (config.slackActions)
      this.slackActions = new SlackActions(this, 'SlackActions', {
        stage: config.stage,
        ledger: this.ledger,
        logRetention: config.logRetentionDays,
      });
    this.logRotationAlarm = this.createLogRotationAlarm(config, hostMetricsNamespace);
    const pipelineAlarms = this.pipelineAlarms();
    this.alarmTopic = this.createAlarmTopic(config, pipelineAlarms);
    this.operations = this.createOperations(config, hostMetricsNamespace, pipelineAlarms);

    this.publishPublicUrl(config.stage, publicUrl);
    if (this.host) this.publishHost(config.stage, this.host, publicUrl);
    if (this.fleet && config.fleet) this.publishFleet(config.stage, config.fleet, this.fleet, publicUrl);
    this.addOperatorOutputs(config.stage);
    this.releaseRole = new ReleaseRole(this, 'Operators', { stage: config.stage, github: config.github });
    this.publishReleaseRole(this.releaseRole);
  }

  private createParameters(config: BlueGreenConfig): PoolParameters {
    return new PoolParameters(this, 'Parameters', {
      stage: config.stage,
      initialActivePool: config.initialActivePool,
      blue: { image: config.blueImage, release: config.releaseBlue },
      green: { image: config.greenImage, release: config.releaseGreen },
      logRetention: config.logRetentionDays,
    });
  }

  private hostProps(config: BlueGreenConfig, network: HostNetwork, hostMetricsNamespace: string): HostProps {
    return {
      stage: config.stage,
      vpc: network.vpc,
      subnets: network.subnets,
      instanceType: config.instanceType,
      publicCidr: config.publicCidr,
      operatorCidr: config.operatorCidr,
      amiId: config.amiId,
      repository: this.releases.repository,
      poolHealthcheck: config.poolHealthcheck,
      proxy: config.proxy,
      accessLogGroup: this.logGroups.access,
      errorLogGroup: this.logGroups.error,
      appLogGroup: this.logGroups.app,
      metricsNamespace: hostMetricsNamespace,
    };
  }

  private createFleet(config: BlueGreenConfig, fleetConfig: FleetConfig, hostProps: HostProps): FleetHosts {
    const fleet = new FleetHosts(this, 'Fleet', {
      ...hostProps,
      fleet: fleetConfig,
      ledger: this.ledger,
      runbookUrl: config.alerts.runbookUrl,
      logRetentionDays: config.logRetentionDays,
    });
    // Hosts read the pool state at boot: it must exist first.
    fleet.group.node.addDependency(this.parameters);
    return fleet;
  }

  private createHost(config: BlueGreenConfig, hostProps: HostProps): PoolHost {
    const host = new PoolHost(this, 'Host', hostProps);
    // The host reads the pool state at boot: it must exist first.
    host.instance.node.addDependency(this.parameters);
    if (!config.vpc.create) {
      Validations.of(host.instance).acknowledge({
        id: 'CloudFormation-Validate::W3010',
        reason:
          'With an existing VPC the host goes in the subnet the operator named, so its AZ is the one given in context availabilityZones.',
      });
    }
    return host;
  }

  private createPoolSwitch(config: BlueGreenConfig): PoolSwitch {
    return new PoolSwitch(this, 'PoolSwitch', {
      stage: config.stage,
      // Not the six pool parameters: the release CLI writes them and runs bluegreen-apply itself (see PoolSwitch).
      parameterNames: [this.parameters.names.activePool, this.parameters.names.canaryPercent],
      hostTagKey: STAGE_TAG_KEY,
      // A fleet launches hosts while it serves: one still booting answers the join step (core/host-command.ts).
      // --no-deploy: a flip or a canary share reaches every host at once, and must not deploy the idle
      // pool's new release there ahead of the release's own paced Run Command (the canary share is
      // written when a release starts). The single host keeps the plain command (one host has no pace to keep).
      ...(config.fleet ? { command: hostApplyCommand([NO_DEPLOY]) } : {}),
    });
  }

  private createAlerting(config: BlueGreenConfig): Alerting {
    return new Alerting(this, 'Alerts', {
      stage: config.stage,
      accessLogGroup: this.logGroups.access,
      settings: config.alerts,
      ledger: this.ledger,
      logRetention: config.logRetentionDays,
      fleet: config.fleet !== undefined,
      slackActions: config.slackActions,
    });
  }

  /** A failed log rotation on the host (nginx did not reopen its logs): found in the error log group. */
  private createLogRotationAlarm(config: BlueGreenConfig, hostMetricsNamespace: string): LogRotationAlarm {
    return new LogRotationAlarm(this, 'LogRotation', {
      stage: config.stage,
      errorLogGroup: this.logGroups.error,
      metricsNamespace: hostMetricsNamespace,
      runbookUrl: config.alerts.runbookUrl,
    });
  }

  /** The pipeline's own alarms. Fleet mode adds the fleet's two (single-host mode's list is unchanged). */
  private pipelineAlarms(): cloudwatch.Alarm[] {
    const alarms = [
      this.alerting.errorsAlarm,
      this.alerting.undeliveredAlarm,
      this.alerting.releaseHeldAlarm,
      this.alerting.releaseFrozenAlarm,
      this.logRotationAlarm.alarm,
    ];
    if (this.fleet) alarms.push(this.fleet.unhealthyHostsAlarm, this.fleet.belowDesiredAlarm);
    return alarms;
  }

  /** The pipeline's own alarms page by email (no Slack, no function needed) and in Slack. */
  private createAlarmTopic(config: BlueGreenConfig, pipelineAlarms: cloudwatch.Alarm[]): AlarmTopic {
    return new AlarmTopic(this, 'Alarms', {
      stage: config.stage,
      alarms: pipelineAlarms,
      emails: config.alarmEmails,
      slackFunction: this.alerting.function,
      deadLetterQueue: this.alerting.deadLetterQueue,
    });
  }

  private createOperations(
    config: BlueGreenConfig,
    hostMetricsNamespace: string,
    pipelineAlarms: cloudwatch.Alarm[],
  ): Operations {
    return new Operations(this, 'Operations', {
      stage: config.stage,
      accessLogGroup: this.logGroups.access,
      appLogGroup: this.logGroups.app,
      alertMetricsNamespace: this.alerting.metricsNamespace,
      hostMetricsNamespace,
      alarms: pipelineAlarms,
      fleetWidgets: this.fleet?.dashboardWidgets(),
    });
  }

  /** Where the operator CLI finds the deployment: no CloudFormation call needed to flip or check. */
  private publishPublicUrl(stage: string, publicUrl: string): void {
    new ssm.StringParameter(this, 'PublicUrlParameter', {
      parameterName: this.parameters.names.publicUrl,
      stringValue: publicUrl,
      description: `bluegreen ${stage}: the public entry`,
    });
  }

  /** The single host's id for the CLI, and its entry and id for the operator. */
  private publishHost(stage: string, host: PoolHost, publicUrl: string): void {
    new ssm.StringParameter(this, 'InstanceIdParameter', {
      parameterName: this.parameters.names.instanceId,
      stringValue: host.instance.instanceId,
      description: `bluegreen ${stage}: the host`,
    });
    new CfnOutput(this, 'PublicUrl', { value: publicUrl, description: 'The public entry (nginx)' });
    new CfnOutput(this, 'InstanceId', {
      value: host.instance.instanceId,
      description: 'The host (aws ssm start-session --target <id>)',
    });
  }

  /** Fleet mode and its size for the CLI; the load balancer, the group and what a key policy must hold for the operator. */
  private publishFleet(stage: string, fleetConfig: FleetConfig, fleet: FleetHosts, publicUrl: string): void {
    // No instance-id parameter: the hosts come and go; they are found by the tag BluegreenStage=<stage>.
    new ssm.StringParameter(this, 'HostsParameter', {
      parameterName: this.parameters.names.hosts,
      stringValue: hostsParameterValue(fleetConfig),
      description: `bluegreen ${stage}: fleet mode and its desired host count`,
    });
    new CfnOutput(this, 'PublicUrl', { value: publicUrl, description: 'The public entry (the load balancer)' });
    new CfnOutput(this, 'LoadBalancerDnsName', {
      value: fleet.loadBalancer.loadBalancerDnsName,
      description: 'Point your DNS name here (CNAME or alias) when the stack does not create the record',
    });
    new CfnOutput(this, 'AutoScalingGroup', {
      value: fleet.group.autoScalingGroupName,
      description:
        'The hosts (README "Rolling host changes": aws autoscaling describe-scaling-activities / start-instance-refresh)',
    });
    if (fleet.volumeKeyPolicyStatements) {
      new CfnOutput(this, 'EbsKeyPolicyStatements', {
        value: this.toJsonString(fleet.volumeKeyPolicyStatements),
        description: `Statements the key policy of ${fleetConfig.ebsKmsKeyArn} must hold before the deploy (the Auto Scaling service-linked role launches the hosts; without them every launch fails): aws kms get-key-policy --key-id <key> --policy-name default`,
      });
    }
    new CfnOutput(this, 'InstanceRefreshCommand', {
      value: `aws autoscaling start-instance-refresh --region ${this.region} --auto-scaling-group-name ${fleet.group.autoScalingGroupName} --preferences '${JSON.stringify(instanceRefreshPreferences(fleetConfig))}'`,
      description:
        'Replace every host with a fresh one (new Amazon Linux AMI, same files), one extra host at a time; cancel with aws autoscaling cancel-instance-refresh',
    });
  }

  /** What every stage tells the operator: its parameters, logs, queue, topic, dashboard and the flip. */
  private addOperatorOutputs(stage: string): void {
    const names = this.parameters.names;
    new CfnOutput(this, 'ActivePoolParameter', { value: names.activePool });
    new CfnOutput(this, 'MaintenanceParameter', { value: names.maintenance });
    new CfnOutput(this, 'ReleaseParameter', {
      value: names.release,
      description:
        'The release record as it was before the ledger (JSON): the CLI imports it into ReleaseLedgerTable once; nothing writes it any more',
    });
    new CfnOutput(this, 'ReleaseLedgerTable', {
      value: this.ledger.table.tableName,
      description:
        'The release ledger (DynamoDB): every release, its head and its events; npx bluegreen history reads it',
    });
    new CfnOutput(this, 'AccessLogGroup', { value: this.logGroups.access.logGroupName });
    new CfnOutput(this, 'SlackWebhookParameter', {
      value: names.slackWebhookUrl,
      description: `Create it once (JSON input: AWS CLI v1 would fetch an https:// --value): aws ssm put-parameter --cli-input-json '{"Name": "${names.slackWebhookUrl}", "Type": "SecureString", "Value": "<webhook URL>"}'`,
    });
    new CfnOutput(this, 'UndeliveredAlertsQueue', { value: this.alerting.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'AlarmTopic', {
      value: this.alarmTopic.topic.topicArn,
      description:
        'The alert pipeline alarms (ALARM and OK): email subscribers from alarmEmails and Slack; subscribe a pager here too',
    });
    new CfnOutput(this, 'Dashboard', {
      value: `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards/dashboard/bluegreen-${stage}`,
    });
    new CfnOutput(this, 'FlipCommand', {
      value: `aws ssm put-parameter --region ${this.region} --name ${names.activePool} --type String --overwrite --value green`,
      description: 'Flip the active pool (use blue to flip back); the host applies it within seconds',
    });
  }

  /** The operators' policy to attach, and what a GitHub Actions workflow is given (README "Release from CI"). */
  private publishReleaseRole(access: ReleaseRole): void {
    new CfnOutput(this, 'OperatorPolicyArn', {
      value: access.operatorPolicy.managedPolicyArn,
      description:
        'What npx bluegreen needs on this stage (README "Operators\' IAM"): attach it to your operators\' role, group or user',
    });
    if (access.role) {
      new CfnOutput(this, 'ReleaseRoleArn', {
        value: access.role.roleArn,
        description:
          'GitHub Actions: the role-to-assume of aws-actions/configure-aws-credentials (examples/github-actions/release.yml)',
      });
    }
    if (access.provider) {
      new CfnOutput(this, 'GithubOidcProviderArn', {
        value: access.provider.oidcProviderArn,
        description:
          "The account's OIDC provider for GitHub Actions (one per account): other stages take it as -c githubOidcProviderArn=<this>",
      });
    }
  }
}
