// Secrets: names, values and references (core/secrets.ts), pinning for a release, the listing (never
// a value), local mode's file store (0600 from its creation, versions kept) and the `secret` command's
// input rules (stdin or --file, never argv).
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { ConfigError } from '../../core/config-error';
import {
  describePinned,
  formatSecretList,
  parseSecretsManagerRef,
  pinSecrets,
  secretsManagerPin,
  secretNameProblem,
  secretsManagerReferenceProblem,
  secretValueProblem,
  StoredSecret,
} from '../../core/secrets';
import { LocalSecretStore, localSecretsFile, resolveLocalSecrets } from '../../local/secret-store';
import { AwsSecretStore } from '../../ops/secrets/aws-store';
import { secretCommand } from '../../ops/secrets/commands';
import { parseReleaseArgs } from '../../ops/release/args';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf';

test('names: an env var name the host does not set itself', () => {
  expect(secretNameProblem('DB_PASSWORD')).toBeUndefined();
  expect(secretNameProblem('1DB')).toMatch(/^secret names: keys must be environment variable names/);
  expect(secretNameProblem('PORT')).toMatch(/set by the host/);
});

test("values: what Compose's env file can carry between single quotes, at most 4 KB, not empty", () => {
  expect(secretValueProblem('p@ss word $HOME #x \\n')).toBeUndefined();
  expect(secretValueProblem("it's")).toMatch(/single quote/);
  expect(secretValueProblem('a\nb')).toMatch(/line break/);
  expect(secretValueProblem('x\\')).toMatch(/backslash/);
  expect(secretValueProblem('')).toBe('the value is empty');
  expect(secretValueProblem('é'.repeat(2049))).toMatch(/4096 bytes/);
});

test('Secrets Manager references: a full secret ARN, optionally :key', () => {
  expect(secretsManagerReferenceProblem(ARN)).toBeUndefined();
  expect(secretsManagerReferenceProblem(`${ARN}:password`)).toBeUndefined();
  expect(secretsManagerReferenceProblem('prod/db')).toMatch(/full ARN/);
  expect(secretsManagerReferenceProblem('arn:aws:ssm:eu-west-1:123456789012:parameter/x')).toMatch(/full ARN/);
});

const STORED: StoredSecret[] = [
  { name: 'DB_PASSWORD', kind: 'parameter-store', version: 3, lastModified: '2026-01-01T00:00:00.000Z' },
  {
    name: 'API_KEY',
    kind: 'secrets-manager',
    version: 1,
    lastModified: '2026-01-02T00:00:00.000Z',
    reference: `${ARN}:key`,
  },
];

test('a release pins every secret by default, or the ones it names, at their current versions', () => {
  expect(pinSecrets(STORED, undefined, {}, 'stage prod')).toEqual({ API_KEY: `${ARN}:key`, DB_PASSWORD: '3' });
  expect(pinSecrets(STORED, ['DB_PASSWORD'], {}, 'stage prod')).toEqual({ DB_PASSWORD: '3' });
  expect(() => pinSecrets(STORED, ['NOPE'], {}, 'stage prod')).toThrow(/--secret NOPE: no such secret on stage prod/);
  expect(() => pinSecrets(STORED, undefined, { DB_PASSWORD: 'x' }, 'stage prod')).toThrow(
    /--env DB_PASSWORD: also a secret/,
  );
});

test('--secret NAME is repeatable and checked; absent = all', () => {
  expect(parseReleaseArgs(['--release', 'r1', '--secret', 'A', '--secret', 'B']).options.secrets).toEqual(['A', 'B']);
  expect(parseReleaseArgs(['--release', 'r1']).options.secrets).toBeUndefined();
  expect(() => parseReleaseArgs(['--release', 'r1', '--secret', 'HOST'])).toThrow(ConfigError);
});

