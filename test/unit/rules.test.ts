// The rule engine, table-driven: each case is a sequence of requests and the decisions it must give.
import { AccessLogEntry, parseAccessLogLine, primaryPool } from '../../core/access-log';
import {
  DEFAULT_RULE_CONFIG,
  emptyState,
  EngineInput,
  EngineState,
  evaluate,
  failedByPrimary,
  FLEET_SEEN_MS,
  RuleConfig,
  seedWindow,
  windowFigures,
} from '../../core/rules';
import { formatHostsParameter, parseHostsParameter } from '../../core/fleet-size';
import { processLines } from '../../core/line-batch';

const T0 = Date.parse('2026-11-22T10:00:00Z');

function entry(over: Partial<AccessLogEntry> = {}): AccessLogEntry {
  return {
    time: '2026-11-22T10:00:00+00:00',
    request_id: 'r',
    remote_addr: '127.0.0.1',
    method: 'GET',
    uri: '/version',
    status: 200,
    body_bytes_sent: 10,
    request_time: 0.001,
    upstream_addr: '10.0.0.1:3000',
    upstream_status: '200',
    upstream_response_time: '0.001',
    upstream_connect_time: '0.000',
    pool: 'blue',
    release: 'blue-1',
    active_pool: 'blue',
    ...over,
  };
}

// Shorthands for request kinds (lines as nginx writes them now: every line names its primary pool).
const other = (pool: string) => (pool === 'blue' ? 'green' : 'blue');
/** Served by its primary, the active pool. */
const ok = (active = 'blue') => entry({ pool: active, active_pool: active, primary_pool: active });
/** The primary answered 500, nginx retried on the backup inside the request. */
const failedOver = (active = 'blue', backup = other(active)) =>
  entry({
    pool: backup,
    active_pool: active,
    primary_pool: active,
    upstream_status: '500, 200',
    upstream_addr: 'a:1, b:2',
    release: `${backup}-1`,
  });
/** nginx had marked the primary down (max_fails=1): sent straight to the backup, one attempt, 200. */
const onBackup = (active = 'blue', backup = other(active)) =>
  entry({ pool: backup, active_pool: active, primary_pool: active, upstream_status: '200', upstream_addr: 'b:2' });
/** Both pools failed: the client got the 502. */
const bothDown = (active = 'blue') =>
  entry({
    pool: '',
    active_pool: active,
    primary_pool: active,
    status: 502,
    upstream_status: '502, 502',
    uri: '/pay?x=1',
  });
/** A canary request: first sent to the idle pool, which answered. */
const canaryOk = (active = 'blue', canary = other(active)) =>
  entry({ pool: canary, active_pool: active, primary_pool: canary, release: `${canary}-2` });
/** A canary request the canary pool failed: retried on the active pool. */
const canaryFailedOver = (active = 'blue', canary = other(active)) =>
  entry({
    pool: active,
    active_pool: active,
    primary_pool: canary,
    upstream_status: '500, 200',
    upstream_addr: 'c:3, a:1',
  });
/** A line written before primary_pool existed. */
const legacy = (over: Partial<AccessLogEntry>) => {
  const e = entry(over);
  delete e.primary_pool;
  return e;
};

function run(
  entries: AccessLogEntry[],
  opts: { config?: Partial<RuleConfig>; maintenance?: boolean; host?: string; stepMs?: number } = {},
) {
  const config = { ...DEFAULT_RULE_CONFIG, minWindow: 5, windowSize: 10, ...opts.config };
  const inputs: EngineInput[] = entries.map((e, i) => ({
    entry: e,
    host: opts.host ?? 'i-1',
    at: T0 + i * (opts.stepMs ?? 1000),
  }));
  return evaluate(emptyState(), inputs, { config, maintenance: opts.maintenance ?? false });
}
const kinds = (r: ReturnType<typeof run>) =>
  r.decisions.map((d) => (d.suppressed ? `${d.kind}(${d.suppressed})` : d.kind));
const times = <T>(n: number, f: () => T) => Array.from({ length: n }, () => f());
const errorKinds = (r: ReturnType<typeof run>) => kinds(r).filter((k) => k.startsWith('error'));

