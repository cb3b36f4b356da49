// Fleet mode: what `-c hosts=3` synthesizes. One promise per test, against the real app
// (bin/app.ts) with cdk.json's context.
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BOOTSTRAP_HOOK_NAME, fleetGroupName } from '../../lib/fleet-hosts';
import { envFileLine } from '../../lib/pool-host';
import { ledgerHeadKeyJson } from '../../core/release-ledger';
import { alarmSlackMessage } from '../../core/slack-message';
import { hostReadParameterNames } from '../../core/names';
import { BOOTSTRAPPING_MARKER, hostApplyCommand, NO_DEPLOY } from '../../core/host-command';
import { limit } from '../../core/aws-limits';
import { NGINX_DIR } from '../../local/paths';
import { newApp, synthTemplate } from '../helpers/cdk';
import { buildApp } from '../../bin/app';
import { CfnTemplate, TemplateResolver } from '../helpers/iam';

const OPERATOR = '198.51.100.7/32';
const CERT = 'arn:aws:acm:eu-west-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab';
const ZONE = 'Z0123456789ABCDEFGHIJ';
const FLEET = { stage: 'prod', hosts: '3', operatorCidr: OPERATOR, publicCidr: '203.0.113.0/24' };

let template: Template;
beforeAll(() => {
  template = synthTemplate(FLEET);
});

const only = (t: Template, type: string) => {
  const found = Object.entries(t.findResources(type));
  expect(found).toHaveLength(1);
  return {
    id: found[0][0],
    resource: found[0][1] as { Properties: Record<string, any>; CreationPolicy?: any; UpdatePolicy?: any },
  };
};
/** The user data script as text, CloudFormation tokens rendered as {"Ref": ...}. */
const script = (userData: any): string =>
  (userData['Fn::Base64']['Fn::Join'][1] as unknown[])
    .map((p) => (typeof p === 'string' ? p : JSON.stringify(p)))
    .join('');
const ref = (id: string) => ({ Ref: id });

describe('mode', () => {
  test('no single host: no instance, no Elastic IP, no instance-id parameter; an Auto Scaling group and a load balancer instead', () => {
    template.resourceCountIs('AWS::EC2::Instance', 0);
    template.resourceCountIs('AWS::EC2::EIP', 0);
    template.resourcePropertiesCountIs('AWS::SSM::Parameter', { Name: '/bluegreen/prod/instance-id' }, 0);
    template.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 1);
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
  });

  test('the CLI finds the mode in /bluegreen/<stage>/hosts and the entry in public-url (http://<ALB DNS> without a certificate)', () => {
    template.hasResourceProperties('AWS::SSM::Parameter', { Name: '/bluegreen/prod/hosts', Value: 'fleet:3' });
    const lb = only(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer').id;
    template.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/bluegreen/prod/public-url',
      Value: { 'Fn::Join': ['', ['http://', { 'Fn::GetAtt': [lb, 'DNSName'] }]] },
    });
  });
});

