import { percentile, summarize, Sample } from '../../local/load';
import { parseAccessLogLine, upstreamStatuses } from '../../core/access-log';
import { findNginx, NGINX_INSTALL_HINT } from '../../local/nginx-binary';
import { parsePool } from '../../core/pools';
import { parsePort } from '../../core/ports';

const sample = (latencyMs: number, status = 200, pool: string | null = 'blue', error?: string): Sample => ({
  sentAt: 0,
  latencyMs,
  status,
  pool,
  error,
});

test('percentile uses the nearest rank', () => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
  expect(percentile(sorted, 50)).toBe(50);
  expect(percentile(sorted, 99)).toBe(99);
  expect(percentile(sorted, 100)).toBe(100);
  expect(percentile([7], 99)).toBe(7);
  expect(percentile([], 50)).toBe(0);
});

test('summarize counts every non-200 as failed, by status or client error', () => {
  const s = summarize(
    [sample(1), sample(2, 200, 'green'), sample(3, 502, null), sample(900, 0, null, 'ETIMEDOUT')],
    1000,
  );
  expect(s).toMatchObject({
    requests: 4,
    failed: 2,
    failures: { '502': 1, ETIMEDOUT: 1 },
    byPool: { blue: 1, green: 1 },
    maxMs: 900,
    requestsPerSec: 4,
  });
});

test('access-log lines: valid, malformed and failover attempts', () => {
  const good =
    '{"time":"2026-11-22T10:00:00+00:00","request_id":"a","remote_addr":"127.0.0.1","method":"GET","uri":"/","status":200,"body_bytes_sent":10,"request_time":0.004,"upstream_addr":"x:1, y:2","upstream_status":"500, 200","upstream_response_time":"0.001, 0.002","upstream_connect_time":"0.000, 0.000","pool":"green","release":"g","active_pool":"blue"}';
  const parsed = parseAccessLogLine(good);
  expect(parsed.ok).toBe(true);
  if (parsed.ok) expect(upstreamStatuses(parsed.entry)).toEqual([500, 200]);
  expect(parseAccessLogLine('not json')).toEqual({ ok: false, reason: 'not JSON' });
  expect(parseAccessLogLine('[1]')).toEqual({ ok: false, reason: 'not a JSON object' });
  expect(parseAccessLogLine(good.replace('"status":200', '"status":"200"'))).toEqual({
    ok: false,
    reason: 'field status is not a number',
  });
  expect(parseAccessLogLine(good.replace('"pool":"green",', ''))).toEqual({ ok: false, reason: 'missing field pool' });
  expect(upstreamStatuses({ upstream_status: '' })).toEqual([]);
  expect(upstreamStatuses({ upstream_status: '502, 504 : 200' })).toEqual([502, 504, 200]);
});

test('findNginx: NGINX_BIN, PATH, and a hint when it is nowhere', () => {
  expect(() => findNginx({ PATH: '/nonexistent' }, [])).toThrow(`nginx not found: ${NGINX_INSTALL_HINT}`);
  expect(() => findNginx({ NGINX_BIN: '/nonexistent/nginx' }, [])).toThrow(
    'nginx not found at NGINX_BIN=/nonexistent/nginx',
  );
});

test('settings parsers name the source and the allowed values', () => {
  expect(parsePool('green', 'ACTIVE_POOL')).toBe('green');
  expect(() => parsePool('GREEN', 'ACTIVE_POOL')).toThrow('ACTIVE_POOL must be one of blue|green, got "GREEN"');
  expect(parsePort(undefined, 'NGINX_PORT', 8080)).toBe(8080);
  expect(parsePort('0', 'NGINX_PORT', 8080)).toBe(0);
  expect(() => parsePort('80800', 'NGINX_PORT', 8080)).toThrow('NGINX_PORT must be a port number 0-65535, got "80800"');
});
