// The per-stage proxy timeouts and slow paths, checked before they reach the renderer: CDK context
// at synth (lib/stack-config.ts), the environment in local mode (local/start.ts). The one definition
// of their defaults and syntax: nginx/render-upstream.sh (what the host runs) checks them again with
// the same rules, reading the defaults, patterns and limits from nginx/proxy-settings.sh, generated
// from this file (core/host-files.ts, `npm run generate`). Pure: no CDK, no I/O.
//
// The same settings decide two timeouts in front of nginx: a fleet's load balancer must wait longer
// than nginx may wait on a pool (or it cuts a slow route), and nginx must keep an idle keep-alive
// connection open longer than the load balancer does (or the balancer reuses a connection nginx is
// closing and answers 502 with no nginx log line). loadBalancerIdleSeconds and keepaliveSeconds say
// both; render-upstream.sh renders the second into routes.conf by the same rule, with the margins
// from the generated file (test/unit/proxy-settings.test.ts runs both on the same settings).
import { limit } from './aws-limits';
import { parseStickyKeys, StickyKey, stickyKeyText } from './canary';
import { ConfigError } from './config-error';

/** The settings, each with the renderer's environment variable that carries it to the host and to local nginx. */
export const PROXY_SETTINGS = {
  connectTimeout: { env: 'PROXY_CONNECT_TIMEOUT', default: '500ms' },
  sendTimeout: { env: 'PROXY_SEND_TIMEOUT', default: '2s' },
  readTimeout: { env: 'PROXY_READ_TIMEOUT', default: '1s' },
  nextUpstreamTimeout: { env: 'PROXY_NEXT_UPSTREAM_TIMEOUT', default: '3s' },
  slowPaths: { env: 'SLOW_PATHS', default: '' },
  // The keys a canary of this stage may stick on (core/canary.ts): rendered into routes.conf, since
  // nginx cannot take a variable name at runtime.
  stickyKeys: { env: 'STICKY_KEYS', default: '' },
} as const;
export type ProxySettingKey = keyof typeof PROXY_SETTINGS;

export interface SlowPath {
  readonly prefix: string;
  readonly timeout: string;
}

export interface ProxySettings {
  readonly connectTimeout: string;
  readonly sendTimeout: string;
  readonly readTimeout: string;
  readonly nextUpstreamTimeout: string;
  readonly slowPaths: readonly SlowPath[];
  readonly stickyKeys: readonly StickyKey[];
}

// The patterns are written once, as text both JavaScript and POSIX extended regular expressions (grep -E,
// render-upstream.sh) read the same way: anchors, bracket lists, counted repetition, alternation.
/** A whole number with ms or s, no leading zero, at most 6 digits (the shell's arithmetic cannot overflow); 1ms to 300s. */
export const TIME_PATTERN = '^[1-9][0-9]{0,5}(ms|s)$';
const TIME = new RegExp(TIME_PATTERN);
export const MAX_TIME_MS = 300_000;
/** Plain path characters only: a prefix lands in an nginx location line. */
export const PREFIX_PATTERN = '^/[A-Za-z0-9._~/@+-]*$';
const PREFIX = new RegExp(PREFIX_PATTERN);
export const MAX_SLOW_PATHS = 20;

export class ProxySettingsError extends Error {}

export function timeMs(value: string): number {
  return value.endsWith('ms') ? Number(value.slice(0, -2)) : Number(value.slice(0, -1)) * 1000;
}

/**
 * Checks raw values (undefined or '' = the default) and returns them typed. `name` says how the
 * caller's user spells each setting (a context key, an environment variable): every message names it.
 */
