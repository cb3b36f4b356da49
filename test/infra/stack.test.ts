// The synthesized stack keeps every promise of the host, its network, the parameters and the
// switch path. One promise per test, against the real app (bin/app.ts) with cdk.json's context.
import { Match, Template } from 'aws-cdk-lib/assertions';
import { synthTemplate } from '../helpers/cdk';
import { IMAGE_PLATFORM_PATTERN } from '../../core/image-platform';

const OPERATOR = '198.51.100.7/32';
let template: Template;
beforeAll(() => {
  template = synthTemplate({ stage: 'prod', operatorCidr: OPERATOR, publicCidr: '0.0.0.0/0', logRetentionDays: '90' });
});

const policyStatements = (roleLogicalIdPrefix: string) => {
  const policies = template.findResources('AWS::IAM::Policy');
  const [id] = Object.keys(policies).filter((k) => k.startsWith(roleLogicalIdPrefix));
  return policies[id].Properties.PolicyDocument.Statement as Array<Record<string, unknown>>;
};

describe('security group', () => {
  test('ingress is exactly 8080 from publicCidr and 8081-8082 from operatorCidr', () => {
    const groups = template.findResources('AWS::EC2::SecurityGroup', {
      Properties: { GroupDescription: Match.stringLikeRegexp('^bluegreen prod') },
    });
    const [group] = Object.values(groups);
    expect(group.Properties.SecurityGroupIngress).toEqual([
      { CidrIp: '0.0.0.0/0', Description: 'public entry (nginx)', FromPort: 8080, IpProtocol: 'tcp', ToPort: 8080 },
      {
        CidrIp: OPERATOR,
        Description: 'direct pool access for operators (blue 8081, green 8082)',
        FromPort: 8081,
        IpProtocol: 'tcp',
        ToPort: 8082,
      },
    ]);
    // and no separate ingress resources add anything
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });

  test('without operatorCidr the pool ports stay closed', () => {
    const t = synthTemplate({ stage: 'prod' });
    const [group] = Object.values(
      t.findResources('AWS::EC2::SecurityGroup', {
        Properties: { GroupDescription: Match.stringLikeRegexp('^bluegreen prod') },
      }),
    );
    expect(group.Properties.SecurityGroupIngress.map((r: { FromPort: number }) => r.FromPort)).toEqual([8080]);
  });

  test('publicCidr narrows the public entry', () => {
    const t = synthTemplate({ publicCidr: '203.0.113.0/24' });
    t.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: [Match.objectLike({ CidrIp: '203.0.113.0/24', FromPort: 8080 })],
    });
  });
});

