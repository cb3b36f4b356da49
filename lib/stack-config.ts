// The app's configuration, read from CDK context in bin/app.ts and validated here at synth, with an
// error naming the key and what it accepts. Everything below bin/ gets a typed BlueGreenConfig.
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { parseMilliseconds } from '../core/duration';
import { MAX_MIN_REQUESTS } from '../core/rule-config';
import { ConfigError } from '../core/config-error';
import { POOL_HEALTHCHECK_PATTERN, POOL_HEALTHCHECK_WHAT, POOL_STATE_REGEXPS, STAGE_PATTERN } from '../core/patterns';
import { MAX_FLEET_HOSTS } from '../core/aws-limits';
import { MAX_STICKY_KEYS } from '../core/canary';
import { formatHostsParameter } from '../core/fleet-size';
import { HISTORY_DAYS_RANGE } from '../core/release-ledger';
import {
  parseProxySettings,
  PROXY_SETTINGS,
  ProxySettingKey,
  ProxySettings,
  ProxySettingsError,
} from '../core/proxy-settings';

export type VpcConfig =
  | { readonly create: true; readonly cidr: string }
  | {
      readonly create: false;
      readonly vpcId: string;
      readonly publicSubnetIds: string[];
      readonly availabilityZones: string[];
    };

export interface BlueGreenConfig {
  readonly stage: string;
  readonly instanceType: string;
  /** Who may reach the public entry (nginx, 8080). */
  readonly publicCidr: string;
  /** Who may reach the pools directly (8081-8082); undefined = nobody (use Session Manager). */
  readonly operatorCidr?: string;
  /**
   * Initial pool images, written once when the stack creates the pool parameters; undefined = the
   * project's own app/ image, built on the host (DEFAULT_APP_IMAGE). Releases change them later.
   */
  readonly blueImage?: string;
  readonly greenImage?: string;
  /** Health check command for the pools (Compose CMD-SHELL); undefined = the node one. */
  readonly poolHealthcheck?: string;
  /** Initial release ids (written once, like the images). */
  readonly releaseBlue: string;
  readonly releaseGreen: string;
  /** The active-pool parameter's value when the stack creates it (written once). */
  readonly initialActivePool: 'blue' | 'green';
  /** An exact AMI id for the host; undefined = Amazon Linux 2023 resolved by EC2 at launch. */
  readonly amiId?: string;
  /** Images the stage's ECR repository keeps (older ones expire). */
  readonly ecrKeepImages: number;
  readonly logRetentionDays: RetentionDays;
  readonly vpc: VpcConfig;
  readonly alerts: AlertSettings;
  /** nginx's timeouts to the pools and the slow path prefixes (rendered on the host by render-upstream.sh). */
  readonly proxy: ProxySettings;
  /**
   * Who gets the alert pipeline's alarms by email (SNS email subscriptions to the stage's alarm
   * topic): the path that works when Slack or the alert function does not. Empty = none (synth warns).
   */
  readonly alarmEmails: readonly string[];
  /**
   * Slack's release buttons (context slackActions): the Slack actions function and its URL, and the
   * buttons on the alert function's messages. Off by default: a button needs a Slack app whose
   * Interactivity Request URL is that URL.
   */
  readonly slackActions: boolean;
  /** Days the release ledger keeps each release (context releaseHistoryDays); undefined = for good. */
  readonly releaseHistoryDays?: number;
  /** Fleet mode (context hosts >= 2): hosts behind an ALB; undefined = the single host with its Elastic IP. */
  readonly fleet?: FleetConfig;
  /** Releases from GitHub Actions (context githubRepo): the release role's trust; undefined = no role. */
  readonly github?: GithubReleaseConfig;
}

/** How clients reach the fleet's load balancer. */
export type FleetHttps =
  /** HTTP on 80 only: for trials (no TLS, no name). */
  | { readonly kind: 'none' }
  /** An existing ACM certificate for domainName; the alias record is created when hostedZoneId is given. */
  | {
      readonly kind: 'certificate';
      readonly certificateArn: string;
      readonly domainName: string;
      readonly hostedZoneId?: string;
    }
  /** The stack creates a DNS-validated certificate for domainName in the zone and the alias records. */
  | { readonly kind: 'dns'; readonly domainName: string; readonly hostedZoneId: string };

export interface FleetConfig {
  /** Desired hosts (context hosts). */
  readonly desired: number;
  /**
   * A customer managed KMS key for the hosts' root volumes (context ebsKmsKeyArn); undefined = the
   * account's default EBS key. The Auto Scaling service-linked role launches the hosts: the key's
   * policy must grant it (fleetKeyPolicyStatements), or every launch fails.
   */
  readonly ebsKmsKeyArn?: string;
  readonly min: number;
  readonly max: number;
  /** Hosts (% of desired) that stay in service during a rolling host update. */
  readonly minHealthyPercentage: number;
  readonly https: FleetHttps;
}

