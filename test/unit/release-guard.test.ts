// The release gate (guardRelease), the record it writes, its settings, and the release events for
// Slack (releaseAnnouncements): pure functions, table-driven.
import { releaseGateFromEnv } from '../../core/rule-config';
import { announced, releaseAnnouncements } from '../../core/release-events';
import {
  BAKE_EXTENDED_STEP,
  CANARY_ABORTED_STEP,
  FROZEN_STEP,
  guardRelease,
  HELD_STEP,
  recordAfterGuard,
  ReleaseGate,
  releaseFigures,
} from '../../core/release-guard';
import { emptySamples, PoolSample, PoolSamples } from '../../core/pool-samples';
import type { Pool } from '../../core/pools';
import { FINAL_STATES, ReleaseRecord, ReleaseState } from '../../core/release-record';
import { DEFAULT_RULE_CONFIG } from '../../core/rules';
import { slackMessage } from '../../core/slack-message';
import { bakingRecord } from '../helpers/release';

const T0 = Date.parse('2026-11-23T14:02:33Z');
const iso = (ms: number) => new Date(ms).toISOString();

const record = (over: Partial<ReleaseRecord> = {}): ReleaseRecord => bakingRecord(T0, over);

/** A request first sent to `pool`, as the engine samples it. */
type Item = { pool: Pool; sample: PoolSample };

/** `n` requests first sent to `pool` after the release started, `failed` of them failed. */
function items(
  pool: Pool,
  n: number,
  failed = 0,
  opts: { at?: number; saw5xx?: number; ms?: number; skipped?: number; host?: string } = {},
): Item[] {
  return Array.from({ length: n }, (_, i): Item => {
    const outcome = i < failed ? 'failed' : i < failed + (opts.skipped ?? 0) ? 'skipped' : 'ok';
    const sample: PoolSample = { at: opts.at ?? T0 + 30_000 + i, outcome, host: opts.host ?? 'h1' };
    if (outcome === 'ok') sample.ms = opts.ms ?? 5;
    if (i < (opts.saw5xx ?? 0)) sample.saw5xx = true;
    return { pool, sample };
  });
}

/** The pool samples holding `list`, in order. */
function S(list: Item[]): PoolSamples {
  const samples = emptySamples();
  for (const { pool, sample } of list) samples[pool].push(sample);
  return samples;
}

const gate: ReleaseGate = { errorRate: 0.02, minRequests: 20, maxP99Ratio: 3, latencyMarginMs: 100 };
const NOW = T0 + 40_000; // baking, before bakeUntil

