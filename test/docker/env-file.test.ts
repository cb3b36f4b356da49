// What Compose reads from a pool's env file (its own parser: compose-go's dotenv, the same from
// v2.0.0 to v2.1.6, which Compose 2.29.6 on the host and the harness's Compose both use), through
// `docker compose config` on the host's real docker-compose.yml: no container is started.
//  - every env the rule (userdata/pool-env.json) accepts, as the host writes it (userdata/pool-env.jq),
//    is read back exactly;
//  - the values the rule refuses, written KEY='value' as the host wrote them before, are read as
//    something else: that is why they are refused.
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { poolEnvFileLines } from '../../core/pool-env';
import { dockerEngine } from './compose-set';

const engine = dockerEngine();
if (!engine.ready) {
  if (engine.mustRun) throw new Error(`test/docker: ${engine.reason}`);
  process.stderr.write(`test/docker/env-file.test.ts: skipped: ${engine.reason}\n`);
}
const testDocker = engine.ready ? test : test.skip;

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-env-file-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The env file the host writes for `env` (its jq writer), or why it refuses it. */
function hostWrites(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'jq',
      [
        '-rRs',
        '--slurpfile',
        'rule',
        path.join(REPO_ROOT, 'userdata', 'pool-env.json'),
        '-f',
        path.join(REPO_ROOT, 'userdata', 'pool-env.jq'),
      ],
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    );
    child.stdin!.end(JSON.stringify(env));
  });
}

/** app_blue's environment as Compose resolves it with this blue.env (green.env empty). */
function composeReads(
  blueEnvFile: string,
  composeEnv: Record<string, string> = {},
): { ok: true; env: Record<string, string> } | { ok: false; error: string } {
  mkdirSync(path.join(dir, 'pools'), { recursive: true });
  writeFileSync(path.join(dir, 'pools', 'blue.env'), blueEnvFile);
  writeFileSync(path.join(dir, 'pools', 'green.env'), '');
  const run = spawnSync(
    'docker',
    [
      'compose',
      '-p',
      'bgenvfile',
      '-f',
      path.join(REPO_ROOT, 'userdata', 'docker-compose.yml'),
      'config',
      '--format',
      'json',
    ],
    {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME ?? '/root', BLUEGREEN_STATE_DIR: dir, ...composeEnv },
    },
  );
  if (run.status !== 0) return { ok: false, error: run.stderr.trim() };
  const config = JSON.parse(run.stdout) as { services: { app_blue: { environment: Record<string, string | null> } } };
  // `config` prints a Compose file, where a literal $ is written $$ (a container gets one $).
  const env = Object.fromEntries(
    Object.entries(config.services.app_blue.environment).map(([k, v]) => [
      k,
      v === null ? '<unset>' : v.replace(/\$\$/g, '$'),
    ]),
  );
  return { ok: true, env };
}
const HOST_SET = { APP_POOL: 'blue', RELEASE_ID: 'blue-1', PORT: '3000' };

testDocker.each([
  ['plain values', { GREETING: 'release two', LIMIT: '10' }],
  ['backslashes inside values', { A: 'a\\b', B: 'a\\\\b', C: '\\x', D: 'C:\\dir\\file' }],
  ['a dollar sign and a hash (no interpolation, no comment)', { A: '$HOME #x', B: '${PATH}', C: 'a #b' }],
  ['double quotes, spaces at both ends, an equals sign', { A: '"quoted"', B: '  padded  ', C: 'k=v' }],
  ['an empty value', { A: '' }],
])('%s: written by the host, read back exactly by Compose', async (_name, env) => {
  const file = await hostWrites(env);
  expect(file.split('\n')[0]).toBe('ok');
  expect(composeReads(file.split('\n').slice(1).join('\n'))).toEqual({ ok: true, env: { ...env, ...HOST_SET } });
});

// The refused values, had they been written the old way (KEY='value', no check): Compose reads
// something else. (The host now writes no line for them: test/e2e/bluegreen-apply.test.ts.)
testDocker(
  "a trailing backslash: Compose reads \\' as a quote, the value runs on and the file does not parse (every service fails to start)",
  async () => {
    expect(await hostWrites({ A: 'x\\' })).toMatch(/^refused: values must not end in a backslash/);
    const read = composeReads(poolEnvFileLines({ A: 'x\\' }).join('\n') + '\n');
    expect(read.ok).toBe(false);
    expect(!read.ok && read.error).toMatch(/unterminated quoted value/);
  },
);

testDocker(
  'a trailing backslash followed by a second value: the second value defines HOST (a key the host refuses)',
  async () => {
    const env = { A: 'x\\', B: ' HOST=127.0.0.1 #' };
    expect(await hostWrites(env)).toMatch(/^refused: values must not end in a backslash/);
    const read = composeReads(poolEnvFileLines(env).join('\n') + '\n');
    expect(read).toEqual({ ok: true, env: expect.objectContaining({ HOST: '127.0.0.1', A: "x'\nB=" }) });
  },
);

testDocker("a key ending in a line feed: a bare key, filled from Compose's own environment (the agent's)", async () => {
  const env = { 'SECRET_ON_HOST\n': 'x' };
  expect(await hostWrites(env)).toMatch(/^refused: keys must be environment variable names/);
  const read = composeReads(poolEnvFileLines(env).join('\n') + '\n', { SECRET_ON_HOST: 'the agent environment' });
  expect(read).toEqual({ ok: true, env: expect.objectContaining({ SECRET_ON_HOST: 'the agent environment' }) });
});
