// switch-pool.sh's own input checks and the files it writes, on a switch dir of its own (no nginx
// needed: it only writes files).
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
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

test.each([
  [['--canary', '10', '--sticky', 'cookie:a-b'], /the sticky key must be cookie:NAME/],
  [['--canary', '10', '--sticky', 'header:x_y'], /the sticky key must be cookie:NAME/],
  [['--canary', '10', '--sticky', 'cookie:a\nb'], /the sticky key must be cookie:NAME/],
  [['--canary', '10', '--sticky', ''], /the sticky key must be cookie:NAME/],
  [['--canary', '0', '--sticky', 'cookie:a'], /a sticky key needs a canary share above 0/],
  [['--canary', '10', '--stick', 'cookie:a'], /^switch-pool: usage:/],
  [['--canary', '10', '--sticky'], /^switch-pool: usage:/],
  [['--fresh'], /^switch-pool: usage:/],
  [['--fresh', 'purple'], /--fresh takes a pool, blue or green, got 'purple'/],
])('%j: refused (exit 2), the switch dir untouched', async (args, message) => {
  const result = await switchPool(...args);
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).toMatch(/nothing changed\n$/);
  expect(readdirSync(dir)).toEqual([]);
});

test('--canary N --sticky: share and key in one dir that canary points at; a header name lowercased', async () => {
  const result = await switchPool('--canary', '15', '--sticky', 'header:X-User');
  expect(result.code).toBe(0);
  expect(readlinkSync(path.join(dir, 'canary'))).toBe('.canary-15.header.x-user');
  const files = readdirSync(path.join(dir, '.canary-15.header.x-user')).sort();
  expect(files).toEqual([...Array.from({ length: 15 }, (_, i) => String(i).padStart(2, '0')), 'sticky.header.x-user']);
  expect((await switchPool('--canary', '15', '--sticky', 'header:x-user')).stdout).toBe(
    'switch-pool: canary share is already 15% sticky on header:x-user; nothing changed\n',
  );
  // A stray sticky flag in the dir (another key) is not "already": the dir is rebuilt.
  writeFileSync(path.join(dir, '.canary-15.header.x-user', 'sticky.cookie.other'), '');
  expect((await switchPool('--canary', '15', '--sticky', 'header:x-user')).stdout).toMatch(/is now 15% sticky/);
  expect(readdirSync(path.join(dir, '.canary-15.header.x-user'))).not.toContain('sticky.cookie.other');
});

test('--fresh cycles a pool through its generations, one flag at most, the other pool untouched', async () => {
  const seen: string[][] = [];
  for (let i = 0; i < 5; i++) {
    const result = await switchPool('--fresh', 'green');
    expect(result.code).toBe(0);
    seen.push(readdirSync(dir).filter((f) => f.startsWith('generation-')));
  }
  expect(seen).toEqual([
    ['generation-green-b'],
    ['generation-green-c'],
    ['generation-green-d'],
    [],
    ['generation-green-b'],
  ]);
});
