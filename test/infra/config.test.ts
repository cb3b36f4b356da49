// Context validation: a bad key or value fails synth with a message naming it and what it accepts.
import { parseConfig, CONTEXT_KEYS } from '../../lib/stack-config';
import { hostReadParameterNames, parameterNames } from '../../core/names';
import { buildApp } from '../../bin/app';
import { newApp } from '../helpers/cdk';
import { DEFAULT_PROXY_SETTINGS } from '../../core/proxy-settings';

test('defaults: a dev stage that synthesizes with no context at all', () => {
  expect(parseConfig({})).toEqual({
    stage: 'dev',
    instanceType: 't3.small',
    publicCidr: '0.0.0.0/0',
    operatorCidr: undefined,
    blueImage: undefined,
    greenImage: undefined,
    poolHealthcheck: undefined,
    releaseBlue: 'blue-1',
    releaseGreen: 'green-1',
    initialActivePool: 'blue',
    amiId: undefined,
    ecrKeepImages: 30,
    logRetentionDays: 30,
    vpc: { create: true, cidr: '10.80.0.0/16' },
    alerts: {
      window: 200,
      minWindow: 50,
      errorRate: 0.02,
      cooldownSeconds: 300,
      alarmFunctionErrors: 1,
      alarmUndeliveredAlerts: 1,
      runbookUrl: undefined,
      releaseGate: {},
    },
    alarmEmails: [],
    slackActions: false,
    proxy: DEFAULT_PROXY_SETTINGS,
  });
  expect(DEFAULT_PROXY_SETTINGS).toEqual({
    connectTimeout: '500ms',
    sendTimeout: '2s',
    readTimeout: '1s',
    nextUpstreamTimeout: '3s',
    slowPaths: [],
    stickyKeys: [],
  });
});

test('timeouts and slow paths per stage: typed, longest prefix first is not required', () => {
  const config = parseConfig({
    proxyReadTimeout: '2s',
    proxyNextUpstreamTimeout: '5s',
    slowPaths: '/reports/:30s,/upload/:60s,/reports/big/:300s',
    stickyKeys: 'cookie:session,header:X-User',
  });
  expect(config.proxy).toEqual({
    connectTimeout: '500ms',
    sendTimeout: '2s',
    readTimeout: '2s',
    nextUpstreamTimeout: '5s',
    slowPaths: [
      { prefix: '/reports/', timeout: '30s' },
      { prefix: '/upload/', timeout: '60s' },
      { prefix: '/reports/big/', timeout: '300s' },
    ],
    // Header names are case-insensitive: kept lowercased, as nginx and switch-pool.sh read them.
    stickyKeys: [
      { kind: 'cookie', name: 'session' },
      { kind: 'header', name: 'x-user' },
    ],
  });
});

test.each([
  [
    'cookie:a-b',
    'context key "stickyKeys" entry must be cookie:NAME (letters, digits, _) or header:NAME (letters, digits, -), at most 64 characters, got \'cookie:a-b\'',
  ],
  ['header:X,header:x', 'context key "stickyKeys" lists \'header:x\' twice'],
  ['cookie:a,cookie:b,cookie:c,cookie:d,cookie:e', 'context key "stickyKeys" lists more than 4 keys'],
])('stickyKeys %j is refused at synth with one line naming the key', (stickyKeys, message) => {
  expect(() => parseConfig({ stickyKeys })).toThrow(message);
});

test('values given with -c arrive as strings and are typed here', () => {
  const config = parseConfig({
    stage: 'prod',
    logRetentionDays: '90',
    createVpc: 'false',
    vpcId: 'vpc-0123456789abcdef0',
    publicSubnetIds: 'subnet-0123456789abcdef0, subnet-0123456789abcdef1',
    availabilityZones: 'eu-west-1a,eu-west-1b',
    operatorCidr: '198.51.100.7/32',
  });
  expect(config).toMatchObject({
    stage: 'prod',
    logRetentionDays: 90,
    operatorCidr: '198.51.100.7/32',
    vpc: {
      create: false,
      vpcId: 'vpc-0123456789abcdef0',
      publicSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
      availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    },
  });
});

test('toolkit and feature-flag keys are not ours to judge', () => {
  expect(() =>
    parseConfig({ '@aws-cdk/core:foo': true, 'aws:cdk:bundling-stacks': [], 'acknowledged-issue-numbers': [1] }),
  ).not.toThrow();
});

