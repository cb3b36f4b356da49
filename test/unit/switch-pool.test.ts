// switch-pool.sh's own input checks, on a switch dir of its own (no nginx needed: it only writes files).
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NGINX_DIR } from '../../local/paths';

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-switch-pool-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const switchPool = (...args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      'sh',
      [path.join(NGINX_DIR, 'switch-pool.sh'), ...args],
      { env: { PATH: process.env.PATH, SWITCH_DIR: dir } },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });

test.each(['5\nx', '5\n', '\n5', '05', '100', '-1', '5\r'])(
  '--canary %j: refused, the switch dir untouched',
  async (value) => {
    const result = await switchPool('--canary', value);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^switch-pool: the canary share must be a whole number 0-99, got '/);
    expect(readdirSync(dir)).toEqual([]);
  },
);

test.each(['0', '5', '99'])('--canary %s: taken', async (value) => {
  const result = await switchPool('--canary', value);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(new RegExp(`^switch-pool: canary share is (now|already) ${value}%`));
});
