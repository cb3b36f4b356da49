// The upstream renderer (POSIX sh), run the way the host and local mode run it.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NGINX_DIR } from '../../local/defaults';

const run = promisify(execFile);
const RENDER = path.join(NGINX_DIR, 'render-upstream.sh');
const SWITCH_DIR = '/etc/bluegreen/switch';

async function render(env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run('sh', [RENDER], { env: { PATH: process.env.PATH, ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** The text of one upstream block, so assertions cannot match a line of the other block. */
function block(conf: string, name: string): string {
  const match = new RegExp(`^upstream ${name} \\{\\n([\\s\\S]*?)^\\}`, 'm').exec(conf);
  if (!match) throw new Error(`no upstream ${name} block in:\n${conf}`);
  return match[1];
}

test('both blocks, always: each pool primary in its own block with the other as backup', async () => {
  const { code, stdout, stderr } = await render({ SWITCH_DIR });
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout.match(/^upstream /gm)).toHaveLength(2);
  const blue = block(stdout, 'bluegreen_blue');
  expect(blue).toContain('server app_blue:3000 max_fails=1 fail_timeout=5s; # blue (primary)');
  expect(blue).toContain('server app_green:3000 backup max_fails=0; # green (backup)');
  expect(blue).toContain('keepalive 64;');
  const green = block(stdout, 'bluegreen_green');
  expect(green).toContain('server app_green:3000 max_fails=1 fail_timeout=5s; # green (primary)');
  expect(green).toContain('server app_blue:3000 backup max_fails=0; # blue (backup)');
  expect(green).toContain('keepalive 64;');
  // Where nginx stats the flag files, as nginx sees it.
  expect(stdout).toMatch(/map \$request_method \$bluegreen_switch_dir \{\n\s+default "\/etc\/bluegreen\/switch";\n\}/);
});

test('the active pool is not an input: the output is the same whatever ACTIVE_POOL says', async () => {
  const plain = await render({ SWITCH_DIR });
  expect((await render({ SWITCH_DIR, ACTIVE_POOL: 'green' })).stdout).toBe(plain.stdout);
});

test('addresses, failure accounting and the switch dir come from the environment', async () => {
  const { stdout } = await render({
    SWITCH_DIR: '/tmp/bluegreen-test-x1/switch/',
    BLUE_UPSTREAM: '127.0.0.1:18081',
    GREEN_UPSTREAM: '127.0.0.1:18082',
    MAX_FAILS: '2',
    FAIL_TIMEOUT: '500ms',
    UPSTREAM_KEEPALIVE: '16',
  });
  expect(block(stdout, 'bluegreen_blue')).toContain('server 127.0.0.1:18081 max_fails=2 fail_timeout=500ms; # blue (primary)');
  expect(block(stdout, 'bluegreen_blue')).toContain('server 127.0.0.1:18082 backup max_fails=0; # green (backup)');
  expect(block(stdout, 'bluegreen_green')).toContain('server 127.0.0.1:18082 max_fails=2 fail_timeout=500ms; # green (primary)');
  expect(block(stdout, 'bluegreen_green')).toContain('server 127.0.0.1:18081 backup max_fails=0; # blue (backup)');
  expect(stdout.match(/keepalive 16;/g)).toHaveLength(2);
  // A trailing slash is dropped: nginx.conf appends "/green-active".
  expect(stdout).toContain('default "/tmp/bluegreen-test-x1/switch";');
});

test.each([
  [{}, "SWITCH_DIR is not set; expected the switch dir's absolute path as nginx sees it"],
  [{ SWITCH_DIR: 'switch' }, "SWITCH_DIR must be an absolute path of letters, digits and ._/@+-, got 'switch'"],
  [{ SWITCH_DIR: '/x"; }' }, `SWITCH_DIR must be an absolute path of letters, digits and ._/@+-, got '/x"; }'`],
  [{ SWITCH_DIR: '/tmp/$host' }, "SWITCH_DIR must be an absolute path of letters, digits and ._/@+-, got '/tmp/$host'"],
  [{ SWITCH_DIR: '/' }, 'SWITCH_DIR must not be /'],
  [{ SWITCH_DIR, BLUE_UPSTREAM: 'x:1; include /etc/passwd' }, "BLUE_UPSTREAM must be host:port, got 'x:1; include /etc/passwd'"],
  [{ SWITCH_DIR, GREEN_UPSTREAM: 'green' }, "GREEN_UPSTREAM must be host:port, got 'green'"],
  [{ SWITCH_DIR, MAX_FAILS: '-1' }, "MAX_FAILS must be a whole number, got '-1'"],
  [{ SWITCH_DIR, FAIL_TIMEOUT: '5 s' }, "FAIL_TIMEOUT must be an nginx time like 5s or 500ms, got '5 s'"],
  [{ SWITCH_DIR, UPSTREAM_KEEPALIVE: 'lots' }, "UPSTREAM_KEEPALIVE must be a whole number, got 'lots'"],
])('bad input %p: exit 2, a message naming it, nothing on stdout', async (env, message) => {
  const result = await render(env as Record<string, string>);
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim()).toBe(`render-upstream: ${message}`);
});
