// The release flow against a fake backend and a virtual clock: every exit path of runRelease.
import type { Pool } from '../../core/pools';
import { BAKE_AHEAD_MS, type DesiredPool, type PrePromoteResult, type ReleaseRecord } from '../../core/release-record';
import { parseReleaseArgs, ReleaseOptions } from '../../ops/release/args';
import {
  DeployOptions,
  DeployReport,
  FlipResult,
  PrePromoteOptions,
  RecordChanged,
  ReleaseBackend,
  sameRecordVersion,
} from '../../core/release-backend';
import {
  BAKE_GRACE_MS,
  promoteHeld,
  inProgress,
  isStale,
  RECORD_REFRESH_MS,
  releaseRecordId,
  runRelease,
  STALE_AFTER_MS,
} from '../../ops/release/orchestrator';

const T0 = Date.parse('2026-11-23T14:02:33.000Z');

class Clock {
  t = T0;
  now = () => this.t;
  sleep = async (ms: number) => {
    this.t += ms;
  };
}

type Server = (record: ReleaseRecord, now: number) => ReleaseRecord | undefined;

class FakeBackend implements ReleaseBackend {
  readonly target = 'fake';
  supportsImages = false;
  record: ReleaseRecord | undefined;
  versions: ReleaseRecord[] = [];
  active: Pool = 'blue';
  desired: Record<Pool, DesiredPool> = {
    blue: { release: 'b1', env: {} },
    green: { release: 'g1', env: { OLD: '1' } },
  };
  applied: Record<Pool, DesiredPool> = {
    blue: { release: 'b1', env: {} },
    green: { release: 'g1', env: { OLD: '1' } },
  };
  deploys: Array<{ pool: Pool; desired: DesiredPool; requestId: string }> = [];
  canary: number[] = [];
  flips: Pool[] = [];
  /** What deploy() answers, in order (the last one repeats). */
  reports: Array<DeployReport | Error> = [
    { ok: true, steps: [{ at: new Date(T0).toISOString(), step: 'restart', ok: true, host: 'local' }] },
  ];
  flipResult: (pool: Pool) => FlipResult = (pool) => ({ ok: true, detail: `${pool} answers` });
  /** The server-side guard: may finish the record when the CLI reads it. */
  server: Server = () => undefined;

  constructor(private readonly clock: Clock) {}

  async readRecord() {
    if (this.record) {
      const next = this.server(this.record, this.clock.now());
      if (next) await this.writeRecord(next, this.record);
    }
    return this.record && structuredClone(this.record);
  }
  /** Conditional, like the ledger: on the version the writer read, else RecordChanged. */
  async writeRecord(record: ReleaseRecord, basis: ReleaseRecord | undefined) {
    if (!sameRecordVersion(this.record, basis)) throw new RecordChanged(structuredClone(this.record));
    this.record = { ...structuredClone(record), revision: (this.record?.revision ?? 0) + 1 };
    this.versions.push(structuredClone(this.record));
    return structuredClone(this.record);
  }
  async history() {
    return this.versions;
  }
  async activePool() {
    return this.active;
  }
  async desiredPool(pool: Pool) {
    return this.desired[pool];
  }
  async currentPool(pool: Pool) {
    return this.applied[pool];
  }
  async setDesiredPool(pool: Pool, desired: DesiredPool) {
    this.desired[pool] = structuredClone(desired);
  }
  async deploy(pool: Pool, options: DeployOptions) {
    this.deploys.push({ pool, desired: structuredClone(this.desired[pool]), requestId: options.requestId });
    const next = this.reports.length > 1 ? this.reports.shift()! : this.reports[0];
    if (next instanceof Error) throw next;
    if (next.ok) this.applied[pool] = structuredClone(this.desired[pool]);
    return next;
  }
  /** A share left on the data plane before the release (an earlier release that never finished). */
  leftoverCanary = 0;
  async canaryPercent() {
    return this.canary.at(-1) ?? this.leftoverCanary;
  }
  async setCanary(percent: number) {
    this.canary.push(percent);
  }
  prePromotes: Array<{ pool: Pool; options: PrePromoteOptions; canary: number; active: Pool }> = [];
  prePromoteResult: Omit<PrePromoteResult, 'command'> = {
    ok: true,
    exitCode: 0,
    seconds: 1,
    output: 'migrated 3 tables',
  };
  async prePromote(pool: Pool, options: PrePromoteOptions) {
    this.prePromotes.push({ pool, options, canary: await this.canaryPercent(), active: this.active });
    return { command: options.command, ...this.prePromoteResult };
  }
  async flip(pool: Pool) {
    const result = this.flipResult(pool);
    if (result.ok || pool !== this.active) this.active = pool;
    this.flips.push(pool);
    return result;
  }
}