/** Fleet defaults and limits: the one place the validation, the stack and the docs take them from. */
export const FLEET_LIMITS = {
  /**
   * The most hosts a stage's group may have (maxHosts, a rolling update's extra host included, so
   * hosts is at most one fewer at minHealthyPercentage 100): the pool-switch rule's Run Command
   * (EventBridge sets no MaxConcurrency or MaxErrors) reaches this many hosts at once by default;
   * past that a flip would go in batches and stop at the first failed host. Beyond it the design
   * changes (DECISIONS.md).
   */
  maxHosts: MAX_FLEET_HOSTS,
  defaultMinHealthyPercentage: 100,
  /** Below half, a rolling update would take most of the fleet out at once: not a rolling update any more. */
  lowestMinHealthyPercentage: 50,
} as const;

/** Hosts a rolling host update keeps in service: minHealthyPercentage of the desired count, rounded up. */
export function minInstancesInService(fleet: Pick<FleetConfig, 'desired' | 'minHealthyPercentage'>): number {
  return Math.ceil((fleet.desired * fleet.minHealthyPercentage) / 100);
}

/**
 * The value of /bluegreen/<stage>/hosts in fleet mode (absent = the single host). The format and its
 * parser live in core/fleet-size.ts: the alert function reads it, and its bundle must not pull CDK.
 */
export function hostsParameterValue(fleet: FleetConfig): string {
  return formatHostsParameter(fleet.desired);
}

/** Alert rule and alarm settings (strings: they become the function's environment). */
export interface AlertSettings {
  readonly window: number;
  readonly minWindow: number;
  readonly errorRate: number;
  readonly cooldownSeconds: number;
  /** Function errors in 5 minutes that raise the alarm. */
  readonly alarmFunctionErrors: number;
  /** Undelivered alerts waiting in the dead-letter queue that raise the alarm. */
  readonly alarmUndeliveredAlerts: number;
  readonly runbookUrl?: string;
  /** The release gate's stage defaults (each absent one: the function's own default); a release's flags win. */
  readonly releaseGate: { minRequests?: number; maxP99Ms?: number; maxP99Ratio?: number };
}

/**
 * The alert function reserves this much concurrency (its invocations are serialized: one owns the
 * engine state at a time), and Lambda refuses a reservation that would leave the account fewer
 * than 100 unreserved: the account's quota must be at least their sum.
 */
export const ALERT_RESERVED_CONCURRENCY = 1;
export const LAMBDA_MIN_UNRESERVED_CONCURRENCY = 100;
export const MIN_ACCOUNT_CONCURRENCY = ALERT_RESERVED_CONCURRENCY + LAMBDA_MIN_UNRESERVED_CONCURRENCY;

