// core/proxy-settings.ts (what synth and local mode check) against nginx/render-upstream.sh (what
// the host and local nginx render), on the same settings: the same accepted values, the same
// messages, the same keepalive_timeout. The defaults, patterns, limits and margins are not compared:
// the renderer reads core's own from nginx/proxy-settings.sh, generated from core
// (test/unit/host-files.test.ts fails when it is stale).
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NGINX_DIR } from '../../local/paths';
import {
  keepaliveSeconds,
  loadBalancerIdleSeconds,
  proxySettingsEnv,
  proxySettingsFromEnv,
} from '../../core/proxy-settings';

const run = promisify(execFile);
const SWITCH_DIR = '/etc/bluegreen/switch';

async function renderRoutes(env: Record<string, string>): Promise<{ ok: boolean; stdout: string; message: string }> {
  try {
    const { stdout } = await run('sh', [path.join(NGINX_DIR, 'render-upstream.sh'), 'routes'], {
      env: { PATH: process.env.PATH, SWITCH_DIR, ...env },
    });
    return { ok: true, stdout, message: '' };
  } catch (e) {
    const err = e as { stderr: string };
    return { ok: false, stdout: '', message: err.stderr.trim().replace(/^render-upstream: /, '') };
  }
}

function parse(env: Record<string, string>): { ok: boolean; message: string } {
  try {
    proxySettingsFromEnv(env);
    return { ok: true, message: '' };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

// Every rule, on both sides of its edge.
const CASES: Record<string, string>[] = [
  // No settings: each side's defaults (the TS side passes them on, normalised, below).
  {},
  { PROXY_READ_TIMEOUT: '2s', PROXY_NEXT_UPSTREAM_TIMEOUT: '5s' },
  { PROXY_READ_TIMEOUT: '2500ms' },
  { PROXY_READ_TIMEOUT: '2499ms' },
  { PROXY_CONNECT_TIMEOUT: '1ms' },
  { PROXY_CONNECT_TIMEOUT: '0ms' },
  { PROXY_CONNECT_TIMEOUT: '0500ms' },
  { PROXY_SEND_TIMEOUT: '300s' },
  { PROXY_SEND_TIMEOUT: '300001ms' },
  { PROXY_SEND_TIMEOUT: '1234567s' },
  { PROXY_SEND_TIMEOUT: '1.5s' },
  { PROXY_READ_TIMEOUT: '1' },
  { PROXY_NEXT_UPSTREAM_TIMEOUT: '1m' },
  { SLOW_PATHS: '' },
  { SLOW_PATHS: '/reports/:30s,/upload/:60s' },
  { SLOW_PATHS: '/reports/:30s,/reports/big/:300s' },
  { SLOW_PATHS: '/a/:3001ms' },
  { SLOW_PATHS: '/a/:3000ms' },
  { SLOW_PATHS: '/a/:3s' },
  { SLOW_PATHS: '/a/:4s', PROXY_NEXT_UPSTREAM_TIMEOUT: '4s' },
  { SLOW_PATHS: '/~user/a.b_c-d@e+f:10s' },
  { SLOW_PATHS: '/' + ':10s' },
  { SLOW_PATHS: 'a:10s' },
  { SLOW_PATHS: '/a b:10s' },
  { SLOW_PATHS: '/a;b:10s' },
  { SLOW_PATHS: '/a}:10s' },
  { SLOW_PATHS: '/a":10s' },
  { SLOW_PATHS: '/a$b:10s' },
  { SLOW_PATHS: '/a:b:10s' },
  { SLOW_PATHS: '/a/' },
  { SLOW_PATHS: '/a/:10s,' },
  { SLOW_PATHS: ',/a/:10s' },
  { SLOW_PATHS: '/a/:10s,,/b/:10s' },
  { SLOW_PATHS: '/a/:10s,/a/:20s' },
  { SLOW_PATHS: '/a/:10s,/a:20s' },
  { SLOW_PATHS: Array.from({ length: 20 }, (_, i) => `/p${i}/:10s`).join(',') },
  { SLOW_PATHS: Array.from({ length: 21 }, (_, i) => `/p${i}/:10s`).join(',') },
  // keepalive_timeout's edges: the longest wait rounded up to whole seconds, and the ALB's 60 s floor.
  { SLOW_PATHS: '/a/:55s' },
  { SLOW_PATHS: '/a/:55001ms' },
  { SLOW_PATHS: '/a/:56s' },
  { PROXY_READ_TIMEOUT: '61s', PROXY_NEXT_UPSTREAM_TIMEOUT: '62s' },
  // STICKY_KEYS: plain name characters (a cookie's as nginx variable names take them, a header's
  // as nginx reads header names), no spaces, no empty entry, no repeat (header names in any case),
  // at most MAX_STICKY_KEYS.
  { STICKY_KEYS: '' },
  { STICKY_KEYS: 'cookie:session' },
  { STICKY_KEYS: 'cookie:Session_ID,header:X-User-Id' },
  { STICKY_KEYS: 'header:X-User,header:x-user' },
  { STICKY_KEYS: 'cookie:a,cookie:A' },
  { STICKY_KEYS: 'cookie:a-b' },
  { STICKY_KEYS: 'header:x_user' },
  { STICKY_KEYS: 'header:-x' },
  { STICKY_KEYS: 'cookie:' },
  { STICKY_KEYS: 'query:a' },
  { STICKY_KEYS: 'cookie:a;b' },
  { STICKY_KEYS: 'cookie:$a' },
  { STICKY_KEYS: 'cookie:a}' },
  { STICKY_KEYS: 'cookie:a, header:b' },
  { STICKY_KEYS: 'cookie:a,' },
  { STICKY_KEYS: ',cookie:a' },
  { STICKY_KEYS: `cookie:${'a'.repeat(64)}` },
  { STICKY_KEYS: `cookie:${'a'.repeat(65)}` },
  { STICKY_KEYS: 'cookie:a,cookie:b,header:c,header:d' },
  { STICKY_KEYS: 'cookie:a,cookie:b,header:c,header:d,header:e' },
];

/** routes.conf's keepalive_timeout, in seconds (undefined when there is none). */
const renderedKeepalive = (routes: string) => {
  const m = routes.match(/^keepalive_timeout (\d+)s;$/m);
  return m ? Number(m[1]) : undefined;
};

test.each(CASES)('%p: accepted or refused alike, with the same message', async (env) => {
  const shell = await renderRoutes(env);
  const ts = parse(env);
  expect(ts).toEqual({ ok: shell.ok, message: shell.message });
  if (shell.ok) {
    // What the TS side passes on (normalised) renders exactly what the raw values render.
    expect((await renderRoutes(proxySettingsEnv(proxySettingsFromEnv(env)))).stdout).toBe(shell.stdout);
    // The keep-alive nginx serves with is the TS rule's, and outlasts the load balancer's idle timeout.
    const settings = proxySettingsFromEnv(env);
    expect(renderedKeepalive(shell.stdout)).toBe(keepaliveSeconds(settings));
    expect(keepaliveSeconds(settings)).toBeGreaterThan(loadBalancerIdleSeconds(settings));
  }
});