describe('the failure measure: a request failed by its primary pool', () => {
  test.each<[string, AccessLogEntry, boolean]>([
    ['served by its primary, 200', ok(), false],
    ['failover inside the request ("500, 200", served by the backup)', failedOver(), true],
    ['sent straight to the backup (primary marked down): one 200 attempt, still failed', onBackup(), true],
    ['a 5xx attempt, even when the pool that answered is the primary', entry({ upstream_status: '503, 200' }), true],
    ['a 5xx status (no pool could answer)', bothDown(), true],
    ['a 5xx status the app itself answered, single attempt', entry({ status: 500, upstream_status: '500' }), true],
    ['a canary request served by its own primary (the idle pool) is fine', canaryOk(), false],
    ['a canary request the canary pool failed (served by the active pool)', canaryFailedOver(), true],
    ['4xx is not a failure', entry({ status: 404, upstream_status: '404' }), false],
    [
      'nginx refused it (no pool, 403): not a pool failure',
      entry({ pool: '', status: 403, upstream_status: '' }),
      false,
    ],
    [
      'an older line without primary_pool: the active pool stands in (served by it)',
      legacy({ pool: 'green', active_pool: 'green' }),
      false,
    ],
    [
      'an older line without primary_pool: served by the other pool',
      legacy({ pool: 'green', active_pool: 'blue' }),
      true,
    ],
  ])('%s → %s', (_name, e, failed) => {
    expect(failedByPrimary(e)).toBe(failed);
  });

  test('primary_pool is parsed when present, optional on older lines, and must be a string', () => {
    const line = (over: Record<string, unknown>) => JSON.stringify({ ...legacy({}), ...over });
    const withIt = parseAccessLogLine(line({ primary_pool: 'green' }));
    expect(withIt.ok && primaryPool(withIt.entry)).toBe('green');
    const without = parseAccessLogLine(line({ active_pool: 'blue' }));
    expect(without.ok && primaryPool(without.entry)).toBe('blue');
    expect(parseAccessLogLine(line({ primary_pool: 7 }))).toEqual({
      ok: false,
      reason: 'field primary_pool is not a string',
    });
  });
});

describe('error-rate alert with the new measure (window 10, min 5, threshold 2%)', () => {
  test.each<[string, AccessLogEntry[], string[]]>([
    ['failover inside requests fires', [...times(5, ok), failedOver()], ['error_rate']],
    ['straight to the backup (no 5xx logged at all) fires', [...times(5, ok), onBackup()], ['error_rate']],
    ['a 5xx attempt fires', [...times(5, ok), entry({ upstream_status: '502, 200' })], ['error_rate']],
    ['a 5xx status fires', [...times(5, ok), bothDown()], ['error_rate']],
    ['canary requests served by their own primary never fire', [...times(5, ok), ...times(10, canaryOk)], []],
    ['a canary pool failing its requests fires', [...times(5, ok), canaryFailedOver()], ['error_rate']],
    ['a planned flip never counts', [...times(10, ok), ...times(20, () => ok('green')), ...times(20, ok)], []],
    [
      'a planned flip in the middle of a request stream, every line naming its primary',
      [ok('blue'), ok('green'), ok('blue'), ok('green'), ...times(10, () => ok('green'))],
      [],
    ],
  ])('%s', (_name, entries, expected) => {
    expect(errorKinds(run(entries, { stepMs: 11_000 }))).toEqual(expected);
  });

  test('no recovery while the active pool still fails: max_fails=1 sends most requests straight to the backup', () => {
    // nginx's pattern under chaos: one failover inside a request per fail_timeout, the rest go straight
    // to the backup. The old measure counted 1 in ~100 (and reported recovery); now every one counts.
    const chaos = (n: number) => Array.from({ length: n }, (_, i) => (i % 100 === 0 ? failedOver() : onBackup()));
    const r = run([...times(200, ok), ...chaos(300)], { config: { windowSize: 200, minWindow: 50 } });
    expect(kinds(r)).toEqual(['failover', 'error_rate']);
    expect(windowFigures(r.state.window)).toMatchObject({
      requests: 200,
      bad: 200,
      rate: 1,
      usersSaw5xx: 0,
      failedPools: [['blue', 200]],
    });
    // Once blue answers again, the failed requests leave the window: recovery at ≤ 1%.
    const after = evaluate(
      r.state,
      times(198, ok).map((e, i) => ({ entry: e, host: 'i-1', at: T0 + 1_000_000 + i })),
      { config: { ...DEFAULT_RULE_CONFIG }, maintenance: false },
    );
    expect(after.decisions.map((d) => d.kind)).toEqual(['failover_recovered', 'error_rate_recovered']);
  });

  test('the alert says the share users saw as 5xx (normally 0) and which pool failed', () => {
    const r = run([...times(5, ok), failedOver(), onBackup()]);
    const d = r.decisions.find((x) => x.kind === 'error_rate')!;
    expect(d.summary).toBe(
      'Error rate 16.7% over the last 6 requests (threshold 2.0%): 1 failed by their primary pool (blue 1), users saw 5xx on 0 (0.0%)',
    );
    expect(d.details).toEqual({ failed: 1, requests: 6, users_saw_5xx: 0 });
    const both = run([...times(5, ok), bothDown()]).decisions.find((x) => x.kind === 'error_rate')!;
    expect(both.window).toMatchObject({ bad: 1, usersSaw5xx: 1 });
    expect(both.summary).toContain('users saw 5xx on 1 (16.7%)');
  });

  test('window items keep the primary pool and the time, so the gate can filter by pool', () => {
    const r = run([ok(), canaryOk(), canaryFailedOver()]);
    expect(r.state.window.map((w) => [w.primary, w.bad, w.at - T0])).toEqual([
      ['blue', false, 0],
      ['green', false, 1000],
      ['green', true, 2000],
    ]);
  });
});

