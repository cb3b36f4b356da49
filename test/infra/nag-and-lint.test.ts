// Third-party checks on the synthesized app: cdk-nag AwsSolutions (every finding acknowledged with
// a reason, and the check demonstrably able to fail) and cfn-lint on every template.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { buildApp } from '../../bin/app';
import { newApp } from '../helpers/cdk';

interface Report {
  pluginReports: Array<{
    pluginName: string;
    conclusion: string;
    violations: unknown[];
    suppressedViolations?: Array<{ ruleName: string; reason: string }>;
  }>;
}

/** cfn-lint's rules that compare the template with today's date (Lambda runtime deprecation). */
const CFN_LINT_CALENDAR_RULES = ['E2531', 'E2533', 'W2531'];

const variants: Array<[string, Record<string, unknown>]> = [
  ['defaults', {}],
  [
    'prod with operators, a narrow public CIDR and alarm emails',
    {
      stage: 'prod',
      operatorCidr: '198.51.100.7/32',
      publicCidr: '203.0.113.0/24',
      alarmEmails: 'oncall@example.com,sre@example.com',
      slackActions: 'true',
    },
  ],
  [
    'existing VPC, Graviton, custom images, a GitHub Actions release role (its OIDC provider created)',
    {
      stage: 'stg',
      githubRepo: 'acme/shop:staging',
      createVpc: 'false',
      vpcId: 'vpc-0123456789abcdef0',
      publicSubnetIds: 'subnet-0123456789abcdef0',
      availabilityZones: 'eu-west-1a',
      instanceType: 't4g.small',
      blueImage: 'ghcr.io/acme/shop:1.4.2',
      greenImage: 'ghcr.io/acme/shop:1.5.0',
    },
  ],
  ['a pinned AMI', { stage: 'pin', amiId: 'ami-0123456789abcdef0' }],
  // Fleet mode: HTTP for trials, a DNS-validated certificate with its alias record, a
  // given certificate in an existing two-zone VPC with a pinned AMI, slow paths and its own EBS key.
  ['fleet of 3, HTTP', { stage: 'fleet', hosts: '3', operatorCidr: '198.51.100.7/32', slackActions: 'true' }],
  [
    "fleet, DNS-validated certificate and alias record, a release role trusting the account's given GitHub provider",
    {
      stage: 'fleetdns',
      githubRepo: 'acme/shop',
      githubOidcProviderArn: 'arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com',
      hosts: '2',
      maxHosts: '6',
      domainName: 'shop.example.com',
      hostedZoneId: 'Z0123456789ABCDEFGHIJ',
      publicCidr: '203.0.113.0/24',
    },
  ],
  [
    'fleet, given certificate, existing VPC, pinned AMI, own EBS key',
    {
      stage: 'fleetcert',
      hosts: '4',
      minHosts: '2',
      maxHosts: '8',
      minHealthyPercentage: '75',
      certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab',
      domainName: 'shop.example.com',
      createVpc: 'false',
      vpcId: 'vpc-0123456789abcdef0',
      publicSubnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
      availabilityZones: 'eu-west-1a,eu-west-1b',
      amiId: 'ami-0123456789abcdef0',
      slowPaths: '/reports/:120s',
      ebsKmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/0123abcd-0123-4567-89ab-0123456789ab',
    },
  ],
];

const outdirs: string[] = [];
afterAll(() => outdirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function synth(context: Record<string, unknown>) {
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-synth-'));
  outdirs.push(outdir);
  const app = newApp(context, outdir);
  return { app, stack: buildApp(app), outdir };
}

describe.each(variants)('%s', (_name, context) => {
  let outdir: string;
  beforeAll(() => {
    const s = synth(context);
    s.app.synth();
    outdir = s.outdir;
  });

  test('cdk-nag AwsSolutions: no finding left, each acknowledgement with a reason a reviewer can judge', () => {
    const report: Report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'));
    const nag = report.pluginReports.find((p) => p.pluginName === 'AwsSolutions')!;
    expect(nag.conclusion).toBe('success');
    expect(nag.violations).toEqual([]);
    for (const s of nag.suppressedViolations ?? []) expect(s.reason.length).toBeGreaterThan(60);
  });

  test('cfn-lint: zero errors on every template', () => {
    const templates = readdirSync(outdir).filter((f) => f.endsWith('.template.json'));
    expect(templates.length).toBeGreaterThan(0);
    for (const t of templates) {
      // Lambda runtime deprecation (E2531, E2533, W2531) is judged against today's date: that check
      // lives with the other end-of-support dates, in the one test allowed to read the calendar
      // (test/infra/base-images.test.ts), so this one gives the same answer on any day.
      const run = spawnSync(
        'cfn-lint',
        ['--format', 'json', '--ignore-checks', ...CFN_LINT_CALENDAR_RULES, '--', path.join(outdir, t)],
        { encoding: 'utf8' },
      );
      if (run.error) throw new Error(`cfn-lint is not installed: ${run.error.message}`);
      const findings = JSON.parse(run.stdout || '[]') as Array<{
        Level: string;
        Rule: { Id: string };
        Message: string;
      }>;
      expect(findings.filter((f) => f.Level === 'Error')).toEqual([]);
    }
  });
});

test('the nag check can fail: an unacknowledged finding fails synth, naming the rule', () => {
  // GIVEN the real app plus a security group that opens SSH to the world
  const { app, stack, outdir } = synth({});
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Other', {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['eu-west-1a'],
  });
  new ec2.SecurityGroup(stack, 'Open', { vpc }).addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(22));
  // WHEN / THEN
  expect(() => app.synth()).toThrow(
    /ERROR The Security Group allows for 0.0.0.0\/0 or ::\/0 inbound access. \(AwsSolutions\)/,
  );
  const report: Report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'));
  const names = report.pluginReports.flatMap((p) => p.violations as Array<{ ruleName: string }>).map((v) => v.ruleName);
  expect(names).toContain('AwsSolutions-EC23');
});
