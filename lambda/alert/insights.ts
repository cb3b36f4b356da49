// Logs Insights queries over the JSON access log, and console links to them. One source for the
// query strings: the alert messages link to them, and the stack saves them.

export const INSIGHTS_QUERIES = {
  'around-an-alert': [
    'fields @timestamp, status, pool, active_pool, upstream_status, upstream_addr, uri, request_time, request_id',
    '| sort @timestamp desc',
    '| limit 200',
  ].join('\n'),
  'failovers-inside-requests': [
    'fields @timestamp, pool, active_pool, upstream_status, upstream_addr, uri, request_id',
    "| filter upstream_status like ','",
    '| sort @timestamp desc',
    '| limit 200',
  ].join('\n'),
} as const;

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