describe('guardRelease', () => {
  test.each<[string, ReleaseRecord | undefined, Item[], number, string]>([
    ['baking, the release pool above the gate → rollback', record(), items('green', 40, 4), NOW, 'rollback'],
    ['baking, above the rate but fewer than minRequests → none', record(), items('green', 19, 10), NOW, 'none'],
    ['baking, exactly minRequests and above → rollback', record(), items('green', 20, 1), NOW, 'rollback'],
    ['baking, at the gate rate (not above) → none', record(), items('green', 50, 1), NOW, 'none'],
    [
      'baking, failures on the OTHER pool do not count',
      record(),
      [...items('blue', 100, 100), ...items('green', 30)],
      NOW,
      'none',
    ],
    [
      'baking, the pool failing before the release started does not count',
      record(),
      items('green', 40, 40, { at: T0 - 1 }),
      NOW,
      'none',
    ],
    ['baking, clean, bakeUntil reached → promote', record(), items('green', 40), T0 + 80_000, 'promote'],
    [
      'baking, bakeUntil passed with too few requests, no maxBakeUntil (an older record) → hold',
      record(),
      items('green', 19),
      T0 + 90_000,
      'hold',
    ],
    [
      'baking, bakeUntil passed without a single request, before maxBakeUntil → extend',
      record({ maxBakeUntil: iso(T0 + 200_000) }),
      [],
      T0 + 90_000,
      'extend',
    ],
    [
      'baking, extended once already → none until the evidence or the maximum',
      record({
        maxBakeUntil: iso(T0 + 200_000),
        steps: [{ at: iso(T0 + 81_000), step: BAKE_EXTENDED_STEP, ok: true }],
      }),
      items('green', 5),
      T0 + 150_000,
      'none',
    ],
    [
      'baking, extended, the minimum arrives → promote',
      record({ maxBakeUntil: iso(T0 + 200_000) }),
      items('green', 20),
      T0 + 150_000,
      'promote',
    ],
    [
      'baking, maxBakeUntil reached without the minimum → hold',
      record({ maxBakeUntil: iso(T0 + 200_000) }),
      items('green', 19),
      T0 + 200_000,
      'hold',
    ],
    [
      'baking, requests nginx never tried (held failed from before) are not evidence → extend',
      record({ maxBakeUntil: iso(T0 + 200_000) }),
      items('green', 40, 0, { skipped: 30 }),
      T0 + 90_000,
      'extend',
    ],
    [
      'baking, skipped after the release failed on that host count against it → rollback',
      record(),
      [...items('green', 30), ...items('green', 10, 1, { skipped: 9, at: T0 + 40_000 })],
      NOW,
      'rollback',
    ],
    [
      'baking, p99 over the absolute bound → rollback',
      record({ gate: { maxP99Ms: 200 } }),
      items('green', 40, 0, { ms: 250 }),
      NOW,
      'rollback',
    ],
    [
      'baking, p99 3× the previous release and 100 ms above it → rollback',
      record(),
      [...items('blue', 40, 0, { ms: 20, at: T0 - 60_000 }), ...items('green', 40, 0, { ms: 600 })],
      NOW,
      'rollback',
    ],
    [
      'baking, 5× slower but only 16 ms above the previous release → none (jitter, nobody notices)',
      record(),
      [...items('blue', 40, 0, { ms: 4, at: T0 - 60_000 }), ...items('green', 40, 0, { ms: 20 })],
      NOW,
      'none',
    ],
    [
      'baking, the previous release measured long before the release → no baseline, none',
      record(),
      [...items('blue', 40, 0, { ms: 20, at: T0 - 400_000 }), ...items('green', 40, 0, { ms: 600 })],
      NOW,
      'none',
    ],
    [
      'baking, slow but fewer than the minimum → none',
      record(),
      [...items('blue', 40, 0, { ms: 20, at: T0 - 60_000 }), ...items('green', 19, 0, { ms: 600 })],
      NOW,
      'none',
    ],
    [
      'verifying, a slow canary → abort-canary',
      record({ state: 'verifying', strategy: 'canary', canaryPercent: 10 }),
      [...items('blue', 200, 0, { ms: 20, at: T0 + 10_000 }), ...items('green', 20, 0, { ms: 600 })],
      NOW,
      'abort-canary',
    ],
    ['baking, above the gate at bakeUntil → rollback wins', record(), items('green', 40, 4), T0 + 80_000, 'rollback'],
    [
      'baking, no bakeUntil → never promoted by the guard',
      record({ bakeUntil: undefined }),
      items('green', 40),
      T0 + 999_000,
      'none',
    ],
    [
      'verifying, canary above the gate → abort-canary',
      record({ state: 'verifying', strategy: 'canary', canaryPercent: 10 }),
      items('green', 25, 5),
      NOW,
      'abort-canary',
    ],
    [
      'verifying, canary below minRequests → none',
      record({ state: 'verifying', strategy: 'canary', canaryPercent: 10 }),
      items('green', 5, 5),
      NOW,
      'none',
    ],
    [
      'verifying, canary clean → none (the CLI promotes)',
      record({ state: 'verifying', strategy: 'canary', canaryPercent: 10 }),
      items('green', 50),
      NOW,
      'none',
    ],
    ['verifying without canary → none', record({ state: 'verifying' }), items('green', 40, 40), NOW, 'none'],
    ['deploying → none', record({ state: 'deploying' }), items('green', 40, 40), NOW, 'none'],
    ['no record → none', undefined, items('green', 40, 40), NOW, 'none'],
    ...FINAL_STATES.map((state): [string, ReleaseRecord, Item[], number, string] => [
      `final state ${state} → none`,
      record({ state }),
      items('green', 40, 40),
      T0 + 999_000,
      'none',
    ]),
  ])('%s', (_name, rec, window, now, action) => {
    expect(guardRelease(rec, S(window), now, gate).action).toBe(action);
  });

  test('rollback carries the figures (as ReleaseFigures) and a reason an operator can act on', () => {
    const result = guardRelease(
      record(),
      S([...items('green', 40, 6, { saw5xx: 1 }), ...items('blue', 10, 10)]),
      NOW,
      gate,
    );
    expect(result).toEqual({
      action: 'rollback',
      figures: {
        requests: 40,
        failed: 6,
        rate: 0.15,
        usersSaw5xx: 1,
        judged: 40,
        notTried: 0,
        minRequests: 20,
        latency: { requests: 34, p50Ms: 5, p99Ms: 5 },
      },
      reason:
        'gate crossed while baking: error rate 15.0% above the gate of 2.0%; green failed 6 of 40 requests first sent to it (15.0%); users saw 5xx on 1; p50 5.0 ms, p99 5.0 ms; traffic back on blue (v1)',
    });
  });

  test('abort-canary carries the figures and says the canary share goes to 0', () => {
    const result = guardRelease(
      record({ state: 'verifying', strategy: 'canary', canaryPercent: 10 }),
      S(items('green', 25, 5)),
      NOW,
      gate,
    );
    expect(result).toMatchObject({
      action: 'abort-canary',
      figures: { requests: 25, failed: 5, rate: 0.2, usersSaw5xx: 0 },
    });
    expect(result.action === 'abort-canary' && result.reason).toMatch(
      /^canary aborted: error rate 20.0% above the gate of 2.0%; green failed 5 of 25 .*canary share set to 0$/,
    );
  });

  test('a 10% canary needs the full minimum of its own requests: the samples are per pool, not the stage window', () => {
    const defaults = releaseGateFromEnv({});
    const canary = record({ state: 'verifying', strategy: 'canary', canaryPercent: 10 });
    // Far more than a 200-request window of the stage: the canary's own 50 are all there.
    const traffic = [...items('blue', 900, 0), ...items('green', 50, 50)];
    expect(guardRelease(canary, S(traffic), NOW, defaults).action).toBe('abort-canary');
    expect(guardRelease(canary, S([...items('blue', 900, 0), ...items('green', 49, 49)]), NOW, defaults).action).toBe(
      'none',
    );
  });

  test('releaseFigures: since the start, per pool, skips judged per host, the baseline from the previous pool', () => {
    const rec = record();
    const samples = S([
      ...items('green', 3, 1, { at: T0 - 5 }),
      // h1: two skips before any failure (not tried), then a failure, then two skips (counted).
      ...items('green', 2, 0, { skipped: 2, host: 'h1', at: T0 + 1 }),
      ...items('green', 1, 1, { host: 'h1', at: T0 + 2 }),
      ...items('green', 2, 0, { skipped: 2, host: 'h1', at: T0 + 3 }),
      // h2: a skip, never failed there: not tried.
      ...items('green', 1, 0, { skipped: 1, host: 'h2', at: T0 + 4 }),
      ...items('green', 4, 0, { ms: 10, at: T0 + 5 }),
      ...items('blue', 5, 0, { ms: 2, at: T0 - 10_000 }),
    ]);
    expect(releaseFigures(samples, rec, 20)).toEqual({
      requests: 10,
      failed: 3,
      rate: 3 / 7,
      usersSaw5xx: 0,
      judged: 7,
      notTried: 3,
      minRequests: 20,
      hosts: 2,
      hostsWithFailures: 1,
      failedHosts: [['h1', 3]],
      latency: { requests: 4, p50Ms: 10, p99Ms: 10 },
      baseline: { requests: 5, p50Ms: 2, p99Ms: 2, release: 'v1' },
    });
    expect(releaseFigures(emptySamples(), rec)).toEqual({
      requests: 0,
      failed: 0,
      rate: 0,
      usersSaw5xx: 0,
      judged: 0,
      notTried: 0,
    });
  });

  test('extend and hold say what evidence is missing; hold says neither promoted nor rolled back', () => {
    const extended = guardRelease(record({ maxBakeUntil: iso(T0 + 200_000) }), S(items('green', 7)), T0 + 90_000, gate);
    expect(extended.action === 'extend' && extended.reason).toBe(
      `bake extended until ${iso(T0 + 200_000)}: 7 of the 20 requests the gate needs reached green (v2)`,
    );
    const held = guardRelease(record({ maxBakeUntil: iso(T0 + 200_000) }), S(items('green', 7)), T0 + 200_000, gate);
    expect(held.action === 'hold' && held.reason).toBe(
      'inconclusive: 7 of the 20 requests the gate needs reached green (v2) by the end of the bake (extended to its maximum); held: green keeps serving v2, not promoted, not rolled back',
    );
  });

  test('on a fleet the figures name the hosts the failures came from', () => {
    const samples = S([
      ...items('green', 30, 0, { host: 'i-a' }),
      ...items('green', 10, 4, { host: 'i-b', at: T0 + 40_000 }),
      ...items('green', 10, 1, { host: 'i-c', at: T0 + 41_000 }),
    ]);
    const f = releaseFigures(samples, record(), 20);
    expect(f).toMatchObject({
      hosts: 3,
      hostsWithFailures: 2,
      failedHosts: [
        ['i-b', 4],
        ['i-c', 1],
      ],
    });
    const result = guardRelease(record(), samples, NOW, gate);
    expect(result.action === 'rollback' && result.reason).toContain('failures from 2 of 3 hosts: i-b 4, i-c 1');
    // One host: nothing about hosts.
    expect(releaseFigures(S(items('green', 10, 1)), record())).not.toHaveProperty('hosts');
  });

  test("a release's own --min-requests and --max-p99 win over the stage's", () => {
    const rec = record({ gate: { minRequests: 5, maxP99Ms: 50 } });
    expect(guardRelease(rec, S(items('green', 5, 0, { ms: 60 })), NOW, gate).action).toBe('rollback');
    expect(guardRelease(rec, S(items('green', 5, 0, { ms: 40 })), T0 + 80_000, gate).action).toBe('promote');
  });
});