describe('failover episodes', () => {
  test.each<[string, AccessLogEntry[], string[]]>([
    ['healthy traffic: nothing', times(20, ok), []],
    ['one failover inside a request opens an episode: one alert', [ok(), failedOver(), ok()], ['failover']],
    ['an episode alerts once however long it lasts', [failedOver(), ...times(30, onBackup)], ['failover']],
    [
      '3 answers from the active pool end it: one recovery',
      [failedOver(), onBackup(), ok(), ok(), ok()],
      ['failover', 'failover_recovered'],
    ],
    ['2 are not enough', [failedOver(), ok(), ok()], ['failover']],
    ['a backup answer resets the streak', [failedOver(), ok(), ok(), onBackup(), ok(), ok()], ['failover']],
    [
      'requests nginx refused (no pool) do not touch episodes',
      [entry({ pool: '', status: 403, upstream_status: '' })],
      [],
    ],
    ['straight to the backup opens an episode too', [ok(), onBackup(), onBackup()], ['failover']],
    ['a canary request served by the canary pool is no failover', [ok(), canaryOk(), canaryOk(), ok()], []],
    [
      'canary answers do not end an episode of the active pool',
      [failedOver(), canaryOk(), canaryOk(), canaryOk()],
      ['failover'],
    ],
    [
      'a canary request failed over to the active pool is a failover of the canary pool',
      [canaryFailedOver(), canaryOk(), canaryOk(), canaryOk()],
      ['failover', 'failover_recovered'],
    ],
    [
      'older lines without primary_pool: served ≠ active is the failover',
      [legacy({ pool: 'green', active_pool: 'blue', upstream_status: '500, 200' }), ...times(3, () => legacy({}))],
      ['failover', 'failover_recovered'],
    ],
  ])('%s', (_name, entries, expected) => {
    expect(kinds(run(entries, { config: { minWindow: 1000, windowSize: 1000 } }))).toEqual(expected);
  });

  test('failover is a per-host fact: two hosts, two episodes', () => {
    const config = { ...DEFAULT_RULE_CONFIG, minWindow: 1000, windowSize: 1000 };
    const inputs: EngineInput[] = [
      { entry: failedOver(), host: 'i-1', at: T0 },
      { entry: failedOver(), host: 'i-2', at: T0 + 1 },
      { entry: onBackup(), host: 'i-1', at: T0 + 2 },
    ];
    const r = evaluate(emptyState(), inputs, { config, maintenance: false });
    expect(r.decisions.map((d) => [d.kind, d.host])).toEqual([
      ['failover', 'i-1'],
      ['failover', 'i-2'],
    ]);
  });

  test('the failover alert says who failed, who answered, and the attempts', () => {
    const [d] = run([failedOver()]).decisions;
    expect(d).toMatchObject({
      kind: 'failover',
      severity: 'warning',
      pool: 'green',
      activePool: 'blue',
      release: 'green-1',
      host: 'i-1',
      suppressed: null,
    });
    expect(d.summary).toBe('Failover on i-1: blue is failing, green is answering');
    expect(d.details).toMatchObject({ upstream_status: '500, 200', upstream_addr: 'a:1, b:2' });
  });

  test('a canary failover names the canary pool as the one failing', () => {
    const [d] = run([canaryFailedOver()]).decisions;
    expect(d.summary).toBe(
      'Failover on i-1: green is failing, blue is answering (canary requests first sent to green)',
    );
    expect(d).toMatchObject({ pool: 'blue', activePool: 'blue', details: { primary_pool: 'green' } });
  });
});

