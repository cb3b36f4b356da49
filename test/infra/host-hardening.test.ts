// What a container on the host can reach, and what a host replacement
// does to the public address. Both checked on every shape of the app the nag/lint test covers
// (default VPC, an existing VPC with Graviton, a pinned AMI).
import { Template } from 'aws-cdk-lib/assertions';
import { synthTemplate } from '../helpers/cdk';

const variants: Array<[string, Record<string, unknown>]> = [
  ['defaults', {}],
  ['prod with operators', { stage: 'prod', operatorCidr: '198.51.100.7/32', publicCidr: '0.0.0.0/0' }],
  [
    'existing VPC, Graviton',
    {
      stage: 'stg',
      createVpc: 'false',
      vpcId: 'vpc-0123456789abcdef0',
      publicSubnetIds: 'subnet-0123456789abcdef0',
      availabilityZones: 'eu-west-1a',
      instanceType: 't4g.small',
    },
  ],
  ['a pinned AMI', { stage: 'pin', amiId: 'ami-0123456789abcdef0' }],
];

const only = (t: Template, type: string) => {
  const found = Object.entries(t.findResources(type));
  expect(found).toHaveLength(1);
  return { logicalId: found[0][0], properties: found[0][1].Properties as Record<string, unknown> };
};

describe.each(variants)('%s', (_name, context) => {
  let template: Template;
  beforeAll(() => {
    template = synthTemplate(context);
  });

  test('item 3: IMDSv2 required with a PUT response hop limit of 1, on the resource that carries the metadata options', () => {
    // A launch template's metadata options would apply to the instance too; there must be one
    // source only, and it must be the instance's own MetadataOptions.
    expect(template.findResources('AWS::EC2::LaunchTemplate')).toEqual({});
    const instance = only(template, 'AWS::EC2::Instance');
    expect(instance.properties.LaunchTemplate).toBeUndefined();
    // exactly these two: the endpoint stays on (the host's scripts and the SSM agent use it)
    expect(instance.properties.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
  });

  test('item 13: the Elastic IP is attached by its own InstanceId, with no separate EIPAssociation a replacement would delete', () => {
    template.resourceCountIs('AWS::EC2::EIPAssociation', 0);
    const instance = only(template, 'AWS::EC2::Instance');
    const eip = only(template, 'AWS::EC2::EIP');
    expect(eip.properties).toMatchObject({ Domain: 'vpc', InstanceId: { Ref: instance.logicalId } });
    // the public URL is still the address itself
    const outputs = template.findOutputs('PublicUrl');
    expect(JSON.stringify(Object.values(outputs)[0].Value)).toContain(`{"Ref":"${eip.logicalId}"}`);
  });
});