describe('recordAfterGuard', () => {
  const now = T0 + 50_000;
  test.each<[string, ReleaseRecord, ReturnType<typeof guardRelease>, ReleaseState | undefined, string | undefined]>([
    [
      'rollback → rolled-back',
      record(),
      guardRelease(record(), S(items('green', 40, 4)), now, gate),
      'rolled-back',
      'rollback',
    ],
    [
      'abort-canary → failed with the canary-aborted step',
      record({ state: 'verifying', canaryPercent: 10, strategy: 'canary' }),
      guardRelease(
        record({ state: 'verifying', canaryPercent: 10, strategy: 'canary' }),
        S(items('green', 40, 4)),
        now,
        gate,
      ),
      'failed',
      CANARY_ABORTED_STEP,
    ],
    [
      'promote → promoted',
      record(),
      { action: 'promote', figures: { requests: 40, failed: 0, rate: 0, usersSaw5xx: 0 } },
      'promoted',
      'promoted',
    ],
    [
      'hold → held',
      record(),
      { action: 'hold', figures: { requests: 3, failed: 0, rate: 0, usersSaw5xx: 0 }, reason: 'inconclusive' },
      'held',
      HELD_STEP,
    ],
    [
      'extend → still baking, with a step',
      record(),
      { action: 'extend', figures: { requests: 3, failed: 0, rate: 0, usersSaw5xx: 0 }, reason: 'extended' },
      'baking',
      BAKE_EXTENDED_STEP,
    ],
    [
      'freeze → frozen',
      record({ irreversible: true }),
      guardRelease(record({ irreversible: true }), S(items('green', 40, 4)), now, gate),
      'frozen',
      FROZEN_STEP,
    ],
    ['none → nothing to write', record(), { action: 'none' }, undefined, undefined],
  ])('%s', (_name, rec, action, state, step) => {
    const next = recordAfterGuard(rec, action, now, 'i-0abc');
    expect(next?.state).toBe(state);
    if (!next) return;
    expect(next).toMatchObject({ updatedAt: iso(now), id: rec.id });
    expect(next.finishedAt).toBe(state === 'baking' ? undefined : iso(now));
    expect(next.figures).toEqual((action as { figures: unknown }).figures);
    expect(next.steps.at(-1)).toMatchObject({ step, at: iso(now), host: 'i-0abc' });
    expect(next.steps).toHaveLength(rec.steps.length + 1);
    expect(rec.steps).toHaveLength(1); // not mutated
  });
});

