// The release gate (guardRelease), the record it writes, its settings, and the release events for
// Slack (releaseAnnouncements): pure functions, table-driven.
import { releaseGateFromEnv } from '../../core/rule-config';
import { announced, releaseAnnouncements } from '../../core/release-events';
import {
  CANARY_ABORTED_STEP,
  canaryMinRequests,
  guardRelease,
  recordAfterGuard,
  ReleaseGate,
  releaseFigures,
} from '../../core/release-guard';
import { FINAL_STATES, ReleaseRecord, ReleaseState } from '../../core/release-record';
import { DEFAULT_RULE_CONFIG, WindowItem } from '../../core/rules';
import { slackMessage } from '../../core/slack-message';
import { bakingRecord } from '../helpers/release';

const T0 = Date.parse('2026-11-23T14:02:33Z');
const iso = (ms: number) => new Date(ms).toISOString();

const record = (over: Partial<ReleaseRecord> = {}): ReleaseRecord => bakingRecord(T0, over);

/** `n` window items first sent to `pool` after the release started, `failed` of them failed. */
function items(pool: string, n: number, failed = 0, opts: { at?: number; saw5xx?: number } = {}): WindowItem[] {
  return Array.from({ length: n }, (_, i): WindowItem => {
    const item: WindowItem = { bad: i < failed, primary: pool, at: opts.at ?? T0 + 30_000 + i };
    if (i < (opts.saw5xx ?? 0)) item.saw5xx = true;
    return item;
  });
}

const gate: ReleaseGate = { errorRate: 0.02, minRequests: 20 };
const NOW = T0 + 40_000; // baking, before bakeUntil

describe('guardRelease', () => {
  test.each<[string, ReleaseRecord | undefined, WindowItem[], number, string]>([
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
    ['baking, clean, bakeUntil passed with little traffic → promote', record(), [], T0 + 90_000, 'promote'],
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
    ...FINAL_STATES.map((state): [string, ReleaseRecord, WindowItem[], number, string] => [
      `final state ${state} → none`,
      record({ state }),
      items('green', 40, 40),
      T0 + 999_000,
      'none',
    ]),
  ])('%s', (_name, rec, window, now, action) => {
    expect(guardRelease(rec, window, now, gate).action).toBe(action);
  });

  test('rollback carries the figures (as ReleaseFigures) and a reason an operator can act on', () => {
    const result = guardRelease(
      record(),
      [...items('green', 40, 6, { saw5xx: 1 }), ...items('blue', 10, 10)],
      NOW,
      gate,
    );
    expect(result).toEqual({
      action: 'rollback',
      figures: { requests: 40, failed: 6, rate: 0.15, usersSaw5xx: 1 },
      reason:
        'gate crossed while baking: green failed 6 of 40 requests first sent to it (15.0%); users saw 5xx on 1, above the gate of 2.0%; traffic back on blue (v1)',
    });
  });

  test('abort-canary carries the figures and says the canary share goes to 0', () => {
    const result = guardRelease(
      record({ state: 'verifying', strategy: 'canary', canaryPercent: 10 }),
      items('green', 25, 5),
      NOW,
      gate,
    );
    expect(result).toMatchObject({
      action: 'abort-canary',
      figures: { requests: 25, failed: 5, rate: 0.2, usersSaw5xx: 0 },
    });
    expect(result.action === 'abort-canary' && result.reason).toMatch(
      /^canary aborted: green failed 5 of 25 .*canary share set to 0$/,
    );
  });

  test('with the default gate (50 requests, window 200) a failing 10% canary is aborted: its minimum is its share of the window', () => {
    const defaults = releaseGateFromEnv({});
    expect(canaryMinRequests(defaults, 10)).toBe(20);
    expect(canaryMinRequests(defaults, 50)).toBe(50);
    expect(canaryMinRequests(defaults, 1)).toBe(2);
    // A full window at 10%: about 20 canary requests, every one failed by green.
    const window = [...items('blue', 180, 0), ...items('green', 20, 20)];
    const canary = record({ state: 'verifying', strategy: 'canary', canaryPercent: 10 });
    expect(guardRelease(canary, window, NOW, defaults).action).toBe('abort-canary');
    expect(guardRelease(canary, [...items('blue', 181, 0), ...items('green', 19, 19)], NOW, defaults).action).toBe(
      'none',
    );
    // Baking keeps the full minimum: 20 failed requests of the new pool are not yet 50.
    expect(guardRelease(record(), window, NOW, defaults).action).toBe('none');
  });

  test('releaseFigures filters by primary pool and time', () => {
    const w = [...items('green', 3, 1, { at: T0 - 5 }), ...items('green', 4, 2), ...items('blue', 5, 5)];
    expect(releaseFigures(w, 'green', T0)).toEqual({ requests: 4, failed: 2, rate: 0.5, usersSaw5xx: 0 });
    expect(releaseFigures(w, 'green')).toEqual({ requests: 7, failed: 3, rate: 3 / 7, usersSaw5xx: 0 });
    expect(releaseFigures([], 'blue')).toEqual({ requests: 0, failed: 0, rate: 0, usersSaw5xx: 0 });
  });
});

describe('recordAfterGuard', () => {
  const now = T0 + 50_000;
  test.each<[string, ReleaseRecord, ReturnType<typeof guardRelease>, ReleaseState | undefined, string | undefined]>([
    [
      'rollback → rolled-back',
      record(),
      guardRelease(record(), items('green', 40, 4), now, gate),
      'rolled-back',
      'rollback',
    ],
    [
      'abort-canary → failed with the canary-aborted step',
      record({ state: 'verifying', canaryPercent: 10, strategy: 'canary' }),
      guardRelease(
        record({ state: 'verifying', canaryPercent: 10, strategy: 'canary' }),
        items('green', 40, 4),
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
    ['none → nothing to write', record(), { action: 'none' }, undefined, undefined],
  ])('%s', (_name, rec, action, state, step) => {
    const next = recordAfterGuard(rec, action, now, 'i-0abc');
    expect(next?.state).toBe(state);
    if (!next) return;
    expect(next).toMatchObject({ updatedAt: iso(now), finishedAt: iso(now), id: rec.id });
    expect(next.figures).toEqual((action as { figures: unknown }).figures);
    expect(next.steps.at(-1)).toMatchObject({ step, at: iso(now), host: 'i-0abc' });
    expect(next.steps).toHaveLength(rec.steps.length + 1);
    expect(rec.steps).toHaveLength(1); // not mutated
  });
});

describe('gate settings from the environment', () => {
  test.each<[string, Record<string, string>, ReleaseGate]>([
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
  ])('%s', (_name, env, expected) => {
    expect(releaseGateFromEnv(env)).toEqual({ windowSize: Number(env.ALERT_WINDOW ?? 200), ...expected });
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
    [{ RELEASE_GATE_MIN_REQUESTS: '0' }, 'RELEASE_GATE_MIN_REQUESTS must be a whole number >= 1, got "0"'],
    [{ RELEASE_GATE_MIN_REQUESTS: '2.5' }, 'RELEASE_GATE_MIN_REQUESTS must be a whole number >= 1, got "2.5"'],
    [
      { RELEASE_GATE_MIN_REQUESTS: '500' },
      'RELEASE_GATE_MIN_REQUESTS (500) must not exceed ALERT_WINDOW (200): the gate judges the alert window',
    ],
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
    const rec = recordAfterGuard(record(), guardRelease(record(), items('green', 40, 6), NOW, gate), NOW)!;
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