describe('planned switch', () => {
  test('active_pool changing is an info message, never a failover', () => {
    const r = run([ok('blue'), ok('blue'), ok('green'), ok('green')], {
      config: { minWindow: 1000, windowSize: 1000 },
    });
    expect(kinds(r)).toEqual(['planned_switch']);
    expect(r.decisions[0]).toMatchObject({ severity: 'info', previousPool: 'blue', activePool: 'green' });
  });

  test('a switch to the pool that was answering as backup ends the episode without a recovery', () => {
    const r = run([failedOver('blue', 'green'), onBackup('blue', 'green'), ok('green'), ok('green'), ok('green')], {
      config: { minWindow: 1000, windowSize: 1000 },
    });
    expect(kinds(r)).toEqual(['failover', 'planned_switch']);
  });

  test('old workers finishing requests under the previous config right after a reload: no switch back', () => {
    // blue → green, then two late lines still saying blue (within 10 s), then green again.
    const r = run([ok('blue'), ok('green'), ok('blue'), ok('blue'), ok('green')], {
      config: { minWindow: 1000, windowSize: 1000 },
      stepMs: 1000,
    });
    expect(kinds(r)).toEqual(['planned_switch']);
  });

  test('a real switch back later is reported', () => {
    const r = run([ok('blue'), ok('green'), ok('blue')], {
      config: { minWindow: 1000, windowSize: 1000 },
      stepMs: 11_000,
    });
    expect(kinds(r)).toEqual(['planned_switch', 'planned_switch']);
  });

  test('the first line seen is no switch (nothing to compare with)', () => {
    expect(kinds(run([ok('green')]))).toEqual([]);
  });
});

describe('error rate (window 10, min 5, threshold 2%, recovery at 1%)', () => {
  test('exact window arithmetic: 1 bad in 10 is 10%', () => {
    const r = run([...times(9, ok), failedOver()], { config: { minWindow: 1000 } });
    expect(windowFigures(r.state.window)).toMatchObject({ requests: 10, bad: 1, rate: 0.1 });
  });

  test('the window keeps only the last N requests', () => {
    const r = run([failedOver(), ...times(10, ok)], { config: { minWindow: 1000 } });
    expect(windowFigures(r.state.window)).toMatchObject({ requests: 10, bad: 0 });
  });

  test('not judged before the minimum window', () => {
    expect(
      kinds(run([failedOver(), ok(), ok(), ok()], { config: { minWindow: 5 } })).filter((k) => k.startsWith('error')),
    ).toEqual([]);
  });

  test('fires at the minimum window when above the threshold', () => {
    const r = run([failedOver(), ok(), ok(), ok(), ok()]);
    expect(kinds(r)).toEqual(['failover', 'failover_recovered', 'error_rate']);
    expect(r.decisions[2].window).toMatchObject({
      requests: 5,
      bad: 1,
      rate: 0.2,
      usersSaw5xx: 0,
      topUris: [['/version', 1]],
      topUpstreams: [
        ['a:1', 1],
        ['b:2', 1],
      ],
    });
  });

  test('exactly at the threshold does not fire (above means above)', () => {
    const r = run([failedOver(), ...times(49, ok)], {
      config: { windowSize: 50, minWindow: 50, errorRateThreshold: 0.02 },
    });
    expect(errorKinds(r)).toEqual([]);
  });

  test('hysteresis: recovers only at or below threshold × 0.5', () => {
    // 1 bad in 10 = 10%, then the bad one leaves the window: 0% → recovered.
    const r = run([failedOver(), ...times(4, ok), ...times(6, ok)], {
      config: { minWindow: 5, windowSize: 10, errorRateThreshold: 0.05, recoveryRatio: 0.5 },
    });
    expect(errorKinds(r)).toEqual(['error_rate', 'error_rate_recovered']);
    const rec = r.decisions.find((d) => d.kind === 'error_rate_recovered')!;
    expect(rec.details).toMatchObject({ peak: '20.0%' });
  });

  test('a rate between recovery level and threshold keeps the alert open, silently', () => {
    const bad = () => failedOver();
    // window 20: 2 bad = 10% (alert at 5%), then 1 bad = 5% (≤ threshold 5% but > 2.5%): still open.
    const entries = [bad(), bad(), ...times(18, ok), ...times(1, ok)];
    const r = run(entries, { config: { windowSize: 20, minWindow: 20, errorRateThreshold: 0.05 } });
    expect(errorKinds(r)).toEqual(['error_rate']);
    expect(r.state.errorRate).toBeDefined();
  });

  test('any upstream 5xx attempt counts, and so does a 5xx status; 4xx does not', () => {
    const r = run(
      [
        entry({ status: 404, upstream_status: '404' }),
        entry({ upstream_status: '503, 200', pool: 'green' }),
        bothDown(),
      ],
      { config: { minWindow: 1000 } },
    );
    expect(windowFigures(r.state.window)).toMatchObject({ requests: 3, bad: 2 });
  });
});