describe('gate settings from the environment', () => {
  test.each<[string, Record<string, string>, Partial<ReleaseGate>]>([
    [
      'defaults: the alert threshold over the alert minimum window (50 requests)',
      {},
      { errorRate: DEFAULT_RULE_CONFIG.errorRateThreshold, minRequests: DEFAULT_RULE_CONFIG.minWindow },
    ],
    [
      'the alert settings carry over',
      { ALERT_ERROR_RATE: '0.05', ALERT_MIN_WINDOW: '30' },
      { errorRate: 0.05, minRequests: 30 },
    ],
    [
      'its own settings win',
      { ALERT_ERROR_RATE: '0.05', RELEASE_GATE_ERROR_RATE: '0.01', RELEASE_GATE_MIN_REQUESTS: '100' },
      { errorRate: 0.01, minRequests: 100 },
    ],
    [
      'a small window: the default follows its minimum',
      { ALERT_WINDOW: '10', ALERT_MIN_WINDOW: '5' },
      { errorRate: 0.02, minRequests: 5 },
    ],
    [
      'empty means unset',
      { RELEASE_GATE_ERROR_RATE: '', RELEASE_GATE_MIN_REQUESTS: ' ' },
      { errorRate: 0.02, minRequests: 50 },
    ],
    [
      'the latency gate: an absolute bound, a ratio, a margin',
      { RELEASE_GATE_MAX_P99_MS: '800', RELEASE_GATE_MAX_P99_RATIO: '2.5', RELEASE_GATE_LATENCY_MARGIN_MS: '50' },
      { errorRate: 0.02, minRequests: 50, maxP99Ms: 800, maxP99Ratio: 2.5, latencyMarginMs: 50 },
    ],
  ])('%s', (_name, env, expected) => {
    expect(releaseGateFromEnv(env)).toEqual({ maxP99Ratio: 3, latencyMarginMs: 100, ...expected });
  });

  test.each<[Record<string, string>, string]>([
    [
      { RELEASE_GATE_ERROR_RATE: '2%' },
      'RELEASE_GATE_ERROR_RATE must be a fraction between 0 and 1, e.g. 0.02, got "2%"',
    ],
    [
      { RELEASE_GATE_ERROR_RATE: '1' },
      'RELEASE_GATE_ERROR_RATE must be a fraction between 0 and 1, e.g. 0.02, got "1"',
    ],
    [{ RELEASE_GATE_MIN_REQUESTS: '0' }, 'RELEASE_GATE_MIN_REQUESTS must be a whole number 1-10000, got "0"'],
    [{ RELEASE_GATE_MIN_REQUESTS: '2.5' }, 'RELEASE_GATE_MIN_REQUESTS must be a whole number 1-10000, got "2.5"'],
    [{ RELEASE_GATE_MIN_REQUESTS: '10001' }, 'RELEASE_GATE_MIN_REQUESTS must be a whole number 1-10000, got "10001"'],
    [{ RELEASE_GATE_MAX_P99_MS: '0' }, 'RELEASE_GATE_MAX_P99_MS must be milliseconds > 0, got "0"'],
    [{ RELEASE_GATE_MAX_P99_RATIO: '1' }, 'RELEASE_GATE_MAX_P99_RATIO must be a ratio above 1, e.g. 3, got "1"'],
  ])('%j → %s', (env, message) => {
    expect(() => releaseGateFromEnv(env)).toThrow(message);
  });
});