describe('Auto Scaling group', () => {
  test('desired/min/max from context, across the two public subnets, named for the stage', () => {
    const { Properties: p } = only(template, 'AWS::AutoScaling::AutoScalingGroup').resource;
    expect(p).toMatchObject({
      AutoScalingGroupName: fleetGroupName('prod'),
      DesiredCapacity: '3',
      MinSize: '3',
      MaxSize: '4',
    });
    expect(p.VPCZoneIdentifier).toHaveLength(2);
  });

  test('health check type ELB with a grace period; the target group is attached', () => {
    const { Properties: p } = only(template, 'AWS::AutoScaling::AutoScalingGroup').resource;
    expect(p.HealthCheckType).toBe('ELB');
    expect(p.HealthCheckGracePeriod).toBe(300);
    expect(p.TargetGroupARNs).toEqual([ref(only(template, 'AWS::ElasticLoadBalancingV2::TargetGroup').id)]);
  });

  test('a host goes InService only after its bootstrap: a launch lifecycle hook in the group itself, abandoned by default', () => {
    const { Properties: p } = only(template, 'AWS::AutoScaling::AutoScalingGroup').resource;
    expect(p.LifecycleHookSpecificationList).toEqual([
      {
        LifecycleHookName: BOOTSTRAP_HOOK_NAME,
        LifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING',
        DefaultResult: 'ABANDON',
        HeartbeatTimeout: 1200,
      },
    ]);
  });

  test('creation waits for every host to signal; a host change rolls one host at a time keeping all 3 in service and waiting on signals', () => {
    const asg = only(template, 'AWS::AutoScaling::AutoScalingGroup').resource;
    expect(asg.CreationPolicy).toEqual({ ResourceSignal: { Count: 3, Timeout: 'PT20M' } });
    expect(asg.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({
      MaxBatchSize: 1,
      MinInstancesInService: 3,
      WaitOnResourceSignals: true,
      PauseTime: 'PT20M',
    });
  });

  test('minHealthyPercentage sets the hosts kept in service (rounded up)', () => {
    const t = synthTemplate({ ...FLEET, hosts: '4', maxHosts: '6', minHealthyPercentage: '60' });
    expect(
      only(t, 'AWS::AutoScaling::AutoScalingGroup').resource.UpdatePolicy.AutoScalingRollingUpdate
        .MinInstancesInService,
    ).toBe(3);
  });

  test('every host carries BluegreenStage=<stage> from launch (Run Command and the CLI find the fleet by it)', () => {
    const { Properties: p } = only(template, 'AWS::AutoScaling::AutoScalingGroup').resource;
    expect(p.Tags).toContainEqual({ Key: 'BluegreenStage', Value: 'prod', PropagateAtLaunch: true });
    const lt = only(template, 'AWS::EC2::LaunchTemplate').resource.Properties.LaunchTemplateData;
    expect(lt.TagSpecifications.find((s: any) => s.ResourceType === 'instance').Tags).toContainEqual({
      Key: 'BluegreenStage',
      Value: 'prod',
    });
  });

  test('group metrics for the in-service alarm are collected', () => {
    const { Properties: p } = only(template, 'AWS::AutoScaling::AutoScalingGroup').resource;
    expect(p.MetricsCollection).toEqual([
      { Granularity: '1Minute', Metrics: ['GroupInServiceInstances', 'GroupDesiredCapacity'] },
    ]);
  });
});

test('the pool-switch rule runs the command that answers the join step on a host still booting, and never deploys (the single host keeps the plain one)', () => {
  const [rule] = Object.values(template.findResources('AWS::Events::Rule')).filter((r) =>
    JSON.stringify(r).includes('ApplyPoolState'),
  );
  expect(JSON.parse(rule.Properties.Targets[0].Input)).toEqual({
    commands: [hostApplyCommand([NO_DEPLOY])],
    executionTimeout: ['120'],
  });
});

describe('launch template', () => {
  test("the single host's machine: IMDSv2 with hop limit 1, encrypted gp3 root volume, the same AMI and type", () => {
    const lt = only(template, 'AWS::EC2::LaunchTemplate').resource.Properties.LaunchTemplateData;
    expect(lt.MetadataOptions).toEqual({ HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1, HttpTokens: 'required' });
    expect(lt.BlockDeviceMappings).toEqual([
      {
        DeviceName: '/dev/xvda',
        Ebs: { DeleteOnTermination: true, Encrypted: true, VolumeSize: 20, VolumeType: 'gp3' },
      },
    ]);
    expect(lt.ImageId).toBe('resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64');
    expect(lt.InstanceType).toBe('t3.small');
  });

  test('ebsKmsKeyArn: the volumes encrypted with that key, and the key policy the Auto Scaling service-linked role needs printed (an output and a synth warning)', () => {
    const key = 'arn:aws:kms:eu-west-1:123456789012:key/0123abcd-0123-4567-89ab-0123456789ab';
    const app = newApp({ ...FLEET, ebsKmsKeyArn: key });
    const stack = buildApp(app);
    const t = Template.fromStack(stack);
    const lt = only(t, 'AWS::EC2::LaunchTemplate').resource.Properties.LaunchTemplateData;
    expect(lt.BlockDeviceMappings).toEqual([
      {
        DeviceName: '/dev/xvda',
        Ebs: { DeleteOnTermination: true, Encrypted: true, KmsKeyId: key, VolumeSize: 20, VolumeType: 'gp3' },
      },
    ]);
    // The statements, with the account's service-linked role (AWS's documented key policy sections).
    const resolver = new TemplateResolver(t.toJSON() as CfnTemplate, 'BlueGreen-prod');
    const statements = JSON.parse(resolver.resolve(t.toJSON().Outputs.EbsKeyPolicyStatements.Value));
    const role =
      'arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling';
    expect(statements).toEqual([
      {
        Sid: 'Allow service-linked role use of the customer managed key',
        Effect: 'Allow',
        Principal: { AWS: role },
        Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey'],
        Resource: '*',
      },
      {
        Sid: 'Allow attachment of persistent resources',
        Effect: 'Allow',
        Principal: { AWS: role },
        Action: ['kms:CreateGrant'],
        Resource: '*',
        Condition: { Bool: { 'kms:GrantIsForAWSResource': true } },
      },
    ]);
    const warnings = Annotations.fromStack(stack).findWarning(
      '*',
      Match.stringLikeRegexp('AWSServiceRoleForAutoScaling'),
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0].entry.data).toContain(key);
    expect(warnings[0].entry.data).toMatch(/kms:CreateGrant with kms:GrantIsForAWSResource/);
    // Without the key: the account's default EBS key, no statements to print, no warning.
    expect(template.toJSON().Outputs.EbsKeyPolicyStatements).toBeUndefined();
    expect(JSON.stringify(template.toJSON())).not.toContain('KmsKeyId');
  });

  test("the same user data and files as the single host, up to and including bootstrap.sh; plus only the fleet's join parts", () => {
    const single = synthTemplate({ stage: 'prod', operatorCidr: OPERATOR });
    const hostScript = script(only(single, 'AWS::EC2::Instance').resource.Properties.UserData);
    const fleetScript = script(
      only(template, 'AWS::EC2::LaunchTemplate').resource.Properties.LaunchTemplateData.UserData,
    );
    const body = (s: string) =>
      s.slice(s.indexOf('set -euo pipefail'), s.indexOf('bash /opt/bluegreen/userdata/bootstrap.sh'));
    expect(body(hostScript).length).toBeGreaterThan(500);
    // The fleet's own lines: its fleet/ asset (download + unzip: bluegreen-join.sh and its rule,
    // record-verdict.jq, generated from core/), the ledger's table and head key, and the
    // bootstrapping marker. Without them, the single host's script. The rule's facts are not in the
    // environment, nor is the SSM record (nothing writes it any more).
    const joinEnv = [
      `export LEDGER_TABLE='bluegreen-prod-releases'`,
      `export LEDGER_HEAD_KEY='{"pk":{"S":"head"},"sk":{"S":"head"}}'`,
    ];
    const marker = ['mkdir -p /var/lib/bluegreen', `touch ${BOOTSTRAPPING_MARKER}`];
    const fleetLines = body(fleetScript).split('\n');
    const own = fleetLines.filter(
      (l) => /bluegreen-fleet\.zip|\/opt\/bluegreen\/fleet/.test(l) || joinEnv.includes(l) || marker.includes(l),
    );
    expect(own.filter((l) => /bluegreen-fleet\.zip|\/opt\/bluegreen\/fleet/.test(l))).toHaveLength(4);
    expect(own.filter((l) => joinEnv.includes(l) || marker.includes(l))).toEqual([...joinEnv, ...marker]);
    expect(fleetLines.filter((l) => !own.includes(l)).join('\n')).toBe(body(hostScript));
    expect(fleetScript).not.toMatch(/RELEASE_(FINAL_STATES|STALE_AFTER_SECONDS|BAKE_AHEAD_SECONDS)/);
    expect(fleetScript).not.toMatch(/ RELEASE_PARAM=|\/bluegreen\/prod\/release'/);
    // The marker is set just before bootstrap.sh and removed just after it succeeded.
    expect(
      fleetScript.indexOf(`touch ${BOOTSTRAPPING_MARKER}\nbash /opt/bluegreen/userdata/bootstrap.sh`),
    ).toBeGreaterThan(0);
    expect(fleetScript.indexOf(`rm -f ${BOOTSTRAPPING_MARKER}`)).toBeGreaterThan(
      fleetScript.indexOf('bash /opt/bluegreen/userdata/bootstrap.sh'),
    );
  });

  test('the fleet/ asset ships bluegreen-join.sh with its rule beside it (record-verdict.jq, which the script finds next to itself)', () => {
    const outdir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-fleet-asset-'));
    try {
      const app = newApp(FLEET, outdir);
      const stack = buildApp(app);
      const asset = stack.node.findAll().find((c): c is Asset => c instanceof Asset && c.node.id === 'FleetFiles');
      expect(asset).toBeDefined();
      app.synth();
      expect(readdirSync(path.join(outdir, asset!.assetPath)).sort()).toEqual([
        'bluegreen-join.sh',
        'record-verdict.jq',
      ]);
      // ...unzipped to /opt/bluegreen/fleet, where the user data runs the script from.
      const s = script(only(template, 'AWS::EC2::LaunchTemplate').resource.Properties.LaunchTemplateData.UserData);
      expect(s).toContain('sh /opt/bluegreen/fleet/bluegreen-join.sh ');
      expect(s).toMatch(/unzip -q -o \S+ -d \/opt\/bluegreen\/fleet/);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });

  test('a host never joins during a release: bluegreen-join (holding the launch with heartbeats) after bootstrap.sh, then bluegreen-apply, then CONTINUE', () => {
    const s = script(only(template, 'AWS::EC2::LaunchTemplate').resource.Properties.LaunchTemplateData.UserData);
    const join = s.indexOf(
      `sh /opt/bluegreen/fleet/bluegreen-join.sh ${fleetGroupName('prod')} ${BOOTSTRAP_HOOK_NAME} "$instance_id"`,
    );
    // the instance id assigned on a line of its own before (a failed IMDS call stops the script there)
    expect(s.lastIndexOf('instance_id="$(curl', join)).toBeGreaterThan(s.indexOf(`rm -f ${BOOTSTRAPPING_MARKER}`));
    expect(join).toBeGreaterThan(s.indexOf(`rm -f ${BOOTSTRAPPING_MARKER}`));
    expect(join).toBeLessThan(s.indexOf('/usr/local/bin/bluegreen-apply ||'));
    expect(s.indexOf('/usr/local/bin/bluegreen-apply ||')).toBeLessThan(
      s.indexOf('--lifecycle-action-result CONTINUE'),
    );
    // Its failure (still a release after JOIN_MAX_WAIT_SECONDS) exits the user data: the launch is abandoned.
    expect(s.slice(join, s.indexOf('\n', join))).not.toContain('||');
  });

  test('after bootstrap.sh: reconcile once more (a flip during the boot), complete the launch hook, wait for a healthy target, then signal the group (failure abandons the launch)', () => {
    const s = script(only(template, 'AWS::EC2::LaunchTemplate').resource.Properties.LaunchTemplateData.UserData);
    const asg = only(template, 'AWS::AutoScaling::AutoScalingGroup').id;
    const tg = only(template, 'AWS::ElasticLoadBalancingV2::TargetGroup').id;
    const at = (needle: string) => {
      const i = s.indexOf(needle);
      expect(i).toBeGreaterThanOrEqual(0);
      return i;
    };
    expect(at('bash /opt/bluegreen/userdata/bootstrap.sh')).toBeLessThan(at('/usr/local/bin/bluegreen-apply ||'));
    expect(at('/usr/local/bin/bluegreen-apply ||')).toBeLessThan(at('/usr/local/bin/bluegreen-apply --preview ||'));
    // A preview left open reaches a host that joins later, before the balancer sends it a tester.
    expect(at('/usr/local/bin/bluegreen-apply --preview ||')).toBeLessThan(at('--lifecycle-action-result CONTINUE'));
    expect(at('--lifecycle-action-result CONTINUE')).toBeLessThan(at(`--target-group-arn ${JSON.stringify(ref(tg))}`));
    expect(s).toContain('[ "$state" = healthy ] ||');
    expect(s).toMatch(new RegExp(`cfn-signal .*--resource ${asg} `));
    expect(s).toMatch(
      /if \[ "\$exitCode" -ne 0 \]; then aws autoscaling complete-lifecycle-action .*--lifecycle-action-result ABANDON/,
    );
  });

  test("the host's env file gives the ledger's head key back verbatim (JSON: quotes, braces) to dash and bash, which source it", () => {
    // The user data as CloudFormation renders it in the test account, and its /etc/bluegreen/env part.
    const resolver = new TemplateResolver(template.toJSON() as CfnTemplate, 'BlueGreen-prod');
    const userData = only(template, 'AWS::EC2::LaunchTemplate').resource.Properties.LaunchTemplateData.UserData;
    const s = resolver.resolve(userData['Fn::Base64']);
    const start = s.indexOf("cat > /etc/bluegreen/env <<'ENV'\n");
    const end = s.indexOf('\nENV\n', start);
    expect([start, end].every((i) => i > 0)).toBe(true);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-env-'));
    try {
      const envFile = path.join(dir, 'env');
      writeFileSync(envFile, `${s.slice(s.indexOf('\n', start) + 1, end)}\n`);
      for (const shell of ['dash', 'bash']) {
        const read = (name: string) =>
          execFileSync(shell, ['-c', `. "$1"; printf '%s' "$${name}"`, shell, envFile], {
            encoding: 'utf8',
            env: { PATH: process.env.PATH },
          });
        expect(read('LEDGER_HEAD_KEY')).toBe(ledgerHeadKeyJson());
        expect(JSON.parse(read('LEDGER_HEAD_KEY'))).toEqual({ pk: { S: 'head' }, sk: { S: 'head' } });
        expect(read('LEDGER_TABLE')).toBe('bluegreen-prod-releases');
        expect(read('AWS_REGION')).toBe('eu-west-1');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an env file value sh cannot hold inside single quotes is refused at synth: a single quote, a line break', () => {
    expect(envFileLine('LEDGER_HEAD_KEY', ledgerHeadKeyJson())).toBe(
      `export LEDGER_HEAD_KEY='{"pk":{"S":"head"},"sk":{"S":"head"}}'`,
    );
    expect(envFileLine('X', 'a $b \\c "d" {e}')).toBe(`export X='a $b \\c "d" {e}'`);
    expect(() => envFileLine('X', "it's")).toThrow(/single quote or a line break/);
    expect(() => envFileLine('X', 'a\nENV\nrm -rf /')).toThrow(/single quote or a line break/);
    expect(() => envFileLine('X', 'a\rb')).toThrow(/single quote or a line break/);
    expect(() => envFileLine('not-a-name', 'x')).toThrow(/not a variable name/);
  });

  test("the fleet role: the single host's statements plus reading the ledger's head, completing its own launch and reading target health", () => {
    const single = synthTemplate({ stage: 'prod', operatorCidr: OPERATOR });
    const sids = (t: Template, prefix: string) => {
      const [policy] = Object.entries(t.findResources('AWS::IAM::Policy')).filter(([id]) => id.startsWith(prefix));
      return (policy[1].Properties.PolicyDocument.Statement as Array<{ Sid: string }>).map((s) => s.Sid);
    };
    expect(sids(template, 'FleetRole')).toEqual([
      ...sids(single, 'HostRole'),
      'ReadLedgerHead',
      'CompleteOwnLaunch',
      'ReadOwnTargetHealth',
    ]);
    // ReadOwnAssets: the single host's three objects and the fleet/ asset
    const assets = (t: Template, prefix: string) => {
      const [policy] = Object.entries(t.findResources('AWS::IAM::Policy')).filter(([id]) => id.startsWith(prefix));
      return (policy[1].Properties.PolicyDocument.Statement as Array<{ Sid: string; Resource: unknown[] }>).find(
        (st) => st.Sid === 'ReadOwnAssets',
      )!.Resource.length;
    };
    expect([assets(single, 'HostRole'), assets(template, 'FleetRole')]).toEqual([3, 4]);
  });

  test("the fleet role reads the ledger's head (to join between releases): GetItem on the stage's table, the head's partition only; not the SSM record; heartbeats only its own launch", () => {
    const [, policy] = Object.entries(template.findResources('AWS::IAM::Policy')).find(([id]) =>
      id.startsWith('FleetRole'),
    )!;
    const statements = policy.Properties.PolicyDocument.Statement as Array<Record<string, any>>;
    const bySid = Object.fromEntries(statements.map((st) => [st.Sid, st]));
    const resolver = new TemplateResolver(template.toJSON() as CfnTemplate, 'BlueGreen-prod');
    expect({ ...bySid.ReadLedgerHead, Resource: resolver.resolve(bySid.ReadLedgerHead.Resource) }).toEqual({
      Sid: 'ReadLedgerHead',
      Effect: 'Allow',
      Action: 'dynamodb:GetItem',
      Resource: 'arn:aws:dynamodb:eu-west-1:111122223333:table/bluegreen-prod-releases',
      Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['head'] } },
    });
    // The one DynamoDB statement: no write, no Query or Scan, no stream, no other table.
    expect(statements.filter((st) => JSON.stringify(st).includes('dynamodb'))).toEqual([bySid.ReadLedgerHead]);
    const names = (resources: unknown[]) =>
      resources.map((r) => JSON.stringify(r).match(/:parameter(\/[^"]+)"/)![1]).sort();
    // The pool state only: the SSM record is not the host's any more (its Deny covers it again).
    const expected = [...hostReadParameterNames('prod')].sort();
    expect(names(bySid.ReadPoolState.Resource)).toEqual(expected);
    // ...and the preview token (bluegreen-apply --preview; lib/host-preview-access.ts) and the stage's
    // secrets (their own statement, ReadStageSecrets).
    expect(names(bySid.DenyOtherParameters.NotResource)).toEqual(
      [...expected, '/bluegreen/prod/preview', '/bluegreen/prod/secrets/*'].sort(),
    );
    expect(JSON.stringify(statements)).not.toContain('/bluegreen/prod/release"');
    expect(bySid.CompleteOwnLaunch.Action).toEqual([
      'autoscaling:CompleteLifecycleAction',
      'autoscaling:RecordLifecycleActionHeartbeat',
    ]);
    // The ARN IAM evaluates: a colon after autoScalingGroup, then the group's generated id (any) and its name.
    expect(resolver.resolve(bySid.CompleteOwnLaunch.Resource)).toBe(
      `arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup:*:autoScalingGroupName/${fleetGroupName('prod')}`,
    );
  });
});

describe('security groups', () => {
  const groupOf = (t: Template, description: RegExp) => {
    const found = Object.entries(
      t.findResources('AWS::EC2::SecurityGroup', {
        Properties: { GroupDescription: Match.stringLikeRegexp(description.source) },
      }),
    );
    expect(found).toHaveLength(1);
    return { id: found[0][0], props: found[0][1].Properties };
  };

  test("hosts: 8080 from the load balancer's group only, 8081-8082 from operatorCidr only", () => {
    const host = groupOf(template, /^bluegreen prod fleet host/);
    const lb = groupOf(template, /^bluegreen prod load balancer/);
    expect(host.props.SecurityGroupIngress).toEqual([
      {
        CidrIp: OPERATOR,
        Description: 'direct pool access for operators (blue 8081, green 8082)',
        FromPort: 8081,
        IpProtocol: 'tcp',
        ToPort: 8082,
      },
    ]);
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties);
    expect(ingress).toEqual([
      expect.objectContaining({
        FromPort: 8080,
        ToPort: 8080,
        GroupId: { 'Fn::GetAtt': [host.id, 'GroupId'] },
        SourceSecurityGroupId: { 'Fn::GetAtt': [lb.id, 'GroupId'] },
      }),
    ]);
  });

  test("load balancer: 80 from publicCidr without a certificate, nothing else in; out only to the hosts' nginx", () => {
    const lb = groupOf(template, /^bluegreen prod load balancer/);
    expect(lb.props.SecurityGroupIngress).toEqual([
      { CidrIp: '203.0.113.0/24', Description: 'public entry (HTTP)', FromPort: 80, IpProtocol: 'tcp', ToPort: 80 },
    ]);
    const egress = Object.values(template.findResources('AWS::EC2::SecurityGroupEgress')).map((r) => r.Properties);
    expect(egress).toEqual([
      expect.objectContaining({ FromPort: 8080, ToPort: 8080, GroupId: { 'Fn::GetAtt': [lb.id, 'GroupId'] } }),
    ]);
  });

  test('with HTTPS: 80 and 443 from publicCidr', () => {
    const t = synthTemplate({ ...FLEET, certificateArn: CERT, domainName: 'shop.example.com' });
    expect(
      groupOf(t, /^bluegreen prod load balancer/).props.SecurityGroupIngress.map(
        (r: { FromPort: number }) => r.FromPort,
      ),
    ).toEqual([80, 443]);
  });
});

describe('load balancer and target group', () => {
  test("internet-facing across both zones, invalid headers dropped, idle timeout above nginx's longest wait", () => {
    const t = synthTemplate({ ...FLEET, slowPaths: '/reports/:120s' });
    const { Properties: p } = only(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer').resource;
    expect(p.Scheme).toBe('internet-facing');
    expect(p.Subnets).toHaveLength(2);
    expect(p.LoadBalancerAttributes).toEqual(
      expect.arrayContaining([
        { Key: 'routing.http.drop_invalid_header_fields.enabled', Value: 'true' },
        { Key: 'idle_timeout.timeout_seconds', Value: '125' },
      ]),
    );
  });

  test.each<[string, Record<string, string>]>([
    ['default timeouts', {}],
    ['a slow path of 120 s', { slowPaths: '/reports/:120s' }],
    ['a read timeout of 61 s', { proxyReadTimeout: '61s', proxyNextUpstreamTimeout: '62s' }],
  ])(
    '%s: the idle timeout is set explicitly, and the routes.conf the hosts render from their env keeps idle connections longer',
    (_name, context) => {
      const t = synthTemplate({ ...FLEET, ...context });
      const attributes = only(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer').resource.Properties
        .LoadBalancerAttributes as Array<{ Key: string; Value: string }>;
      const idle = Number(attributes.find((a) => a.Key === 'idle_timeout.timeout_seconds')!.Value);
      expect(idle).toBeGreaterThanOrEqual(limit('albIdleTimeoutDefault'));
      expect(idle).toBeLessThanOrEqual(limit('albIdleTimeoutMax'));
      // What a host renders: render-upstream.sh routes with the timeouts its user data writes to /etc/bluegreen/env.
      const userData = script(only(t, 'AWS::EC2::LaunchTemplate').resource.Properties.LaunchTemplateData.UserData);
      const env = Object.fromEntries(
        [...userData.matchAll(/^export ((?:PROXY_[A-Z_]+_TIMEOUT)|SLOW_PATHS)='([^']*)'$/gm)].map((m) => [m[1], m[2]]),
      );
      expect(Object.keys(env)).toHaveLength(5);
      const routes = execFileSync('sh', [path.join(NGINX_DIR, 'render-upstream.sh'), 'routes'], {
        env: { PATH: process.env.PATH, SWITCH_DIR: '/etc/bluegreen/switch', ...env },
        encoding: 'utf8',
      });
      // nginx's keepalive_timeout for these requests: routes.conf's (server level) over nginx.conf's (http level).
      const seconds = (conf: string) => /^\s*keepalive_timeout (\d+)s;$/m.exec(conf)?.[1];
      const keepalive = Number(seconds(routes) ?? seconds(readFileSync(path.join(NGINX_DIR, 'nginx.conf'), 'utf8')));
      // AWS: the target's keep-alive must exceed the load balancer's idle timeout, or the ALB reuses a
      // connection nginx is closing and answers 502.
      expect(keepalive).toBeGreaterThan(idle);
    },
  );

  test('access logs to a private, SSE-S3, TLS-only bucket kept for the log retention; ELB may write only AWSLogs/<account>/, in any region', () => {
    const bucket = only(template, 'AWS::S3::Bucket');
    expect(bucket.resource.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      LifecycleConfiguration: { Rules: [{ ExpirationInDays: 30, Status: 'Enabled' }] },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
    });
    const lb = only(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer').resource as {
      Properties: Record<string, any>;
      DependsOn: string[];
    };
    expect(lb.Properties.LoadBalancerAttributes).toEqual(
      expect.arrayContaining([
        { Key: 'access_logs.s3.enabled', Value: 'true' },
        { Key: 'access_logs.s3.bucket', Value: ref(bucket.id) },
      ]),
    );
    const policy = only(template, 'AWS::S3::BucketPolicy');
    expect(lb.DependsOn).toContain(policy.id);
    const write = policy.resource.Properties.PolicyDocument.Statement.find(
      (st: any) => st.Sid === 'ElbWritesAccessLogs',
    );
    expect(write.Action).toBe('s3:PutObject');
    expect(write.Principal.Service).toBe('logdelivery.elasticloadbalancing.amazonaws.com');
    expect(JSON.stringify(write.Principal.AWS)).toContain('Fn::FindInMap');
    expect(JSON.stringify(write.Resource)).toContain('/AWSLogs/');
    // the region table: an old region names its ELB account, a new one "none" (the bucket's own account is used)
    const [table] = Object.values(template.toJSON().Mappings) as Array<Record<string, { account: string }>>;
    expect(table['eu-west-1'].account).toBe('156460612806');
    expect(table['eu-south-2'].account).toBe('none');
  });

  test("target group: the hosts' nginx port, health check GET /version through nginx expecting 200", () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 8080,
      Protocol: 'HTTP',
      TargetType: 'instance',
      HealthCheckPath: '/version',
      HealthCheckPort: 'traffic-port',
      Matcher: { HttpCode: '200' },
      HealthCheckIntervalSeconds: 10,
      HealthyThresholdCount: 2,
      UnhealthyThresholdCount: 2,
    });
  });

  test('without a certificate: HTTP on 80 forwarding to the hosts, no 443', () => {
    const { Properties: p } = only(template, 'AWS::ElasticLoadBalancingV2::Listener').resource;
    expect(p).toMatchObject({
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [
        { Type: 'forward', TargetGroupArn: ref(only(template, 'AWS::ElasticLoadBalancingV2::TargetGroup').id) },
      ],
    });
  });
});

describe('HTTPS', () => {
  const listeners = (t: Template) =>
    Object.values(t.findResources('AWS::ElasticLoadBalancingV2::Listener')).map((r) => r.Properties);

  test('a given certificate: 443 with it and a current TLS policy, 80 redirects to 443, public URL https://<domainName>, no record without a zone', () => {
    const t = synthTemplate({ ...FLEET, certificateArn: CERT, domainName: 'shop.example.com' });
    const [https, http] = [listeners(t).find((l) => l.Port === 443)!, listeners(t).find((l) => l.Port === 80)!];
    expect(https).toMatchObject({
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: CERT }],
      SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-PQ-2025-09',
    });
    expect(http.DefaultActions).toEqual([
      { Type: 'redirect', RedirectConfig: { Port: '443', Protocol: 'HTTPS', StatusCode: 'HTTP_301' } },
    ]);
    t.resourceCountIs('AWS::CertificateManager::Certificate', 0);
    t.resourceCountIs('AWS::Route53::RecordSet', 0);
    t.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/bluegreen/prod/public-url',
      Value: 'https://shop.example.com',
    });
  });

  test('domainName + hostedZoneId: a DNS-validated certificate in that zone and an alias A record to the load balancer', () => {
    const t = synthTemplate({ ...FLEET, domainName: 'shop.example.com', hostedZoneId: ZONE });
    const cert = only(t, 'AWS::CertificateManager::Certificate');
    expect(cert.resource.Properties).toMatchObject({
      DomainName: 'shop.example.com',
      ValidationMethod: 'DNS',
      DomainValidationOptions: [{ DomainName: 'shop.example.com', HostedZoneId: ZONE }],
    });
    expect(listeners(t).find((l) => l.Port === 443)!.Certificates).toEqual([{ CertificateArn: ref(cert.id) }]);
    const lb = only(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer').id;
    const record = only(t, 'AWS::Route53::RecordSet').resource.Properties;
    expect(record).toMatchObject({
      Name: 'shop.example.com.',
      Type: 'A',
      HostedZoneId: ZONE,
      AliasTarget: { HostedZoneId: { 'Fn::GetAtt': [lb, 'CanonicalHostedZoneID'] } },
    });
  });

  test('a given certificate with a zone: the record is created, no certificate', () => {
    const t = synthTemplate({ ...FLEET, certificateArn: CERT, domainName: 'shop.example.com', hostedZoneId: ZONE });
    t.resourceCountIs('AWS::CertificateManager::Certificate', 0);
    t.resourceCountIs('AWS::Route53::RecordSet', 1);
  });
});