/** Context keys this app reads: the one list that validation, docs and tests use. */
export const CONTEXT_KEYS = {
  stage: 'deployment stage; names the stack, the SSM path /bluegreen/<stage>/ and the log groups (default dev)',
  instanceType: 'EC2 instance type of the host (default t3.small; Graviton types such as t4g.small get an arm64 AMI)',
  publicCidr: 'IPv4 CIDR allowed to reach the public entry on 8080 (default 0.0.0.0/0)',
  operatorCidr: 'IPv4 CIDR allowed to reach the pools on 8081-8082; not world-open; unset = closed (default unset)',
  blueImage:
    'initial image of the blue pool, written once when the stack creates /bluegreen/<stage>/pools/blue/image; releases change it later (default: the project app/ image, built on the host)',
  greenImage:
    'initial image of the green pool, written once when the stack creates /bluegreen/<stage>/pools/green/image; releases change it later (default: the project app/ image, built on the host)',
  poolHealthcheck:
    'shell command that checks a pool on port 3000, for images without node, e.g. "wget -q -O /dev/null http://127.0.0.1:3000/healthz" (default: a node one-liner)',
  releaseBlue: 'initial release id of the blue pool (X-Release-Id), written once with its parameter (default blue-1)',
  releaseGreen:
    'initial release id of the green pool (X-Release-Id), written once with its parameter (default green-1)',
  initialActivePool: 'active pool when the parameter is created, written once: blue or green (default blue)',
  amiId:
    'exact AMI id of the host, e.g. ami-0123456789abcdef0 (one region); changing it replaces the host (default: Amazon Linux 2023, resolved by EC2 when the host is launched)',
  ecrKeepImages: 'images the stage ECR repository bluegreen-<stage> keeps; older ones expire (default 30)',
  logRetentionDays: 'retention of the nginx log groups, in days (default 30)',
  createVpc: 'true: create a small VPC (public subnets, no NAT); false: use vpcId (default true)',
  vpcCidr: 'CIDR of the created VPC (default 10.80.0.0/16)',
  vpcId: 'existing VPC id, with createVpc=false',
  publicSubnetIds: 'comma-separated public subnet ids of the existing VPC, with createVpc=false',
  availabilityZones: 'comma-separated AZs of publicSubnetIds, in the same order, with createVpc=false',
  alertWindow: 'requests in the error-rate window (default 200)',
  alertMinWindow: 'requests the window must hold before the error rate is judged (default 50)',
  alertErrorRate: 'error-rate threshold as a fraction (default 0.02)',
  alertCooldownSeconds: 'per-kind alert cooldown in seconds (default 300)',
  releaseMinRequests:
    "requests first sent to a new release that the release gate needs before it judges (default: alertMinWindow); a release's --min-requests wins",
  releaseMaxP99:
    "the release gate's bound on a new release's p99, a time like 500ms or 2s (default: no bound); a release's --max-p99 wins",
  releaseMaxP99Ratio:
    "the release gate's bound on a new release's p99 as a multiple of the previous release's, above 1 (default 3, judged only 100 ms above it); a release's --max-p99-ratio wins",
  alarmFunctionErrors: 'alert function errors in 5 minutes that raise its alarm (default 1)',
  alarmUndeliveredAlerts: 'undelivered alerts in the dead-letter queue that raise its alarm (default 1)',
  runbookUrl: 'URL of RUNBOOK.md as your team reads it; Slack messages link to its sections (default: no link)',
  proxyConnectTimeout: `nginx's timeout for connecting to a pool, e.g. 500ms; changing it replaces the host (default ${PROXY_SETTINGS.connectTimeout.default})`,
  proxySendTimeout: `nginx's timeout between two writes of a request to a pool; changing it replaces the host (default ${PROXY_SETTINGS.sendTimeout.default})`,
  proxyReadTimeout: `nginx's timeout between two reads of a pool's answer: what a hung pool costs a request before it goes to the other pool; changing it replaces the host (default ${PROXY_SETTINGS.readTimeout.default})`,
  proxyNextUpstreamTimeout: `the failover window: a failed attempt is retried on the other pool only within it; longer than connect + read; changing it replaces the host (default ${PROXY_SETTINGS.nextUpstreamTimeout.default})`,
  slowPaths:
    'comma-separated prefix:timeout pairs for routes allowed to take longer between two reads than proxyReadTimeout, e.g. /reports/:30s,/upload/:60s (longest prefix wins; each timeout longer than proxyNextUpstreamTimeout, at most 300s); changing it replaces the host (default none)',
  stickyKeys: `comma-separated cookie:NAME / header:NAME keys a canary of this stage may stick on (bluegreen release --sticky), e.g. cookie:session,header:X-User; cookie names letters, digits and _, header names letters, digits and -; at most ${MAX_STICKY_KEYS}; changing it replaces the host (default none)`,
  releaseHistoryDays: `days the release ledger keeps each release's items, ${HISTORY_DAYS_RANGE.min}-${HISTORY_DAYS_RANGE.max} (their DynamoDB TTL, from the release's start; the ledger's head is never removed) (default: kept for good)`,
  slackActions:
    'true: Slack buttons on release messages and pool alerts (Roll back now, Promote now, Extend bake, Abort), answered by a function URL that checks the Slack app signature (README "Slack buttons") (default false)',
  alarmEmails:
    'comma-separated email addresses (or a JSON list in cdk.json) subscribed to the stage alarm topic: the alert pipeline alarms reach them without Slack; each must confirm the subscription (default: none, synth warns)',
  hosts:
    'number of hosts; 1 = one EC2 host with an Elastic IP (the default); 2 or more = fleet mode: an Auto Scaling group across two zones behind an Application Load Balancer (README "From one host to a fleet")',
  minHosts: "fleet mode: the Auto Scaling group's minimum, at most hosts (default hosts)",
  maxHosts: `fleet mode: the Auto Scaling group's maximum, above the hosts a rolling update keeps in service, at most ${FLEET_LIMITS.maxHosts} (default hosts + 1: room for the one extra host of a rolling update)`,
  minHealthyPercentage: `fleet mode: share of the desired hosts, in percent (${FLEET_LIMITS.lowestMinHealthyPercentage}-100), kept in service while a host change rolls through the group (default ${FLEET_LIMITS.defaultMinHealthyPercentage}: one extra host at a time)`,
  certificateArn:
    'fleet mode: ARN of an ACM certificate (same region) covering domainName; the load balancer answers HTTPS on 443 and redirects 80 to it (needs domainName)',
  domainName:
    'fleet mode: the name clients use, e.g. shop.example.com; with hostedZoneId and no certificateArn the stack creates a DNS-validated certificate; with hostedZoneId the stack creates the alias records',
  hostedZoneId:
    'fleet mode: Route 53 hosted zone id (Z...) of domainName: the stack validates the certificate and creates the A/AAAA alias records in it',
  ebsKmsKeyArn:
    "fleet mode: ARN of a customer managed KMS key (same region) that encrypts the hosts' root volumes; its key policy must grant the Auto Scaling service-linked role AWSServiceRoleForAutoScaling (the stack's EbsKeyPolicyStatements output; README \"Encrypted volumes with your own key\") (default: the account's default EBS key)",
  accountConcurrencyLimit:
    "the account's Lambda concurrent-executions quota in the deploy region (Service Quotas L-B99A9384); when given, synth fails if it cannot take the alert function's reservation (at least 101) (default: unset, not checked)",
  githubRepo:
    'owner/repo or owner/repo:environment, exactly as GitHub spells them: the stack creates the role bluegreen-<stage>-release that GitHub Actions jobs of that repository assume through OIDC, in that environment, or (without one) on pushes to main only (README "Release from CI (GitHub Actions)") (default: unset, no role)',
  githubOidcProviderArn:
    "with githubRepo: ARN of the account's existing IAM OIDC provider for token.actions.githubusercontent.com (an account has one per URL: the stage that created it has it as its GithubOidcProviderArn output) (default: the stack creates the provider)",
} as const;
export type ContextKey = keyof typeof CONTEXT_KEYS;

