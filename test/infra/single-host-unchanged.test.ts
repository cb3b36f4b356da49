// Fleet mode must leave the default single-host stack exactly as it was: an upgrade of
// the project must not replace, move or re-permission anyone's host. This test synthesizes the
// single-host app and compares it with test/fixtures/single-host-resources.json, generated from
// main's code before fleet mode existed: every logical id with its type, every output, and the
// full properties of the host's own resources (instance, Elastic IP, security group, role, its
// policy and instance profile), with asset hashes masked (they change whenever nginx/, app/ or
// userdata/ change, which is a deliberate host change reviewed on its own).
//
// Regenerate ONLY for a deliberate change of the single-host stack (say why in the commit):
//   BLUEGREEN_WRITE_FIXTURE=1 npx jest test/infra/single-host-unchanged.test.ts
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { synthTemplate } from '../helpers/cdk';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'single-host-resources.json');
/** The host's own resources, compared property by property. */
const HOST_TYPES = ['AWS::EC2::Instance', 'AWS::EC2::EIP', 'AWS::EC2::SecurityGroup', 'AWS::IAM::InstanceProfile'];
/** Contexts that exercise the single host's variants: defaults, operators/narrow CIDR, existing VPC, pinned AMI. */
const VARIANTS: Record<string, Record<string, unknown>> = {
  defaults: {},
  prod: { stage: 'prod', operatorCidr: '198.51.100.7/32', publicCidr: '203.0.113.0/24' },
  existingVpc: {
    stage: 'stg',
    createVpc: 'false',
    vpcId: 'vpc-0123456789abcdef0',
    publicSubnetIds: 'subnet-0123456789abcdef0',
    availabilityZones: 'eu-west-1a',
    instanceType: 't4g.small',
  },
  pinnedAmi: { stage: 'pin', amiId: 'ami-0123456789abcdef0' },
};

type Json = unknown;
/** Asset hashes (64 hex) become <hash>: they follow the host's files, not the stack's shape. */
const mask = (value: Json): Json => JSON.parse(JSON.stringify(value).replace(/[0-9a-f]{64}/g, '<hash>'));

function snapshot(context: Record<string, unknown>) {
  const template = synthTemplate(context).toJSON() as {
    Resources: Record<string, { Type: string; Properties?: Json; CreationPolicy?: Json; DependsOn?: Json }>;
    Outputs?: Record<string, Json>;
  };
  const resources = Object.fromEntries(
    Object.entries(template.Resources)
      .map(([id, r]) => [id, r.Type])
      .sort(([a], [b]) => a.localeCompare(b)),
  );
  const hostRoleIds = Object.entries(template.Resources)
    .filter(([id, r]) => (r.Type === 'AWS::IAM::Role' || r.Type === 'AWS::IAM::Policy') && id.startsWith('Host'))
    .map(([id]) => id);
  const host = Object.fromEntries(
    Object.entries(template.Resources)
      .filter(([id, r]) => HOST_TYPES.includes(r.Type) || hostRoleIds.includes(id))
      .map(([id, r]): [string, Json] => [
        id,
        mask({ Type: r.Type, Properties: r.Properties, CreationPolicy: r.CreationPolicy, DependsOn: r.DependsOn }),
      ])
      .sort(([a], [b]) => a.localeCompare(b)),
  );
  const outputs = Object.keys(template.Outputs ?? {}).sort();
  return { resources, host, outputs };
}

const current = () => Object.fromEntries(Object.entries(VARIANTS).map(([name, context]) => [name, snapshot(context)]));

if (process.env.BLUEGREEN_WRITE_FIXTURE === '1') {
  test('writes the fixture (BLUEGREEN_WRITE_FIXTURE=1)', () => {
    writeFileSync(FIXTURE, `${JSON.stringify(current(), null, 1)}\n`);
  });
} else {
  const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as ReturnType<typeof current>;
  const now = current();
  describe.each(Object.keys(VARIANTS))('single-host %s', (name) => {
    test('the same resources: every logical id with its type', () => {
      expect(now[name].resources).toEqual(fixture[name].resources);
    });
    test('the host instance, Elastic IP, security groups, role and profile keep every property', () => {
      expect(now[name].host).toEqual(fixture[name].host);
    });
    test('the same outputs', () => {
      expect(now[name].outputs).toEqual(fixture[name].outputs);
    });
  });
}