describe('host', () => {
  test('no SSH: no key pair and port 22 nowhere', () => {
    const [instance] = Object.values(template.findResources('AWS::EC2::Instance'));
    expect(instance.Properties.KeyName).toBeUndefined();
    expect(JSON.stringify(template.toJSON())).not.toMatch(/"FromPort":\s*22\b/);
  });

  test('IMDSv2 is required, with a hop limit of 1 (see host-hardening.test.ts)', () => {
    template.hasResourceProperties('AWS::EC2::Instance', {
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
    });
  });

  test('the root volume is encrypted gp3', () => {
    template.hasResourceProperties('AWS::EC2::Instance', {
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/xvda',
          Ebs: { Encrypted: true, VolumeType: 'gp3', VolumeSize: 20, DeleteOnTermination: true },
        },
      ],
    });
  });

  test('Amazon Linux 2023, resolved by EC2 at launch (resolve:ssm:), never by CloudFormation on a deploy', () => {
    template.hasResourceProperties('AWS::EC2::Instance', {
      ImageId: 'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64',
    });
    // No template parameter of the AMI: that one CloudFormation would re-resolve on every deploy.
    expect(JSON.stringify(template.toJSON().Parameters ?? {})).not.toContain('ami-amazon-linux-latest');
    synthTemplate({ instanceType: 't4g.small' }).hasResourceProperties('AWS::EC2::Instance', {
      ImageId: 'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64',
    });
  });

  test('context amiId pins an exact AMI', () => {
    const t = synthTemplate({ amiId: 'ami-0123456789abcdef0' });
    t.hasResourceProperties('AWS::EC2::Instance', { ImageId: 'ami-0123456789abcdef0' });
    const [instance] = Object.values(t.findResources('AWS::EC2::Instance'));
    expect(instance.Metadata?.['cfn-lint']).toBeUndefined(); // the format check applies again
  });

  test('tagged with its stage, which is how Run Command finds it', () => {
    template.hasResourceProperties('AWS::EC2::Instance', {
      Tags: Match.arrayWith([{ Key: 'BluegreenStage', Value: 'prod' }]),
    });
  });

  test('a failed bootstrap fails the deploy: a creation policy waits for a signal sent on exit with the exit code', () => {
    const [instance] = Object.values(template.findResources('AWS::EC2::Instance'));
    expect(instance.CreationPolicy).toEqual({ ResourceSignal: { Timeout: 'PT20M' } });
    const userData = JSON.stringify(instance.Properties.UserData);
    expect(userData).toContain('trap exitTrap EXIT');
    expect(userData).toMatch(/cfn-signal --stack .* -e \$exitCode/);
    expect(userData).toContain('set -euo pipefail');
    expect(userData).toContain('bash /opt/bluegreen/userdata/bootstrap.sh');
  });

  test('user data stays small: the host files come as assets', () => {
    const [instance] = Object.values(template.findResources('AWS::EC2::Instance'));
    const userData = JSON.stringify(instance.Properties.UserData);
    expect(userData.length).toBeLessThan(16 * 1024);
    for (const dir of ['nginx', 'app', 'userdata'])
      expect(userData).toContain(`unzip -q -o /tmp/bluegreen-${dir}.zip -d /opt/bluegreen/${dir}`);
    expect(userData).toContain("export STAGE='prod'");
    expect(userData).toContain('export ACCESS_LOG_GROUP=');
  });

  test('the host environment names the pool state parameters and the registry, and holds no image or release', () => {
    const [instance] = Object.values(template.findResources('AWS::EC2::Instance'));
    const userData = JSON.stringify(instance.Properties.UserData);
    for (const line of [
      "export ACTIVE_POOL_PARAM='/bluegreen/prod/active-pool'",
      "export CANARY_PARAM='/bluegreen/prod/canary-percent'",
      "export BLUE_IMAGE_PARAM='/bluegreen/prod/pools/blue/image'",
      "export BLUE_RELEASE_PARAM='/bluegreen/prod/pools/blue/release'",
      "export BLUE_ENV_PARAM='/bluegreen/prod/pools/blue/env'",
      "export GREEN_IMAGE_PARAM='/bluegreen/prod/pools/green/image'",
      "export GREEN_RELEASE_PARAM='/bluegreen/prod/pools/green/release'",
      "export GREEN_ENV_PARAM='/bluegreen/prod/pools/green/env'",
    ]) {
      expect(userData).toContain(line);
    }
    const registry = '{"Ref":"AWS::AccountId"},".dkr.ecr.",{"Ref":"AWS::Region"},".",{"Ref":"AWS::URLSuffix"}';
    expect(userData).toContain(`export ECR_REGISTRY='",${registry},"'`);
    expect(userData).toContain(`export ECR_REPOSITORY='",${registry},"/bluegreen-prod'`);
    expect(userData).not.toMatch(/BLUE_IMAGE=|GREEN_IMAGE=|RELEASE_ID_/);
  });

  test('a pool health check for images without node reaches the host environment', () => {
    const t = synthTemplate({ poolHealthcheck: 'wget -q -O /dev/null http://127.0.0.1:3000/healthz' });
    const [instance] = Object.values(t.findResources('AWS::EC2::Instance'));
    expect(JSON.stringify(instance.Properties.UserData)).toContain(
      "export POOL_HEALTHCHECK='wget -q -O /dev/null http://127.0.0.1:3000/healthz'",
    );
  });

  test("the host environment carries nginx's timeouts and slow paths: the defaults written out, a stage's own values when given", () => {
    const [instance] = Object.values(template.findResources('AWS::EC2::Instance'));
    const userData = JSON.stringify(instance.Properties.UserData);
    for (const line of [
      "export PROXY_CONNECT_TIMEOUT='500ms'",
      "export PROXY_SEND_TIMEOUT='2s'",
      "export PROXY_READ_TIMEOUT='1s'",
      "export PROXY_NEXT_UPSTREAM_TIMEOUT='3s'",
      "export SLOW_PATHS=''",
    ]) {
      expect(userData).toContain(line);
    }
    const t = synthTemplate({
      proxyReadTimeout: '2s',
      proxyNextUpstreamTimeout: '5s',
      slowPaths: '/reports/:30s,/upload/:60s',
    });
    const [custom] = Object.values(t.findResources('AWS::EC2::Instance'));
    const customUserData = JSON.stringify(custom.Properties.UserData);
    expect(customUserData).toContain("export PROXY_READ_TIMEOUT='2s'");
    expect(customUserData).toContain("export PROXY_NEXT_UPSTREAM_TIMEOUT='5s'");
    expect(customUserData).toContain("export SLOW_PATHS='/reports/:30s,/upload/:60s'");
  });

  test('a fixed public address outlives host replacement', () => {
    template.resourceCountIs('AWS::EC2::EIP', 1);
    template.hasResourceProperties('AWS::EC2::EIP', { Domain: 'vpc', InstanceId: Match.anyValue() });
    template.resourceCountIs('AWS::EC2::EIPAssociation', 0); // see host-hardening.test.ts
  });
});

