// core/canary.ts: sticky keys and the canary-percent parameter's value, as the CLI, synth and the
// AWS backend read and write them; the same patterns the host and nginx's scripts get (generated).
import {
  CANARY_VALUE_PATTERN,
  formatCanaryValue,
  MAX_STICKY_KEYS,
  parseCanaryValue,
  parseStickyKey,
  parseStickyKeys,
  stickyNginxVariable,
} from '../../core/canary';
import { ConfigError } from '../../core/config-error';
import { POOL_STATE_PATTERNS, POOL_STATE_REGEXPS } from '../../core/patterns';

test('a key: cookie names as nginx variables take them, header names lowercased', () => {
  expect(parseStickyKey('cookie:Session_ID', 'k')).toEqual({ kind: 'cookie', name: 'Session_ID' });
  expect(parseStickyKey('header:X-User-Id', 'k')).toEqual({ kind: 'header', name: 'x-user-id' });
  expect(stickyNginxVariable(parseStickyKey('cookie:Session_ID', 'k'))).toBe('$cookie_Session_ID');
  expect(stickyNginxVariable(parseStickyKey('header:X-User-Id', 'k'))).toBe('$http_x_user_id');
  for (const bad of [
    'cookie:a-b',
    'header:a_b',
    'header:-a',
    'cookie:',
    'query:a',
    'cookie',
    'cookie:a b',
    'cookie:$x',
    'cookie:a\n',
    `cookie:${'a'.repeat(65)}`,
  ]) {
    expect(() => parseStickyKey(bad, '--sticky')).toThrow(ConfigError);
  }
});

test('STICKY_KEYS: comma-separated, no repeats (header names in any case), at most MAX_STICKY_KEYS', () => {
  expect(parseStickyKeys('', 'STICKY_KEYS')).toEqual([]);
  expect(parseStickyKeys('cookie:s,header:X-U', 'STICKY_KEYS')).toEqual([
    { kind: 'cookie', name: 's' },
    { kind: 'header', name: 'x-u' },
  ]);
  expect(() => parseStickyKeys('header:X-U,header:x-u', 'STICKY_KEYS')).toThrow("STICKY_KEYS lists 'header:x-u' twice");
  const many = Array.from({ length: MAX_STICKY_KEYS + 1 }, (_, i) => `cookie:c${i}`).join(',');
  expect(() => parseStickyKeys(many, 'STICKY_KEYS')).toThrow(`STICKY_KEYS lists more than ${MAX_STICKY_KEYS} keys`);
  expect(() => parseStickyKeys('cookie:a,,cookie:b', 'STICKY_KEYS')).toThrow(/empty entry/);
});

test('the canary-percent value: every share as before, a share above 0 with one key; the parameter pattern is it', () => {
  expect(POOL_STATE_PATTERNS.canaryPercent).toBe(CANARY_VALUE_PATTERN);
  const re = POOL_STATE_REGEXPS.canaryPercent;
  for (let n = 0; n < 100; n++) expect(re.test(String(n))).toBe(true);
  for (const ok of ['10 cookie:session', '1 header:X-User', '99 cookie:a_b']) expect(re.test(ok)).toBe(true);
  for (const bad of [
    '100',
    '05',
    '-1',
    '',
    '0 cookie:s',
    '10  cookie:s',
    '10 cookie:a-b',
    '10 cookie:s ',
    '10 cookie:s,header:x',
    '10\ncookie:s',
  ])
    expect(re.test(bad)).toBe(false);

  expect(formatCanaryValue(10)).toBe('10');
  expect(formatCanaryValue(10, parseStickyKey('header:X-User', 'k'))).toBe('10 header:x-user');
  expect(() => formatCanaryValue(0, parseStickyKey('cookie:s', 'k'))).toThrow(
    'a sticky key needs a canary share above 0',
  );
  expect(() => formatCanaryValue(100)).toThrow(ConfigError);
  expect(parseCanaryValue('10')).toEqual({ percent: 10 });
  expect(parseCanaryValue('0')).toEqual({ percent: 0 });
  expect(parseCanaryValue('25 cookie:session')).toEqual({ percent: 25, sticky: { kind: 'cookie', name: 'session' } });
  expect(parseCanaryValue('25 header:X-U')).toEqual({ percent: 25, sticky: { kind: 'header', name: 'x-u' } });
  expect(parseCanaryValue('abc')).toBeUndefined();
});
