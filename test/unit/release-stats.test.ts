// DORA's four figures (core/release-stats.ts, `bluegreen history --stats`) on a synthetic ledger whose
// figures are worked out by hand below, then their text and the command's flags.
import type { ReleaseRecord, ReleaseState, ReleaseStep } from '../../core/release-record';
import { releaseOutcome, releaseStats } from '../../core/release-stats';
import { formatStats } from '../../ops/release/history';
import { parseHistoryArgs } from '../../ops/release/args';
import { ConfigError } from '../../core/config-error';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

function rec(
  id: string,
  startedAt: string,
  state: ReleaseState,
  steps: Array<[string, string, boolean?]>,
  builtAt?: string,
): ReleaseRecord {
  const all: ReleaseStep[] = [
    { at: startedAt, step: 'start', ok: true, detail: '' },
    ...steps.map(([step, at, ok]) => ({ at, step, ok: ok ?? true, detail: '' })),
  ];
  return {
    id,
    pool: 'green',
    release: id,
    env: {},
    previousPool: 'blue',
    previousRelease: 'prev',
    replacedRelease: 'old',
    strategy: 'all-at-once',
    canaryPercent: 0,
    bakeSeconds: 600,
    state,
    startedAt,
    updatedAt: all[all.length - 1].at,
    ...(['deploying', 'verifying', 'baking'].includes(state) ? {} : { finishedAt: all[all.length - 1].at }),
    ...(builtAt ? { builtAt } : {}),
    steps: all,
  };
}

// The window: the 30 days before 2026-03-31T00:00Z.
const UNTIL = Date.parse('2026-03-31T00:00:00Z');
const LEDGER: ReleaseRecord[] = [
  // Before the window: counts for nothing.
  rec('r0', '2026-02-20T10:00:00Z', 'promoted', [['promote', '2026-02-20T10:05:00Z']], '2026-02-20T09:00:00Z'),
  // Promoted; built 65 min before its promotion.
  rec('r1', '2026-03-02T10:00:00Z', 'promoted', [['promote', '2026-03-02T10:05:00Z']], '2026-03-02T09:00:00Z'),
  // Promoted, then rolled back 2 min later: a failure, restored in 2 min.
  rec('r2', '2026-03-05T10:00:00Z', 'rolled-back', [
    ['promote', '2026-03-05T10:04:00Z'],
    ['rollback', '2026-03-05T10:06:00Z'],
  ]),
  // Failed its gate: never reached users, no change failure.
  rec('r3', '2026-03-08T10:00:00Z', 'failed', [['gate', '2026-03-08T10:02:00Z', false]]),
  // Canary aborted 2 min after its share was set: a failure, restored in 2 min.
  rec('r4', '2026-03-10T10:00:00Z', 'failed', [
    ['canary', '2026-03-10T10:03:00Z'],
    ['canary-aborted', '2026-03-10T10:05:00Z', false],
  ]),
  // Canary, then promoted: reached users at the canary; built 40 min before the promotion.
  rec(
    'r5',
    '2026-03-12T10:00:00Z',
    'promoted',
    [
      ['canary', '2026-03-12T10:02:00Z'],
      ['promote', '2026-03-12T10:10:00Z'],
    ],
    '2026-03-12T09:30:00Z',
  ),
  // Frozen (irreversible), fixed forward by r7's promotion at 11:30: restored 85 min after 10:05.
  rec('r6', '2026-03-15T10:00:00Z', 'frozen', [
    ['promote', '2026-03-15T10:05:00Z'],
    ['frozen', '2026-03-15T10:08:00Z', false],
  ]),
  rec('r7', '2026-03-15T11:00:00Z', 'promoted', [['promote', '2026-03-15T11:30:00Z']], '2026-03-15T10:45:00Z'),
  // Left idle (--no-promote): never reached users.
  rec('r8', '2026-03-20T10:00:00Z', 'deployed', [['deployed', '2026-03-20T10:03:00Z']]),
  // Promoted from --image: no build time, no lead time.
  rec('r10', '2026-03-22T10:00:00Z', 'promoted', [['promote', '2026-03-22T10:03:00Z']]),
  // Frozen, not fixed yet: users are still on it.
  rec('r9', '2026-03-25T10:00:00Z', 'frozen', [
    ['promote', '2026-03-25T10:05:00Z'],
    ['frozen', '2026-03-25T10:07:00Z', false],
  ]),
];

