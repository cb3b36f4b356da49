// A pool's options (/bluegreen/<stage>/pools/<pool>/options, a JSON object, `{}` by default): what a
// release pins beside image, release and env that is not the container's plain environment: the
// secrets it gets (names and pinned versions, never values) and its health check and drain times.
// The rule is data, generated into userdata/pool-options.json for the host (userdata/pool-options.jq
// applies it); test/unit/pool-options.test.ts runs both on the same texts.
import { POOL_ENV_RULE } from './pool-env';

export interface PoolOptions {
  /** NAME -> what the host fetches: a pinned Parameter Store version ("3") or a Secrets Manager reference. Owned by secrets. */
  secrets?: Record<string, string>;
  /** Docker health check start period and per-probe timeout, and the stop grace (drain) period, in seconds. Owned by branch slow-starts (validate them as whole numbers in sane bounds; the host passes them to Compose per pool). */
  healthStartPeriodSeconds?: number;
  healthTimeoutSeconds?: number;
  drainSeconds?: number;
}

export type PoolOptionSecondsKey = 'healthStartPeriodSeconds' | 'healthTimeoutSeconds' | 'drainSeconds';

export interface PoolOptionsRule {
  /** Whole seconds: bounds and today's value when absent (userdata/docker-compose.yml's defaults). */
  seconds: Record<PoolOptionSecondsKey, { min: number; max: number; default: number; compose: string }>;
  /** A secret's name: an env var name (POOL_ENV_RULE.keyPattern), not one the host sets. */
  secretNamePattern: string;
  reservedNames: string[];
  /** What the host fetches: a Parameter Store version, or a Secrets Manager secret's ARN with an optional JSON key. */
  secretRefPattern: string;
  maxSecrets: number;
  problems: Record<
    | 'notJson'
    | 'notObject'
    | 'unknownKey'
    | 'notWhole'
    | 'outOfBounds'
    | 'secretsNotObject'
    | 'tooManySecrets'
    | 'badSecretName'
    | 'reservedSecretName'
    | 'badSecretRef',
    string
  >;
}

/** A Parameter Store version (1..): what `bluegreen release` pins a SecureString secret to. */
export const SECRET_VERSION_PATTERN = '[1-9][0-9]{0,9}';
/** A Secrets Manager secret's full ARN: …:secret:<name>-<6 random characters> (six colons). */
const SECRET_ARN_BASE = 'arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}';
/** One key of the secret's JSON. */
const SECRET_JSON_KEY = '[A-Za-z0-9_.-]{1,128}';
/** A Secrets Manager version id (32-64 characters; a UUID when Secrets Manager makes it). */
export const SECRET_VERSION_ID_PATTERN = '[A-Za-z0-9-]{32,64}';
/** What `secret set --from-secrets-manager` stores: the ARN, then optionally `:<json key>`. */
export const SECRET_ARN_PATTERN = `${SECRET_ARN_BASE}(?::${SECRET_JSON_KEY})?`;
/**
 * What a release pins for a Secrets Manager secret: the version current at its start, in ECS's
 * `valueFrom` shape `<ARN>:<json key or empty>:<version stage, empty>:<version id>` (nine colons).
 * The unpinned form (SECRET_ARN_PATTERN: the current value at every fetch) is still read, for
 * options written before releases pinned it.
 */
export const SECRET_SM_PIN_PATTERN = `${SECRET_ARN_BASE}(?::(?:${SECRET_JSON_KEY})?::${SECRET_VERSION_ID_PATTERN}|:${SECRET_JSON_KEY})?`;