const promoteAtBakeEnd: Server = (r, now) =>
  r.state === 'baking' && now >= Date.parse(r.bakeUntil!)
    ? { ...r, state: 'promoted', updatedAt: new Date(now).toISOString(), finishedAt: new Date(now).toISOString() }
    : undefined;

const figures = { requests: 200, failed: 40, rate: 0.2, usersSaw5xx: 0 };

function setup(args: string[] = []) {
  const clock = new Clock();
  const backend = new FakeBackend(clock);
  const lines: string[] = [];
  const options: ReleaseOptions = parseReleaseArgs(['--release', 'v2', '--bake', '60s', ...args]).options;
  const run = () =>
    runRelease(options, backend, { out: (l) => lines.push(l), now: clock.now, sleep: clock.sleep, pollMs: 250 });
  return { clock, backend, lines, run, text: () => lines.join('\n') };
}

const states = (b: FakeBackend) => b.versions.map((v) => v.state).filter((s, i, all) => s !== all[i - 1]);

test('all-at-once, bake finished by the server side: exit 0, idle pool deployed and flipped to, record promoted', async () => {
  const { backend, run, text } = setup(['--env', 'FEATURE=on']);
  backend.server = promoteAtBakeEnd;
  expect(await run()).toBe(0);
  expect(backend.deploys).toEqual([
    {
      pool: 'green',
      desired: { release: 'v2', env: { FEATURE: 'on' } },
      requestId: releaseRecordId(T0, 'green', 'v2'),
    },
  ]);
  expect(backend.flips).toEqual(['green']);
  expect(backend.canary).toEqual([]);
  expect(states(backend)).toEqual(['deploying', 'verifying', 'baking', 'promoted']);
  const r = backend.record!;
  expect(r).toMatchObject({
    id: '20261123-140233-green-v2',
    pool: 'green',
    previousPool: 'blue',
    previousRelease: 'b1',
    replacedRelease: 'g1',
    replacedEnv: { OLD: '1' },
    strategy: 'all-at-once',
    bakeSeconds: 60,
  });
  // What the active pool ran (the project's image: no previousImage), for a fleet host booting later.
  expect(r).toMatchObject({ previousEnv: {} });
  expect(r.previousImage).toBeUndefined();
  expect(Date.parse(r.bakeUntil!) - Date.parse(r.steps.find((s) => s.step === 'promote')!.at)).toBe(60_000);
  // 'promoting' is written before the flip: the guard watches from the moment the pool may take traffic.
  expect(r.steps.map((s) => s.step)).toEqual(['start', 'restart', 'gate', 'promoting', 'promote']);
  // One timestamped line per step.
  expect(text()).toMatch(/^14:02:33\.000Z {2}release 20261123-140233-green-v2: v2 → green/m);
  expect(text()).toMatch(/PROMOTED: v2 on green.*release-promoted/);
});

test("the health flags travel in the pool's desired options and the record, and the deploy line names them", async () => {
  const { backend, run, text } = setup(['--health-start-period', '2m', '--drain', '30s']);
  backend.server = promoteAtBakeEnd;
  expect(await run()).toBe(0);
  expect(backend.deploys[0].desired).toEqual({
    release: 'v2',
    env: {},
    options: { healthStartPeriodSeconds: 120, drainSeconds: 30 },
  });
  expect(backend.record).toMatchObject({ options: { healthStartPeriodSeconds: 120, drainSeconds: 30 } });
  expect(text()).toMatch(/deploy: green g1 → v2; start period 120 s, drain 30 s$/m);
});

test('rolled back by the server-side guard during the bake: exit 1 with the reason, the figures and the runbook section', async () => {
  const { backend, run, text } = setup();
  backend.server = (r, now) =>
    r.state === 'baking' && now >= Date.parse(r.bakeUntil!) - 50_000
      ? {
          ...r,
          state: 'rolled-back',
          reason: 'gate crossed while baking',
          figures,
          updatedAt: new Date(now).toISOString(),
          finishedAt: new Date(now).toISOString(),
        }
      : undefined;
  expect(await run()).toBe(1);
  expect(backend.flips).toEqual(['green']); // the flip back is the server's, not the CLI's
  expect(backend.record!.state).toBe('rolled-back');
  expect(text()).toContain('ROLLED BACK by the guard: gate crossed while baking');
  expect(text()).toContain('green failed 40 of 200 requests first sent to it (20.0%)');
  expect(text()).toContain('RUNBOOK.md#release-rolled-back');
});