export function parseProxySettings(
  raw: Partial<Record<ProxySettingKey, string>>,
  name: (key: ProxySettingKey) => string,
): ProxySettings {
  const value = (key: ProxySettingKey): string => {
    const v = raw[key];
    return v === undefined || v === '' ? PROXY_SETTINGS[key].default : v;
  };
  const time = (label: string, v: string): string => {
    if (!TIME.test(v) || timeMs(v) > MAX_TIME_MS)
      throw new ProxySettingsError(`${label} must be an nginx time like 1s or 500ms, from 1ms to 300s, got '${v}'`);
    return v;
  };
  const connectTimeout = time(name('connectTimeout'), value('connectTimeout'));
  const sendTimeout = time(name('sendTimeout'), value('sendTimeout'));
  const readTimeout = time(name('readTimeout'), value('readTimeout'));
  const nextUpstreamTimeout = time(name('nextUpstreamTimeout'), value('nextUpstreamTimeout'));
  if (timeMs(nextUpstreamTimeout) <= timeMs(connectTimeout) + timeMs(readTimeout)) {
    throw new ProxySettingsError(
      `${name('nextUpstreamTimeout')} (${nextUpstreamTimeout}) must be longer than ${name('connectTimeout')} + ${name('readTimeout')} (${connectTimeout} + ${readTimeout}), or a pool that timed out is never retried on the other pool`,
    );
  }

  const slowName = name('slowPaths');
  const text = value('slowPaths');
  const slowPaths: SlowPath[] = [];
  if (text !== '') {
    if (/\s/.test(text))
      throw new ProxySettingsError(
        `${slowName} must be prefix:timeout pairs separated by commas, without spaces, e.g. /reports/:30s,/upload/:60s, got '${text}'`,
      );
    for (const entry of text.split(',')) {
      if (entry === '')
        throw new ProxySettingsError(
          `${slowName} has an empty entry (two commas in a row, or one at an end), got '${text}'`,
        );
      const colon = entry.lastIndexOf(':');
      if (colon < 0)
        throw new ProxySettingsError(`${slowName} entry '${entry}' must be prefix:timeout, e.g. /reports/:30s`);
      const prefix = entry.slice(0, colon);
      const timeout = entry.slice(colon + 1);
      if (!PREFIX.test(prefix))
        throw new ProxySettingsError(
          `${slowName} prefix '${prefix}' must start with / and hold only letters, digits and ._~/@+-`,
        );
      if (prefix === '/')
        throw new ProxySettingsError(`${slowName} prefix '/' is every path: raise ${name('readTimeout')} instead`);
      if (slowPaths.some((p) => p.prefix === prefix))
        throw new ProxySettingsError(`${slowName} lists '${prefix}' twice`);
      time(`${slowName} timeout of '${prefix}'`, timeout);
      if (timeMs(timeout) <= timeMs(nextUpstreamTimeout)) {
        throw new ProxySettingsError(
          `${slowName} timeout of '${prefix}' (${timeout}) must be longer than ${name('nextUpstreamTimeout')} (${nextUpstreamTimeout}); for shorter waits raise ${name('readTimeout')}`,
        );
      }
      slowPaths.push({ prefix, timeout });
      if (slowPaths.length > MAX_SLOW_PATHS)
        throw new ProxySettingsError(`${slowName} lists more than ${MAX_SLOW_PATHS} prefixes`);
    }
  }
  let stickyKeys: StickyKey[];
  try {
    stickyKeys = parseStickyKeys(value('stickyKeys'), name('stickyKeys'));
  } catch (err) {
    if (err instanceof ConfigError) throw new ProxySettingsError(err.message);
    throw err;
  }
  return { connectTimeout, sendTimeout, readTimeout, nextUpstreamTimeout, slowPaths, stickyKeys };
}

/**
 * The generations of a pool: per primary pool, upstream.conf holds one upstream block per generation
 * (`bluegreen_<pool>_<generation>`), and nginx.conf sends a request to its primary pool's current
 * generation (a flag file in the switch dir, `generation-<pool>-<g>`; none = the first).
 * `switch-pool.sh --fresh <pool>` moves a pool to the next one whenever a new process or container
 * serves it, so nginx's passive health state (max_fails/fail_timeout, per block and per worker) about
 * the old process is not applied to the new one. The next generation is always the one left longest
 * ago; a block left for longer than fail_timeout is clean, so four are clean unless a pool is
 * redeployed four times within fail_timeout (DECISIONS.md, "Pool generations"). nginx.conf checks the
 * flags of all but the first, in this order (test/unit/render-upstream.test.ts holds it to this list).
 */