test('a Secrets Manager pin: the reference at one version, in ECS valueFrom shape; parsed back by the same rule as the host', () => {
  const id = 'a1b2c3d4-5678-90ab-cdef-EXAMPLE11111';
  expect(secretsManagerPin(ARN, id)).toBe(`${ARN}:::${id}`);
  expect(secretsManagerPin(`${ARN}:password`, id)).toBe(`${ARN}:password::${id}`);
  expect(parseSecretsManagerRef(`${ARN}:password::${id}`)).toEqual({ arn: ARN, key: 'password', versionId: id });
  expect(parseSecretsManagerRef(`${ARN}:::${id}`)).toEqual({ arn: ARN, versionId: id });
  expect(parseSecretsManagerRef(`${ARN}:password`)).toEqual({ arn: ARN, key: 'password' });
  expect(parseSecretsManagerRef(ARN)).toEqual({ arn: ARN });
  // A pin of an old pin keeps the key and takes the new version.
  expect(secretsManagerPin(`${ARN}:password::${id}`, 'f'.repeat(32))).toBe(`${ARN}:password::${'f'.repeat(32)}`);
  expect(describePinned({ DB: '3', API: `${ARN}:password::${id}`, OLD: ARN })).toBe(
    'DB@v3, API@secrets-manager:a1b2c3d4, OLD@secrets-manager',
  );
});

test('the listing shows names, versions, kind and last change', () => {
  const text = formatSecretList(STORED, 'stage prod');
  expect(text.split('\n')[0]).toMatch(/^NAME\s+VERSION\s+KIND\s+LAST CHANGE$/);
  expect(text).toMatch(/API_KEY\s+v1\s+secrets-manager arn:/);
  expect(text).toMatch(/DB_PASSWORD\s+v3\s+parameter-store\s+2026-01-01/);
  expect(formatSecretList([], 'local')).toMatch(/no secrets on local/);
});

describe('local mode', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-secrets-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('the file store: 0600 under a permissive umask, a version per set, older versions still resolvable', async () => {
    const old = process.umask(0o000);
    try {
      const store = new LocalSecretStore(dir, () => new Date('2026-03-04T05:06:07.000Z'));
      expect(await store.set('DB_PASSWORD', 'one')).toMatchObject({ version: 1 });
      expect((statSync(localSecretsFile(dir)).mode & 0o777).toString(8)).toBe('600');
      expect(await store.set('DB_PASSWORD', 'two')).toMatchObject({ version: 2 });
      expect((statSync(localSecretsFile(dir)).mode & 0o777).toString(8)).toBe('600');
      expect(await store.list()).toEqual([
        { name: 'DB_PASSWORD', kind: 'parameter-store', version: 2, lastModified: '2026-03-04T05:06:07.000Z' },
      ]);
      expect(resolveLocalSecrets(dir, { DB_PASSWORD: '1' })).toEqual({ DB_PASSWORD: 'one' });
      expect(resolveLocalSecrets(dir, { DB_PASSWORD: '2' })).toEqual({ DB_PASSWORD: 'two' });
      expect(() => resolveLocalSecrets(dir, { DB_PASSWORD: '9' })).toThrow(/DB_PASSWORD version 9 is not in/);
      expect(await store.remove('DB_PASSWORD')).toBe(true);
      expect(await store.remove('DB_PASSWORD')).toBe(false);
    } finally {
      process.umask(old);
    }
  });

  const run = async (args: string[], stdin = '', stdinIsTerminal = false) => {
    const lines: string[] = [];
    const code = await secretCommand(
      args,
      {},
      (l) => lines.push(l),
      () => new LocalSecretStore(dir),
      {
        stdin: async () => stdin,
        stdinIsTerminal,
      },
    );
    return { code, out: lines.join('\n') };
  };

  test('secret set reads stdin (one final line break dropped) or --file; never prints the value', async () => {
    const set = await run(['set', 'DB_PASSWORD'], 'hunter2-value\n');
    expect(set.code).toBe(0);
    expect(set.out).toMatch(/secret DB_PASSWORD set on local: version 1/);
    expect(set.out).not.toContain('hunter2-value');
    expect(resolveLocalSecrets(dir, { DB_PASSWORD: '1' })).toEqual({ DB_PASSWORD: 'hunter2-value' });
    const file = path.join(dir, 'value');
    writeFileSync(file, 'from-file\n');
    expect((await run(['set', 'DB_PASSWORD', '--file', file])).code).toBe(0);
    expect(resolveLocalSecrets(dir, { DB_PASSWORD: '2' })).toEqual({ DB_PASSWORD: 'from-file' });
    const list = await run(['list']);
    expect(list.out).toMatch(/DB_PASSWORD\s+v2\s+parameter-store/);
    expect(list.out).not.toMatch(/hunter2|from-file/);
  });

  test.each([
    [['set', 'DB_PASSWORD', '--value', 'x'], '', /never comes from the command line/],
    [['set', 'DB_PASSWORD', '--value=x'], '', /never comes from the command line/],
    [['set', 'PORT'], 'x', /set by the host/],
    [['set', 'DB_PASSWORD'], "it's", /single quote.*Compose's env file could not carry it\); nothing stored/],
    [['set', 'DB_PASSWORD'], '\n', /the value is empty/],
    [['set', 'DB_PASSWORD', '--from-secrets-manager', ARN], '', /needs a deployed stage/],
    [['set', 'DB_PASSWORD', '--from-secrets-manager', 'db'], '', /full ARN/],
    [['set'], '', /takes one NAME/],
    [['nope'], '', /set, list or rm/],
  ])('refused: %j (exit 2, nothing stored)', async (args, stdin, message) => {
    await expect(run(args as string[], stdin)).rejects.toThrow(message);
    await expect(run(args as string[], stdin)).rejects.toBeInstanceOf(ConfigError);
    expect(() => readFileSync(localSecretsFile(dir))).toThrow();
  });

  test('a terminal on stdin: refused with how to pipe the value', async () => {
    await expect(run(['set', 'DB_PASSWORD'], '', true)).rejects.toThrow(/pipe the value/);
  });
});