test('failed health gate: exit 1, never promoted, the idle pool restored to its previous desired state', async () => {
  const { backend, run, text } = setup(['--env', 'FAIL_HEALTHZ=1']);
  backend.reports = [
    {
      ok: false,
      steps: [{ at: new Date(T0).toISOString(), step: 'health', ok: false, detail: '503' }],
      reason: 'health gate: 503',
    },
    { ok: true, steps: [] },
  ];
  expect(await run()).toBe(1);
  expect(backend.flips).toEqual([]);
  expect(backend.canary).toEqual([]);
  expect(backend.deploys.map((d) => [d.desired.release, d.requestId.endsWith(':restore')])).toEqual([
    ['v2', false],
    ['g1', true],
  ]);
  expect(backend.desired.green).toEqual({ release: 'g1', env: { OLD: '1' } });
  expect(backend.record).toMatchObject({ state: 'failed', reason: 'gate failed on green: health gate: 503' });
  expect(backend.record!.finishedAt).toBeDefined();
  expect(text()).toContain('RUNBOOK.md#release-failed');
  expect(text()).toContain('restored: green runs g1 again');
});

test('a deploy that cannot run (agent unreachable) fails the release the same way', async () => {
  const { backend, run } = setup();
  backend.reports = [new Error('Run Command refused'), { ok: true, steps: [] }];
  expect(await run()).toBe(1);
  expect(backend.record).toMatchObject({
    state: 'failed',
    reason: 'gate failed on green: deploy could not run: Run Command refused',
  });
  expect(backend.flips).toEqual([]);
});

test('naming the active pool is bad input: exit 2, nothing written', async () => {
  const { backend, run, text } = setup(['--pool', 'blue']);
  expect(await run()).toBe(2);
  expect(backend.versions).toEqual([]);
  expect(backend.deploys).toEqual([]);
  expect(text()).toMatch(/^bluegreen release: --pool blue is the active pool/);
  expect(text().split('\n')).toHaveLength(1);
});

test('a release in progress is bad input (exit 2, nothing written); an abandoned one is not', async () => {
  const { backend, run, clock } = setup();
  const other: ReleaseRecord = {
    ...(await (async () => {
      const s = setup();
      s.backend.server = promoteAtBakeEnd;
      await s.run();
      return s.backend.record!;
    })()),
    id: 'other',
    state: 'baking',
    updatedAt: new Date(T0).toISOString(),
    bakeUntil: new Date(T0 + 60_000).toISOString(),
    maxBakeUntil: undefined,
  };
  backend.record = other;
  expect(await run()).toBe(2);
  expect(backend.versions).toEqual([]);
  expect(backend.desired.green.release).toBe('g1');

  clock.t = T0 + 60_000 + STALE_AFTER_MS + 1;
  expect(isStale(other, clock.t)).toBe(true);
  backend.server = promoteAtBakeEnd;
  expect(await run()).toBe(0);
});

test('--pool naming the idle pool is fine; --image on a backend without images is bad input', async () => {
  const a = setup(['--pool', 'green']);
  a.backend.server = promoteAtBakeEnd;
  expect(await a.run()).toBe(0);
  const b = setup(['--image', 'registry.example/app:v2']);
  expect(await b.run()).toBe(2);
  expect(b.text()).toContain('--image needs a deployed stage');
  const c = setup(['--image', 'registry.example/app:v2']);
  c.backend.supportsImages = true;
  c.backend.server = promoteAtBakeEnd;
  expect(await c.run()).toBe(0);
  expect(c.backend.record).toMatchObject({ image: 'registry.example/app:v2' });
  expect(c.backend.deploys[0].desired).toEqual({ release: 'v2', env: {}, image: 'registry.example/app:v2' });
});

test('--no-promote: exit 0, record deployed, no flip, no canary', async () => {
  const { backend, run, text } = setup(['--no-promote']);
  expect(await run()).toBe(0);
  expect(states(backend)).toEqual(['deploying', 'verifying', 'deployed']);
  expect(backend.flips).toEqual([]);
  expect(backend.record!.finishedAt).toBeDefined();
  expect(text()).toContain('bluegreen flip green');
});

