// `bluegreen history`: the record versions folded into one row per release, newest first.
import { describePinned } from '../../core/secrets';
import { isFinal, recordVerdict, ReleaseRecord } from '../../core/release-record';
import { hostGates, summarizeHostGates } from '../stage-hosts';
import { describePrePromote } from '../../core/pre-promote';
import { ReleaseStats, Spread } from '../../core/release-stats';

/** The release phase in a line: how it ended and its last line of output (the record has 20). */
function prePromoteSummary(r: ReleaseRecord): string {
  const p = r.prePromote;
  if (!p) return '';
  const last = p.output
    .split('\n')
    .filter((l) => l.trim() !== '')
    .at(-1);
  return `pre-promote ${describePrePromote(p)}${last ? `, last line "${last.slice(0, 120)}"` : ''}`;
}

export interface HistoryRow {
  id: string;
  pool: string;
  release: string;
  strategy: string;
  outcome: string;
  duration: string;
  /** Each host's gate (AWS): "3/3 ok", "1/3 ok; failed i-2; not run i-3"; '' locally. */
  hosts: string;
  reason: string;
}

/** The last version of each release, newest start first. */
export function latestPerRelease(versions: readonly ReleaseRecord[]): ReleaseRecord[] {
  const latest = new Map<string, ReleaseRecord>();
  for (const v of versions) latest.set(v.id, v); // versions are oldest first: the last one wins
  return [...latest.values()].sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.id.localeCompare(a.id));
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function historyRows(versions: readonly ReleaseRecord[], now: number): HistoryRow[] {
  return latestPerRelease(versions).map((r) => {
    const start = Date.parse(r.startedAt);
    const end = r.finishedAt ? Date.parse(r.finishedAt) : now;
    let outcome: string = r.state;
    if (!isFinal(r.state)) {
      const verdict = recordVerdict(r, now);
      outcome =
        verdict.kind === 'invalid'
          ? `${r.state} (not in progress: ${verdict.reason})`
          : verdict.kind === 'stale'
            ? `${r.state} (abandoned)`
            : `${r.state} (in progress)`;
    }
    return {
      id: r.id,
      pool: r.pool,
      // Pinned secrets by name and version only (README "Secrets").
      release: r.options?.secrets ? `${r.release} [secrets ${describePinned(r.options.secrets)}]` : r.release,
      strategy: r.strategy === 'canary' ? `canary ${r.canaryPercent}%` : r.strategy,
      outcome,
      duration: formatDuration(end - start) + (r.finishedAt ? '' : '+'),
      hosts: summarizeHostGates(hostGates(r.steps)),
      reason: [r.irreversible ? 'irreversible' : '', r.reason ?? '', prePromoteSummary(r)]
        .filter((x) => x !== '')
        .join('; '),
    };
  });
}

export function formatHistory(rows: readonly HistoryRow[]): string {
  if (rows.length === 0) return 'no releases yet';
  const header: HistoryRow = {
    id: 'ID',
    pool: 'POOL',
    release: 'RELEASE',
    strategy: 'STRATEGY',
    outcome: 'OUTCOME',
    duration: 'DURATION',
    hosts: 'HOSTS',
    reason: 'REASON',
  };
  // The hosts column only where a record names hosts (a deployed stage): local history stays as it was.
  const withHosts = rows.some((r) => r.hosts !== '');
  const cols = [
    'id',
    'pool',
    'release',
    'strategy',
    'outcome',
    'duration',
    ...(withHosts ? (['hosts'] as const) : []),
  ] as const;
  const width = Object.fromEntries(
    cols.map((c) => [c, Math.max(...[header, ...rows].map((r) => r[c].length))]),
  ) as Record<(typeof cols)[number], number>;
  return [header, ...rows]
    .map((r) => [...cols.map((c) => r[c].padEnd(width[c])), r.reason].join('  ').trimEnd())
    .join('\n');
}

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
const spreadText = (s: Spread) =>
  s.medianMs === null
    ? 'none'
    : `median ${formatDuration(s.medianMs)}, longest ${formatDuration(s.maxMs!)} (${s.count})`;

/** `history --stats`: DORA's four figures, one per line, with what each was counted from. */
export function formatStats(s: ReleaseStats): string {
  const days = Math.round((s.untilMs - s.sinceMs) / (24 * 3600_000));
  const rows: Array<[string, string]> = [
    ['window', `${days} days: ${new Date(s.sinceMs).toISOString()} to ${new Date(s.untilMs).toISOString()}`],
    ['releases', `${s.releases} started, ${s.promoted} promoted, ${s.reachedUsers} reached users`],
    ['deployment frequency', `${s.perDay.toFixed(2)} a day, ${s.perWeek.toFixed(1)} a week (promoted)`],
    [
      'change failure rate',
      s.changeFailureRate === null
        ? 'none reached users'
        : `${percent(s.changeFailureRate)} (${s.failed.length} of ${s.reachedUsers} that reached users: rolled back, frozen or canary aborted)`,
    ],
    [
      'time to restore',
      `${spreadText(s.timeToRestore)}${s.unrestored.length ? `; users still on ${s.unrestored.join(', ')}` : ''}`,
    ],
    [
      'lead time',
      `${spreadText(s.leadTime)}${s.promoted > s.leadTimeOf ? `; ${s.promoted - s.leadTimeOf} promoted without a build time (--image)` : ''}`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