describe('users see errors', () => {
  test('a client-facing 5xx is a critical alert with the attempts', () => {
    const r = run([bothDown()], { config: { minWindow: 1000 } });
    expect(kinds(r)).toEqual(['users_see_errors']);
    expect(r.decisions[0]).toMatchObject({
      severity: 'critical',
      details: { status: 502, upstream_status: '502, 502' },
    });
    expect(r.decisions[0].summary).toBe('Users see errors on i-1: GET /pay answered 502 (upstream 502, 502)');
  });
});

describe('cooldown (300 s per kind)', () => {
  test.each<[string, number, string[]]>([
    ['a second episode 299 s later is suppressed', 299_000, ['users_see_errors', 'users_see_errors(cooldown)']],
    ['exactly 300 s later posts again', 300_000, ['users_see_errors', 'users_see_errors']],
  ])('%s', (_name, gap, expected) => {
    const inputs: EngineInput[] = [
      { entry: bothDown(), host: 'i-1', at: T0 },
      { entry: bothDown(), host: 'i-1', at: T0 + gap },
    ];
    const r = evaluate(emptyState(), inputs, {
      config: { ...DEFAULT_RULE_CONFIG, minWindow: 1000 },
      maintenance: false,
    });
    expect(kinds(r as ReturnType<typeof run>)).toEqual(expected);
  });

  test('a suppressed failover gets no recovery message either', () => {
    const seq = [failedOver(), ok(), ok(), ok(), failedOver(), ok(), ok(), ok()];
    expect(kinds(run(seq, { config: { minWindow: 1000, windowSize: 1000 } }))).toEqual([
      'failover',
      'failover_recovered',
      'failover(cooldown)',
    ]);
  });
});

describe('maintenance', () => {
  test('evaluates and returns every decision, posts none, and does not start cooldowns', () => {
    const r = run([failedOver(), ok(), ok(), ok(), bothDown()], {
      maintenance: true,
      config: { minWindow: 1000, windowSize: 1000 },
    });
    expect(kinds(r)).toEqual(['failover(maintenance)', 'users_see_errors(maintenance)']);
    expect(r.state.lastPosted).toEqual({});
  });
});

