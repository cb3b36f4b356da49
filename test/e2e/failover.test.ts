// Failover inside the request, with real nginx and real pool processes under concurrent load.
import { logEntryFor, readAccessLog, startTestStack, waitFor } from '../helpers/stack';
import { startLoad, STRICT_CLIENT, TEST_LOAD } from '../helpers/load';
import { summarize } from '../../local/load';
import { httpRequest } from '../../support/http';
import { LocalStack } from '../../local/stack';
import { upstreamStatuses } from '../../core/access-log';

// The total bound nginx/proxy-failover.conf promises: 2 tries x (connect 0.5 s + read 1 s) = 3 s;
// a request must never hang past it (slack for a loaded 2-core machine).
const BOUND_MS = 3_000;
const SLACK_MS = 2_000;

let stack: LocalStack;
afterEach(async () => {
  await stack?.stop();
});

async function failoverUnderLoad(breakPrimary: () => Promise<void>) {
  stack = await startTestStack({ activePool: 'blue' });
  // A client that never re-sends: failover must happen inside nginx, not in the client.
  const load = startLoad({ url: `${stack.url}/version`, ...TEST_LOAD, ...STRICT_CLIENT });
  await load.after(50, 'before breaking blue');
  await breakPrimary();
  const landedAt = Date.now();
  await load.after(400, 'after breaking blue');
  const result = await load.finish();
  // Requests sent once the break had landed (by send time: a request sent before it may finish after).
  const after = result.samples.filter((s) => result.startedAt + s.sentAt >= landedAt);
  return { summary: summarize(result.samples, result.durationMs), after: summarize(after, result.durationMs) };
}

test('error mode on the active pool: zero failed requests, the backup answers', async () => {
  const { summary, after } = await failoverUnderLoad(() => stack.chaos('blue', 'error'));
  expect(summary.failures).toEqual({});
  expect(summary.failed).toBe(0);
  expect(after.byPool.green).toBe(after.requests);
  const { entries } = readAccessLog(stack);
  // At least one request hit blue's 500 and was retried on green inside the same client request.
  const retried = entries.filter((e) => e.upstream_status === '500, 200');
  expect(retried.length).toBeGreaterThan(0);
  for (const e of retried) {
    expect(e).toMatchObject({
      status: 200,
      pool: 'green',
      release: 'green-r1',
      active_pool: 'blue',
      primary_pool: 'blue',
    });
    expect(e.upstream_addr).toBe(`127.0.0.1:${stack.ports.blue}, 127.0.0.1:${stack.ports.green}`);
  }
});

test('timeout mode on the active pool: zero failed requests, none held past the bound', async () => {
  const { summary, after } = await failoverUnderLoad(() => stack.chaos('blue', 'timeout'));
  expect(summary.failures).toEqual({});
  expect(after.byPool.green).toBe(after.requests);
  expect(summary.maxMs).toBeLessThan(BOUND_MS + SLACK_MS);
  const timedOut = readAccessLog(stack).entries.filter((e) => e.upstream_status === '504, 200');
  expect(timedOut.length).toBeGreaterThan(0);
  expect(timedOut.every((e) => e.pool === 'green' && e.status === 200)).toBe(true);
});

test('primary killed with SIGKILL: zero failed requests, the backup answers', async () => {
  const { summary, after } = await failoverUnderLoad(() => stack.killPool('blue', 'SIGKILL'));
  expect(summary.failures).toEqual({});
  expect(after.byPool.green).toBe(after.requests);
});

test('the pool comes back: after chaos stops, traffic returns to the active pool', async () => {
  stack = await startTestStack({ activePool: 'green', upstreamEnv: { FAIL_TIMEOUT: '1s' } });
  await stack.chaos('green', 'error');
  const during = await httpRequest(`${stack.url}/version`, { agent: false });
  expect(during.headers['x-app-pool']).toBe('blue');
  await stack.chaos('green', 'stop');
  const load = startLoad({ url: `${stack.url}/version`, connections: 2, ratePerSec: 50, durationMs: 15_000 });
  // Within fail_timeout one probe reaches green again, and from then on green answers.
  await waitFor(
    () => load.samples.slice(-10).length === 10 && load.samples.slice(-10).every((s) => s.pool === 'green'),
    'green to answer again',
  );
  const result = await load.finish();
  expect(summarize(result.samples, result.durationMs).failed).toBe(0);
});