/** Context keys that belong to the CDK toolkit or feature flags, not to this app. */
function isToolkitKey(key: string): boolean {
  return key.includes(':') || key.startsWith('@') || key === 'acknowledged-issue-numbers' || key.startsWith('cdk-');
}

const RETENTION_DAYS = Object.values(RetentionDays).filter((v): v is number => typeof v === 'number' && v > 0);

const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;
const RELEASE = POOL_STATE_REGEXPS.release;
/**
 * An address SNS can deliver to: one @, no spaces, commas, quotes or angle brackets, a dotted
 * domain. Deliberately simple: SNS itself sends the confirmation, and a typo is what this catches.
 */
const EMAIL =
  /^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;
/** More would be a mailing list's job; SNS sends each address a confirmation at every new subscription. */
export const MAX_ALARM_EMAILS = 10;
const IMAGE = POOL_STATE_REGEXPS.image;

function parseCidr(key: string, value: string): string {
  const m = value.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) {
    throw new ConfigError(`context key "${key}" must be an IPv4 CIDR like 203.0.113.0/24, got "${value}"`);
  }
  return value;
}

function csv(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Validates the app's context. `context` is what `app.node.getAllContext()` returns: cdk.json's
 * context plus `-c key=value` (values from the command line are strings).
 */
export function parseConfig(context: Record<string, unknown>): BlueGreenConfig {
  const known = Object.keys(CONTEXT_KEYS);
  for (const key of Object.keys(context)) {
    if (!isToolkitKey(key) && !known.includes(key)) {
      throw new ConfigError(`unknown context key "${key}"; this app reads: ${known.join(', ')}`);
    }
  }
  const str = (key: ContextKey): string | undefined => {
    const value = context[key];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new ConfigError(`context key "${key}" must be a string, got ${JSON.stringify(value)}`);
    }
    return String(value).trim();
  };
  const matching = (key: ContextKey, re: RegExp, what: string, fallback?: string): string | undefined => {
    const value = str(key) ?? fallback;
    if (value !== undefined && !re.test(value))
      throw new ConfigError(`context key "${key}" must be ${what}, got "${value}"`);
    return value;
  };

  const stage = matching(
    'stage',
    STAGE_PATTERN,
    'lowercase letters, digits and hyphens, starting with a letter, at most 20 characters',
    'dev',
  )!;
  const instanceType = matching('instanceType', INSTANCE_TYPE, 'an EC2 instance type like t3.small', 't3.small')!;
  const publicCidr = parseCidr('publicCidr', str('publicCidr') ?? '0.0.0.0/0');
  const operatorValue = str('operatorCidr');
  const operatorCidr = operatorValue === undefined ? undefined : parseCidr('operatorCidr', operatorValue);
  if (operatorCidr?.endsWith('/0')) {
    throw new ConfigError(
      `context key "operatorCidr" must not be world-open (got "${operatorCidr}"): the pool ports bypass nginx; give your operators' CIDR, e.g. 203.0.113.10/32`,
    );
  }
  const imageWhat = 'a container image reference like ghcr.io/org/app:1.2.3';
  const initial = str('initialActivePool') ?? 'blue';
  if (initial !== 'blue' && initial !== 'green') {
    throw new ConfigError(`context key "initialActivePool" must be one of blue|green, got "${initial}"`);
  }
  const retentionRaw = str('logRetentionDays') ?? '30';
  const retention = Number(retentionRaw);
  if (!RETENTION_DAYS.includes(retention)) {
    throw new ConfigError(
      `context key "logRetentionDays" must be one of ${RETENTION_DAYS.join(', ')}, got "${retentionRaw}"`,
    );
  }

  const createVpc = str('createVpc') ?? 'true';
  if (createVpc !== 'true' && createVpc !== 'false') {
    throw new ConfigError(`context key "createVpc" must be true or false, got "${createVpc}"`);
  }
  let vpc: VpcConfig;
  if (createVpc === 'true') {
    for (const key of ['vpcId', 'publicSubnetIds', 'availabilityZones'] as const) {
      if (str(key)) throw new ConfigError(`context key "${key}" is only read with createVpc=false`);
    }
    vpc = { create: true, cidr: parseCidr('vpcCidr', str('vpcCidr') ?? '10.80.0.0/16') };
  } else {
    const vpcId = matching('vpcId', /^vpc-[0-9a-f]{8,17}$/, 'a VPC id like vpc-0123456789abcdef0');
    const subnets = csv(str('publicSubnetIds') ?? '');
    const zones = csv(str('availabilityZones') ?? '');
    if (!vpcId) throw new ConfigError('context key "vpcId" is required with createVpc=false');
    if (subnets.length === 0 || subnets.some((s) => !/^subnet-[0-9a-f]{8,17}$/.test(s))) {
      throw new ConfigError(
        `context key "publicSubnetIds" must be comma-separated subnet ids like subnet-0123456789abcdef0, got "${str('publicSubnetIds') ?? ''}"`,
      );
    }
    if (zones.length !== subnets.length) {
      throw new ConfigError(
        `context key "availabilityZones" must list one AZ per subnet in publicSubnetIds (${subnets.length}), got "${str('availabilityZones') ?? ''}"`,
      );
    }
    vpc = { create: false, vpcId, publicSubnetIds: subnets, availabilityZones: zones };
  }

  const int = (key: ContextKey, fallback: number, min: number, max: number): number => {
    const raw = str(key);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new ConfigError(`context key "${key}" must be a whole number ${min}-${max}, got "${raw}"`);
    return n;
  };
  const window = int('alertWindow', 200, 1, 10_000);
  const minWindow = int('alertMinWindow', Math.min(50, window), 1, window);
  const errorRateRaw = str('alertErrorRate') ?? '0.02';
  const errorRate = Number(errorRateRaw);
  if (!(errorRate > 0 && errorRate < 1))
    throw new ConfigError(
      `context key "alertErrorRate" must be a fraction between 0 and 1 like 0.02, got "${errorRateRaw}"`,
    );
  const runbookUrl = matching('runbookUrl', /^https:\/\/\S+$/, 'an https:// URL');
  const alarmEmails = parseEmails(context.alarmEmails);
  const historyRaw = str('releaseHistoryDays');
  const releaseHistoryDays = historyRaw === undefined ? undefined : Number(historyRaw);
  if (
    releaseHistoryDays !== undefined &&
    (!/^\d+$/.test(historyRaw!) ||
      releaseHistoryDays < HISTORY_DAYS_RANGE.min ||
      releaseHistoryDays > HISTORY_DAYS_RANGE.max)
  )
    throw new ConfigError(
      `context key "releaseHistoryDays" must be whole days ${HISTORY_DAYS_RANGE.min}-${HISTORY_DAYS_RANGE.max}, got "${historyRaw}"`,
    );
  const slackActions = str('slackActions') ?? 'false';
  if (slackActions !== 'true' && slackActions !== 'false')
    throw new ConfigError(`context key "slackActions" must be true or false, got "${slackActions}"`);
  if (str('accountConcurrencyLimit') !== undefined) {
    const quota = int('accountConcurrencyLimit', 0, 1, 1_000_000);
    if (quota < MIN_ACCOUNT_CONCURRENCY) {
      throw new ConfigError(
        `context key "accountConcurrencyLimit" is ${quota}: the alert function reserves ${ALERT_RESERVED_CONCURRENCY} concurrent execution and Lambda keeps ${LAMBDA_MIN_UNRESERVED_CONCURRENCY} unreserved, so the account needs a quota of at least ${MIN_ACCOUNT_CONCURRENCY} in this region; the deploy would fail. Raise it first: Service Quotas, AWS Lambda, "Concurrent executions" (L-B99A9384)`,
      );
    }
  }
  const proxyKeys: Record<ProxySettingKey, ContextKey> = {
    connectTimeout: 'proxyConnectTimeout',
    sendTimeout: 'proxySendTimeout',
    readTimeout: 'proxyReadTimeout',
    nextUpstreamTimeout: 'proxyNextUpstreamTimeout',
    slowPaths: 'slowPaths',
    stickyKeys: 'stickyKeys',
  };
  let proxy: ProxySettings;
  try {
    proxy = parseProxySettings(
      Object.fromEntries(Object.entries(proxyKeys).map(([setting, key]) => [setting, str(key)])),
      (setting) => `context key "${proxyKeys[setting]}"`,
    );
  } catch (err) {
    if (err instanceof ProxySettingsError) throw new ConfigError(err.message);
    throw err;
  }
  const fleet = parseFleet(str, int, vpc);
  const alerts: AlertSettings = {
    window,
    minWindow,
    errorRate,
    cooldownSeconds: int('alertCooldownSeconds', 300, 0, 86_400),
    alarmFunctionErrors: int('alarmFunctionErrors', 1, 1, 1000),
    alarmUndeliveredAlerts: int('alarmUndeliveredAlerts', 1, 1, 1000),
    runbookUrl,
    releaseGate: parseReleaseGateContext(str, int),
  };

  return {
    stage,
    alerts,
    alarmEmails,
    slackActions: slackActions === 'true',
    ...(releaseHistoryDays !== undefined ? { releaseHistoryDays } : {}),
    instanceType,
    publicCidr,
    operatorCidr,
    blueImage: matching('blueImage', IMAGE, imageWhat),
    greenImage: matching('greenImage', IMAGE, imageWhat),
    poolHealthcheck: matching('poolHealthcheck', POOL_HEALTHCHECK_PATTERN, POOL_HEALTHCHECK_WHAT),
    releaseBlue: matching('releaseBlue', RELEASE, 'letters, digits, ".", "_" or "-" (1-64)', 'blue-1')!,
    releaseGreen: matching('releaseGreen', RELEASE, 'letters, digits, ".", "_" or "-" (1-64)', 'green-1')!,
    initialActivePool: initial,
    amiId: matching('amiId', /^ami-[0-9a-f]{8}([0-9a-f]{9})?$/, 'an AMI id like ami-0123456789abcdef0'),
    ecrKeepImages: int('ecrKeepImages', 30, 1, 1000),
    logRetentionDays: retention as RetentionDays,
    vpc,
    proxy,
    fleet,
    ...parseGithubRelease(str),
  };
}