test('canary held clean: the share is set, held for the duration, reset to 0, then the flip', async () => {
  const { backend, run, clock } = setup(['--strategy', 'canary', '--canary-percent', '10', '--canary-duration', '30s']);
  backend.server = promoteAtBakeEnd;
  let canaryStart = 0;
  const setCanary = backend.setCanary.bind(backend);
  backend.setCanary = async (p) => {
    if (p > 0) canaryStart = clock.t;
    else expect(clock.t - canaryStart).toBeGreaterThanOrEqual(30_000);
    return setCanary(p);
  };
  expect(await run()).toBe(0);
  expect(backend.canary).toEqual([10, 0]);
  expect(backend.flips).toEqual(['green']);
  expect(backend.record).toMatchObject({ state: 'promoted', strategy: 'canary', canaryPercent: 10 });
  expect(states(backend)).toEqual(['deploying', 'verifying', 'baking', 'promoted']);
});

test('canary aborted by the guard: exit 1, the share reset, never promoted', async () => {
  const { backend, run, text } = setup(['--canary-percent', '20', '--canary-duration', '30s']);
  backend.server = (r, now) =>
    r.state === 'verifying' && backend.canary.includes(20)
      ? {
          ...r,
          state: 'failed',
          reason: 'canary aborted: too many errors',
          figures,
          updatedAt: new Date(now).toISOString(),
          finishedAt: new Date(now).toISOString(),
        }
      : undefined;
  expect(await run()).toBe(1);
  expect(backend.flips).toEqual([]);
  expect(backend.canary).toEqual([20, 0]);
  expect(text()).toContain('FAILED: canary aborted: too many errors');
  expect(text()).toContain('RUNBOOK.md#release-failed');
});

test('a promotion that is not confirmed: exit 1, failed, flipped back', async () => {
  const { backend, run, text } = setup();
  backend.flipResult = (pool) =>
    pool === 'green' ? { ok: false, detail: 'nginx did not confirm' } : { ok: true, detail: 'ok' };
  expect(await run()).toBe(1);
  expect(backend.flips).toEqual(['green', 'blue']);
  expect(backend.active).toBe('blue');
  expect(backend.record).toMatchObject({ state: 'failed', reason: 'promotion not confirmed: nginx did not confirm' });
  expect(text()).toContain('RUNBOOK.md#release-failed');
});

test('the server side never finishes the bake: the CLI holds it after the longest extension and the grace (exit 3), never promotes it', async () => {
  const { backend, run, clock, text } = setup();
  expect(await run()).toBe(3);
  const r = backend.record!;
  expect(r.state).toBe('held');
  expect(r.reason).toMatch(/the server-side guard gave no verdict/);
  expect(r.steps.at(-1)).toMatchObject({ step: 'held', ok: false, detail: 'by the CLI' });
  expect(clock.t - Date.parse(r.maxBakeUntil!)).toBeGreaterThanOrEqual(BAKE_GRACE_MS);
  expect(Date.parse(r.maxBakeUntil!) - Date.parse(r.bakeUntil!)).toBe(3 * r.bakeSeconds * 1000); // 4 × --bake in all
  expect(text()).toContain('is the watcher / alert function running?');
  expect(text()).toContain(`bluegreen release promote ${r.id}`);
  expect(text()).toContain('bluegreen flip blue');
});

test('the guard extends, then holds: exit 3, the ways out printed; a new release is refused until someone decides', async () => {
  const { backend, run, text } = setup();
  backend.server = (r, now) => {
    if (r.state !== 'baking' || !r.bakeUntil || now < Date.parse(r.bakeUntil)) return undefined;
    const at = new Date(now).toISOString();
    if (!r.steps.some((s) => s.step === 'bake-extended'))
      return {
        ...r,
        updatedAt: at,
        steps: [
          ...r.steps,
          {
            at,
            step: 'bake-extended',
            ok: true,
            detail: 'bake extended until …: 3 of the 50 requests the gate needs reached green (v2)',
          },
        ],
      };
    if (now < Date.parse(r.maxBakeUntil!)) return undefined;
    return { ...r, state: 'held', reason: 'inconclusive: 3 of the 50 …', updatedAt: at, finishedAt: at };
  };
  expect(await run()).toBe(3);
  expect(text()).toContain('bake extended: bake extended until …: 3 of the 50 requests');
  expect(text()).toContain('HELD: v2 on green: inconclusive');
  expect(text()).toContain('RUNBOOK.md#release-held');
  // The held release's pool is active: the next release would replace its backup.
  const again = setup(['--release', 'v3']);
  again.backend.record = backend.record;
  again.backend.active = 'green';
  expect(await again.run()).toBe(2);
  expect(again.text()).toMatch(/is held .*bluegreen flip blue.*bluegreen release promote/);
});

