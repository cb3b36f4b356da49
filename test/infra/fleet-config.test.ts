// Fleet mode's context: hosts switches the mode; impossible combinations
// fail synth with a message naming the key; the single host stays the default.
import { MAX_FLEET_HOSTS } from '../../core/aws-limits';
import { ConfigError } from '../../core/config-error';
import { hostsParameterValue, minInstancesInService, parseConfig } from '../../lib/stack-config';
import { parameterNames } from '../../core/names';

/** The group limit (Run Command's default concurrency, core/aws-limits.ts) and one past it. */
const MAX = MAX_FLEET_HOSTS;
const PAST = String(MAX + 1);

const CERT = 'arn:aws:acm:eu-west-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab';
const ZONE = 'Z0123456789ABCDEFGHIJ';
const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/0123abcd-0123-4567-89ab-0123456789ab';

test('hosts unset or 1: the single host, no fleet', () => {
  expect(parseConfig({}).fleet).toBeUndefined();
  expect(parseConfig({ hosts: '1' }).fleet).toBeUndefined();
});

test('hosts=3: a fleet with min 3, max 4 (room for the one extra host of a rolling update), 100% kept in service, HTTP', () => {
  expect(parseConfig({ hosts: '3' }).fleet).toEqual({
    desired: 3,
    min: 3,
    max: 4,
    minHealthyPercentage: 100,
    https: { kind: 'none' },
  });
});

test('min/max/minHealthyPercentage as given', () => {
  const fleet = parseConfig({ hosts: '4', minHosts: '2', maxHosts: '8', minHealthyPercentage: '75' }).fleet!;
  expect(fleet).toMatchObject({ desired: 4, min: 2, max: 8, minHealthyPercentage: 75 });
  expect(minInstancesInService(fleet)).toBe(3);
  expect(hostsParameterValue(fleet)).toBe('fleet:4');
  expect(parameterNames('prod').hosts).toBe('/bluegreen/prod/hosts');
});

test('HTTPS: a DNS-validated certificate from domainName + hostedZoneId; a given certificate with domainName (zone optional)', () => {
  expect(parseConfig({ hosts: '2', domainName: 'Shop.Example.com', hostedZoneId: ZONE }).fleet!.https).toEqual({
    kind: 'dns',
    domainName: 'shop.example.com',
    hostedZoneId: ZONE,
  });
  expect(parseConfig({ hosts: '2', certificateArn: CERT, domainName: 'shop.example.com' }).fleet!.https).toEqual({
    kind: 'certificate',
    certificateArn: CERT,
    domainName: 'shop.example.com',
    hostedZoneId: undefined,
  });
  expect(
    parseConfig({ hosts: '2', certificateArn: CERT, domainName: 'shop.example.com', hostedZoneId: ZONE }).fleet!.https,
  ).toMatchObject({ kind: 'certificate', hostedZoneId: ZONE });
});

const TWO_ZONES = {
  createVpc: 'false',
  vpcId: 'vpc-0123456789abcdef0',
  publicSubnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
  availabilityZones: 'eu-west-1a,eu-west-1b',
};

test("ebsKmsKeyArn: a key ARN (a multi-Region key's too) in fleet mode; unset = the account's default EBS key", () => {
  expect(parseConfig({ hosts: '2', ebsKmsKeyArn: KEY }).fleet!.ebsKmsKeyArn).toBe(KEY);
  const mrk = 'arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef';
  expect(parseConfig({ hosts: '2', ebsKmsKeyArn: mrk }).fleet!.ebsKmsKeyArn).toBe(mrk);
  expect(parseConfig({ hosts: '2' }).fleet!.ebsKmsKeyArn).toBeUndefined();
});

test('an existing VPC with public subnets in two zones takes a fleet', () => {
  expect(parseConfig({ hosts: '2', ...TWO_ZONES }).fleet).toBeDefined();
});