const FLEET_ONLY_KEYS = [
  'minHosts',
  'maxHosts',
  'minHealthyPercentage',
  'certificateArn',
  'domainName',
  'hostedZoneId',
  'ebsKmsKeyArn',
] as const;
/** A KMS key's ARN (not an alias: the key policy to change is the key's): a key id, or a multi-Region key's mrk- id. */
const KMS_KEY_ARN =
  /^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/**
 * Context hosts and the fleet-only keys. hosts=1 (the default) is the single host: a fleet-only key
 * with it is an error, not silently ignored. A fleet needs two zones: the created VPC spans two; an
 * existing VPC must name public subnets in at least two zones.
 */
function parseFleet(
  str: (key: ContextKey) => string | undefined,
  int: (key: ContextKey, fallback: number, min: number, max: number) => number,
  vpc: VpcConfig,
): FleetConfig | undefined {
  const desired = int('hosts', 1, 1, FLEET_LIMITS.maxHosts);
  if (desired === 1) {
    const given = FLEET_ONLY_KEYS.find((k) => str(k) !== undefined);
    if (given) {
      throw new ConfigError(
        `context key "${given}" is only read in fleet mode (hosts of 2 or more); hosts is 1 (one host with an Elastic IP). Set -c hosts=2 for a fleet behind a load balancer`,
      );
    }
    return undefined;
  }
  const min = int('minHosts', desired, 1, FLEET_LIMITS.maxHosts);
  const max = int('maxHosts', Math.min(desired + 1, FLEET_LIMITS.maxHosts), 1, FLEET_LIMITS.maxHosts);
  if (min > desired) throw new ConfigError(`context key "minHosts" (${min}) must not exceed hosts (${desired})`);
  if (max < desired) throw new ConfigError(`context key "maxHosts" (${max}) must be at least hosts (${desired})`);
  const minHealthyPercentage = int(
    'minHealthyPercentage',
    FLEET_LIMITS.defaultMinHealthyPercentage,
    FLEET_LIMITS.lowestMinHealthyPercentage,
    100,
  );
  const inService = minInstancesInService({ desired, minHealthyPercentage });
  if (max <= inService) {
    // The way out named must be one synth accepts: past the group limit, fewer hosts or a lower percentage.
    const fix =
      inService + 1 <= FLEET_LIMITS.maxHosts
        ? `Raise maxHosts to ${inService + 1} or lower minHealthyPercentage`
        : `maxHosts cannot go above ${FLEET_LIMITS.maxHosts} (the group limit): set hosts to at most ${FLEET_LIMITS.maxHosts - 1} at minHealthyPercentage ${minHealthyPercentage}, or lower minHealthyPercentage`;
    throw new ConfigError(
      `context key "maxHosts" (${max}) must exceed the ${inService} hosts a rolling update keeps in service (minHealthyPercentage ${minHealthyPercentage}% of hosts ${desired}): the update launches its new host next to them, and CloudFormation refuses a MinInstancesInService that is not below MaxSize. ${fix}`,
    );
  }
  if (!vpc.create && new Set(vpc.availabilityZones).size < 2) {
    throw new ConfigError(
      `context key "publicSubnetIds" must name public subnets in at least two availability zones in fleet mode (hosts=${desired}): the load balancer and the hosts span two zones; got zones "${vpc.availabilityZones.join(',')}"`,
    );
  }
  const certificateArn = str('certificateArn');
  const domainName = str('domainName')?.toLowerCase();
  const hostedZoneId = str('hostedZoneId');
  if (
    certificateArn !== undefined &&
    !/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]{36}$/.test(certificateArn)
  ) {
    throw new ConfigError(
      `context key "certificateArn" must be an ACM certificate ARN like arn:aws:acm:eu-west-1:123456789012:certificate/0123abcd-..., got "${certificateArn}"`,
    );
  }
  if (domainName !== undefined && !DOMAIN.test(domainName)) {
    throw new ConfigError(`context key "domainName" must be a DNS name like shop.example.com, got "${domainName}"`);
  }
  if (hostedZoneId !== undefined && !/^Z[A-Z0-9]{1,32}$/.test(hostedZoneId)) {
    throw new ConfigError(
      `context key "hostedZoneId" must be a Route 53 hosted zone id like Z0123456789ABCDEFGHIJ, got "${hostedZoneId}"`,
    );
  }
  let https: FleetHttps;
  if (certificateArn !== undefined) {
    if (domainName === undefined) {
      throw new ConfigError(
        'context key "domainName" is required with certificateArn: it is the name clients use (the certificate covers it), and the public URL /bluegreen/<stage>/public-url is https://<domainName>',
      );
    }
    https = { kind: 'certificate', certificateArn, domainName, hostedZoneId };
  } else if (domainName !== undefined) {
    if (hostedZoneId === undefined) {
      throw new ConfigError(
        'context key "hostedZoneId" is required with domainName and no certificateArn: the stack validates the certificate it creates by DNS in that zone',
      );
    }
    https = { kind: 'dns', domainName, hostedZoneId };
  } else {
    if (hostedZoneId !== undefined)
      throw new ConfigError('context key "hostedZoneId" needs domainName: the name to create in the zone');
    https = { kind: 'none' };
  }
  const ebsKmsKeyArn = str('ebsKmsKeyArn');
  if (ebsKmsKeyArn !== undefined && !KMS_KEY_ARN.test(ebsKmsKeyArn)) {
    throw new ConfigError(
      `context key "ebsKmsKeyArn" must be a KMS key ARN like arn:aws:kms:eu-west-1:123456789012:key/0123abcd-0123-4567-89ab-0123456789ab (a key, not an alias: its key policy must grant the Auto Scaling service-linked role), got "${ebsKmsKeyArn}"`,
    );
  }
  return { desired, min, max, minHealthyPercentage, https, ...(ebsKmsKeyArn ? { ebsKmsKeyArn } : {}) };
}