test.each([
  [{ stge: 'prod' }, `unknown context key "stge"; this app reads: ${Object.keys(CONTEXT_KEYS).join(', ')}`],
  [
    { stage: 'Prod' },
    'context key "stage" must be lowercase letters, digits and hyphens, starting with a letter, at most 20 characters, got "Prod"',
  ],
  [{ instanceType: 'big' }, 'context key "instanceType" must be an EC2 instance type like t3.small, got "big"'],
  [
    { publicCidr: '10.0.0.0/33' },
    'context key "publicCidr" must be an IPv4 CIDR like 203.0.113.0/24, got "10.0.0.0/33"',
  ],
  [{ operatorCidr: '0.0.0.0/0' }, 'context key "operatorCidr" must not be world-open (got "0.0.0.0/0")'],
  [
    { operatorCidr: '300.1.1.1/32' },
    'context key "operatorCidr" must be an IPv4 CIDR like 203.0.113.0/24, got "300.1.1.1/32"',
  ],
  [
    { blueImage: 'my image; rm -rf /' },
    'context key "blueImage" must be a container image reference like ghcr.io/org/app:1.2.3, got "my image; rm -rf /"',
  ],
  [
    { poolHealthcheck: "curl -f 'http://x'" },
    'context key "poolHealthcheck" must be a command of letters, digits, spaces and . / : _ = | - (no quotes), at most 200 characters',
  ],
  [{ releaseGreen: 'a b' }, 'context key "releaseGreen" must be letters, digits, ".", "_" or "-" (1-64), got "a b"'],
  [{ initialActivePool: 'purple' }, 'context key "initialActivePool" must be one of blue|green, got "purple"'],
  [{ amiId: 'ami-123' }, 'context key "amiId" must be an AMI id like ami-0123456789abcdef0, got "ami-123"'],
  [
    { amiId: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64' },
    'context key "amiId" must be an AMI id like ami-0123456789abcdef0',
  ],
  [{ ecrKeepImages: '0' }, 'context key "ecrKeepImages" must be a whole number 1-1000, got "0"'],
  [{ logRetentionDays: '8' }, 'context key "logRetentionDays" must be one of 1, 3, 5, 7, 14, 30, 60, 90'],
  [{ alertWindow: '0' }, 'context key "alertWindow" must be a whole number 1-10000, got "0"'],
  [
    { alertWindow: '100', alertMinWindow: '150' },
    'context key "alertMinWindow" must be a whole number 1-100, got "150"',
  ],
  [{ alertErrorRate: '2' }, 'context key "alertErrorRate" must be a fraction between 0 and 1 like 0.02, got "2"'],
  [{ releaseMinRequests: '0' }, 'context key "releaseMinRequests" must be a whole number 1-10000, got "0"'],
  [{ releaseMaxP99: '500' }, 'context key "releaseMaxP99" must be a time like 500ms or 2s (at least 1ms), got "500"'],
  [
    { releaseMaxP99Ratio: '0.5' },
    'context key "releaseMaxP99Ratio" must be a number above 1 (up to 1000), like 3, got "0.5"',
  ],
  [
    { runbookUrl: 'http://wiki/runbook' },
    'context key "runbookUrl" must be an https:// URL, got "http://wiki/runbook"',
  ],
  // A new account's quota (10) cannot take the alert function's reservation: said at synth, not at deploy.
  [
    { accountConcurrencyLimit: '10' },
    'context key "accountConcurrencyLimit" is 10: the alert function reserves 1 concurrent execution and Lambda keeps 100 unreserved, so the account needs a quota of at least 101',
  ],
  [
    { accountConcurrencyLimit: '100' },
    'so the account needs a quota of at least 101 in this region; the deploy would fail. Raise it first: Service Quotas, AWS Lambda, "Concurrent executions" (L-B99A9384)',
  ],
  [
    { accountConcurrencyLimit: 'lots' },
    'context key "accountConcurrencyLimit" must be a whole number 1-1000000, got "lots"',
  ],
  [{ createVpc: 'yes' }, 'context key "createVpc" must be true or false, got "yes"'],
  [
    { proxyReadTimeout: '5 s' },
    `context key "proxyReadTimeout" must be an nginx time like 1s or 500ms, from 1ms to 300s, got '5 s'`,
  ],
  [
    { proxyConnectTimeout: '0ms' },
    `context key "proxyConnectTimeout" must be an nginx time like 1s or 500ms, from 1ms to 300s, got '0ms'`,
  ],
  [
    { proxyReadTimeout: '3s' },
    'context key "proxyNextUpstreamTimeout" (3s) must be longer than context key "proxyConnectTimeout" + context key "proxyReadTimeout" (500ms + 3s), or a pool that timed out is never retried on the other pool',
  ],
  [
    { slowPaths: '/reports/:30s;' },
    `context key "slowPaths" timeout of '/reports/' must be an nginx time like 1s or 500ms, from 1ms to 300s, got '30s;'`,
  ],
  [
    { slowPaths: '/reports/ {}:30s' },
    `context key "slowPaths" must be prefix:timeout pairs separated by commas, without spaces`,
  ],
  [
    { slowPaths: 'reports:30s' },
    `context key "slowPaths" prefix 'reports' must start with / and hold only letters, digits and ._~/@+-`,
  ],
  [{ slowPaths: '/reports/:30s,/reports/:60s' }, `context key "slowPaths" lists '/reports/' twice`],
  [
    { slowPaths: '/reports/:600s' },
    `context key "slowPaths" timeout of '/reports/' must be an nginx time like 1s or 500ms, from 1ms to 300s, got '600s'`,
  ],
  [
    { slowPaths: '/reports/:2s' },
    `context key "slowPaths" timeout of '/reports/' (2s) must be longer than context key "proxyNextUpstreamTimeout" (3s); for shorter waits raise context key "proxyReadTimeout"`,
  ],
  [{ vpcId: 'vpc-0123456789abcdef0' }, 'context key "vpcId" is only read with createVpc=false'],
  [{ createVpc: 'false' }, 'context key "vpcId" is required with createVpc=false'],
  [
    { createVpc: 'false', vpcId: 'vpc-0123456789abcdef0', publicSubnetIds: 'subnet-0123456789abcdef0' },
    'context key "availabilityZones" must list one AZ per subnet in publicSubnetIds (1), got ""',
  ],
])('bad context %p fails with a message naming the key', (context, message) => {
  expect(() => parseConfig(context as Record<string, unknown>)).toThrow(message);
});

test('a bad context value fails the app build, before any resource exists', () => {
  // GIVEN an app whose context says the operator ports are world-open
  const app = newApp({ operatorCidr: '0.0.0.0/0' });
  // WHEN / THEN
  expect(() => buildApp(app)).toThrow('context key "operatorCidr" must not be world-open');
});

test('the pinned AMI and the image retention are typed; image and release ids are initial values checked like the parameters check them', () => {
  expect(parseConfig({ amiId: 'ami-0123456789abcdef0', ecrKeepImages: '12' })).toMatchObject({
    amiId: 'ami-0123456789abcdef0',
    ecrKeepImages: 12,
  });
  expect(parseConfig({ amiId: 'ami-12345678' }).amiId).toBe('ami-12345678');
  expect(CONTEXT_KEYS.releaseBlue).toMatch(/initial/);
  expect(CONTEXT_KEYS.blueImage).toMatch(/initial/);
  expect(CONTEXT_KEYS.amiId).toMatch(/replaces the host/);
});

test('parameterNames: one definition of the pool state names', () => {
  const names = parameterNames('prod');
  expect(names).toMatchObject({
    activePool: '/bluegreen/prod/active-pool',
    maintenance: '/bluegreen/prod/maintenance',
    canaryPercent: '/bluegreen/prod/canary-percent',
    release: '/bluegreen/prod/release',
    ecrRepository: '/bluegreen/prod/ecr-repository',
    pools: {
      blue: {
        image: '/bluegreen/prod/pools/blue/image',
        release: '/bluegreen/prod/pools/blue/release',
        env: '/bluegreen/prod/pools/blue/env',
      },
      green: {
        image: '/bluegreen/prod/pools/green/image',
        release: '/bluegreen/prod/pools/green/release',
        env: '/bluegreen/prod/pools/green/env',
      },
    },
  });
  expect(hostReadParameterNames('prod')).toHaveLength(10);
  expect(hostReadParameterNames('prod')).not.toContain(names.slackWebhookUrl);
});

test('an account quota that can take the reservation (101 or more) passes; unset is not checked', () => {
  expect(() => parseConfig({ accountConcurrencyLimit: '101' })).not.toThrow();
  expect(() => parseConfig({ accountConcurrencyLimit: 1000 })).not.toThrow();
  expect(() => parseConfig({})).not.toThrow();
});
