// The canary share and its sticky key: what a stage may stick a canary on (STICKY_KEYS, declared when
// nginx's config is rendered, since nginx cannot take a variable name at runtime and is never
// reloaded for a canary), what `bluegreen release --sticky` accepts, and the canary-percent
// parameter's value, `<share>` or `<share> <kind>:<name>`, so share and key change in one write.
// Pure: no I/O. nginx/render-upstream.sh and nginx/switch-pool.sh check the same patterns, read from
// the generated nginx/proxy-settings.sh; bluegreen-apply reads the parameter's pattern from facts.sh.
import { ConfigError } from './config-error';

/**
 * A sticky key: `cookie:NAME` or `header:NAME`. Plain name characters only: the name lands in an
 * nginx variable (`$cookie_NAME`, `$http_<name>`) and in a file name in the switch dir. nginx's
 * variable names hold letters, digits and `_` only, so a cookie name with `-` cannot be read by
 * name; a header name may hold `-` (nginx reads it as `_`), and a header with `_` is dropped by
 * nginx by default (underscores_in_headers off), so `_` is refused there.
 */
export const STICKY_COOKIE_NAME = '[A-Za-z0-9_]{1,64}';
export const STICKY_HEADER_NAME = '[A-Za-z0-9][A-Za-z0-9-]{0,63}';
/** One key, unanchored (POSIX ERE and JavaScript read it the same way). */
export const STICKY_KEY_BODY = `(cookie:${STICKY_COOKIE_NAME}|header:${STICKY_HEADER_NAME})`;
export const STICKY_KEY_PATTERN = `^${STICKY_KEY_BODY}$`;
const STICKY_KEY = new RegExp(STICKY_KEY_PATTERN);
/**
 * The most keys a stage may declare: each is one `if` (a stat) per request in routes.conf, and a
 * canary sticks on one key at a time; a few alternatives (a session cookie, a user header) suffice.
 */
export const MAX_STICKY_KEYS = 4;

/** A canary share: 0-99, no leading zero (it is also a directory name in the switch dir). */
export const CANARY_SHARE_PATTERN = '^(0|[1-9][0-9]?)$';
const CANARY_SHARE = new RegExp(CANARY_SHARE_PATTERN);
/**
 * The canary-percent parameter's value: a share, or a share above 0 and the key it sticks on,
 * separated by one space. `10` (every value written before sticky canaries) stays valid.
 */
export const CANARY_VALUE_PATTERN = `^(0|[1-9][0-9]?( ${STICKY_KEY_BODY})?)$`;
const CANARY_VALUE = new RegExp(CANARY_VALUE_PATTERN);

export interface StickyKey {
  readonly kind: 'cookie' | 'header';
  /** As written for a cookie (cookie names are case-sensitive); lowercased for a header. */
  readonly name: string;
}

/** `cookie:NAME` / `header:name` (header names lowercased: HTTP header names are case-insensitive). */
export function stickyKeyText(key: StickyKey): string {
  return `${key.kind}:${key.name}`;
}

/** Parses one key; `label` names where it came from in the message. Throws ConfigError. */
export function parseStickyKey(text: string, label: string): StickyKey {
  if (!STICKY_KEY.test(text))
    throw new ConfigError(
      `${label} must be cookie:NAME (letters, digits, _) or header:NAME (letters, digits, -), at most 64 characters, got '${text}'`,
    );
  const colon = text.indexOf(':');
  const kind = text.slice(0, colon) as StickyKey['kind'];
  const name = text.slice(colon + 1);
  return { kind, name: kind === 'header' ? name.toLowerCase() : name };
}

/** STICKY_KEYS / the stickyKeys context: comma-separated keys, no spaces, no repeats, at most MAX_STICKY_KEYS. */
export function parseStickyKeys(text: string, label: string): StickyKey[] {
  if (text === '') return [];
  if (/\s/.test(text))
    throw new ConfigError(
      `${label} must be cookie:NAME or header:NAME keys separated by commas, without spaces, e.g. cookie:session,header:X-User, got '${text}'`,
    );
  const keys: StickyKey[] = [];
  for (const entry of text.split(',')) {
    if (entry === '')
      throw new ConfigError(`${label} has an empty entry (two commas in a row, or one at an end), got '${text}'`);
    const key = parseStickyKey(entry, `${label} entry`);
    if (keys.some((k) => stickyKeyText(k) === stickyKeyText(key)))
      throw new ConfigError(`${label} lists '${stickyKeyText(key)}' twice`);
    keys.push(key);
    if (keys.length > MAX_STICKY_KEYS) throw new ConfigError(`${label} lists more than ${MAX_STICKY_KEYS} keys`);
  }
  return keys;
}

/** The nginx variable holding a key's value in a request: `$cookie_session`, `$http_x_user`. */
export function stickyNginxVariable(key: StickyKey): string {
  return key.kind === 'cookie' ? `$cookie_${key.name}` : `$http_${key.name.replace(/-/g, '_')}`;
}

/** The canary-percent parameter's value for a share and, optionally, the key it sticks on. */
export function formatCanaryValue(percent: number, sticky?: StickyKey): string {
  if (!CANARY_SHARE.test(String(percent)))
    throw new ConfigError(`a canary share is a whole number 0-99, got ${percent}`);
  if (sticky && percent === 0) throw new ConfigError('a sticky key needs a canary share above 0');
  return sticky ? `${percent} ${stickyKeyText(sticky)}` : String(percent);
}

/** Reads the canary-percent parameter's value; undefined when it does not match CANARY_VALUE_PATTERN. */
export function parseCanaryValue(text: string): { percent: number; sticky?: StickyKey } | undefined {
  if (!CANARY_VALUE.test(text)) return undefined;
  const [share, key] = text.split(' ');
  return key === undefined
    ? { percent: Number(share) }
    : { percent: Number(share), sticky: parseStickyKey(key, 'key') };
}

/** `status`'s canary row, locally and on a stage: the share, who it sends where, its sticky key. */
export function describeCanaryShare(percent: number, idle: string, sticky?: string): string {
  return percent > 0
    ? `${percent}% of requests try ${idle} first${sticky ? ` (sticky on ${sticky}: a client carrying it stays on one side)` : ''}`
    : '0% (none)';
}