/**
 * Context `alarmEmails`: "a@x.com,b@y.com" (from -c) or ["a@x.com", "b@y.com"] (cdk.json). Each
 * address is checked; duplicates (case-insensitive) are dropped, since SNS would subscribe once.
 */
function parseEmails(value: unknown): string[] {
  const key = 'alarmEmails';
  if (value === undefined || value === null || value === '') return [];
  let items: string[];
  if (typeof value === 'string') items = csv(value);
  else if (Array.isArray(value) && value.every((v) => typeof v === 'string'))
    items = value.map((v: string) => v.trim()).filter(Boolean);
  else
    throw new ConfigError(
      `context key "${key}" must be comma-separated email addresses or a list of them, got ${JSON.stringify(value)}`,
    );
  const bad = items.filter((e) => !EMAIL.test(e) || e.length > 254);
  if (bad.length)
    throw new ConfigError(
      `context key "${key}" must be email addresses like oncall@example.com, got "${bad.join('", "')}"`,
    );
  const unique = [...new Map(items.map((e) => [e.toLowerCase(), e])).values()];
  if (unique.length > MAX_ALARM_EMAILS)
    throw new ConfigError(
      `context key "${key}" lists ${unique.length} addresses; at most ${MAX_ALARM_EMAILS} (use a mailing list or subscribe your pager to the AlarmTopic output)`,
    );
  return unique;
}