test.each<[string, Record<string, unknown>, RegExp]>([
  ['hosts below 1', { hosts: '0' }, new RegExp(`context key "hosts" must be a whole number 1-${MAX}, got "0"`)],
  // The pool-switch rule's Run Command reaches MAX hosts at once (no MaxConcurrency on an EventBridge target).
  [
    'hosts above the group limit',
    { hosts: PAST },
    new RegExp(`context key "hosts" must be a whole number 1-${MAX}, got "${PAST}"`),
  ],
  [
    'maxHosts above the group limit',
    { hosts: String(MAX), maxHosts: PAST },
    new RegExp(`context key "maxHosts" must be a whole number 1-${MAX}, got "${PAST}"`),
  ],
  // MAX hosts at 100% would need one more for the rolling update: the message names a way synth accepts.
  [
    'hosts at the group limit, 100%',
    { hosts: String(MAX) },
    new RegExp(
      `maxHosts cannot go above ${MAX} \\(the group limit\\): set hosts to at most ${MAX - 1} at minHealthyPercentage 100, or lower minHealthyPercentage`,
    ),
  ],
  ['hosts not a number', { hosts: 'two' }, /context key "hosts" must be a whole number/],
  [
    'minHosts with one host',
    { minHosts: '1' },
    /context key "minHosts" is only read in fleet mode \(hosts of 2 or more\); hosts is 1/,
  ],
  ['maxHosts with hosts=1', { hosts: '1', maxHosts: '3' }, /context key "maxHosts" is only read in fleet mode/],
  [
    'a certificate with one host',
    { certificateArn: CERT, domainName: 'shop.example.com' },
    /context key "certificateArn" is only read in fleet mode/,
  ],
  ['minHosts above hosts', { hosts: '2', minHosts: '3' }, /context key "minHosts" \(3\) must not exceed hosts \(2\)/],
  ['maxHosts below hosts', { hosts: '3', maxHosts: '2' }, /context key "maxHosts" \(2\) must be at least hosts \(3\)/],
  [
    'maxHosts leaves no room for the rolling update',
    { hosts: '3', maxHosts: '3' },
    /context key "maxHosts" \(3\) must exceed the 3 hosts a rolling update keeps in service .*Raise maxHosts to 4 or lower minHealthyPercentage/,
  ],
  [
    'minHealthyPercentage out of range',
    { hosts: '2', minHealthyPercentage: '30' },
    /context key "minHealthyPercentage" must be a whole number 50-100/,
  ],
  [
    'domainName without hostedZoneId or certificate',
    { hosts: '2', domainName: 'shop.example.com' },
    /context key "hostedZoneId" is required with domainName and no certificateArn/,
  ],
  [
    'certificateArn without domainName',
    { hosts: '2', certificateArn: CERT },
    /context key "domainName" is required with certificateArn/,
  ],
  ['hostedZoneId alone', { hosts: '2', hostedZoneId: ZONE }, /context key "hostedZoneId" needs domainName/],
  [
    'a malformed certificate ARN',
    { hosts: '2', certificateArn: 'arn:aws:iam::123456789012:server-certificate/x', domainName: 'shop.example.com' },
    /context key "certificateArn" must be an ACM certificate ARN/,
  ],
  [
    'a malformed domain',
    { hosts: '2', domainName: 'shop_example', hostedZoneId: ZONE },
    /context key "domainName" must be a DNS name/,
  ],
  [
    'a malformed zone id',
    { hosts: '2', domainName: 'shop.example.com', hostedZoneId: 'example.com' },
    /context key "hostedZoneId" must be a Route 53 hosted zone id/,
  ],
  ['an EBS key with one host', { ebsKmsKeyArn: KEY }, /context key "ebsKmsKeyArn" is only read in fleet mode/],
  [
    'an EBS key given by its alias',
    { hosts: '2', ebsKmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:alias/ebs' },
    /context key "ebsKmsKeyArn" must be a KMS key ARN .*a key, not an alias/,
  ],
  [
    'an EBS key id without its ARN',
    { hosts: '2', ebsKmsKeyArn: '0123abcd-0123-4567-89ab-0123456789ab' },
    /context key "ebsKmsKeyArn" must be a KMS key ARN/,
  ],
  [
    'an existing VPC with one zone',
    {
      hosts: '2',
      createVpc: 'false',
      vpcId: 'vpc-0123456789abcdef0',
      publicSubnetIds: 'subnet-0123456789abcdef0',
      availabilityZones: 'eu-west-1a',
    },
    /context key "publicSubnetIds" must name public subnets in at least two availability zones in fleet mode \(hosts=2\)/,
  ],
  [
    'an existing VPC with two subnets in one zone',
    { hosts: '2', ...TWO_ZONES, availabilityZones: 'eu-west-1a,eu-west-1a' },
    /at least two availability zones/,
  ],
])('%s: a ConfigError naming the key', (_name, context, message) => {
  expect(() => parseConfig(context)).toThrow(ConfigError);
  expect(() => parseConfig(context)).toThrow(message);
});

test('the largest fleets synth accepts: one host below the group limit at 100%, the limit itself at 98%', () => {
  expect(parseConfig({ hosts: String(MAX - 1) }).fleet).toMatchObject({
    desired: MAX - 1,
    max: MAX,
    minHealthyPercentage: 100,
  });
  expect(parseConfig({ hosts: String(MAX), minHealthyPercentage: '98' }).fleet).toMatchObject({
    desired: MAX,
    max: MAX,
    minHealthyPercentage: 98,
  });
});