describe('pinning a Secrets Manager reference (AwsSecretStore.pinReference)', () => {
  const sm = mockClient(SecretsManagerClient);
  const store = new AwsSecretStore(
    new SSMClient({ region: 'eu-west-1' }),
    'prod',
    sm as unknown as SecretsManagerClient,
  );
  const id = 'a1b2c3d4-5678-90ab-cdef-EXAMPLE22222';
  afterEach(() => sm.reset());

  test('the version labelled AWSCURRENT, asked of DescribeSecret (no value), for the ARN without its key', async () => {
    sm.on(DescribeSecretCommand).resolves({
      VersionIdsToStages: { ['b'.repeat(36)]: ['AWSPREVIOUS'], [id]: ['AWSCURRENT', 'mine'] },
    });
    expect(await store.pinReference(`${ARN}:password`)).toBe(`${ARN}:password::${id}`);
    expect(sm.commandCalls(DescribeSecretCommand).map((c) => c.args[0].input)).toEqual([{ SecretId: ARN }]);
  });

  test('no current version, a version id the host would refuse, or a denied call: one line naming the secret', async () => {
    sm.on(DescribeSecretCommand).resolves({ VersionIdsToStages: { [id]: ['AWSPENDING'] } });
    await expect(store.pinReference(ARN)).rejects.toThrow(`${ARN} has no version labelled AWSCURRENT`);
    sm.on(DescribeSecretCommand).resolves({ VersionIdsToStages: { 'x y': ['AWSCURRENT'] } });
    await expect(store.pinReference(ARN)).rejects.toThrow(/current version id "x y" is not/);
    sm.on(DescribeSecretCommand).rejects(
      Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' }),
    );
    await expect(store.pinReference(ARN)).rejects.toThrow(
      `could not read ${ARN}'s current version from Secrets Manager: User is not authorized`,
    );
  });
});