/** The release gate's stage defaults from context: releaseMinRequests, releaseMaxP99, releaseMaxP99Ratio. */
function parseReleaseGateContext(
  str: (key: ContextKey) => string | undefined,
  int: (key: ContextKey, fallback: number, min: number, max: number) => number,
): AlertSettings['releaseGate'] {
  const gate: { minRequests?: number; maxP99Ms?: number; maxP99Ratio?: number } = {};
  if (str('releaseMinRequests') !== undefined) gate.minRequests = int('releaseMinRequests', 0, 1, MAX_MIN_REQUESTS);
  const p99 = str('releaseMaxP99');
  if (p99 !== undefined) gate.maxP99Ms = parseMilliseconds(p99, 'context key "releaseMaxP99"');
  const ratio = str('releaseMaxP99Ratio');
  if (ratio !== undefined) {
    const n = Number(ratio);
    if (!/^\d+(\.\d+)?$/.test(ratio) || !(n > 1) || n > 1000)
      throw new ConfigError(
        `context key "releaseMaxP99Ratio" must be a number above 1 (up to 1000), like 3, got "${ratio}"`,
      );
    gate.maxP99Ratio = n;
  }
  return gate;
}

/** Releases from GitHub Actions: whose jobs may assume the stage's release role (lib/release-role.ts). */
export interface GithubReleaseConfig {
  /** owner/repo, exactly as GitHub spells it: the token's subject is compared case-sensitively. */
  readonly repository: string;
  /** The GitHub environment the release job runs in; undefined = jobs on pushes to main (no environment). */
  readonly environment?: string;
  /** The account's existing provider for token.actions.githubusercontent.com; undefined = the stack creates it. */
  readonly oidcProviderArn?: string;
}