test('release promote: only the latest, held record whose pool is active; then promoted by hand', async () => {
  const { backend, run } = setup();
  expect(await run()).toBe(3); // held by the CLI (no guard here)
  const id = backend.record!.id;
  const lines: string[] = [];
  const out = (l: string) => lines.push(l);
  expect(await promoteHeld('nope', backend, out)).toBe(2);
  backend.active = 'blue';
  expect(await promoteHeld(id, backend, out)).toBe(2);
  expect(lines.at(-1)).toMatch(/green is no longer the active pool \(blue is: someone flipped back\)/);
  backend.active = 'green';
  expect(await promoteHeld(id, backend, out)).toBe(0);
  expect(backend.record).toMatchObject({ state: 'promoted', reason: expect.stringMatching(/^promoted by hand/) });
  expect(backend.record!.steps.at(-1)).toMatchObject({
    step: 'promoted',
    detail: 'by hand (bluegreen release promote)',
  });
  expect(await promoteHeld(id, backend, out)).toBe(2); // promoted, not held any more
});

test('a record replaced by another release mid-bake: exit 1, nothing overwritten', async () => {
  const { backend, run } = setup();
  backend.server = (r, now) =>
    r.state === 'baking'
      ? { ...r, id: 'someone-else', state: 'deploying', updatedAt: new Date(now).toISOString() }
      : undefined;
  expect(await run()).toBe(1);
  expect(backend.record!.id).toBe('someone-else');
});

test('in progress / stale rules and the record id', () => {
  const base = {
    state: 'deploying',
    startedAt: new Date(T0).toISOString(),
    updatedAt: new Date(T0).toISOString(),
  } as ReleaseRecord;
  expect(inProgress(base, T0 + 1000)).toBe(true);
  expect(inProgress(base, T0 + STALE_AFTER_MS + 1)).toBe(false);
  expect(inProgress({ ...base, state: 'promoted' }, T0)).toBe(false);
  expect(inProgress(undefined, T0)).toBe(false);
  // A long bake is not stale before its end.
  expect(
    isStale({ ...base, state: 'baking', bakeUntil: new Date(T0 + 3600_000).toISOString() }, T0 + STALE_AFTER_MS + 1),
  ).toBe(false);
  expect(releaseRecordId(T0, 'blue', 'v1.2')).toBe('20261123-140233-blue-v1.2');
});

test('a record whose times the CLI never writes is not in progress: a far-future bakeUntil does not hold the next release, and the CLI says why', async () => {
  const { backend, run, text } = setup();
  const at = new Date(T0 - 60_000).toISOString();
  backend.record = {
    id: 'forged',
    pool: 'green',
    release: 'x',
    env: {},
    previousPool: 'blue',
    previousRelease: 'b1',
    replacedRelease: 'g1',
    strategy: 'all-at-once',
    canaryPercent: 0,
    bakeSeconds: 60,
    state: 'baking',
    startedAt: at,
    updatedAt: at,
    bakeUntil: '2999-01-01T00:00:00.000Z',
    steps: [],
  };
  backend.server = promoteAtBakeEnd;
  expect(await run()).toBe(0);
  expect(text()).toContain(
    `release forged (baking) is not in progress: bakeUntil is more than ${BAKE_AHEAD_MS / 1000} s after updatedAt (the longest bake and a promotion)`,
  );
  expect(backend.record!.state).toBe('promoted');
});

test('interrupted during the canary: the share goes back to 0, the record is failed, no flip', async () => {
  const clock = new Clock();
  const backend = new FakeBackend(clock);
  const controller = new AbortController();
  const lines: string[] = [];
  const options = parseReleaseArgs(['--release', 'v2', '--canary-percent', '10', '--canary-duration', '60s']).options;
  backend.server = (_r, now) => {
    if (backend.canary.includes(10) && now > T0 + 5000) controller.abort();
    return undefined;
  };
  const code = await runRelease(options, backend, {
    out: (l) => lines.push(l),
    now: clock.now,
    sleep: clock.sleep,
    signal: controller.signal,
  });
  expect(code).toBe(1);
  expect(backend.canary).toEqual([10, 0]);
  expect(backend.flips).toEqual([]);
  expect(backend.record).toMatchObject({ state: 'failed', reason: 'cancelled by the operator before promotion' });
});

