// The renderer (POSIX sh) of upstream.conf and routes.conf, run the way the host and local mode run it.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NGINX_DIR } from '../../local/paths';
import { POOL_GENERATIONS } from '../../core/proxy-settings';

const run = promisify(execFile);
const RENDER = path.join(NGINX_DIR, 'render-upstream.sh');
const SWITCH_DIR = '/etc/bluegreen/switch';

async function render(env: Record<string, string>, args: string[] = []) {
  try {
    const { stdout, stderr } = await run('sh', [RENDER, ...args], { env: { PATH: process.env.PATH, ...env } });
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

test('every block, always: per primary pool one block per generation, the other pool its backup', async () => {
  const { code, stdout, stderr } = await render({ SWITCH_DIR });
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  // And one preview block per pool (nginx.conf): that pool alone, no backup.
  expect(stdout.match(/^upstream /gm)).toHaveLength(2 * POOL_GENERATIONS.length + 2);
  expect(POOL_GENERATIONS).toEqual(['a', 'b', 'c', 'd']);
  for (const pool of ['blue', 'green']) {
    const preview = block(stdout, `bluegreen_preview_${pool}`);
    expect(preview.trimEnd().split('\n')).toEqual([
      `    server app_${pool}:3000; # ${pool} (preview, no backup)`,
      '    keepalive 64;',
    ]);
  }
  for (const g of POOL_GENERATIONS) {
    const blue = block(stdout, `bluegreen_blue_${g}`);
    expect(blue).toContain('server app_blue:3000 max_fails=1 fail_timeout=5s; # blue (primary)');
    expect(blue).toContain('server app_green:3000 backup max_fails=0; # green (backup)');
    expect(blue).toContain('keepalive 64;');
    const green = block(stdout, `bluegreen_green_${g}`);
    expect(green).toContain('server app_green:3000 max_fails=1 fail_timeout=5s; # green (primary)');
    expect(green).toContain('server app_blue:3000 backup max_fails=0; # blue (backup)');
    expect(green).toContain('keepalive 64;');
  }
  // Where nginx stats the flag files, as nginx sees it.
  expect(stdout).toMatch(/map \$request_method \$bluegreen_switch_dir \{\n\s+default "\/etc\/bluegreen\/switch";\n\}/);
});

test("nginx.conf picks the primary pool's generation by the flags of POOL_GENERATIONS, in order, the first by default", () => {
  const conf = readFileSync(path.join(NGINX_DIR, 'nginx.conf'), 'utf8');
  const [first, ...rest] = POOL_GENERATIONS;
  expect(conf).toContain(`set $bluegreen_generation ${first};`);
  const checked = [
    ...conf.matchAll(
      /if \(-f \$bluegreen_switch_dir\/generation-\$bluegreen_primary_pool-([a-z])\) \{\n\s+set \$bluegreen_generation ([a-z]);/g,
    ),
  ];
  expect(checked.map((m) => [m[1], m[2]])).toEqual(rest.map((g) => [g, g]));
  expect(conf).toContain('set $bluegreen_upstream bluegreen_${bluegreen_primary_pool}_$bluegreen_generation;');
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
  expect(block(stdout, 'bluegreen_blue_a')).toContain(
    'server 127.0.0.1:18081 max_fails=2 fail_timeout=500ms; # blue (primary)',
  );
  expect(block(stdout, 'bluegreen_blue_a')).toContain('server 127.0.0.1:18082 backup max_fails=0; # green (backup)');
  expect(block(stdout, 'bluegreen_green_b')).toContain(
    'server 127.0.0.1:18082 max_fails=2 fail_timeout=500ms; # green (primary)',
  );
  expect(block(stdout, 'bluegreen_green_b')).toContain('server 127.0.0.1:18081 backup max_fails=0; # blue (backup)');
  expect(stdout.match(/keepalive 16;/g)).toHaveLength(2 * POOL_GENERATIONS.length + 2);
  // A trailing slash is dropped: nginx.conf appends "/green-active".
  expect(stdout).toContain('default "/tmp/bluegreen-test-x1/switch";');
});

test.each([
  [{}, "SWITCH_DIR is not set; expected the switch dir's absolute path as nginx sees it"],
  [{ SWITCH_DIR: 'switch' }, "SWITCH_DIR must be an absolute path of letters, digits and ._/@+-, got 'switch'"],
  [{ SWITCH_DIR: '/x"; }' }, `SWITCH_DIR must be an absolute path of letters, digits and ._/@+-, got '/x"; }'`],
  [{ SWITCH_DIR: '/tmp/$host' }, "SWITCH_DIR must be an absolute path of letters, digits and ._/@+-, got '/tmp/$host'"],
  [{ SWITCH_DIR: '/' }, 'SWITCH_DIR must not be /'],
  [
    { SWITCH_DIR, BLUE_UPSTREAM: 'x:1; include /etc/passwd' },
    "BLUE_UPSTREAM must be host:port, got 'x:1; include /etc/passwd'",
  ],
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

// ---- routes.conf: the proxied locations and their timeouts ---------------------------------------

/** The text of one location block of routes.conf. */
function location(conf: string, prefix: string): string {
  const match = new RegExp(`^location ${prefix.replace(/[/.]/g, '\\$&')} \\{\\n([\\s\\S]*?)^\\}`, 'm').exec(conf);
  if (!match) throw new Error(`no location ${prefix} in:\n${conf}`);
  return match[1];
}

test('routes: by default one location for every path, with the timeouts DECISIONS.md chose', async () => {
  const { code, stdout, stderr } = await render({ SWITCH_DIR }, ['routes']);
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout.match(/^location /gm)).toHaveLength(1);
  const all = location(stdout, '/');
  for (const line of [
    'include proxy-failover.conf;',
    'proxy_connect_timeout 500ms;',
    'proxy_send_timeout 2s;',
    'proxy_read_timeout 1s;',
    'proxy_next_upstream_timeout 3s;',
    'proxy_pass http://$bluegreen_upstream;',
  ]) {
    expect(all).toContain(`    ${line}\n`);
  }
});

test('routes: the timeouts come from the environment; each slow path gets its own location with its read timeout', async () => {
  const { stdout } = await render(
    {
      SWITCH_DIR,
      PROXY_CONNECT_TIMEOUT: '200ms',
      PROXY_SEND_TIMEOUT: '5s',
      PROXY_READ_TIMEOUT: '2s',
      PROXY_NEXT_UPSTREAM_TIMEOUT: '5s',
      SLOW_PATHS: '/reports/:30s,/reports/big/:300s,/upload:60000ms',
    },
    ['routes'],
  );
  expect(stdout.match(/^location /gm)).toHaveLength(4);
  expect(location(stdout, '/')).toContain('proxy_read_timeout 2s;');
  for (const [prefix, read] of [
    ['/reports/', '30s'],
    ['/reports/big/', '300s'],
    ['/upload', '60000ms'],
  ]) {
    const block = location(stdout, prefix);
    expect(block).toContain(`proxy_read_timeout ${read};`);
    // The rest as on every path: the same retry policy, connect/send timeouts and failover window.
    expect(block).toContain('include proxy-failover.conf;');
    expect(block).toContain('proxy_connect_timeout 200ms;');
    expect(block).toContain('proxy_send_timeout 5s;');
    expect(block).toContain('proxy_next_upstream_timeout 5s;');
    expect(block).toContain('proxy_pass http://$bluegreen_upstream;');
  }
});

test('routes and upstream: the same settings render the same bytes (apply-upstream.sh reloads only on a real change)', async () => {
  const env = { SWITCH_DIR, SLOW_PATHS: '/reports/:30s' };
  expect((await render(env, ['routes'])).stdout).toBe((await render(env, ['routes'])).stdout);
  // upstream.conf does not hold the timeouts: changing them changes only routes.conf.
  expect((await render(env)).stdout).toBe((await render({ SWITCH_DIR })).stdout);
  expect((await render(env, ['upstream'])).stdout).toBe((await render({ SWITCH_DIR })).stdout);
});

const TIME = 'must be an nginx time like 1s or 500ms, from 1ms to 300s';
test.each([
  [{ PROXY_READ_TIMEOUT: '5 s' }, `PROXY_READ_TIMEOUT ${TIME}, got '5 s'`],
  [{ PROXY_READ_TIMEOUT: '5' }, `PROXY_READ_TIMEOUT ${TIME}, got '5'`],
  [{ PROXY_CONNECT_TIMEOUT: '0ms' }, `PROXY_CONNECT_TIMEOUT ${TIME}, got '0ms'`],
  [{ PROXY_SEND_TIMEOUT: '1m' }, `PROXY_SEND_TIMEOUT ${TIME}, got '1m'`],
  [{ PROXY_NEXT_UPSTREAM_TIMEOUT: '301s' }, `PROXY_NEXT_UPSTREAM_TIMEOUT ${TIME}, got '301s'`],
  [{ PROXY_READ_TIMEOUT: '3s;' }, `PROXY_READ_TIMEOUT ${TIME}, got '3s;'`],
  [
    { PROXY_READ_TIMEOUT: '2500ms' },
    'PROXY_NEXT_UPSTREAM_TIMEOUT (3s) must be longer than PROXY_CONNECT_TIMEOUT + PROXY_READ_TIMEOUT (500ms + 2500ms), or a pool that timed out is never retried on the other pool',
  ],
  [
    { SLOW_PATHS: '/reports/:30s, /upload/:60s' },
    "SLOW_PATHS must be prefix:timeout pairs separated by commas, without spaces, e.g. /reports/:30s,/upload/:60s, got '/reports/:30s, /upload/:60s'",
  ],
  [
    { SLOW_PATHS: '/reports/:30s,' },
    "SLOW_PATHS has an empty entry (two commas in a row, or one at an end), got '/reports/:30s,'",
  ],
  [{ SLOW_PATHS: '/reports/' }, "SLOW_PATHS entry '/reports/' must be prefix:timeout, e.g. /reports/:30s"],
  [
    { SLOW_PATHS: 'reports/:30s' },
    "SLOW_PATHS prefix 'reports/' must start with / and hold only letters, digits and ._~/@+-",
  ],
  [{ SLOW_PATHS: '/r{}:30s' }, "SLOW_PATHS prefix '/r{}' must start with / and hold only letters, digits and ._~/@+-"],
  [
    { SLOW_PATHS: '/r;deny:30s' },
    "SLOW_PATHS prefix '/r;deny' must start with / and hold only letters, digits and ._~/@+-",
  ],
  [
    { SLOW_PATHS: '/$uri:30s' },
    "SLOW_PATHS prefix '/$uri' must start with / and hold only letters, digits and ._~/@+-",
  ],
  [{ SLOW_PATHS: '/:30s' }, "SLOW_PATHS prefix '/' is every path: raise PROXY_READ_TIMEOUT instead"],
  [{ SLOW_PATHS: '/a/:30s,/a/:60s' }, "SLOW_PATHS lists '/a/' twice"],
  [{ SLOW_PATHS: '/a/:30' }, `SLOW_PATHS timeout of '/a/' ${TIME}, got '30'`],
  [{ SLOW_PATHS: '/a/:10m' }, `SLOW_PATHS timeout of '/a/' ${TIME}, got '10m'`],
  [{ SLOW_PATHS: '/a/:301s' }, `SLOW_PATHS timeout of '/a/' ${TIME}, got '301s'`],
  [
    { SLOW_PATHS: '/a/:3s' },
    "SLOW_PATHS timeout of '/a/' (3s) must be longer than PROXY_NEXT_UPSTREAM_TIMEOUT (3s); for shorter waits raise PROXY_READ_TIMEOUT",
  ],
  [
    { SLOW_PATHS: Array.from({ length: 21 }, (_, i) => `/p${i}/:10s`).join(',') },
    'SLOW_PATHS lists more than 20 prefixes',
  ],
])('bad timeout input %p: exit 2 in both outputs, a message naming it, nothing on stdout', async (env, message) => {
  for (const args of [['routes'], []]) {
    const result = await render({ SWITCH_DIR, ...(env as Record<string, string>) }, args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim()).toBe(`render-upstream: ${message}`);
  }
});

test('an unknown output is refused', async () => {
  const result = await render({ SWITCH_DIR }, ['servers']);
  expect(result).toMatchObject({ code: 2, stdout: '' });
  expect(result.stderr.trim()).toBe(
    "render-upstream: unknown output 'servers': expected upstream (upstream.conf) or routes (routes.conf)",
  );
});

test('proxy-settings.sh (generated from core, shipped beside it) missing: exit 2 naming it, nothing rendered', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'render-upstream-'));
  try {
    copyFileSync(RENDER, path.join(dir, 'render-upstream.sh'));
    for (const args of [['routes'], []]) {
      const result = await run('sh', [path.join(dir, 'render-upstream.sh'), ...args], {
        env: { PATH: process.env.PATH, SWITCH_DIR },
      }).catch((e) => e as { code: number; stdout: string; stderr: string });
      expect(result).toMatchObject({ code: 2, stdout: '' });
      expect(result.stderr.trim()).toBe(
        `render-upstream: ${path.join(dir, 'proxy-settings.sh')} is missing (generated from core/ by npm run generate, shipped next to this script)`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// grep matches line by line: before the renderer refused line breaks, a value whose first line was
// good carried its other lines into the config (a multi-line SLOW_PATHS rendered a working
// `location /a { return 200 pwned; }`; so did SWITCH_DIR, both upstreams, MAX_FAILS, FAIL_TIMEOUT,
// UPSTREAM_KEEPALIVE and PROXY_SEND_TIMEOUT, whose time nothing does arithmetic on).
const GOOD_FIRST_LINE: Record<string, string> = {
  SWITCH_DIR,
  BLUE_UPSTREAM: 'app_blue:3000',
  GREEN_UPSTREAM: 'app_green:3000',
  MAX_FAILS: '1',
  FAIL_TIMEOUT: '5s',
  UPSTREAM_KEEPALIVE: '64',
  PROXY_CONNECT_TIMEOUT: '500ms',
  PROXY_SEND_TIMEOUT: '2s',
  PROXY_READ_TIMEOUT: '1s',
  PROXY_NEXT_UPSTREAM_TIMEOUT: '3s',
  SLOW_PATHS: '/a/:10s',
};
const INJECTED = '}\nlocation /a { return 200 pwned; }\nlocation /zz {';
test.each(
  Object.keys(GOOD_FIRST_LINE).flatMap((name) => [
    [name, 'a line feed', `${GOOD_FIRST_LINE[name]}\n${INJECTED}`],
    [name, 'a carriage return', `${GOOD_FIRST_LINE[name]}\r${INJECTED.replace(/\n/g, '\r')}`],
  ]),
)('%s holding %s after a good first line: refused in both outputs, nothing rendered', async (name, _what, value) => {
  for (const args of [['routes'], []]) {
    const result = await render({ SWITCH_DIR, [name]: value }, args);
    expect(result.stdout).toBe('');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^render-upstream: ${name} must `));
  }
});

test('routes: STICKY_KEYS renders one server-level check per key before the locations, none without it', async () => {
  const none = await render({ SWITCH_DIR }, ['routes']);
  expect(none.stdout).not.toContain('sticky');
  const { code, stdout, stderr } = await render({ SWITCH_DIR, STICKY_KEYS: 'cookie:session,header:X-User-Id' }, [
    'routes',
  ]);
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout).toContain(
    'if (-f $bluegreen_switch_dir/canary/sticky.cookie.session) {\n    set $bluegreen_sticky_value $cookie_session;\n}\n',
  );
  expect(stdout).toContain(
    'if (-f $bluegreen_switch_dir/canary/sticky.header.x-user-id) {\n    set $bluegreen_sticky_value $http_x_user_id;\n}\n',
  );
  expect(stdout.indexOf('if (-f')).toBeLessThan(stdout.indexOf('location /'));
  // upstream.conf does not depend on it.
  expect((await render({ SWITCH_DIR, STICKY_KEYS: 'cookie:session' })).stdout).toBe(
    (await render({ SWITCH_DIR })).stdout,
  );
});
