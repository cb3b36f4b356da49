// A pool's extra environment (`--env KEY=VALUE`, /bluegreen/<stage>/pools/<pool>/env): which values
// the host can write into the pool's env file so that Compose reads exactly them. The rule is data,
// defined here and generated into userdata/pool-env.json for the host (userdata/pool-env.jq applies it
// and writes the file); test/unit/pool-env.test.ts runs both on the same values.
export interface PoolEnvRule {
  /** A variable name, without anchors (each reader anchors it to the whole key). */
  keyPattern: string;
  /** Set by the host itself (docker-compose.yml's `environment:` and the app's own listener). */
  reservedKeys: string[];
  /** Characters no value may hold. */
  valueForbiddenPattern: string;
  /** What no value may end with. */
  valueForbiddenEnd: string;
  problems: Record<
    'notJson' | 'notObject' | 'notString' | 'badKey' | 'reservedKey' | 'badValue' | 'endsInBackslash',
    string
  >;
}

/** The rule: the host gets it as userdata/pool-env.json, generated from this (core/host-files.ts). */
export const POOL_ENV_RULE: PoolEnvRule = {
  keyPattern: '[A-Za-z_][A-Za-z0-9_]{0,127}',
  reservedKeys: ['APP_POOL', 'RELEASE_ID', 'PORT', 'HOST'],
  valueForbiddenPattern: "['\\n\\r\\x00]",
  valueForbiddenEnd: '\\',
  problems: {
    notJson: 'not valid JSON',
    notObject: 'not a JSON object',
    notString: 'values must be strings',
    badKey: 'keys must be environment variable names (a letter or _, then letters, digits or _; at most 128; one line)',
    reservedKey: 'APP_POOL, RELEASE_ID, PORT and HOST are set by the host',
    badValue: 'values must not hold a single quote, a line break or a NUL character',
    endsInBackslash: "values must not end in a backslash (Compose reads \\' as a quote inside '...')",
  },
};

/** JavaScript's `$` without the m flag is the end of the text (jq's is not: the host anchors with \z). */
export const ENV_KEY_PATTERN = new RegExp(`^(?:${POOL_ENV_RULE.keyPattern})$`);
export const RESERVED_ENV: ReadonlySet<string> = new Set(POOL_ENV_RULE.reservedKeys);
const FORBIDDEN = new RegExp(POOL_ENV_RULE.valueForbiddenPattern);
const problems = POOL_ENV_RULE.problems;

export function envKeyProblem(key: string): string | undefined {
  if (!ENV_KEY_PATTERN.test(key)) return problems.badKey;
  if (RESERVED_ENV.has(key)) return problems.reservedKey;
  return undefined;
}

export function envValueProblem(value: string): string | undefined {
  if (FORBIDDEN.test(value)) return problems.badValue;
  if (value.endsWith(POOL_ENV_RULE.valueForbiddenEnd)) return problems.endsInBackslash;
  return undefined;
}

const byKey = (a: [string, unknown], b: [string, unknown]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** Why the host would refuse this env (the same checks in the same order as pool-env.jq), or undefined. */
export function poolEnvProblem(env: unknown): string | undefined {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) return problems.notObject;
  const entries = Object.entries(env as Record<string, unknown>);
  if (entries.some(([, v]) => typeof v !== 'string')) return problems.notString;
  if (entries.some(([k]) => !ENV_KEY_PATTERN.test(k))) return problems.badKey;
  if (entries.some(([k]) => RESERVED_ENV.has(k))) return problems.reservedKey;
  for (const [, v] of entries.sort(byKey)) {
    const problem = envValueProblem(v as string);
    if (problem) return problem;
  }
  return undefined;
}

/** The parameter's raw text, as the host reads it. */
export function poolEnvTextProblem(text: string): string | undefined {
  let env: unknown;
  try {
    env = JSON.parse(text);
  } catch {
    return problems.notJson;
  }
  return poolEnvProblem(env);
}

/** The env file the host writes for an env it accepts: KEY='value' lines, sorted by key. */
export function poolEnvFileLines(env: Record<string, string>): string[] {
  return Object.entries(env)
    .sort(byKey)
    .map(([k, v]) => `${k}='${v}'`);
}