test('the guard rolling back while the flip is confirmed: the CLI never overwrites it (exit 1, rolled-back)', async () => {
  const { backend, run, text } = setup();
  // The guard sees 'baking' (written before the flip) and rolls back while the flip is confirmed.
  backend.flipResult = (pool) => {
    if (pool === 'green' && backend.record?.state === 'baking') {
      const at = new Date(T0 + 1000).toISOString();
      backend.record = {
        ...backend.record,
        state: 'rolled-back',
        reason: 'gate crossed while baking',
        figures,
        updatedAt: at,
        finishedAt: at,
        // The guard's write, through the same conditional store: a new version.
        revision: (backend.record.revision ?? 0) + 1,
      };
    }
    return { ok: true, detail: `${pool} is active` };
  };
  expect(await run()).toBe(1);
  expect(backend.record).toMatchObject({ state: 'rolled-back', reason: 'gate crossed while baking' });
  expect(text()).toMatch(/ROLLED BACK by the guard: gate crossed while baking/);
  expect(states(backend)).toEqual(['deploying', 'verifying', 'baking']); // nothing written after the guard
});

test('a canary share left by an earlier release is set back to 0 before the deploy', async () => {
  const { backend, run, text } = setup();
  backend.server = promoteAtBakeEnd;
  backend.leftoverCanary = 30;
  expect(await run()).toBe(0);
  expect(backend.canary).toEqual([0]);
  expect(backend.record!.steps.map((s) => s.step)).toContain('canary-reset');
  expect(text()).toMatch(/a share of 30% was left by an earlier release; set back to 0/);
});

test('the canary share cannot be set: failed, share back to 0, never promoted', async () => {
  const { backend, run, text } = setup(['--canary-percent', '10', '--canary-duration', '30s']);
  const setCanary = backend.setCanary.bind(backend);
  backend.setCanary = async (p) => {
    if (p > 0) throw new Error('i-1 Failed');
    return setCanary(p);
  };
  expect(await run()).toBe(1);
  expect(backend.flips).toEqual([]);
  expect(backend.canary).toEqual([0]);
  expect(backend.record).toMatchObject({ state: 'failed', reason: 'the canary share could not be set: i-1 Failed' });
  expect(text()).toMatch(/release-failed/);
});

// A fleet host launched during a release waits while the record is in progress (fleet/bluegreen-join.sh,
// the same inProgress rule): a long phase must never let the record go stale while the release runs.
test('a 15-minute canary keeps the record in progress the whole time (written again every RECORD_REFRESH_MS)', async () => {
  const { backend, run, clock } = setup(['--strategy', 'canary', '--canary-percent', '10', '--canary-duration', '15m']);
  backend.server = promoteAtBakeEnd;
  const stale: number[] = [];
  const sleep = clock.sleep;
  clock.sleep = async (ms: number) => {
    // not final, yet no longer in progress by the rule = a waiting host would join now
    if (backend.record && isStale(backend.record, clock.t)) stale.push(clock.t - T0);
    await sleep(ms);
  };
  expect(await run()).toBe(0);
  expect(stale).toEqual([]);
  // writes during the canary: at most RECORD_REFRESH_MS apart
  const canaryWrites = backend.versions.filter((v) => v.state === 'verifying').map((v) => Date.parse(v.updatedAt));
  expect(canaryWrites.length).toBeGreaterThanOrEqual(3);
  for (let i = 1; i < canaryWrites.length; i++)
    expect(canaryWrites[i] - canaryWrites[i - 1]).toBeLessThanOrEqual(RECORD_REFRESH_MS + 250);
});

test('a deploy that outlasts RECORD_REFRESH_MS (Run Command in rounds) writes the record again while it waits', async () => {
  const backend = new FakeBackend(new Clock());
  const deploy = backend.deploy.bind(backend);
  // real time here: the refresh is a timer around the backend's deploy call
  backend.deploy = async (pool, options) => {
    await new Promise((r) => setTimeout(r, 250));
    return deploy(pool, options);
  };
  backend.server = (r, now) =>
    r.state === 'baking'
      ? { ...r, state: 'promoted', updatedAt: new Date(now).toISOString(), finishedAt: new Date(now).toISOString() }
      : undefined;
  const options = parseReleaseArgs(['--release', 'v2', '--bake', '1s']).options;
  expect(await runRelease(options, backend, { out: () => undefined, refreshMs: 40, pollMs: 1 })).toBe(0);
  const deploying = backend.versions.filter((v) => v.state === 'deploying');
  // the start write, then refreshes while deploy() waited ~250 ms
  expect(deploying.length).toBeGreaterThanOrEqual(4);
  expect(new Set(deploying.map((v) => v.updatedAt)).size).toBeGreaterThanOrEqual(2);
});