describe('restartPool: a new release on the idle pool', () => {
  test('under load with a canary on it: 0 failed, the new release and env answer on the same port, the active pool untouched', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    // Canary requests are in flight to green while it restarts: they must end on blue, not fail.
    expect((await stack.canary(30)).code).toBe(0);
    const bluePid = stack.pid('blue');
    const greenPort = stack.ports.green;
    const load = startLoad({ url: `${stack.url}/version`, ...TEST_LOAD, ...STRICT_CLIENT });
    await load.after(50, 'before the restart');
    await stack.restartPool('green', { release: 'green-r2', env: { FAIL_HEALTHZ: '1' } });
    await load.after(50, 'after the restart');
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    expect(summary.failures).toEqual({});
    expect(summary.byPool.green).toBeGreaterThan(0);
    expect(stack.ports.green).toBe(greenPort);
    expect(stack.pid('blue')).toBe(bluePid);
    expect(stack.poolRun('green')).toEqual({ release: 'green-r2', env: { FAIL_HEALTHZ: '1' } });
    const version = await httpRequest(`${stack.poolUrl('green')}/version`, { agent: false });
    expect(version.headers['x-release-id']).toBe('green-r2');
    expect((await httpRequest(`${stack.poolUrl('green')}/healthz`, { agent: false })).status).toBe(503);
    // After a flip the new release serves through nginx.
    expect((await stack.canary(0)).code).toBe(0);
    expect((await stack.flip('green')).code).toBe(0);
    // Canary requests that met green's closed port marked it down in its own block for up to
    // fail_timeout (5 s): until then blue answers for it, as a failover would.
    await waitFor(
      async () => (await httpRequest(`${stack.url}/version`, { agent: false })).headers['x-release-id'] === 'green-r2',
      'green-r2 to answer through nginx',
      10_000,
    );
  });

  test('a pool that cannot start rejects with its reason; the other pool keeps serving', async () => {
    stack = await startTestStack({ activePool: 'blue' });
    await expect(stack.restartPool('green', { release: 'green-bad', env: { FAULT_RATE: 'lots' } })).rejects.toThrow(
      /green pool exited before listening \(exit code 2\): pool app: FAULT_RATE must be a number from 0 to 1/,
    );
    expect((await httpRequest(`${stack.url}/version`, { agent: false })).headers['x-app-pool']).toBe('blue');
    // Back to a good release.
    await stack.restartPool('green', { release: 'green-r3' });
    expect((await httpRequest(`${stack.poolUrl('green')}/version`, { agent: false })).headers['x-release-id']).toBe(
      'green-r3',
    );
  });
});

describe('both pools down', () => {
  test('both killed: a clean JSON 502 at once, not a hang', async () => {
    stack = await startTestStack();
    await stack.killPool('blue');
    await stack.killPool('green');
    const started = Date.now();
    const res = await httpRequest(`${stack.url}/version`, { agent: false });
    expect(Date.now() - started).toBeLessThan(BOUND_MS + SLACK_MS);
    expect(res.status).toBe(502);
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.body)).toMatchObject({
      error: 'bad_gateway',
      status: 502,
      active_pool: 'blue',
      primary_pool: 'blue',
    });
    const entry = await logEntryFor(stack, res);
    expect(entry.status).toBe(502);
    expect(upstreamStatuses(entry)).toEqual([502, 502]);
  });

  test('both hanging: a clean JSON 504 within the bound', async () => {
    stack = await startTestStack();
    await stack.chaos('blue', 'timeout');
    await stack.chaos('green', 'timeout');
    const started = Date.now();
    const res = await httpRequest(`${stack.url}/version`, { agent: false });
    const took = Date.now() - started;
    expect(took).toBeLessThan(BOUND_MS + SLACK_MS);
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'gateway_timeout', status: 504, upstream_status: '504, 504' });
  });

  test("both failing with 500: the last pool's 500 reaches the client, after one try on each", async () => {
    stack = await startTestStack();
    await stack.chaos('blue', 'error');
    await stack.chaos('green', 'error');
    const res = await httpRequest(`${stack.url}/version`, { agent: false });
    expect(res.status).toBe(500);
    expect(res.headers['x-app-pool']).toBe('green');
    expect(await logEntryFor(stack, res)).toMatchObject({ status: 500, upstream_status: '500, 500', pool: 'green' });
  });
});