describe('releaseAnnouncements', () => {
  const kinds = (ds: ReturnType<typeof releaseAnnouncements>) => ds.map((d) => d.kind);

  /** Feeds a record through its states, remembering what was announced, like the runtimes do. */
  function walk(states: Array<Partial<ReleaseRecord>>, start?: { id: string; state: string }): string[] {
    let last = start;
    const out: string[] = [];
    for (const over of states) {
      const rec = record(over);
      out.push(...kinds(releaseAnnouncements(last, rec)));
      last = announced(rec);
    }
    return out;
  }

  test.each<[string, Array<Partial<ReleaseRecord>>, string[]]>([
    [
      'a good release: started once, promoted once',
      [
        { state: 'deploying' },
        { state: 'deploying' },
        { state: 'verifying' },
        { state: 'baking' },
        { state: 'baking' },
        { state: 'promoted' },
        { state: 'promoted' },
      ],
      ['release_started', 'release_promoted'],
    ],
    [
      'a bad release rolled back',
      [
        { state: 'deploying' },
        { state: 'verifying' },
        { state: 'baking' },
        { state: 'rolled-back', reason: 'gate crossed' },
      ],
      ['release_started', 'release_rolled_back'],
    ],
    [
      'a failed health gate',
      [{ state: 'deploying' }, { state: 'failed', reason: 'health gate: /healthz answered 503' }],
      ['release_started', 'release_failed'],
    ],
    [
      'an aborted canary',
      [
        { state: 'verifying', strategy: 'canary', canaryPercent: 10 },
        { state: 'failed', steps: [{ at: iso(T0), step: CANARY_ABORTED_STEP, ok: false }] },
      ],
      ['release_started', 'release_canary_aborted'],
    ],
    [
      '--no-promote',
      [{ state: 'deploying' }, { state: 'verifying' }, { state: 'deployed' }],
      ['release_started', 'release_deployed'],
    ],
    [
      'first seen while baking (an event was missed): started, then its end',
      [{ state: 'baking' }, { state: 'promoted' }],
      ['release_started', 'release_promoted'],
    ],
    [
      'first seen already finished: only the outcome',
      [{ state: 'rolled-back' }, { state: 'rolled-back' }],
      ['release_rolled_back'],
    ],
    [
      'a new release after a finished one starts again',
      [{ state: 'promoted' }, { id: 'r2', state: 'deploying' }, { id: 'r2', state: 'promoted' }],
      ['release_promoted', 'release_started', 'release_promoted'],
    ],
  ])('%s', (_name, states, expected) => {
    expect(walk(states)).toEqual(expected);
  });

  test('nothing twice: the same (id, state) announces nothing, e.g. after a cold start restored it', () => {
    expect(releaseAnnouncements({ id: record().id, state: 'promoted' }, record({ state: 'promoted' }))).toEqual([]);
    expect(releaseAnnouncements({ id: record().id, state: 'deploying' }, record({ state: 'baking' }))).toEqual([]);
    expect(releaseAnnouncements(undefined, undefined)).toEqual([]);
  });

  test('maintenance: returned suppressed (logged, not posted)', () => {
    expect(releaseAnnouncements(undefined, record({ state: 'deploying' }), true).map((d) => d.suppressed)).toEqual([
      'maintenance',
    ]);
  });

  test('a rolled-back decision carries release, pools, strategy, figures and reason', () => {
    const rec = recordAfterGuard(record(), guardRelease(record(), S(items('green', 40, 6)), NOW, gate), NOW)!;
    const [d] = releaseAnnouncements({ id: rec.id, state: 'baking' }, rec);
    expect(d).toMatchObject({
      kind: 'release_rolled_back',
      severity: 'warning',
      at: NOW,
      pool: 'green',
      activePool: 'blue',
      previousPool: 'blue',
      release: 'v2',
      previousRelease: 'v1',
      releaseId: rec.id,
      strategy: 'all-at-once',
      figures: { requests: 40, failed: 6, rate: 0.15, usersSaw5xx: 0 },
      suppressed: null,
      details: { record: rec.id, strategy: 'all-at-once', bake_s: 60, duration_s: 40 },
    });
    expect(d.summary).toBe(`Release v2 rolled back: traffic is back on blue (v1): ${rec.reason}`);
    expect(d.reason).toBe(rec.reason);
  });

  test('started says where, how and what serves meanwhile', () => {
    const [d] = releaseAnnouncements(undefined, record({ state: 'deploying', strategy: 'canary', canaryPercent: 10 }));
    expect(d).toMatchObject({ kind: 'release_started', severity: 'info', at: T0, activePool: 'blue' });
    expect(d.summary).toBe('Release v2 started on green (canary 10%, bake 60 s); blue (v1) is serving');
  });

  test('every release message renders with its runbook anchor', () => {
    const cases: Array<[Partial<ReleaseRecord>, string]> = [
      [{ state: 'deploying' }, 'release-started'],
      [{ state: 'promoted', figures: { requests: 500, failed: 0, rate: 0, usersSaw5xx: 0 } }, 'release-promoted'],
      [{ state: 'deployed' }, 'release-promoted'],
      [{ state: 'failed', reason: 'smoke: /version answered v1' }, 'release-failed'],
      [{ state: 'failed', steps: [{ at: iso(T0), step: CANARY_ABORTED_STEP, ok: false }] }, 'release-failed'],
      [{ state: 'rolled-back', reason: 'gate crossed' }, 'release-rolled-back'],
    ];
    for (const [over, anchor] of cases) {
      const [d] = releaseAnnouncements(undefined, record(over));
      expect(JSON.stringify(slackMessage(d, { stage: 'prod', runbookUrl: 'https://x/RUNBOOK.md' }))).toContain(
        `https://x/RUNBOOK.md#${anchor}`,
      );
    }
  });
});