describe('preview before promotion (a backend that has previews)', () => {
  class PreviewBackend extends FakeBackend {
    previews: Array<{ pool: Pool; token: string } | undefined> = [];
    refuse = false;
    async setPreview(preview: { pool: Pool; token: string } | undefined) {
      if (preview && this.refuse) throw new Error('not applied on every host: i-1: step preview failed');
      this.previews.push(preview && { ...preview });
      return { url: 'http://entry.example' };
    }
  }
  function previewSetup(args: string[] = []) {
    const clock = new Clock();
    const backend = new PreviewBackend(clock);
    const lines: string[] = [];
    const options = parseReleaseArgs(['--release', 'v2', '--bake', '60s', ...args]).options;
    const run = () =>
      runRelease(options, backend, { out: (l) => lines.push(l), now: clock.now, sleep: clock.sleep, pollMs: 250 });
    return { backend, run, text: () => lines.join('\n') };
  }

  test('opened after the gate with a fresh token, printed in both forms, ended at the promotion; never in the record', async () => {
    const { backend, run, text } = previewSetup(['--strategy', 'canary', '--canary-duration', '30s']);
    backend.server = promoteAtBakeEnd;
    expect(await run()).toBe(0);
    const [opened, ended] = backend.previews;
    expect(backend.previews).toHaveLength(2);
    expect(opened).toEqual({ pool: 'green', token: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/) });
    expect(ended).toBeUndefined();
    expect(text()).toContain(`curl -H 'X-Bluegreen-Preview: ${opened!.token}' http://entry.example/`);
    expect(text()).toContain(`http://entry.example/_bluegreen/preview?token=${opened!.token}`);
    expect(text()).toMatch(/promoted: the preview ended/);
    expect(backend.record!.preview).toBe(true);
    const steps = backend.record!.steps.map((s) => s.step);
    expect(steps.slice(0, 4)).toEqual(['start', 'restart', 'gate', 'preview']);
    expect(steps.indexOf('canary')).toBeGreaterThan(steps.indexOf('preview'));
    expect(steps.slice(-2)).toEqual(['promoting', 'promote']);
    expect(JSON.stringify(backend.versions)).not.toContain(opened!.token);
  });

  test('an all-at-once release promoted at once opens none: nobody could use it, and the flip would wait for it', async () => {
    const { backend, run, text } = previewSetup();
    backend.server = promoteAtBakeEnd;
    expect(await run()).toBe(0);
    expect(backend.previews).toEqual([]);
    expect(text()).not.toMatch(/preview/);
    expect(backend.record!.preview).toBeUndefined();
    expect(backend.record!.steps.map((s) => s.step)).toEqual(['start', 'restart', 'gate', 'promoting', 'promote']);
  });

  test('--no-promote leaves it open; the next release ends it at its start; a failed gate opens none', async () => {
    const first = previewSetup(['--no-promote']);
    expect(await first.run()).toBe(0);
    expect(first.backend.previews).toEqual([{ pool: 'green', token: expect.any(String) }]);
    expect(first.backend.record).toMatchObject({ state: 'deployed', preview: true });

    const { backend, run, text } = previewSetup(['--env', 'FAIL_HEALTHZ=1']);
    backend.record = first.backend.record;
    backend.desired.green = { release: 'v2', env: {} };
    backend.reports = [
      { ok: false, steps: [], reason: 'health gate: 503' },
      { ok: true, steps: [] },
    ];
    expect(await run()).toBe(1);
    expect(backend.previews).toEqual([undefined]);
    expect(text()).toMatch(/the preview of .*-green-v2 ended/);
    expect(backend.record!.preview).toBeUndefined();
  });

  test('a canary aborted by the guard ends the preview', async () => {
    const { backend, run } = previewSetup(['--strategy', 'canary', '--canary-duration', '30s']);
    backend.server = (r, now) =>
      r.state === 'verifying' && r.steps.some((s) => s.step === 'canary')
        ? { ...r, state: 'failed', reason: 'canary aborted', updatedAt: new Date(now).toISOString() }
        : undefined;
    expect(await run()).toBe(1);
    expect(backend.previews).toEqual([{ pool: 'green', token: expect.any(String) }, undefined]);
    expect(backend.flips).toEqual([]);
  });

  test('a preview that cannot be opened does not stop the release', async () => {
    const { backend, run, text } = previewSetup(['--no-promote']);
    backend.refuse = true;
    expect(await run()).toBe(0);
    expect(backend.record!.state).toBe('deployed');
    expect(text()).toMatch(/preview not opened \(the release goes on without it\): not applied on every host/);
    expect(backend.previews).toEqual([undefined]);
    expect(backend.record!.preview).toBeUndefined();
  });
});

