// A stage's secrets (README "Secrets"): values a pool's container gets in its environment that never
// pass through argv, the release record, the pool's env parameter or a file on the host's disk.
// Stored per stage (AWS: /bluegreen/<stage>/secrets/<NAME>, a SecureString; or a String holding a
// Secrets Manager reference; locally: a 0600 file in the state dir), pinned by a release to the
// version current at its start (PoolOptions.secrets), fetched by the host when it (re)creates a pool.
import { envKeyProblem, envValueProblem } from './pool-env';
import { SECRET_ARN_PATTERN } from './pool-options';

/** How the value is stored: a Parameter Store SecureString, or a reference to a Secrets Manager secret. */
export type SecretKind = 'parameter-store' | 'secrets-manager';

/** What `secret list` shows of a secret: never its value. */
export interface StoredSecret {
  name: string;
  kind: SecretKind;
  /** Its Parameter Store (or local) version: what a release pins. */
  version: number;
  /** When it last changed (ISO 8601). */
  lastModified: string;
  /** A Secrets Manager secret's ARN, with `:<json key>` when one key of its JSON is meant. */
  reference?: string;
}

/** Where a stage's secrets live: SSM (ops/secrets/aws-store.ts) or local mode's file (local/secret-store.ts). */
export interface SecretStore {
  /** For messages: "local" or "stage prod". */
  readonly target: string;
  list(): Promise<StoredSecret[]>;
  /** Stores a new value (a new version). */
  set(name: string, value: string): Promise<StoredSecret>;
  /** Stores a Secrets Manager reference instead of a value (AWS only). */
  setReference(name: string, reference: string): Promise<StoredSecret>;
  /**
   * A Secrets Manager reference pinned to the secret's current version (secretsManagerPin), so a
   * rotation reaches the pools through a release only. AWS only: a local store holds values.
   */
  pinReference?(reference: string): Promise<string>;
  /** Deletes the secret (every version); false when there was none. */
  remove(name: string): Promise<boolean>;
}

/** A standard SecureString holds 4 KB (bytes, AWS_LIMITS: standard tier): the limit for every store. */
export const MAX_SECRET_VALUE_BYTES = 4096;

/** Why NAME cannot name a secret (an env var name the host does not set itself), or undefined. */
export function secretNameProblem(name: string): string | undefined {
  const problem = envKeyProblem(name);
  return problem && `secret names: ${problem}`;
}

/**
 * Why a value cannot be a secret's, or undefined: the host writes it into the container's env file
 * between single quotes (Compose's env-file parser: core/pool-env.ts's rule for env values).
 */
export function secretValueProblem(value: string): string | undefined {
  if (value === '') return 'the value is empty';
  if (Buffer.byteLength(value, 'utf8') > MAX_SECRET_VALUE_BYTES)
    return `the value is longer than ${MAX_SECRET_VALUE_BYTES} bytes (a standard SecureString)`;
  const problem = envValueProblem(value);
  return problem && `${problem.replace(/^values/, 'the value')} (Compose's env file could not carry it)`;
}

const ARN = new RegExp(`^(?:${SECRET_ARN_PATTERN})$`);

/** `--from-secrets-manager ARN[:key]`: the reference, or why not. */
export function secretsManagerReferenceProblem(reference: string): string | undefined {
  return ARN.test(reference)
    ? undefined
    : `--from-secrets-manager must be a Secrets Manager secret's full ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>), optionally followed by :<json key>, got "${reference}"`;
}

/** A Secrets Manager reference or pin, in parts: `<ARN>[:<key>]` or `<ARN>:<key or empty>::<version id>`. */
export interface SecretsManagerRef {
  arn: string;
  key?: string;
  versionId?: string;
}

/** The parts of a reference or pin (an ARN has six colons: a seventh starts the key, nine a pin). */
export function parseSecretsManagerRef(ref: string): SecretsManagerRef {
  const parts = ref.split(':');
  const arn = parts.slice(0, 7).join(':');
  const key = parts[7] || undefined;
  const versionId = parts.length === 10 ? parts[9] : undefined;
  return { arn, ...(key ? { key } : {}), ...(versionId ? { versionId } : {}) };
}

/** A reference pinned to one version, in ECS's valueFrom shape (stage left empty: the id says it all). */
export function secretsManagerPin(reference: string, versionId: string): string {
  const { arn, key } = parseSecretsManagerRef(reference);
  return `${arn}:${key ?? ''}::${versionId}`;
}

/** What a release pins for a secret: its version, or (Secrets Manager) its reference, pinned later. */
export function pinOf(secret: StoredSecret): string {
  return secret.kind === 'secrets-manager' && secret.reference ? secret.reference : String(secret.version);
}

/**
 * The secrets a release pins: every stored one (`wanted` undefined) or the ones it names, each at
 * its current version. Throws a one-line reason when a named secret does not exist or one shares a
 * name with the release's --env.
 */
export function pinSecrets(
  stored: readonly StoredSecret[],
  wanted: readonly string[] | undefined,
  env: Record<string, string>,
  target: string,
): Record<string, string> {
  const byName = new Map(stored.map((s) => [s.name, s]));
  const names = wanted ? [...new Set(wanted)] : [...byName.keys()];
  const missing = names.filter((n) => !byName.has(n));
  if (missing.length)
    throw new Error(
      `--secret ${missing.join(', ')}: no such secret on ${target} (bluegreen secret list; bluegreen secret set NAME)`,
    );
  const clash = names.filter((n) => n in env);
  if (clash.length)
    throw new Error(`--env ${clash.join(', ')}: also a secret of ${target}; a variable is either --env or a secret`);
  return Object.fromEntries(names.sort().map((n) => [n, pinOf(byName.get(n)!)]));
}

/** `secret list`: one line per secret, never a value. */
export function formatSecretList(secrets: readonly StoredSecret[], target: string): string {
  if (secrets.length === 0) return `no secrets on ${target} (bluegreen secret set NAME < value)`;
  const rows = [...secrets]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((s) => [
      s.name,
      `v${s.version}`,
      s.kind === 'secrets-manager' ? `secrets-manager ${s.reference}` : 'parameter-store',
      s.lastModified,
    ]);
  const header = ['NAME', 'VERSION', 'KIND', 'LAST CHANGE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Pinned secrets as the record and the CLI show them: `NAME@v3`, `NAME@secrets-manager:<version id's first 8>`. */
export function describePinned(secrets: Record<string, string> | undefined): string {
  const shown = (pin: string) => {
    if (/^\d+$/.test(pin)) return `v${pin}`;
    const { versionId } = parseSecretsManagerRef(pin);
    return versionId ? `secrets-manager:${versionId.slice(0, 8)}` : 'secrets-manager';
  };
  return Object.entries(secrets ?? {})
    .map(([n, pin]) => `${n}@${shown(pin)}`)
    .join(', ');
}