describe('host role', () => {
  test('reads exactly the pool state (not the webhook), ships only its log groups, publishes metrics only in its namespace', () => {
    const statements = policyStatements('HostRoleDefaultPolicy');
    const bySid = Object.fromEntries(statements.filter((s) => s.Sid).map((s) => [s.Sid, s]));
    expect(bySid.ReadPoolState).toMatchObject({ Action: ['ssm:GetParameter', 'ssm:GetParameters'], Effect: 'Allow' });
    const read = (bySid.ReadPoolState.Resource as unknown[]).map(
      (r) => JSON.stringify(r).match(/:parameter(\/[^"]+)"/)![1],
    );
    expect(read.sort()).toEqual(
      [
        '/bluegreen/prod/active-pool',
        '/bluegreen/prod/canary-percent',
        ...['blue', 'green'].flatMap((p) =>
          ['image', 'release', 'env', 'options'].map((k) => `/bluegreen/prod/pools/${p}/${k}`),
        ),
      ].sort(),
    );
    expect(JSON.stringify(bySid.ReadPoolState.Resource)).not.toMatch(/\*|slack-webhook-url|\/prod\/release"/);
    expect(bySid.ShipNginxLogs).toMatchObject({
      Action: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
      Resource: [
        { 'Fn::GetAtt': [expect.stringMatching(/^LogsAccess/), 'Arn'] },
        { 'Fn::GetAtt': [expect.stringMatching(/^LogsError/), 'Arn'] },
      ],
    });
    expect(bySid.PublishHostMetrics).toMatchObject({
      Action: 'cloudwatch:PutMetricData',
      Condition: { StringEquals: { 'cloudwatch:namespace': 'Bluegreen/prod/Host' } },
    });
    // Every other parameter is denied, and the assets are read object by object (see host-least-privilege.test.ts).
    expect(bySid.DenyOtherParameters).toMatchObject({ Effect: 'Deny' });
    expect(bySid.ReadOwnAssets).toMatchObject({ Action: 's3:GetObject', Effect: 'Allow' });
    expect(statements.filter((s) => !s.Sid)).toEqual([]);
    // Nothing can write a parameter or create log groups.
    expect(JSON.stringify(statements)).not.toMatch(/ssm:Put|logs:CreateLogGroup|"\*:\*"/);
  });

  test('pulls images from the stage repository alone; the registry login is the one ECR action on *', () => {
    const statements = policyStatements('HostRoleDefaultPolicy');
    const bySid = Object.fromEntries(statements.filter((s) => s.Sid).map((s) => [s.Sid, s]));
    expect(bySid.PullReleaseImages).toEqual({
      Sid: 'PullReleaseImages',
      Effect: 'Allow',
      Action: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
      Resource: { 'Fn::GetAtt': [expect.stringMatching(/^ReleasesRepository/), 'Arn'] },
    });
    expect(bySid.EcrLogin).toEqual({
      Sid: 'EcrLogin',
      Effect: 'Allow',
      Action: 'ecr:GetAuthorizationToken',
      Resource: '*',
    });
    const ecrStatements = statements.filter((s) => JSON.stringify(s.Action).includes('ecr:'));
    expect(ecrStatements).toHaveLength(2);
  });

  test('Session Manager through the AWS-managed core policy, and nothing else managed', () => {
    const [role] = Object.values(
      template.findResources('AWS::IAM::Role', {
        Properties: { Description: Match.stringLikeRegexp('^bluegreen prod host') },
      }),
    );
    expect(JSON.stringify(role.Properties.ManagedPolicyArns)).toContain('AmazonSSMManagedInstanceCore');
    expect(role.Properties.ManagedPolicyArns).toHaveLength(1);
  });
});

describe('release repository', () => {
  test('ECR bluegreen-<stage>: scan on push, immutable tags, AES-256, kept on destroy', () => {
    template.hasResource('AWS::ECR::Repository', {
      Properties: Match.objectLike({
        RepositoryName: 'bluegreen-prod',
        ImageScanningConfiguration: { ScanOnPush: true },
        ImageTagMutability: 'IMMUTABLE',
        EncryptionConfiguration: { EncryptionType: 'AES256' },
      }),
      DeletionPolicy: 'Retain',
    });
  });

  test('lifecycle: untagged images expire after 7 days, the last ecrKeepImages images are kept', () => {
    const rules = (t: Template) => {
      const [repo] = Object.values(t.findResources('AWS::ECR::Repository'));
      return JSON.parse(repo.Properties.LifecyclePolicy.LifecyclePolicyText).rules;
    };
    expect(rules(template)).toEqual([
      expect.objectContaining({
        rulePriority: 1,
        selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countNumber: 7, countUnit: 'days' },
        action: { type: 'expire' },
      }),
      expect.objectContaining({
        rulePriority: 2,
        selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 30 },
        action: { type: 'expire' },
      }),
    ]);
    expect(rules(synthTemplate({ ecrKeepImages: '12' }))[1].selection.countNumber).toBe(12);
  });

  test("the hosts' image platform: /bluegreen/<stage>/image-platform from the instance type, for `bluegreen build`", () => {
    const platform = (t: Template) =>
      Object.values(
        t.findResources('AWS::SSM::Parameter', { Properties: { Name: '/bluegreen/prod/image-platform' } }),
      )[0]?.Properties as { Value: string; AllowedPattern: string };
    expect(platform(template)).toMatchObject({ Value: 'linux/amd64', AllowedPattern: IMAGE_PLATFORM_PATTERN });
    expect(platform(synthTemplate({ stage: 'prod', instanceType: 't4g.small' })).Value).toBe('linux/arm64');
  });

  test('its URI: a stack output and /bluegreen/<stage>/ecr-repository for the CLI', () => {
    template.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/bluegreen/prod/ecr-repository',
      Type: 'String',
      Value: Match.anyValue(),
    });
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(outputs.EcrRepositoryUri.Value)).toMatch(
      /"\.dkr\.ecr\.".*"\/",\{"Ref":"ReleasesRepository[0-9A-F]+"\}/,
    );
  });
});