test('the four figures on a ledger worked out by hand', () => {
  const s = releaseStats(LEDGER, UNTIL, 30 * DAY);
  // r1..r10 started in the window; promoted: r1, r5, r7, r10.
  expect(s).toMatchObject({ releases: 10, promoted: 4, perDay: 4 / 30, perWeek: (4 / 30) * 7 });
  // Reached users: all but r3 (gate) and r8 (idle) = 8; failed there: r2, r4, r6, r9.
  expect(s.reachedUsers).toBe(8);
  expect(s.failed).toEqual(['r2', 'r4', 'r6', 'r9']);
  expect(s.changeFailureRate).toBe(0.5);
  // Restored: r2 2 min, r4 2 min, r6 85 min (sorted: 2, 2, 85 → the lower middle is 2); r9 not.
  expect(s.timeToRestore).toEqual({ count: 3, medianMs: 2 * MIN, maxMs: 85 * MIN });
  expect(s.unrestored).toEqual(['r9']);
  // Lead: r1 65 min, r5 40 min, r7 45 min → median 45, longest 65; r10 has no build time.
  expect(s.leadTime).toEqual({ count: 3, medianMs: 45 * MIN, maxMs: 65 * MIN });
  expect(s.leadTimeOf).toBe(3);
});

test("each release's outcome, as the alert function publishes it at the release's end, adds up to the same figures", () => {
  const inWindow = LEDGER.filter((r) => Date.parse(r.startedAt) >= UNTIL - 30 * DAY);
  const outcomes = inWindow.map(releaseOutcome);
  const sum = (k: 'deployments' | 'reachedUsers' | 'changeFailures') => outcomes.reduce((a, o) => a + o[k], 0);
  // The dashboard's row: promoted per day, failures over releases that reached users, the medians.
  expect(sum('deployments')).toBe(4);
  expect(sum('reachedUsers')).toBe(8);
  expect(sum('changeFailures') / sum('reachedUsers')).toBe(0.5);
  // Restores known at the release's end: r2 2 min, r4 2 min. A frozen release's restore is a later
  // release's promotion (r6's 85 min): it publishes none; `history --stats` counts those.
  expect(
    outcomes.flatMap((o) => (o.restoreSeconds === undefined ? [] : [o.restoreSeconds])).sort((a, b) => a - b),
  ).toEqual([120, 120]);
  expect(
    outcomes.flatMap((o) => (o.leadTimeSeconds === undefined ? [] : [o.leadTimeSeconds])).sort((a, b) => a - b),
  ).toEqual([2400, 2700, 3900]);
});

test('the order of the records does not matter; a fix forward is the first promotion after the freeze', () => {
  const shuffled = [...LEDGER].reverse();
  expect(releaseStats(shuffled, UNTIL, 30 * DAY)).toEqual(releaseStats(LEDGER, UNTIL, 30 * DAY));
  // Seen before r7 existed (the 15th at 10:30): r6 is unrestored, and r9 not yet started.
  const early = releaseStats(
    LEDGER.filter((r) => r.id !== 'r7'),
    Date.parse('2026-03-15T10:30:00Z'),
    30 * DAY,
  );
  expect(early.unrestored).toEqual(['r6']);
  expect(early.failed).toEqual(['r2', 'r4', 'r6']);
});

test('an empty window says so rather than dividing by zero', () => {
  const s = releaseStats([], UNTIL, 7 * DAY);
  expect(s).toMatchObject({ releases: 0, promoted: 0, perDay: 0, changeFailureRate: null, unrestored: [] });
  expect(formatStats(s)).toMatch(/^change failure rate\s+none reached users$/m);
  expect(formatStats(s)).toMatch(/^time to restore\s+none$/m);
});

test('the text: one line per figure, with what it was counted from', () => {
  const text = formatStats(releaseStats(LEDGER, UNTIL, 30 * DAY));
  expect(text.split('\n')).toEqual([
    'window                30 days: 2026-03-01T00:00:00.000Z to 2026-03-31T00:00:00.000Z',
    'releases              10 started, 4 promoted, 8 reached users',
    'deployment frequency  0.13 a day, 0.9 a week (promoted)',
    'change failure rate   50.0% (4 of 8 that reached users: rolled back, frozen or canary aborted)',
    'time to restore       median 2m00s, longest 1h25m (3); users still on r9',
    'lead time             median 45m00s, longest 1h05m (3); 1 promoted without a build time (--image)',
  ]);
});

test('--stats [--since Nd]: whole days, 90 by default; --since without --stats and --limit with it are refused', () => {
  expect(parseHistoryArgs(['--stats']).statsWindowMs).toBe(90 * DAY);
  expect(parseHistoryArgs(['--stats', '--since', '7d']).statsWindowMs).toBe(7 * DAY);
  expect(parseHistoryArgs([]).statsWindowMs).toBeUndefined();
  for (const bad of [
    ['--stats', '--since', '7'],
    ['--stats', '--since', '0d'],
    ['--stats', '--since', '1.5d'],
  ])
    expect(() => parseHistoryArgs(bad)).toThrow(/--since must be whole days/);
  expect(() => parseHistoryArgs(['--since', '7d'])).toThrow(ConfigError);
  expect(() => parseHistoryArgs(['--stats', '--limit', '5'])).toThrow(/--limit is for the list/);
});
