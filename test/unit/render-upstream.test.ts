// The upstream renderer (POSIX sh), run the way the host and local mode run it.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NGINX_DIR } from '../../local/defaults';

const run = promisify(execFile);
const RENDER = path.join(NGINX_DIR, 'render-upstream.sh');

async function render(env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run('sh', [RENDER], { env: { PATH: process.env.PATH, ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test.each([
  ['blue', 'app_blue:3000', 'app_green:3000'],
  ['green', 'app_green:3000', 'app_blue:3000'],
])('ACTIVE_POOL=%s makes %s the primary and %s the backup', async (pool, primary, backup) => {
  const { code, stdout } = await render({ ACTIVE_POOL: pool });
  expect(code).toBe(0);
  expect(stdout).toContain(`server ${primary} max_fails=1 fail_timeout=5s; # ${pool} (active)`);
  expect(stdout).toContain(`server ${backup} backup max_fails=0;`);
  expect(stdout).toContain(`default "${pool}";`);
  expect(stdout).toContain(`# active_pool=${pool}`);
});

test('addresses and failure accounting come from the environment', async () => {
  const { stdout } = await render({
    ACTIVE_POOL: 'blue',
    BLUE_UPSTREAM: '127.0.0.1:18081',
    GREEN_UPSTREAM: '127.0.0.1:18082',
    MAX_FAILS: '2',
    FAIL_TIMEOUT: '500ms',
    UPSTREAM_KEEPALIVE: '16',
  });
  expect(stdout).toContain('server 127.0.0.1:18081 max_fails=2 fail_timeout=500ms; # blue (active)');
  expect(stdout).toContain('server 127.0.0.1:18082 backup max_fails=0; # green (backup)');
  expect(stdout).toContain('keepalive 16;');
});

test.each([
  [{}, "ACTIVE_POOL is not set; expected blue or green"],
  [{ ACTIVE_POOL: 'Blue' }, "ACTIVE_POOL must be blue or green, got 'Blue'"],
  [{ ACTIVE_POOL: 'blue;' }, "ACTIVE_POOL must be blue or green, got 'blue;'"],
  [{ ACTIVE_POOL: 'blue', BLUE_UPSTREAM: 'x:1; include /etc/passwd' }, "BLUE_UPSTREAM must be host:port, got 'x:1; include /etc/passwd'"],
  [{ ACTIVE_POOL: 'blue', GREEN_UPSTREAM: 'green' }, "GREEN_UPSTREAM must be host:port, got 'green'"],
  [{ ACTIVE_POOL: 'blue', MAX_FAILS: '-1' }, "MAX_FAILS must be a whole number, got '-1'"],
  [{ ACTIVE_POOL: 'blue', FAIL_TIMEOUT: '5 s' }, "FAIL_TIMEOUT must be an nginx time like 5s or 500ms, got '5 s'"],
])('bad input %p: exit 2, a message naming it, nothing on stdout', async (env, message) => {
  const result = await render(env as Record<string, string>);
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim()).toBe(`render-upstream: ${message}`);
});