export const POOL_OPTIONS_RULE: PoolOptionsRule = {
  seconds: {
    // Compose's variable names per pool: <POOL>_<compose> (BLUE_HEALTH_START_PERIOD, ...).
    healthStartPeriodSeconds: { min: 0, max: 1800, default: 10, compose: 'HEALTH_START_PERIOD' },
    healthTimeoutSeconds: { min: 1, max: 300, default: 3, compose: 'HEALTH_TIMEOUT' },
    drainSeconds: { min: 0, max: 3600, default: 10, compose: 'STOP_GRACE' },
  },
  secretNamePattern: POOL_ENV_RULE.keyPattern,
  reservedNames: POOL_ENV_RULE.reservedKeys,
  secretRefPattern: `(?:${SECRET_VERSION_PATTERN}|${SECRET_SM_PIN_PATTERN})`,
  maxSecrets: 50,
  problems: {
    notJson: 'not valid JSON',
    notObject: 'not a JSON object',
    unknownKey: 'unknown key (known: secrets, healthStartPeriodSeconds, healthTimeoutSeconds, drainSeconds)',
    notWhole: 'healthStartPeriodSeconds, healthTimeoutSeconds and drainSeconds must be whole numbers',
    outOfBounds:
      'healthStartPeriodSeconds must be 0-1800, healthTimeoutSeconds 1-300 and drainSeconds 0-3600 (seconds)',
    secretsNotObject: 'secrets must be a JSON object of strings',
    tooManySecrets: 'secrets holds more than 50 names',
    badSecretName:
      'secret names must be environment variable names (a letter or _, then letters, digits or _; at most 128)',
    reservedSecretName: 'APP_POOL, RELEASE_ID, PORT and HOST are set by the host',
    badSecretRef:
      'each secret must be a Parameter Store version (1, 2, ...) or a Secrets Manager ARN with an optional :key and ::version id',
  },
};

const SECONDS_KEYS = Object.keys(POOL_OPTIONS_RULE.seconds) as PoolOptionSecondsKey[];
const KNOWN_KEYS: ReadonlySet<string> = new Set(['secrets', ...SECONDS_KEYS]);
/** A pattern of this rule as a regular expression for the whole string. */
export const whole = (re: string) => new RegExp(`^(?:${re})$`);
const NAME = whole(POOL_OPTIONS_RULE.secretNamePattern);
const REF = whole(POOL_OPTIONS_RULE.secretRefPattern);
const problems = POOL_OPTIONS_RULE.problems;
const byKey = (a: [string, unknown], b: [string, unknown]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** Why the host would refuse these options (the same checks in the same order as pool-options.jq), or undefined. */
export function poolOptionsProblem(options: unknown): string | undefined {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return problems.notObject;
  const o = options as Record<string, unknown>;
  const unknown = Object.keys(o)
    .filter((k) => !KNOWN_KEYS.has(k))
    .sort();
  if (unknown.length) return `${unknown[0]}: ${problems.unknownKey}`;
  const given = SECONDS_KEYS.filter((key) => key in o);
  if (given.some((key) => typeof o[key] !== 'number' || !Number.isInteger(o[key]))) return problems.notWhole;
  const { seconds } = POOL_OPTIONS_RULE;
  if (given.some((key) => (o[key] as number) < seconds[key].min || (o[key] as number) > seconds[key].max))
    return problems.outOfBounds;
  if ('secrets' in o) {
    const s = o.secrets;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) return problems.secretsNotObject;
    const entries = Object.entries(s as Record<string, unknown>).sort(byKey);
    if (entries.some(([, v]) => typeof v !== 'string')) return problems.secretsNotObject;
    if (entries.length > POOL_OPTIONS_RULE.maxSecrets) return problems.tooManySecrets;
    if (entries.some(([k]) => !NAME.test(k))) return problems.badSecretName;
    if (entries.some(([k]) => POOL_OPTIONS_RULE.reservedNames.includes(k))) return problems.reservedSecretName;
    if (entries.some(([, v]) => !REF.test(v as string))) return problems.badSecretRef;
  }
  return undefined;
}

/** The parameter's raw text, as the host reads it: the options, or why they are refused. */
export function parsePoolOptions(text: string): { options: PoolOptions } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: problems.notJson };
  }
  const problem = poolOptionsProblem(value);
  return problem ? { problem } : { options: value as PoolOptions };
}

/** Options as stored: keys sorted (the host compares them as text), `{}` when none. */
export function serializePoolOptions(options: PoolOptions | undefined): string {
  const o = options ?? {};
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(o).sort() as Array<keyof PoolOptions>) {
    const v = o[key];
    if (v === undefined) continue;
    out[key] = key === 'secrets' ? Object.fromEntries(Object.entries(v as object).sort(byKey)) : v;
  }
  return JSON.stringify(out);
}

/** Whether the options say nothing (absent, `{}`, or only empty secrets). */
export function isEmptyPoolOptions(options: PoolOptions | undefined): boolean {
  if (!options) return true;
  return serializePoolOptions(options) === '{}' || serializePoolOptions(options) === '{"secrets":{}}';
}

/** A pool option in seconds: its value or today's default. */
export function optionSeconds(options: PoolOptions | undefined, key: PoolOptionSecondsKey): number {
  return options?.[key] ?? POOL_OPTIONS_RULE.seconds[key].default;
}