describe('pipeline', () => {
  test('malformed lines are counted and skipped, never fatal', () => {
    const lines = ['not json', '{"status":200}', JSON.stringify(failedOver()), ''].map((message) => ({
      message,
      host: 'i-1',
      receivedAt: T0,
    }));
    const r = processLines(emptyState(), lines, DEFAULT_RULE_CONFIG, false);
    expect(r.evaluated).toBe(1);
    expect(r.malformed.map((m) => m.reason)).toEqual(['not JSON', 'missing field time', 'not JSON']);
    expect(r.toPost.map((d) => d.kind)).toEqual(['failover']);
  });

  test('batch counts: failed over (served ≠ primary, inside the request or straight to the backup) and failed by the primary', () => {
    const lines = [
      ok(),
      failedOver(),
      onBackup(),
      canaryOk(),
      canaryFailedOver(),
      entry({ upstream_status: '503, 200' }),
      bothDown(),
    ].map((e) => ({ message: JSON.stringify(e), host: 'i-1', receivedAt: T0 }));
    const r = processLines(emptyState(), lines, DEFAULT_RULE_CONFIG, false);
    expect({ failedOver: r.failedOver, failed: r.failed }).toEqual({ failedOver: 3, failed: 5 });
  });

  test('a cold start seeds the window from history without deciding anything', () => {
    const seeded = seedWindow(emptyState(), [failedOver(), ok(), ok()], DEFAULT_RULE_CONFIG);
    expect(windowFigures(seeded.window)).toMatchObject({ requests: 3, bad: 1 });
    expect(seeded.hosts).toEqual({});
  });

  test('state stays small: a host silent for a day and its expired cooldown are forgotten', () => {
    const inputs: EngineInput[] = [
      { entry: failedOver(), host: 'i-old', at: T0 },
      { entry: ok(), host: 'i-new', at: T0 + 86_400_001 },
    ];
    const r = evaluate(emptyState(), inputs, {
      config: { ...DEFAULT_RULE_CONFIG, minWindow: 1000 },
      maintenance: false,
    });
    expect(Object.keys(r.state.hosts)).toEqual(['i-new']);
    expect(r.state.lastPosted).toEqual({});
  });

  test('evaluate does not mutate the state it is given', () => {
    const state = emptyState();
    evaluate(state, [{ entry: failedOver(), host: 'i-1', at: T0 }], {
      config: DEFAULT_RULE_CONFIG,
      maintenance: false,
    });
    expect(state).toEqual(emptyState());
  });
});