describe('alarms', () => {
  const alarm = (t: Template, name: string) => {
    const found = Object.values(t.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: name } }));
    expect(found).toHaveLength(1);
    return found[0].Properties;
  };
  const topic = () => ref(only(template, 'AWS::SNS::Topic').id);

  test("unhealthy targets: the target group's UnHealthyHostCount, 2 minutes, ALARM and OK to the stage alarm topic, runbook linked", () => {
    const p = alarm(template, 'bluegreen-prod-unhealthy-hosts');
    expect(p).toMatchObject({
      MetricName: 'UnHealthyHostCount',
      Namespace: 'AWS/ApplicationELB',
      Statistic: 'Maximum',
      Threshold: 1,
      EvaluationPeriods: 2,
      Period: 60,
      TreatMissingData: 'notBreaching',
    });
    expect(p.AlarmActions).toEqual([topic()]);
    expect(p.OKActions).toEqual([topic()]);
    expect(p.AlarmDescription).toContain('RUNBOOK.md#unhealthy-hosts');
  });

  test('in service below desired: desired - inService >= 1 for 15 minutes, to the topic', () => {
    const p = alarm(template, 'bluegreen-prod-hosts-below-desired');
    expect(p.Metrics[0]).toMatchObject({ Expression: 'desired - inService', ReturnData: true });
    expect(
      p.Metrics.slice(1)
        .map((m: any) => m.MetricStat.Metric.MetricName)
        .sort(),
    ).toEqual(['GroupDesiredCapacity', 'GroupInServiceInstances']);
    expect(p).toMatchObject({
      Threshold: 1,
      EvaluationPeriods: 15,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(p.AlarmActions).toEqual([topic()]);
    expect(p.AlarmDescription).toContain('RUNBOOK.md#fewer-hosts-in-service-than-desired');
  });

  test("the topic lets exactly the stage's seven alarms publish", () => {
    const policy = only(template, 'AWS::SNS::TopicPolicy').resource.Properties.PolicyDocument.Statement.find(
      (s: any) => s.Sid === 'CloudWatchAlarmsPublish',
    );
    expect(policy.Condition.ArnEquals['aws:SourceArn']).toHaveLength(7);
  });
});

