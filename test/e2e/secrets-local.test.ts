// Secrets in local mode, end to end: `npm start` (real nginx, two pool processes, the pool agent) and
// the CLI as real processes. `secret set` keeps the value in a 0600 file in the state dir; `secret
// list` shows no value; a release under load pins it (0 failed) and the new pool process has it in
// its environment (read from /proc, as root on the host could); the record, `history`, the CLI's
// output, the logs and every other file in the state dir do not.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { readLocalRecord } from '../../local/release-store';
import { localSecretsFile } from '../../local/secret-store';
import { summarize } from '../../local/load';
import { startLoad } from '../helpers/load';
import { localStackForFile } from '../helpers/npm-start';

jest.setTimeout(90_000);

const VALUE = 'local-pw-9Zq3-Xv7k-never-elsewhere';
const stack = localStackForFile('secrets-local', {
  RELEASE_ID_BLUE: 'r1',
  RELEASE_ID_GREEN: 'g1',
  ACTIVE_POOL: 'blue',
});

/** The CLI with `stdin` piped in. */
function cliWithStdin(stdin: string, ...args: string[]): Promise<{ code: number | null; output: string }> {
  const env = { ...stack.started.env };
  delete env.BLUEGREEN_STAGE;
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'bluegreen.cjs'), ...args], {
    env,
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  child.stdin!.end(stdin);
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(full) : e.isFile() ? [full] : [];
  });
}

/** The environment of the process whose RELEASE_ID is `release` (Linux /proc). */
function processEnvOf(release: string): string | undefined {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue;
    }
    const vars = environ.split('\0');
    if (vars.includes(`RELEASE_ID=${release}`) && vars.includes('APP_POOL=green')) return vars.join('\n');
  }
  return undefined;
}

test('secret set (0600 file), secret list (no value), a release under load pins it: the pool process has it, nothing else does', async () => {
  const outputs: string[] = [];
  const set = await cliWithStdin(`${VALUE}\n`, 'secret', 'set', 'DB_PASSWORD');
  outputs.push(set.output);
  expect(set.code).toBe(0);
  expect(statSync(localSecretsFile(stack.stateDir)).mode & 0o777).toBe(0o600);
  const refused = await cliWithStdin('', 'secret', 'set', 'DB_PASSWORD', '--value', VALUE);
  expect(refused.code).toBe(2);
  expect(refused.output).toMatch(/never comes from the command line/);
  const list = await cliWithStdin('', 'secret', 'list');
  outputs.push(list.output);
  expect(list.output).toMatch(/DB_PASSWORD\s+v1\s+parameter-store/);

  const load = startLoad({
    url: `http://127.0.0.1:${stack.started.ports.nginx}/`,
    connections: 8,
    durationMs: 60_000,
    retryStaleSockets: false,
  });
  await load.after(200, 'before the release');
  const release = stack.cli('release', '--release', 's1', '--bake', '3s');
  const code = await release.exited;
  await load.after(200, 'after the release');
  const result = await load.finish();
  const summary = summarize(result.samples, result.durationMs);
  outputs.push(release.output());
  expect(code).toBe(0);
  expect(summary.failed).toBe(0);
  expect(summary.requests).toBeGreaterThan(1000);

  expect(readLocalRecord(stack.stateDir)?.options?.secrets).toEqual({ DB_PASSWORD: '1' });
  expect(processEnvOf('s1')).toContain(`DB_PASSWORD=${VALUE}`);

  const history = stack.cli('history');
  await history.exited;
  expect(history.output()).toContain('s1 [secrets DB_PASSWORD@v1]');
  outputs.push(history.output(), stack.started.output());
  expect(outputs.filter((o) => o.includes(VALUE))).toEqual([]);
  const files = filesUnder(stack.stateDir).filter((f) => f !== localSecretsFile(stack.stateDir));
  expect(files.length).toBeGreaterThan(5);
  expect(files.filter((f) => readFileSync(f, 'latin1').includes(VALUE))).toEqual([]);
});