export const POOL_GENERATIONS = ['a', 'b', 'c', 'd'] as const;
export type PoolGeneration = (typeof POOL_GENERATIONS)[number];

/** The defaults, typed. */
export const DEFAULT_PROXY_SETTINGS: ProxySettings = parseProxySettings({}, (key) => PROXY_SETTINGS[key].env);

/** The renderer's environment for these settings (every variable set, defaults included). */
export function proxySettingsEnv(settings: ProxySettings): Record<string, string> {
  return {
    [PROXY_SETTINGS.connectTimeout.env]: settings.connectTimeout,
    [PROXY_SETTINGS.sendTimeout.env]: settings.sendTimeout,
    [PROXY_SETTINGS.readTimeout.env]: settings.readTimeout,
    [PROXY_SETTINGS.nextUpstreamTimeout.env]: settings.nextUpstreamTimeout,
    [PROXY_SETTINGS.slowPaths.env]: settings.slowPaths.map((p) => `${p.prefix}:${p.timeout}`).join(','),
    [PROXY_SETTINGS.stickyKeys.env]: settings.stickyKeys.map(stickyKeyText).join(','),
  };
}

/** Reads the settings from an environment (local mode); messages name the variables. */
export function proxySettingsFromEnv(env: NodeJS.ProcessEnv): ProxySettings {
  const raw: Partial<Record<ProxySettingKey, string>> = {};
  for (const key of Object.keys(PROXY_SETTINGS) as ProxySettingKey[]) raw[key] = env[PROXY_SETTINGS[key].env];
  return parseProxySettings(raw, (key) => PROXY_SETTINGS[key].env);
}

/** nginx's longest wait for a pool (a slow path's, the failover window or the read timeout), in whole seconds. */
export function longestProxyWaitSeconds(proxy: ProxySettings): number {
  const ms = Math.max(
    timeMs(proxy.readTimeout),
    timeMs(proxy.nextUpstreamTimeout),
    ...proxy.slowPaths.map((p) => timeMs(p.timeout)),
  );
  return Math.ceil(ms / 1000);
}

/** The load balancer (and a leaving host's deregistration) outlasts nginx's longest wait by this much. */
export const WAIT_MARGIN_SECONDS = 5;
/**
 * nginx keeps an idle keep-alive connection open this much longer than the load balancer: the
 * balancer must always be the side that closes it (nginx's own default, 75 s, is the ALB's default
 * idle timeout plus this).
 */
export const KEEPALIVE_MARGIN_SECONDS = 15;

/**
 * The fleet's load balancer idle timeout (idle_timeout.timeout_seconds): the ALB's default, or nginx's
 * longest wait on a pool plus a margin when that is longer, so the balancer never cuts a request
 * nginx still allows.
 */
export function loadBalancerIdleSeconds(proxy: ProxySettings): number {
  const seconds = Math.max(limit('albIdleTimeoutDefault'), longestProxyWaitSeconds(proxy) + WAIT_MARGIN_SECONDS);
  if (seconds > limit('albIdleTimeoutMax'))
    throw new ProxySettingsError(
      `the load balancer's idle timeout would be ${seconds} s; an ALB takes at most ${limit('albIdleTimeoutMax')} s`,
    );
  return seconds;
}

/** nginx's keepalive_timeout (routes.conf, server level): always longer than the load balancer's idle timeout. */
export function keepaliveSeconds(proxy: ProxySettings): number {
  return loadBalancerIdleSeconds(proxy) + KEEPALIVE_MARGIN_SECONDS;
}