describe('--irreversible: the guard freezes where it would flip back', () => {
  const irreversible = (over: Partial<ReleaseRecord> = {}) => record({ irreversible: true, ...over });
  const canary = { state: 'verifying' as const, strategy: 'canary' as const, canaryPercent: 10 };
  test.each<[string, ReleaseRecord, Item[], number, string]>([
    ['baking above the gate → freeze (never rollback)', irreversible(), items('green', 40, 4), NOW, 'freeze'],
    [
      'baking, slow past --max-p99 → freeze',
      irreversible({ gate: { maxP99Ms: 100 } }),
      items('green', 40, 0, { ms: 900 }),
      NOW,
      'freeze',
    ],
    [
      'baking below the minimum → none (no verdict without evidence)',
      irreversible(),
      items('green', 19, 10),
      NOW,
      'none',
    ],
    ['baking clean to bakeUntil → promote, as any release', irreversible(), items('green', 40), T0 + 80_000, 'promote'],
    ['baking, no requests past the longest bake → hold (held is no flip)', irreversible(), [], T0 + 90_000, 'hold'],
    [
      'its canary above the gate → freeze (the share stays)',
      irreversible(canary),
      items('green', 40, 4),
      NOW,
      'freeze',
    ],
    ['its canary clean → none', irreversible(canary), items('green', 40), NOW, 'none'],
    ['the same record without --irreversible → rollback', record(), items('green', 40, 4), NOW, 'rollback'],
  ])('%s', (_name, rec, list, now, expected) => {
    expect(guardRelease(rec, S(list), now, gate).action).toBe(expected);
  });

  test('the frozen record keeps the pool where it is and says so with the figures; the page is critical', () => {
    const rec = irreversible();
    const action = guardRelease(rec, S(items('green', 40, 4)), NOW, gate);
    expect(action.action).toBe('freeze');
    const next = recordAfterGuard(rec, action, NOW, 'alert-function')!;
    expect(next.state).toBe('frozen');
    expect(next.reason).toMatch(/FROZEN, not rolled back: green keeps serving v2/);
    expect(next.reason).toMatch(/green failed 4 of 40 requests first sent to it \(10\.0%\)/);
    expect(next.steps.at(-1)).toMatchObject({ step: FROZEN_STEP, ok: false, host: 'alert-function' });
    expect(FINAL_STATES).toContain('frozen');
    const [d] = releaseAnnouncements(undefined, {
      ...next,
      steps: [...next.steps, { at: iso(NOW), step: 'promoting', ok: true }],
    });
    expect(d).toMatchObject({ kind: 'release_frozen', severity: 'critical', activePool: 'green' });
    expect(d.summary).toMatch(/Fix forward/);
    const message = JSON.stringify(slackMessage(d, { stage: 'prod', runbookUrl: 'https://x/RUNBOOK.md' }));
    expect(message).toContain('https://x/RUNBOOK.md#release-frozen');
    expect(message).toContain('FROZEN');
    expect(message).toContain('10.0%');
  });

  test('a frozen canary: the message says the share stays, the previous pool is still active', () => {
    const rec = irreversible({ state: 'verifying', strategy: 'canary', canaryPercent: 10 });
    const next = recordAfterGuard(rec, guardRelease(rec, S(items('green', 40, 4)), NOW, gate), NOW)!;
    expect(next.reason).toMatch(/canary share stays 10% on green, nothing is promoted/);
    const [d] = releaseAnnouncements(undefined, next);
    expect(d).toMatchObject({ kind: 'release_frozen', activePool: 'blue' });
    expect(d.summary).toMatch(/canary share stays on green/);
  });
});
