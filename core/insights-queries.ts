// Logs Insights queries over the JSON access log, and console links to them. One source for the
// query strings: the alert messages link to them, and the stack saves them.

export const INSIGHTS_QUERIES = {
  // Comparisons belong to `filter` only, so a 5xx is counted as floor(status / 500): 1 for 500-599
  // (an HTTP status is at most 599), 0 for anything below 500.
  'error-rate-by-pool': [
    'filter ispresent(status)',
    '| fields floor(status / 500) as is_5xx',
    '| stats count(*) as requests, sum(is_5xx) as errors_5xx, 100 * sum(is_5xx) / count(*) as error_rate_pct by bin(1m) as minute, pool',
    '| sort minute desc',
  ].join('\n'),
  'failovers-inside-requests': [
    'fields @timestamp, pool, primary_pool, active_pool, upstream_status, upstream_addr, uri, request_id',
    "| filter upstream_status like ','",
    '| sort @timestamp desc',
    '| limit 200',
  ].join('\n'),
  'latency-by-pool': [
    'filter ispresent(request_time)',
    '| stats pct(request_time, 50) as p50_s, pct(request_time, 95) as p95_s, pct(request_time, 99) as p99_s, count(*) as requests by pool',
  ].join('\n'),
  'latency-percentiles': [
    'filter ispresent(request_time)',
    '| stats pct(request_time, 50) as p50_s, pct(request_time, 99) as p99_s by bin(1m) as minute',
    '| sort minute desc',
  ].join('\n'),
  'top-5xx-uris': [
    'filter status >= 500 or upstream_status like /5\\d\\d/',
    '| stats count(*) as failed by uri',
    '| sort failed desc',
    '| limit 10',
  ].join('\n'),
  'traffic-by-release': ['stats count(*) as requests by release, pool', '| sort requests desc'].join('\n'),
  // Per log stream (the instance id, as the alert function keys hosts), not nginx's `host`
  // ($hostname: the nginx container id under Compose, new with every container recreation).
  'recent-planned-switches': [
    'stats min(@timestamp) as first_seen, max(@timestamp) as last_seen, count(*) as requests by active_pool, @logStream',
    '| sort first_seen desc',
  ].join('\n'),
  'around-an-alert': [
    'fields @timestamp, status, pool, primary_pool, active_pool, upstream_status, upstream_addr, uri, request_time, request_id',
    '| sort @timestamp desc',
    '| limit 200',
  ].join('\n'),
} as const;

/** What each saved query answers: the CLI's --help and the stack's query names. */
export const INSIGHTS_QUERY_QUESTIONS: Record<keyof typeof INSIGHTS_QUERIES, string> = {
  'error-rate-by-pool': 'requests, client-facing 5xx and error rate, by pool, per minute',
  'failovers-inside-requests': 'requests the active pool failed and the backup answered ("500, 200")',
  'latency-by-pool': 'request time p50/p95/p99 by pool',
  'latency-percentiles': 'request time p50/p99 per minute, computed from every request (the dashboard graph)',
  'top-5xx-uris': 'the URIs with the most 5xx (client-facing or on an attempt)',
  'traffic-by-release': 'requests by release and pool',
  'recent-planned-switches':
    'when each pool was the active one, per host instance (log stream; a flip shows as a new row)',
  'around-an-alert': 'the latest requests with their attempts (what the Slack button opens)',
};

export type QueryName = keyof typeof INSIGHTS_QUERIES;

/** The console's own encoding for logs-insights links: URI-encode, then '%XX' becomes '*xx'. */
function consoleEncode(value: string): string {
  return encodeURIComponent(value)
    .replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)
    .replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => `*${hex.toLowerCase()}`);
}

/** A CloudWatch console link that opens Logs Insights on `logGroup` for [start, end] with the query. */
export function insightsUrl(region: string, logGroup: string, query: string, start: Date, end: Date): string {
  const detail =
    `~(end~'${consoleEncode(end.toISOString())}~start~'${consoleEncode(start.toISOString())}~timeType~'ABSOLUTE~tz~'UTC` +
    `~editorString~'${consoleEncode(query)}~source~(~'${consoleEncode(logGroup)}))`;
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#logsV2:logs-insights$3FqueryDetail$3D${detail}`;
}

/**
 * The pools' app log (stdout/stderr, group logGroupNames(stage).app): each line with the pool,
 * release and host its stream name carries (`<pool>/<release>/<host>`, core/app-log.ts). The stack
 * saves it; the failover and error-rate alerts link to it filtered to the failing pool.
 */
export const APP_LOG_QUERY = [
  'fields @timestamp, @logStream, @message',
  '| parse @logStream "*/*/*" as pool, release, host',
  '| sort @timestamp desc',
  '| limit 500',
].join('\n');

export const APP_LOG_QUERY_NAME = 'app-log';
export const APP_LOG_QUERY_QUESTION = "the pools' stdout/stderr, newest first, with pool, release and host";

/** APP_LOG_QUERY narrowed to one pool (a filter right after the parse that names `pool`). */
export function appLogQueryForPool(pool: 'blue' | 'green'): string {
  const lines = APP_LOG_QUERY.split('\n');
  const parse = lines.findIndex((l) => l.startsWith('| parse @logStream'));
  return [...lines.slice(0, parse + 1), `| filter pool = "${pool}"`, ...lines.slice(parse + 1)].join('\n');
}

/** Minutes either side of an alert's minute that its app-log link covers. */
export const APP_LOG_LINK_MINUTES = 5;

/**
 * A console link to Logs Insights on the app log of `pool`, around the minute of `at` (ms): from
 * APP_LOG_LINK_MINUTES before that minute to as many after its end.
 */
export function appLogInsightsUrl(region: string, logGroup: string, pool: 'blue' | 'green', at: number): string {
  const minute = Math.floor(at / 60_000) * 60_000;
  const margin = APP_LOG_LINK_MINUTES * 60_000;
  return insightsUrl(
    region,
    logGroup,
    appLogQueryForPool(pool),
    new Date(minute - margin),
    new Date(minute + 60_000 + margin),
  );
}
