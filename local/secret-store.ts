// Local mode's secrets: one JSON file in the state dir (secrets.json), created with mode 0600 (never
// chmod-ed after: no moment with wider permissions), each write a new 0600 file renamed over the old.
// Keeps the last LOCAL_SECRET_VERSIONS versions of each secret, so a pool pinned to an older version
// (the previous pool, a restore) still finds its value.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { SecretStore, StoredSecret } from '../core/secrets';

export const LOCAL_SECRET_VERSIONS = 20;

interface LocalSecretVersion {
  version: number;
  value: string;
  at: string;
}
type LocalSecretsFile = Record<string, LocalSecretVersion[]>;

export const localSecretsFile = (stateDir: string) => path.join(stateDir, 'secrets.json');

function read(stateDir: string): LocalSecretsFile {
  const file = localSecretsFile(stateDir);
  if (!existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8')) as LocalSecretsFile;
}

let counter = 0;
function write(stateDir: string, data: LocalSecretsFile): void {
  const file = localSecretsFile(stateDir);
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${counter++}.tmp`;
  // 'wx': a new file, created 0600 by open(2) itself (the umask can only narrow it).
  writeFileSync(tmp, `${JSON.stringify(data)}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
}

const listed = (name: string, versions: LocalSecretVersion[]): StoredSecret => {
  const last = versions[versions.length - 1];
  return { name, kind: 'parameter-store', version: last.version, lastModified: last.at };
};

export class LocalSecretStore implements SecretStore {
  readonly target = 'local';
  constructor(
    private readonly stateDir: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(): Promise<StoredSecret[]> {
    return Object.entries(read(this.stateDir)).map(([name, versions]) => listed(name, versions));
  }

  async set(name: string, value: string): Promise<StoredSecret> {
    const data = read(this.stateDir);
    const versions = data[name] ?? [];
    const version = (versions[versions.length - 1]?.version ?? 0) + 1;
    data[name] = [...versions, { version, value, at: this.now().toISOString() }].slice(-LOCAL_SECRET_VERSIONS);
    write(this.stateDir, data);
    return listed(name, data[name]);
  }

  async setReference(): Promise<StoredSecret> {
    throw new Error('--from-secrets-manager needs a deployed stage (--stage S): local mode stores values only');
  }

  async remove(name: string): Promise<boolean> {
    const data = read(this.stateDir);
    if (!data[name]) return false;
    delete data[name];
    write(this.stateDir, data);
    return true;
  }
}

/**
 * The values of pinned secrets (NAME -> version), for the local pool agent: the process gets them
 * in its environment, nothing else keeps them. Throws naming a secret or version that is not kept.
 */
export function resolveLocalSecrets(stateDir: string, pinned: Record<string, string>): Record<string, string> {
  const data = read(stateDir);
  const out: Record<string, string> = {};
  for (const [name, pin] of Object.entries(pinned)) {
    const found = data[name]?.find((v) => String(v.version) === pin);
    if (!found) throw new Error(`secret ${name} version ${pin} is not in ${localSecretsFile(stateDir)}`);
    out[name] = found.value;
  }
  return out;
}