test("the stage dashboard gets a fleet row: hosts in service against desired, target health, the load balancer's requests, errors and response time", () => {
  const body = JSON.stringify(only(template, 'AWS::CloudWatch::Dashboard').resource.Properties.DashboardBody);
  for (const words of [
    'Fleet hosts',
    'GroupInServiceInstances',
    'HealthyHostCount',
    'UnHealthyHostCount',
    'HTTPCode_ELB_5XX_Count',
    'HTTPCode_Target_5XX_Count',
    'TargetResponseTime',
  ])
    expect(body).toContain(words);
  expect(
    JSON.stringify(
      only(synthTemplate({ stage: 'prod' }), 'AWS::CloudWatch::Dashboard').resource.Properties.DashboardBody,
    ),
  ).not.toContain('Fleet hosts');
});

describe('the fleet alarms in Slack', () => {
  test('each is a pipeline alarm: its own title and a Runbook button to its RUNBOOK.md section', () => {
    for (const [name, anchor, words] of [
      ['bluegreen-prod-unhealthy-hosts', 'unhealthy-hosts', /fails the load balancer health check/],
      [
        'bluegreen-prod-hosts-below-desired',
        'fewer-hosts-in-service-than-desired',
        /fewer fleet hosts in service than desired/,
      ],
    ] as const) {
      const message = alarmSlackMessage(
        {
          messageId: 'm-1',
          alarmName: name,
          state: 'ALARM',
          previousState: 'OK',
          reason: 'Threshold Crossed',
          at: Date.UTC(2026, 10, 23),
        },
        { stage: 'prod', runbookUrl: 'https://wiki.example.com/RUNBOOK.md' },
      ) as {
        attachments: Array<{
          blocks: Array<{
            type: string;
            text?: { text: string };
            elements?: Array<{ text: { text: string }; url: string }>;
          }>;
        }>;
      };
      const blocks = message.attachments[0].blocks;
      expect(blocks[0].text!.text).toMatch(words);
      expect(blocks.find((b) => b.type === 'actions')!.elements!.find((e) => e.text.text === 'Runbook')!.url).toBe(
        `https://wiki.example.com/RUNBOOK.md#${anchor}`,
      );
    }
  });
});
