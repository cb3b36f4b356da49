// `bluegreen secret set|list|rm`: a stage's secrets (AWS with --stage, else local mode). A value
// comes from stdin or --file, never from argv (a process list and shell history show argv); no
// command prints one.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../core/config-error';
import {
  formatSecretList,
  SecretStore,
  secretNameProblem,
  secretsManagerReferenceProblem,
  secretValueProblem,
} from '../../core/secrets';
import { AWS_FLAGS, awsTarget, namesStage } from '../aws-target';
import { AwsSecretStore } from './aws-store';
import type { Out } from '../../support/output';

export const SECRET_USAGE = `usage: bluegreen secret set NAME [--file F | --from-secrets-manager ARN[:key]] [--stage S]
       bluegreen secret list [--stage S]
       bluegreen secret rm NAME [--stage S]
  set: the value from stdin (one trailing line break dropped) or --file F; never from the command line.
       Stored as a SecureString /bluegreen/<stage>/secrets/NAME (locally: 0600 file in the state dir).
       --from-secrets-manager stores a reference instead: the host fetches the secret (and its JSON key)
       itself; the secret must carry the tag BluegreenStage=<stage>.
  A pool gets the stage's secrets through a release (all of them, or the --secret NAME it names),
  pinned to the version current when the release starts (a Secrets Manager secret too, by version id):
  rotating a secret = secret set (or a new Secrets Manager version) + a release.
  list: names, versions, kind and last change; never a value.`;

/** Where the value comes from: stdin (piped) or a file. */
export interface SecretInput {
  stdin: () => Promise<string>;
  stdinIsTerminal: boolean;
}

export type LocalSecretStoreFactory = (env: NodeJS.ProcessEnv) => SecretStore;

/** One trailing line break (echo's, a file's last line) is not part of the value. */
const dropFinalNewline = (text: string) => text.replace(/\r?\n$/, '');

export function readProcessStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

export async function secretCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: Out,
  local: LocalSecretStoreFactory,
  input: SecretInput,
): Promise<number> {
  if (args.some((a) => a === '--value' || a.startsWith('--value=')))
    throw new ConfigError(
      '--value: a secret never comes from the command line (the process list and shell history keep it): pipe it (bluegreen secret set NAME < file) or use --file F',
    );
  const [sub, ...rest] = args;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: { ...AWS_FLAGS, file: { type: 'string' }, 'from-secrets-manager': { type: 'string' } },
    });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n${SECRET_USAGE}`);
  }
  const { values: v, positionals } = parsed;
  const store = namesStage(args, env)
    ? (() => {
        const target = awsTarget(v, env);
        return new AwsSecretStore(target.ssm, target.stage);
      })()
    : local(env);

  if (sub === 'list') {
    if (positionals.length) throw new ConfigError(`secret list takes no NAME\n${SECRET_USAGE}`);
    out(formatSecretList(await store.list(), store.target));
    return 0;
  }
  if (sub !== 'set' && sub !== 'rm') throw new ConfigError(`secret: set, list or rm\n${SECRET_USAGE}`);
  const [name, ...extra] = positionals;
  if (!name || extra.length) throw new ConfigError(`secret ${sub} takes one NAME\n${SECRET_USAGE}`);
  const nameProblem = secretNameProblem(name);
  if (nameProblem) throw new ConfigError(`${name}: ${nameProblem}`);

  if (sub === 'rm') {
    const removed = await store.remove(name);
    out(
      removed
        ? `secret ${name} removed from ${store.target}: pools that run with it keep it until their next release (which can no longer name it)`
        : `no secret ${name} on ${store.target}: nothing removed`,
    );
    return removed ? 0 : 1;
  }

  const reference = v['from-secrets-manager'];
  if (reference !== undefined) {
    if (v.file !== undefined) throw new ConfigError('--file and --from-secrets-manager: one or the other');
    const problem = secretsManagerReferenceProblem(reference);
    if (problem) throw new ConfigError(problem);
    if (!namesStage(args, env))
      throw new ConfigError('--from-secrets-manager needs a deployed stage (--stage S): local mode stores values only');
    const stored = await store.setReference(name, reference);
    out(
      `secret ${name} on ${store.target}: version ${stored.version}, a reference to ${reference} (the secret must carry the tag BluegreenStage=${store.target.replace(/^stage /, '')}). Pools get it with the next release.`,
    );
    return 0;
  }

  let raw: string;
  if (v.file !== undefined) {
    try {
      raw = readFileSync(v.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`--file ${v.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else {
    if (input.stdinIsTerminal)
      throw new ConfigError(`secret set ${name}: pipe the value (bluegreen secret set ${name} < file) or use --file F`);
    raw = await input.stdin();
  }
  const value = dropFinalNewline(raw);
  const valueProblem = secretValueProblem(value);
  if (valueProblem) throw new ConfigError(`secret set ${name}: ${valueProblem}; nothing stored`);
  const stored = await store.set(name, value);
  out(
    `secret ${name} set on ${store.target}: version ${stored.version}. Pools get it with the next release (bluegreen release ...${store.target === 'local' ? '' : ` --stage ${store.target.replace(/^stage /, '')}`}).`,
  );
  return 0;
}
