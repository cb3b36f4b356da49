// `bluegreen insights <query> --since 1h`: runs one of the saved Logs Insights queries (the same
// strings the stack saves as query definitions) and prints the rows as a table.
import { CloudWatchLogsClient, GetQueryResultsCommand, StartQueryCommand } from '@aws-sdk/client-cloudwatch-logs';
import { ConfigError } from '../core/config-error';

export type QueryRows = Array<Record<string, string>>;

export interface RunQueryOptions {
  logs: CloudWatchLogsClient;
  logGroup: string;
  query: string;
  startMs: number;
  endMs: number;
  pollMs: number;
  timeoutMs: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export class QueryError extends Error {}

export async function runQuery(o: RunQueryOptions): Promise<QueryRows> {
  const sleep = o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const now = o.now ?? Date.now;
  const { queryId } = await o.logs.send(
    new StartQueryCommand({
      logGroupName: o.logGroup,
      queryString: o.query,
      startTime: Math.floor(o.startMs / 1000),
      endTime: Math.ceil(o.endMs / 1000),
    }),
  );
  if (!queryId) throw new QueryError('StartQuery returned no query id');
  const started = now();
  for (;;) {
    const res = await o.logs.send(new GetQueryResultsCommand({ queryId }));
    switch (res.status) {
      case 'Complete':
        return (res.results ?? []).map((row) =>
          Object.fromEntries(row.filter((f) => f.field && f.field !== '@ptr').map((f) => [f.field!, f.value ?? ''])),
        );
      case 'Failed':
      case 'Cancelled':
      case 'Timeout':
        throw new QueryError(`the query ended with status ${res.status}`);
      default:
        if (now() - started > o.timeoutMs)
          throw new QueryError(`the query did not complete within ${o.timeoutMs / 1000} s (status ${res.status})`);
        await sleep(o.pollMs);
    }
  }
}

/** A plain-text table: columns in first-seen order, each as wide as its widest cell. */
export function formatTable(rows: QueryRows): string {
  if (rows.length === 0) return '(no rows)';
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [
    line(columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(columns.map((c) => r[c] ?? ''))),
  ].join('\n');
}

/** "30m", "1h", "2d" → milliseconds. */
export function parseSince(value: string): number {
  const m = value.match(/^(\d+)([smhd])$/);
  if (!m) throw new ConfigError(`--since must look like 30m, 1h or 2d, got "${value}"`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}