describe('pool switch', () => {
  test('EventBridge matches a change of exactly the active pool and the canary share, not the parameters a release deploy writes', () => {
    const [rule] = Object.values(
      template.findResources('AWS::Events::Rule', {
        Properties: { Targets: [Match.objectLike({ Id: 'ApplyPoolState' })] },
      }),
    );
    expect(rule.Properties.State).toBe('ENABLED');
    const { detail, ...rest } = rule.Properties.EventPattern;
    expect(rest).toEqual({ source: ['aws.ssm'], 'detail-type': ['Parameter Store Change'] });
    expect(detail.operation).toEqual(['Create', 'Update']);
    expect([...detail.name].sort()).toEqual(['/bluegreen/prod/active-pool', '/bluegreen/prod/canary-percent']);
    // Not the pool parameters (bluegreen release runs bluegreen-apply itself; the timer reconciles),
    // not the release record (the alert function's rule), not maintenance, no prefix match.
    expect(JSON.stringify(detail)).not.toMatch(/\/pools\/|\/prod\/release"|maintenance|prefix/);
  });

  test('the target runs bluegreen-apply through Run Command on hosts tagged with the stage', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [
        Match.objectLike({
          Id: 'ApplyPoolState',
          Arn: { 'Fn::Join': ['', Match.arrayWith(['::document/AWS-RunShellScript'])] },
          Input: JSON.stringify({ commands: ['/usr/local/bin/bluegreen-apply'], executionTimeout: ['120'] }),
          RunCommandParameters: { RunCommandTargets: [{ Key: 'tag:BluegreenStage', Values: ['prod'] }] },
        }),
      ],
    });
  });

  test('the rule role may only send that document, to instances tagged with the stage', () => {
    const statements = policyStatements('PoolSwitchRoleDefaultPolicy');
    expect(statements).toHaveLength(2);
    expect(statements[0]).toMatchObject({ Action: 'ssm:SendCommand' });
    expect(JSON.stringify(statements[0].Resource)).toMatch(/"::document\/AWS-RunShellScript"\]\]\}$/);
    expect(statements[1]).toMatchObject({
      Action: 'ssm:SendCommand',
      Condition: { StringEquals: { 'ssm:resourceTag/BluegreenStage': 'prod' } },
    });
    expect(JSON.stringify(statements[1].Resource)).toContain(':instance/*');
  });
});