describe('fleet wording: "N of M hosts" in a fleet, single-host messages unchanged', () => {
  const config = { ...DEFAULT_RULE_CONFIG, minWindow: 1000, windowSize: 1000 };
  /** Requests from several hosts, one second apart, in the order given. */
  const fleetRun = (
    steps: Array<[string, AccessLogEntry]>,
    fleetSize: number | undefined,
    opts: { config?: RuleConfig; start?: EngineState; from?: number } = {},
  ) =>
    evaluate(
      opts.start ?? emptyState(),
      steps.map(([host, e], i) => ({ entry: e, host, at: (opts.from ?? T0) + i * 1000 })),
      { config: opts.config ?? config, maintenance: false, fleetSize },
    );
  const summaries = (r: ReturnType<typeof fleetRun>, kind: string) =>
    r.decisions.filter((d) => d.kind === kind).map((d) => d.summary);
  /** Three hosts logging healthy traffic: all three are seen. */
  const healthy3: Array<[string, AccessLogEntry]> = [
    ['i-a', ok()],
    ['i-b', ok()],
    ['i-c', ok()],
  ];

  test('a flip on a fleet is posted once, for the first host to switch; a switch back is posted again (once)', () => {
    const flip: Array<[string, AccessLogEntry]> = [
      ['i-a', ok('green')],
      ['i-b', ok('green')],
      ['i-c', ok('green')],
    ];
    const back: Array<[string, AccessLogEntry]> = [
      ['i-b', ok('blue')],
      ['i-a', ok('blue')],
      ['i-c', ok('blue')],
    ];
    const r1 = fleetRun([...healthy3, ...flip], 3);
    // a minute later (sooner, a host's old-config line is not a switch back: STALE_AFTER_SWITCH_MS)
    const r2 = fleetRun(back, 3, { start: r1.state, from: T0 + 60_000 });
    const switches = [...r1.decisions, ...r2.decisions].filter((d) => d.kind === 'planned_switch');
    expect(switches.map((d) => [d.host, d.suppressed])).toEqual([
      ['i-a', null],
      ['i-b', 'fleet'],
      ['i-c', 'fleet'],
      ['i-b', null],
      ['i-a', 'fleet'],
      ['i-c', 'fleet'],
    ]);
    expect(switches[0].summary).toBe(
      "Planned switch on i-a: active pool blue → green — the fleet's 3 hosts follow (posted once, for the first)",
    );
    // A quick flip back, then a slow host's late line of the first flip: not posted again.
    const q1 = fleetRun([...healthy3, ['i-a', ok('green')], ['i-b', ok('green')]], 3);
    const q2 = fleetRun(
      [
        ['i-a', ok('blue')],
        ['i-b', ok('blue')],
        ['i-c', ok('green')],
      ],
      3,
      { start: q1.state, from: T0 + 20_000 },
    );
    expect(
      [...q1.decisions, ...q2.decisions]
        .filter((d) => d.kind === 'planned_switch')
        .map((d) => [d.host, d.previousPool, d.pool, d.suppressed]),
    ).toEqual([
      ['i-a', 'blue', 'green', null],
      ['i-b', 'blue', 'green', 'fleet'],
      ['i-a', 'green', 'blue', null],
      ['i-b', 'green', 'blue', 'fleet'],
      ['i-c', 'blue', 'green', 'fleet'],
    ]);
    // a single host: every switch posted, wording unchanged
    const s1 = fleetRun(
      [
        ['i-a', ok()],
        ['i-a', ok('green')],
      ],
      undefined,
    );
    const s2 = fleetRun([['i-a', ok('blue')]], undefined, { start: s1.state, from: T0 + 60_000 });
    expect(
      [...s1.decisions, ...s2.decisions]
        .filter((d) => d.kind === 'planned_switch')
        .map((d) => [d.summary, d.suppressed]),
    ).toEqual([
      ['Planned switch on i-a: active pool blue → green', null],
      ['Planned switch on i-a: active pool green → blue', null],
    ]);
  });

  test('two of three hosts failing over to green: the second alert says 2 of 3', () => {
    const r = fleetRun([...healthy3, ['i-a', failedOver()], ['i-b', failedOver()]], 3);
    expect(summaries(r, 'failover')).toEqual([
      'Failover on i-a: blue is failing, green is answering — green answering on 1 of 3 hosts',
      'Failover on i-b: blue is failing, green is answering — green answering on 2 of 3 hosts',
    ]);
    expect(r.decisions.filter((d) => d.kind === 'failover').map((d) => d.details.hosts_failing_over)).toEqual([
      '1 of 3',
      '2 of 3',
    ]);
  });

  test('recovery of one says how many are still failing over; the last says none', () => {
    const r = fleetRun(
      [
        ...healthy3,
        ['i-a', failedOver()],
        ['i-b', failedOver()],
        ['i-a', ok()],
        ['i-a', ok()],
        ['i-a', ok()],
        ['i-b', ok()],
        ['i-b', ok()],
        ['i-b', ok()],
      ],
      3,
    );
    expect(summaries(r, 'failover_recovered')).toEqual([
      'Recovered on i-a: blue is answering again after 4 s — still on green on 1 of 3 hosts',
      'Recovered on i-b: blue is answering again after 6 s — no host failing over now',
    ]);
    expect(r.decisions.filter((d) => d.kind === 'failover_recovered').map((d) => d.details.hosts_failing_over)).toEqual(
      ['1 of 3', '0 of 3'],
    );
  });

  test('a single host (no fleet size, or 1) keeps its messages byte for byte', () => {
    for (const size of [undefined, 1]) {
      const r = fleetRun(
        [
          ['i-1', ok()],
          ['i-1', failedOver()],
          ['i-1', ok()],
          ['i-1', ok()],
          ['i-1', ok()],
        ],
        size,
      );
      expect(r.decisions.map((d) => d.summary)).toEqual([
        'Failover on i-1: blue is failing, green is answering',
        'Recovered on i-1: blue is answering again after 3 s',
      ]);
      expect(r.decisions.map((d) => Object.keys(d.details))).toEqual([
        ['upstream_status', 'upstream_addr', 'uri', 'request_id'],
        ['duration_s', 'requests_on_backup'],
      ]);
    }
  });

  test("M is the hosts seen logging when the fleet's size is unknown (0) or smaller (a rolling update runs one more)", () => {
    expect(summaries(fleetRun([...healthy3, ['i-a', failedOver()]], 0), 'failover')).toEqual([
      'Failover on i-a: blue is failing, green is answering — green answering on 1 of 3 hosts',
    ]);
    // No fleet size at all = a single host: its replacement logging next to it is not a fleet.
    expect(
      summaries(
        fleetRun(
          [
            ['i-old', ok()],
            ['i-new', ok()],
            ['i-new', failedOver()],
          ],
          undefined,
        ),
        'failover',
      ),
    ).toEqual(['Failover on i-new: blue is failing, green is answering']);
    expect(summaries(fleetRun([...healthy3, ['i-d', ok()], ['i-a', failedOver()]], 3), 'failover')).toEqual([
      'Failover on i-a: blue is failing, green is answering — green answering on 1 of 4 hosts',
    ]);
    // The desired count stands when fewer hosts have logged yet.
    expect(summaries(fleetRun([['i-a', failedOver()]], 3), 'failover')).toEqual([
      'Failover on i-a: blue is failing, green is answering — green answering on 1 of 3 hosts',
    ]);
  });

  test('a host silent for longer than FLEET_SEEN_MS is not counted, nor its open episode', () => {
    // i-gone fails over at T0, then logs nothing more (terminated with its episode open).
    const gone = fleetRun([['i-gone', failedOver()]], 0);
    const then = (from: number) =>
      summaries(
        fleetRun(
          [
            ['i-a', ok()],
            ['i-b', ok()],
            ['i-a', failedOver()],
          ],
          0,
          { start: gone.state, from },
        ),
        'failover',
      );
    // Still within FLEET_SEEN_MS of its last line at i-a's failover: counted, in M and in N.
    expect(then(T0 + FLEET_SEEN_MS - 2000)).toEqual([
      'Failover on i-a: blue is failing, green is answering — green answering on 2 of 3 hosts',
    ]);
    // Past it: neither.
    expect(then(T0 + FLEET_SEEN_MS)).toEqual([
      'Failover on i-a: blue is failing, green is answering — green answering on 1 of 2 hosts',
    ]);
  });

  test('error rate stays per stage; in a fleet it says which hosts the failed requests came from', () => {
    const small = { ...DEFAULT_RULE_CONFIG, minWindow: 10, windowSize: 10 };
    const r = fleetRun(
      [
        ...healthy3,
        ...times(6, (): [string, AccessLogEntry] => ['i-b', ok()]),
        ['i-a', failedOver()],
        ...times(10, (): [string, AccessLogEntry] => ['i-c', ok()]),
      ],
      3,
      { config: small },
    );
    const [alert] = r.decisions.filter((d) => d.kind === 'error_rate');
    expect(alert.summary).toBe(
      'Error rate 10.0% over the last 10 requests (threshold 2.0%): 1 failed by their primary pool (blue 1), users saw 5xx on 0 (0.0%) — failed requests from 1 of 3 hosts: i-a 1',
    );
    expect(alert.details).toEqual({ failed: 1, requests: 10, users_saw_5xx: 0, hosts_with_failures: '1 of 3' });
    expect(alert.window!.failedHosts).toEqual([['i-a', 1]]);
    const [recovered] = r.decisions.filter((d) => d.kind === 'error_rate_recovered');
    expect(recovered.summary).toBe(
      'Error rate back to 0.0% over the last 10 requests (peak 10.0%) — no failed requests from any of the 3 hosts',
    );
    // A single host: the same alert as before, no host figures.
    const single = run([...times(5, ok), failedOver()]).decisions.find((d) => d.kind === 'error_rate')!;
    expect(single.window!.failedHosts).toBeUndefined();
    expect(single.details).toEqual({ failed: 1, requests: 6, users_saw_5xx: 0 });
  });

  test('window items carry the host on failed requests only; a cold start seeds them from the log streams', () => {
    const r = fleetRun(
      [
        ['i-a', ok()],
        ['i-a', failedOver()],
      ],
      3,
    );
    expect(r.state.window.map((w) => w.host)).toEqual([undefined, 'i-a']);
    const seeded = seedWindow(emptyState(), [failedOver(), ok()], DEFAULT_RULE_CONFIG, ['i-x', 'i-y']);
    expect(seeded.window.map((w) => w.host)).toEqual(['i-x', undefined]);
  });

  test('the hosts parameter: one format for the stack and the function, a bad value named', () => {
    expect(parseHostsParameter(formatHostsParameter(3))).toBe(3);
    expect(parseHostsParameter(undefined)).toBeUndefined();
    for (const bad of ['fleet:0', 'fleet:', 'fleet:two', '3', 'fleet:3.5'])
      expect(() => parseHostsParameter(bad)).toThrow(
        `hosts parameter value must be "fleet:<n>" (n a whole number >= 1), got "${bad}"`,
      );
  });
});