describe('the release phase (--pre-promote)', () => {
  test('runs once after the gate, before any traffic (no canary share, no flip), and lands in the record', async () => {
    const { backend, run, text, clock } = setup(['--pre-promote', 'npm run migrate', '--strategy', 'canary']);
    backend.server = promoteAtBakeEnd;
    expect(await run()).toBe(0);
    expect(backend.prePromotes).toHaveLength(1);
    expect(backend.prePromotes[0]).toMatchObject({
      pool: 'green',
      canary: 0,
      active: 'blue',
      options: { command: 'npm run migrate', release: 'v2', timeoutMs: 600_000 },
    });
    expect(backend.prePromotes[0].options.requestId).toMatch(/:pre-promote$/);
    const record = backend.record!;
    expect(record.state).toBe('promoted');
    expect(record.prePromote).toMatchObject({
      command: 'npm run migrate',
      ok: true,
      exitCode: 0,
      output: 'migrated 3 tables',
    });
    const steps = record.steps.map((s) => s.step);
    expect(steps.indexOf('pre-promote')).toBeGreaterThan(steps.indexOf('gate'));
    expect(steps.indexOf('pre-promote')).toBeLessThan(steps.indexOf('canary'));
    expect(text()).toContain('    | migrated 3 tables');
    void clock;
  });

  test('a failing command fails the release: exit 1, the idle pool put back, nothing promoted, no canary', async () => {
    const { backend, run, text } = setup(['--pre-promote', 'false', '--strategy', 'canary']);
    backend.prePromoteResult = { ok: false, exitCode: 3, seconds: 2, output: 'ERROR: relation exists' };
    expect(await run()).toBe(1);
    expect(backend.flips).toEqual([]);
    expect(backend.canary.filter((c) => c > 0)).toEqual([]);
    expect(backend.active).toBe('blue');
    // The deploy, then the restore of what green ran before.
    expect(backend.deploys.map((d) => d.desired.release)).toEqual(['v2', 'g1']);
    expect(backend.record).toMatchObject({
      state: 'failed',
      prePromote: { ok: false, exitCode: 3, output: 'ERROR: relation exists' },
    });
    expect(backend.record!.reason).toMatch(/pre-promote failed \(exit 3/);
    expect(text()).toContain('ERROR: relation exists');
  });

  test('a timeout fails it too', async () => {
    const { backend, run } = setup(['--pre-promote', 'sleep 99', '--pre-promote-timeout', '5s']);
    backend.prePromoteResult = { ok: false, timedOut: true, exitCode: 124, seconds: 5, output: '' };
    expect(await run()).toBe(1);
    expect(backend.prePromotes[0].options.timeoutMs).toBe(5000);
    expect(backend.record!.reason).toMatch(/timed out/);
    expect(backend.flips).toEqual([]);
  });

  test('with --no-promote it runs, then the release waits idle', async () => {
    const { backend, run } = setup(['--pre-promote', 'true', '--no-promote']);
    expect(await run()).toBe(0);
    expect(backend.prePromotes).toHaveLength(1);
    expect(backend.record!.state).toBe('deployed');
  });
});

describe('--irreversible', () => {
  test('the record says so, and a release the guard froze exits 4 with the way out', async () => {
    const { backend, run, text } = setup(['--irreversible']);
    backend.server = (r, now) =>
      r.state === 'baking'
        ? {
            ...r,
            state: 'frozen',
            reason: 'gate crossed while baking an irreversible release',
            figures,
            updatedAt: new Date(now).toISOString(),
            finishedAt: new Date(now).toISOString(),
          }
        : undefined;
    expect(await run()).toBe(4);
    expect(backend.record!.irreversible).toBe(true);
    // Never flipped back by the CLI either.
    expect(backend.flips).toEqual(['green']);
    expect(text()).toContain('FROZEN');
    expect(text()).toContain('RUNBOOK.md#release-frozen');
    expect(text()).toContain('Fix forward');
  });

  test('a canary the guard froze keeps its share (the CLI does not set it back to 0)', async () => {
    const { backend, run } = setup(['--irreversible', '--canary-percent', '20', '--canary-duration', '60s']);
    backend.server = (r, now) =>
      r.state === 'verifying' && r.steps.some((s) => s.step === 'canary')
        ? {
            ...r,
            state: 'frozen',
            figures,
            updatedAt: new Date(now).toISOString(),
            finishedAt: new Date(now).toISOString(),
          }
        : undefined;
    expect(await run()).toBe(4);
    expect(backend.canary.at(-1)).toBe(20);
    expect(backend.flips).toEqual([]);
  });
});