/** GitHub's rules: an owner is letters, digits and single hyphens inside (at most 39); a repository letters, digits, ".", "_", "-" (at most 100). */
const GITHUB_OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
const GITHUB_REPO = /^[A-Za-z0-9._-]{1,100}$/;
/** Narrower than GitHub's: the name goes into the token's subject after a colon, so no colon, space or slash. */
const GITHUB_ENVIRONMENT = /^[A-Za-z0-9._-]{1,255}$/;
/** Only GitHub's own issuer: the trust's condition keys are named after it (token.actions.githubusercontent.com:sub). */
const GITHUB_OIDC_PROVIDER_ARN = /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/token\.actions\.githubusercontent\.com$/;

/**
 * Context githubRepo (`owner/repo` or `owner/repo:environment`) and githubOidcProviderArn. No
 * wildcard and no other branch: a branch other than main releases through an environment, whose
 * deployment branches and reviewers GitHub enforces before the job gets a token.
 */
function parseGithubRelease(str: (key: ContextKey) => string | undefined): { github?: GithubReleaseConfig } {
  const value = str('githubRepo');
  const oidcProviderArn = str('githubOidcProviderArn');
  if (value === undefined) {
    if (oidcProviderArn !== undefined)
      throw new ConfigError(
        'context key "githubOidcProviderArn" is only read with githubRepo (the repository whose jobs may assume the release role)',
      );
    return {};
  }
  const what = `context key "githubRepo" must be owner/repo or owner/repo:environment as GitHub spells them (owner: letters, digits and single hyphens, at most 39; repo: letters, digits, ".", "_" or "-", at most 100; environment: letters, digits, ".", "_" or "-"), got "${value}"`;
  if (/[*?]/.test(value))
    throw new ConfigError(
      `${what}: no wildcard; the role trusts one repository and one environment (or main), so another repository or a pull request never gets it`,
    );
  if (value.includes('@'))
    throw new ConfigError(
      `${what}: a branch is not read; without an environment the role trusts pushes to main only. For another branch use a GitHub environment whose deployment branches allow it, and owner/repo:environment`,
    );
  const m = value.match(/^([^/:]+)\/([^/:]+)(?::([^:]*))?$/);
  if (!m || !GITHUB_OWNER.test(m[1]) || !GITHUB_REPO.test(m[2]) || m[2] === '.' || m[2] === '..')
    throw new ConfigError(what);
  if (m[3] !== undefined && !GITHUB_ENVIRONMENT.test(m[3])) throw new ConfigError(what);
  if (oidcProviderArn !== undefined && !GITHUB_OIDC_PROVIDER_ARN.test(oidcProviderArn))
    throw new ConfigError(
      `context key "githubOidcProviderArn" must be the ARN of the account's OIDC provider for GitHub Actions, like arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com, got "${oidcProviderArn}"`,
    );
  return {
    github: {
      repository: `${m[1]}/${m[2]}`,
      ...(m[3] !== undefined ? { environment: m[3] } : {}),
      ...(oidcProviderArn !== undefined ? { oidcProviderArn } : {}),
    },
  };
}
