// The local pool agent against a fake stack and real pool-state files: it applies a changed desired
// state once, refuses the active pool, and reports every step.
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Pool } from '../../core/pools';
import { AgentStack, PoolAgent } from '../../local/pool-agent';
import {
  readApplied,
  readDesired,
  readLocalRecord,
  readPrePromoteResult,
  writeDesired,
  writeLocalRecord,
  writePrePromoteRequest,
} from '../../local/release-store';
import type { ReleaseRecord } from '../../core/release-record';
import { bakingRecord } from '../helpers/release';

/** The record written as its only writer would: on whatever is stored now. */
const putLocalRecord = (dir: string, r: ReleaseRecord) => writeLocalRecord(dir, r, readLocalRecord(dir));

let dir: string;
let server: http.Server;
let behaviour: { healthz: number; release: string };

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-agent-'));
  behaviour = { healthz: 200, release: 'v2' };
  server = http.createServer((req, res) => {
    if (req.url === '/healthz') res.writeHead(behaviour.healthz).end('{}');
    else res.writeHead(200, { 'x-release-id': behaviour.release }).end(JSON.stringify({ release: behaviour.release }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});
afterEach(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function fakeStack(active: Pool) {
  const runs: Record<Pool, { release: string; env: Record<string, string> }> = {
    blue: { release: 'b1', env: {} },
    green: { release: 'g1', env: {} },
  };
  const restarts: Array<[Pool, string]> = [];
  const freshened: Pool[] = [];
  const stack: AgentStack = {
    restartPool: async (pool, run) => {
      restarts.push([pool, run.release]);
      runs[pool] = { release: run.release, env: run.env ?? {} };
    },
    activePool: () => active,
    poolUrl: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    poolRun: (pool) => runs[pool],
    fresh: async (pool) => {
      freshened.push(pool);
      return { code: 0, stdout: `switch-pool: ${pool} is now on generation b (was a)\n`, stderr: '' };
    },
  };
  return { stack, restarts, freshened };
}

test('start records what runs; a changed desired state of the idle pool is applied once, with its steps', async () => {
  const { stack, restarts, freshened } = fakeStack('blue');
  const lines: string[] = [];
  const agent = new PoolAgent({ stateDir: dir, stack, out: (l) => lines.push(l), pollMs: 60_000 });
  agent.start();
  expect(readDesired(dir, 'green')).toMatchObject({ release: 'g1', request: 'start' });
  expect(readApplied(dir, 'green')).toMatchObject({ release: 'g1', ok: true });
  await agent.poll();
  expect(restarts).toEqual([]);

  writeDesired(dir, 'green', { release: 'v2', env: { A: '1' }, request: 'rel-1' });
  await agent.poll();
  await agent.poll();
  expect(restarts).toEqual([['green', 'v2']]);
  const applied = readApplied(dir, 'green')!;
  expect(applied).toMatchObject({ release: 'v2', env: { A: '1' }, ok: true, request: 'rel-1' });
  expect(applied.steps.map((s) => [s.step, s.ok, s.host])).toEqual([
    ['restart', true, 'local'],
    ['health', true, 'local'],
    ['fresh', true, 'local'],
    ['smoke', true, 'local'],
  ]);
  // Once healthy, the restarted pool starts its next generation in nginx (never the active pool).
  expect(freshened).toEqual(['green']);
  expect(applied.steps[2].detail).toBe('green is now on generation b (was a)');
  expect(lines.some((l) => l.startsWith('[agent] step=smoke pool=green ok=true'))).toBe(true);
  await agent.stop();
});

test('the active pool is never restarted: a refusal is written instead (once)', async () => {
  const { stack, restarts } = fakeStack('blue');
  const agent = new PoolAgent({ stateDir: dir, stack, out: () => undefined, pollMs: 60_000 });
  agent.start();
  writeDesired(dir, 'blue', { release: 'v2', env: {}, request: 'rel-2' });
  await agent.poll();
  await agent.poll();
  expect(restarts).toEqual([]);
  expect(readApplied(dir, 'blue')).toMatchObject({
    release: 'b1',
    ok: false,
    request: 'rel-2',
    steps: [{ step: 'refuse', ok: false }],
  });
  await agent.stop();
});

test("a release with a start period of its own (--health-start-period) is waited for as the host's gate waits, past the agent's own bound", async () => {
  const { stack } = fakeStack('blue');
  const agent = new PoolAgent({ stateDir: dir, stack, out: () => undefined, pollMs: 60_000, healthTimeoutMs: 300 });
  agent.start();
  behaviour.healthz = 503;
  const ready = setTimeout(() => (behaviour.healthz = 200), 800);
  writeDesired(dir, 'green', { release: 'v2', env: {}, options: { healthStartPeriodSeconds: 1 }, request: 'slow' });
  await agent.poll();
  clearTimeout(ready);
  expect(readApplied(dir, 'green')).toMatchObject({
    ok: true,
    release: 'v2',
    options: { healthStartPeriodSeconds: 1 },
    steps: expect.arrayContaining([
      expect.objectContaining({
        step: 'health',
        ok: true,
        detail: expect.stringMatching(/^GET \/healthz 200 after \d+ ms$/),
      }),
    ]),
  });
  await agent.stop();
});

test('a failing health check or a wrong release fails the gate with the reason', async () => {
  const { stack, freshened } = fakeStack('blue');
  const agent = new PoolAgent({ stateDir: dir, stack, out: () => undefined, pollMs: 60_000, healthTimeoutMs: 300 });
  agent.start();
  behaviour.healthz = 503;
  writeDesired(dir, 'green', { release: 'v2', env: {}, request: 'a' });
  await agent.poll();
  expect(readApplied(dir, 'green')).toMatchObject({
    ok: false,
    reason: expect.stringMatching(/health gate: .*last: status 503/),
  });
  // Not healthy: nginx keeps judging the pool as it did (no fresh generation).
  expect(freshened).toEqual([]);

  behaviour.healthz = 200;
  behaviour.release = 'something-else';
  writeDesired(dir, 'green', { release: 'v3', env: {}, request: 'b' });
  await agent.poll();
  expect(readApplied(dir, 'green')).toMatchObject({
    ok: false,
    release: 'v3',
    reason: 'smoke: GET /version answers release something-else, expected v3',
  });
  // Healthy, so freshened before the smoke test (which goes to the pool's own port, not nginx).
  expect(freshened).toEqual(['green']);
  await agent.stop();
});

describe('the release phase (--pre-promote) in the agent', () => {
  const bakingGreen = (state: ReleaseRecord['state'] = 'verifying'): ReleaseRecord => ({
    ...bakingRecord(Date.parse('2026-11-23T14:02:33Z'), { state }),
    id: 'rel-1',
  });
  const ask = (command: string, timeoutMs = 10_000, request = 'rel-1:pre-promote') =>
    writePrePromoteRequest(dir, { request, pool: 'green', release: 'g1', command, timeoutMs });

  test('runs sh -c in app/ with the pool env, once per request; output and exit status reported', async () => {
    const { stack } = fakeStack('blue');
    stack.poolEnv = () => ({ ...process.env, RELEASE_ID: 'g1', APP_POOL: 'green', EXTRA: 'x y' });
    const agent = new PoolAgent({ stateDir: dir, stack, out: () => undefined, pollMs: 60_000 });
    agent.start();
    putLocalRecord(dir, bakingGreen());
    ask('echo "$RELEASE_ID $APP_POOL $EXTRA $(basename "$PWD")"; echo warn >&2; exit 0');
    await agent.poll();
    expect(readPrePromoteResult(dir)).toMatchObject({
      request: 'rel-1:pre-promote',
      ok: true,
      exitCode: 0,
      host: 'local',
      output: 'g1 green x y app\nwarn',
    });
    // Once: a second poll does not run it again.
    putLocalRecord(dir, bakingGreen());
    const first = readPrePromoteResult(dir);
    await agent.poll();
    expect(readPrePromoteResult(dir)).toEqual(first);
    await agent.stop();
  });

  test('a failing command, a timeout (the process group killed), and refusals', async () => {
    const { stack } = fakeStack('blue');
    const agent = new PoolAgent({ stateDir: dir, stack, out: () => undefined, pollMs: 60_000 });
    agent.start();
    putLocalRecord(dir, bakingGreen());
    ask('seq 1 50; exit 7', 10_000, 'rel-1:pre-promote');
    await agent.poll();
    const failed = readPrePromoteResult(dir)!;
    expect(failed).toMatchObject({ ok: false, exitCode: 7 });
    expect(failed.output.split('\n')).toEqual(['…', ...Array.from({ length: 20 }, (_, i) => String(31 + i))]);

    putLocalRecord(dir, { ...bakingGreen(), id: 'rel-2' });
    ask('echo started; sleep 30 & wait', 300, 'rel-2:pre-promote');
    const began = Date.now();
    await agent.poll();
    expect(Date.now() - began).toBeLessThan(5_000);
    expect(readPrePromoteResult(dir)).toMatchObject({ ok: false, timedOut: true, output: 'started' });

    // A request left over from a release that is no longer between its gate and its traffic.
    putLocalRecord(dir, { ...bakingGreen('failed'), id: 'rel-3' });
    ask('echo never', 1000, 'rel-3:pre-promote');
    await agent.poll();
    expect(readPrePromoteResult(dir)).toMatchObject({ ok: false, output: '' });
    expect(readPrePromoteResult(dir)!.reason).toMatch(/not the release in progress/);
    await agent.stop();
  });
});