describe('logs', () => {
  test.each([['/bluegreen/prod/nginx/access'], ['/bluegreen/prod/nginx/error']])(
    '%s exists with the configured retention and outlives the stack',
    (name) => {
      template.hasResource('AWS::Logs::LogGroup', {
        Properties: { LogGroupName: name, RetentionInDays: 90 },
        DeletionPolicy: 'Retain',
      });
    },
  );
});

describe('network', () => {
  test('a small VPC of public subnets with no NAT gateway', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::Subnet', 2);
    template.hasResourceProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: true });
  });

  test('an existing VPC is used as given, without lookups', () => {
    const t = synthTemplate({
      createVpc: 'false',
      vpcId: 'vpc-0123456789abcdef0',
      publicSubnetIds: 'subnet-0123456789abcdef0',
      availabilityZones: 'eu-west-1a',
    });
    t.resourceCountIs('AWS::EC2::VPC', 0);
    t.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: 'vpc-0123456789abcdef0' });
    t.hasResourceProperties('AWS::EC2::Instance', {
      NetworkInterfaces: [Match.objectLike({ SubnetId: 'subnet-0123456789abcdef0', AssociatePublicIpAddress: true })],
    });
  });
});

test('outputs: the public URL, the instance, the parameters, the release ledger and the exact flip command', () => {
  const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
  expect(Object.keys(outputs)).toEqual(
    expect.arrayContaining([
      'PublicUrl',
      'InstanceId',
      'ActivePoolParameter',
      'MaintenanceParameter',
      'ReleaseParameter',
      'ReleaseLedgerTable',
      'EcrRepositoryUri',
      'FlipCommand',
    ]),
  );
  expect(outputs.ReleaseParameter.Value).toBe('/bluegreen/prod/release');
  expect(outputs.ReleaseLedgerTable.Value).toEqual({ Ref: expect.stringMatching(/^LedgerTable/) });
  expect(outputs.ActivePoolParameter.Value).toBe('/bluegreen/prod/active-pool');
  expect(JSON.stringify(outputs.FlipCommand.Value)).toContain('aws ssm put-parameter --region ');
  expect(JSON.stringify(outputs.FlipCommand.Value)).toContain(
    ' --name /bluegreen/prod/active-pool --type String --overwrite --value green',
  );
  expect(JSON.stringify(outputs.PublicUrl.Value)).toContain(':8080');
});
