// Every saved Logs Insights query keeps to the documented grammar (moto runs any text, so this is
// the check that catches a query the real engine would reject), and the queries answer with the
// columns `bluegreen insights` prints.
import { checkInsightsQuery } from '../helpers/insights-grammar';
import { INSIGHTS_QUERIES, INSIGHTS_QUERY_QUESTIONS } from '../../core/insights-queries';

/** The query's commands, as `[name, rest]`, split on the `|` between commands. */
function commands(query: string): Array<[string, string]> {
  return query.split(/\n\|\s*/).map((c) => {
    const m = c.trim().match(/^(\S+)\s*([\s\S]*)$/)!;
    return [m[1], m[2]];
  });
}

describe('the grammar checker', () => {
  test("rejects today's error-rate-by-pool: a comparison inside a stats function", () => {
    const before = [
      'filter ispresent(status)',
      '| stats count(*) as requests, sum(status >= 500) as errors_5xx, 100 * sum(status >= 500) / count(*) as error_rate_pct by bin(1m) as minute, pool',
      '| sort minute desc',
    ].join('\n');
    expect(checkInsightsQuery(before)).toEqual([
      'stats: comparison ">=" outside filter (comparisons belong to filter, not stats expressions)',
      'stats: comparison ">=" outside filter (comparisons belong to filter, not stats expressions)',
    ]);
    expect(checkInsightsQuery('stats sum(status >= 500) as errors_5xx by pool')).not.toEqual([]);
  });

  test.each([
    ['fields status >= 500 as is_5xx', 'fields: comparison ">=" outside filter'],
    ['fields status = 503 as unavailable', 'fields: comparison "=" outside filter'],
    ["stats count(*) by uri like '/api'", 'stats: comparison "like" outside filter'],
    ['eval x = 1', '"eval" is not a Logs Insights command'],
    ['filter ispresent(status) | where status > 1', '"where" is not a Logs Insights command'],
    ['stats count_if(status, 500) by pool', 'count_if() is not a documented Logs Insights function'],
    ['stats percentile(request_time, 99) by pool', 'percentile() is not a documented Logs Insights function'],
    ['fields sum(status) as total', 'sum() is a stats function, only stats may use it'],
    ['filter avg(request_time) > 1', 'avg() is a stats function, only stats may use it'],
    ['stats count(* by pool', 'unbalanced "("'],
    ["filter uri like 'no end", "unterminated ' literal"],
    ['filter ispresent(status) |', 'command 2 is empty'],
  ])('rejects %p', (query, problem) => {
    expect(checkInsightsQuery(query).join('\n')).toContain(problem);
  });

  test.each([
    'filter status >= 500 and status != 503 | stats count(*) by pool',
    'fields floor(status / 500) as is_5xx | stats sum(is_5xx) as errors_5xx, count(*) as requests by bin(1m), pool',
    // a `|` or a `>=` inside a regex or a string is text, not a command or a comparison
    'filter upstream_status like /5\\d\\d|504/ | stats count(*) by uri',
    "filter uri = '/a|b>=c' | limit 5",
    'parse @message /status=(?<code>\\d+)|x>=y/ | stats count(*) by code',
    'fields @timestamp # a comment with sum(status >= 500) | not a command\n| sort @timestamp desc',
    'stats sortsFirst(pool) as first, earliest(@timestamp) as at, pct(request_time, 99) as p99 by datefloor(@timestamp, 1h)',
  ])('accepts %p', (query) => {
    expect(checkInsightsQuery(query)).toEqual([]);
  });
});

describe('the saved queries', () => {
  test.each(Object.entries(INSIGHTS_QUERIES))('%s keeps to the documented Logs Insights grammar', (_name, query) => {
    expect(checkInsightsQuery(query)).toEqual([]);
  });

  test('no comparison is computed inside a function, in any query', () => {
    for (const query of Object.values(INSIGHTS_QUERIES)) expect(query).not.toMatch(/\w\([^)]*(>=|<=|!=|[<>])/);
  });

  test('error-rate-by-pool counts 5xx as floor(status / 500) and keeps the columns the CLI prints', () => {
    const query = INSIGHTS_QUERIES['error-rate-by-pool'];
    expect(query).toContain('fields floor(status / 500) as is_5xx');
    const [, stats] = commands(query).find(([name]) => name === 'stats')!;
    expect(stats).toBe(
      'count(*) as requests, sum(is_5xx) as errors_5xx, 100 * sum(is_5xx) / count(*) as error_rate_pct by bin(1m) as minute, pool',
    );
    // floor(status / 500) is 1 exactly for the statuses nginx can log as 5xx
    const is5xx = (status: number) => Math.floor(status / 500);
    expect([200, 204, 301, 404, 444, 499].map(is5xx)).toEqual([0, 0, 0, 0, 0, 0]);
    expect([500, 502, 503, 504, 599].map(is5xx)).toEqual([1, 1, 1, 1, 1]);
  });

  test('recent-planned-switches groups by the log stream (the instance id), not by nginx host', () => {
    const query = INSIGHTS_QUERIES['recent-planned-switches'];
    const [, stats] = commands(query).find(([name]) => name === 'stats')!;
    const groups = stats
      .split(/\sby\s/)[1]
      .split(',')
      .map((g) => g.trim());
    expect(groups).toEqual(['active_pool', '@logStream']);
    expect(query).not.toMatch(/\bhost\b/);
    expect(INSIGHTS_QUERY_QUESTIONS['recent-planned-switches']).toContain('log stream');
  });
});
