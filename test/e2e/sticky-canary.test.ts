// Sticky canaries with real nginx and real pool processes: during `switch-pool.sh --canary N
// --sticky cookie:NAME` a request carrying the cookie goes to the side its value picks, the same side
// every time, and the share of values on the canary is N%; requests without it are split per
// request. Loopback only, bounded counts.
import * as http from 'node:http';
import { readlinkSync } from 'node:fs';
import * as path from 'node:path';
import { readAccessLog, startTestStack, waitFor, workerPids } from '../helpers/stack';
import { httpRequest } from '../../support/http';
import { LocalStack } from '../../local/stack';
import { readCanaryPercent, readCanarySticky } from '../../local/switch';
import { proxySettingsEnv, proxySettingsFromEnv } from '../../core/proxy-settings';

let stack: LocalStack;
afterEach(async () => {
  await stack?.stop();
});

const KEYS = 10_000;
const CONCURRENCY = 16;

/** Sends each request of `requests` (cookie value or none) once, CONCURRENCY at a time on kept-alive connections. */
async function send(url: string, requests: Array<string | undefined>): Promise<Array<string | undefined>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const answered: Array<string | undefined> = new Array(requests.length);
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const i = next++;
      const cookie = requests[i];
      const res = await httpRequest(url, {
        agent,
        headers: cookie === undefined ? {} : { cookie: `session=${cookie}` },
      });
      if (res.status !== 200) throw new Error(`request ${i}: status ${res.status}`);
      answered[i] = res.headers['x-app-pool'] as string | undefined;
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    agent.destroy();
  }
  return answered;
}

test(`--canary 10 --sticky cookie:session: ${KEYS} cookie values, each sent twice, each on one pool; 10% of them on the canary; no cookie still per request`, async () => {
  stack = await startTestStack({
    activePool: 'blue',
    upstreamEnv: proxySettingsEnv(proxySettingsFromEnv({ STICKY_KEYS: 'cookie:session,header:X-User' })),
  });
  const workers = workerPids(stack);
  const set = await stack.canary(10, 'cookie:session');
  expect(set).toMatchObject({ code: 0, stderr: '' });
  expect(set.stdout.trim()).toBe(
    'switch-pool: canary share is now 10% sticky on cookie:session (was 0%): a request carrying cookie session goes by its value, so one client stays on one side (that share of values tries the idle pool first, the active pool is its backup); a request without it is split per request',
  );
  expect(readlinkSync(path.join(stack.state.switchDir, 'canary'))).toBe('.canary-10.cookie.session');
  expect(readCanaryPercent(stack.state)).toBe(10);
  expect(readCanarySticky(stack.state)).toBe('cookie:session');

  // Every value twice, the second round after the first (other values in between), so a value
  // that landed on one side by luck of the request would show on the other side in round two.
  const values = Array.from({ length: KEYS }, (_, i) => `user-${i}-${(i * 2654435761) % 1000003}`);
  const first = await send(`${stack.url}/version`, values);
  const second = await send(`${stack.url}/version`, values);
  const moved = values.filter((_, i) => first[i] !== second[i]);
  expect(moved).toEqual([]);
  const onCanary = first.filter((p) => p === 'green').length;
  expect(first.filter((p) => p !== 'green' && p !== 'blue')).toEqual([]);
  const share = onCanary / KEYS;
  expect(Math.abs(share - 0.1)).toBeLessThan(0.02);

  // Without the cookie: split per request, as without a sticky key (the same request, 400 times,
  // lands on both sides).
  const plain = await send(
    `${stack.url}/version`,
    Array.from({ length: 400 }, () => undefined),
  );
  const plainGreen = plain.filter((p) => p === 'green').length;
  expect(plainGreen).toBeGreaterThan(0);
  expect(plainGreen).toBeLessThan(400);

  // The access log says the same: each value's lines name one primary pool, the one that answered.
  const lines = await waitFor(() => {
    const entries = readAccessLog(stack).entries.filter((e) => e.uri === '/version');
    return entries.length >= 2 * KEYS + 400 ? entries : undefined;
  }, 'every request logged');
  expect(lines.filter((e) => e.pool !== e.primary_pool)).toEqual([]);
  expect(workerPids(stack)).toEqual(workers);
});

test('a header key sticks too (names case-insensitive); a canary without --sticky and --canary 0 clear the key', async () => {
  stack = await startTestStack({
    activePool: 'blue',
    upstreamEnv: proxySettingsEnv(proxySettingsFromEnv({ STICKY_KEYS: 'header:X-User' })),
  });
  expect((await stack.canary(50, 'header:x-USER')).code).toBe(0);
  expect(readCanarySticky(stack.state)).toBe('header:x-user');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const poolsOf = async (user: string, n: number) => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const res = await httpRequest(`${stack.url}/version`, { agent, headers: { 'X-User': user } });
      seen.add(String(res.headers['x-app-pool']));
    }
    return seen;
  };
  for (let u = 0; u < 20; u++) expect((await poolsOf(`u${u}`, 8)).size).toBe(1);

  // The same share without --sticky: the key is no longer read, the same user lands on both sides.
  const plain = await stack.canary(50);
  expect(plain.stdout).toContain('canary share is now 50% (was 50% sticky on header:x-user)');
  expect(readCanarySticky(stack.state)).toBeUndefined();
  expect((await poolsOf('u0', 60)).size).toBe(2);

  expect((await stack.canary(50, 'header:X-User')).code).toBe(0);
  const off = await stack.canary(0);
  expect(off.stdout).toContain('canary share is now 0% (was 50% sticky on header:x-user)');
  expect(readCanarySticky(stack.state)).toBeUndefined();
  expect(await poolsOf('u1', 20)).toEqual(new Set(['blue']));
  agent.destroy();
});

test('a key the stack did not declare, or a sticky 0%, is refused (exit 2) and changes nothing', async () => {
  stack = await startTestStack({
    activePool: 'blue',
    upstreamEnv: proxySettingsEnv(proxySettingsFromEnv({ STICKY_KEYS: 'cookie:session' })),
  });
  expect((await stack.canary(10)).code).toBe(0);
  const undeclared = await stack.canary(20, 'cookie:other');
  expect(undeclared.code).toBe(2);
  expect(undeclared.stderr).toBe(
    "switch-pool: the sticky key cookie:other is not one of this stage's STICKY_KEYS (cookie:session): nginx was not rendered to read it; nothing changed\n",
  );
  const zero = await stack.canary(0, 'cookie:session');
  expect(zero.code).toBe(2);
  const bad = await stack.canary(20, 'cookie:a-b');
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain(
    "the sticky key must be cookie:NAME (letters, digits, _) or header:NAME (letters, digits, -), at most 64 characters, got 'cookie:a-b'",
  );
  expect(readlinkSync(path.join(stack.state.switchDir, 'canary'))).toBe('.canary-10');
});
