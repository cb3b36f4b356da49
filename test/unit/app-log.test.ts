// The app log's vocabulary (core/app-log.ts), the host's Compose options that render it, and the
// failing-pool alert's link to it (core/insights-queries.ts, core/slack-message.ts).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  APP_LOG_DRIVER,
  AppLogEvent,
  appLogFileLine,
  appLogStreamName,
  appLogStreamPrefix,
  formatAppLogEvent,
  parseAppLogFileLine,
  parseAppLogQuery,
  parseAppLogStream,
  resolveAppLogPool,
} from '../../core/app-log';
import { ConfigError } from '../../core/config-error';
import { APP_LOG_QUERY, appLogInsightsUrl, appLogQueryForPool } from '../../core/insights-queries';
import { logGroupNames } from '../../core/names';
import { Decision } from '../../core/rules';
import { failingPool, slackMessage } from '../../core/slack-message';
import { AppLogWriter, printLocalAppLog } from '../../local/app-logs';
import { REPO_ROOT } from '../../local/paths';
import { streamPrefixes } from '../../ops/app-logs';
import { checkInsightsQuery } from '../helpers/insights-grammar';
import { waitFor } from '../helpers/stack';

describe('stream names', () => {
  test('<pool>/<release>/<host>, read back; a stream not named so is not ours', () => {
    const source = { pool: 'green', release: 'r-2026.12.07_1', host: 'i-0abc' } as const;
    expect(appLogStreamName(source)).toBe('green/r-2026.12.07_1/i-0abc');
    expect(parseAppLogStream(appLogStreamName(source))).toEqual(source);
    for (const foreign of ['i-0abc', 'red/r1/h', 'blue/r1', 'blue//h', 'blue/r1/'])
      expect(parseAppLogStream(foreign)).toBeUndefined();
  });

  test('a prefix selects a pool, or a release on it; --release alone reads both pools', () => {
    expect(appLogStreamPrefix('blue')).toBe('blue/');
    expect(appLogStreamPrefix('blue', 'r1')).toBe('blue/r1/');
    expect(streamPrefixes(undefined, undefined)).toEqual([undefined]);
    expect(streamPrefixes('green', undefined)).toEqual(['green/']);
    expect(streamPrefixes(undefined, 'r1')).toEqual(['blue/r1/', 'green/r1/']);
  });
});

describe("the host's Compose file renders the same names and settings", () => {
  const compose = readFileSync(path.join(REPO_ROOT, 'userdata', 'docker-compose.yml'), 'utf8');
  test.each(['blue', 'green'] as const)('app_%s logs with awslogs to appLogStreamName', (pool) => {
    const service = compose.slice(compose.indexOf(`  app_${pool}:`)).split(/\n {2}[a-z_]+:\n/)[0];
    expect(service).toMatch(/\n {4}logging:\n {6}driver: awslogs\n/);
    const stream = /awslogs-stream: (\S+)/.exec(service)![1];
    const upper = pool.toUpperCase();
    expect(stream).toBe(
      appLogStreamName({ pool, release: `\${RELEASE_ID_${upper}:-${pool}-1}`, host: '${BLUEGREEN_HOST_ID:-host}' }),
    );
  });

  test("the shared options: non-blocking with core's buffer, the group's default is core's name, no group creation", () => {
    expect(compose).toContain(`  mode: ${APP_LOG_DRIVER.mode}\n`);
    expect(compose).toContain(`  max-buffer-size: ${APP_LOG_DRIVER.maxBufferSize}\n`);
    expect(compose).toContain(`  awslogs-group: \${APP_LOG_GROUP:-${logGroupNames('dev').app}}\n`);
    expect(compose).not.toContain('awslogs-create-group');
  });
});

describe('bluegreen logs flags', () => {
  test('defaults and values', () => {
    expect(parseAppLogQuery({})).toEqual({
      pool: undefined,
      release: undefined,
      sinceMs: 600_000,
      follow: false,
      grep: undefined,
    });
    expect(parseAppLogQuery({ pool: 'idle', release: 'r.1', since: '1h', follow: true, grep: 'boom' })).toEqual({
      pool: 'idle',
      release: 'r.1',
      sinceMs: 3_600_000,
      follow: true,
      grep: 'boom',
    });
    expect(resolveAppLogPool('active', 'green')).toBe('green');
    expect(resolveAppLogPool('idle', 'green')).toBe('blue');
    expect(resolveAppLogPool(undefined, 'green')).toBeUndefined();
  });

  test.each([
    [{ pool: 'all' }, '--pool must be blue, green, active or idle, got "all"'],
    [{ release: 'r/1' }, '--release must be a release id'],
    [{ since: '10 minutes' }, '--since must be a duration'],
    [{ since: '3d' }, '--since must be a duration'],
    [{ grep: '' }, '--grep must not be empty'],
  ])('%j is refused naming its flag', (values, message) => {
    expect(() => parseAppLogQuery(values)).toThrow(ConfigError);
    expect(() => parseAppLogQuery(values)).toThrow(message);
  });
});

describe('lines', () => {
  const event: AppLogEvent = {
    time: Date.UTC(2026, 11, 7, 1, 2, 3, 45),
    pool: 'blue',
    release: 'r1',
    host: 'h',
    text: 'a "b" c',
  };
  test("the CLI's line: time, pool, release, host, text", () => {
    expect(formatAppLogEvent(event)).toBe('2026-12-07T01:02:03.045Z blue r1 h a "b" c');
  });
  test("local mode's file line round-trips; a torn or foreign line is skipped", () => {
    expect(parseAppLogFileLine(appLogFileLine(event))).toEqual(event);
    for (const bad of [
      '',
      '{"time":"x"',
      '{"time":"2026-12-07T00:00:00Z","pool":"red","release":"r","host":"h","text":""}',
    ])
      expect(parseAppLogFileLine(bad)).toBeUndefined();
  });

  test('local --follow prints what a pool process appends, each line once, until stopped', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-app-log-'));
    let t = Date.UTC(2026, 11, 7);
    const writer = new AppLogWriter(dir, 'green', 'g-1', () => (t += 1000));
    const other = new AppLogWriter(dir, 'blue', 'b-1', () => (t += 1000));
    try {
      writer.line('first');
      other.line('blue line');
      const printed: string[] = [];
      const abort = new AbortController();
      const following = printLocalAppLog({ stateDir: dir, pool: 'green', startMs: 0 }, (l) => printed.push(l), {
        signal: abort.signal,
        pollMs: 50,
      });
      await waitFor(() => printed.length === 1, 'the first line', 5000);
      writer.line('second');
      writer.line('third');
      await waitFor(() => printed.length === 3, 'the appended lines', 5000);
      await new Promise((r) => setTimeout(r, 200));
      abort.abort();
      await following;
      expect(printed.map((l) => l.split(' ').slice(1).join(' '))).toEqual([
        `green g-1 ${os.hostname()} first`,
        `green g-1 ${os.hostname()} second`,
        `green g-1 ${os.hostname()} third`,
      ]);
    } finally {
      writer.end();
      other.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the failing pool's alert links to its app log around that minute", () => {
  const at = Date.UTC(2026, 10, 22, 10, 0, 42);
  const failover: Decision = {
    kind: 'failover',
    severity: 'warning',
    at,
    host: 'i-0abc',
    pool: 'green',
    activePool: 'blue',
    summary: 'Failover: green answered for blue',
    window: {
      requests: 50,
      bad: 5,
      rate: 0.1,
      usersSaw5xx: 0,
      failedPools: [['blue', 5]],
      topUris: [],
      topUpstreams: [],
    },
    suppressed: null,
    details: {},
  };

  test('the query is valid Logs Insights, and narrows to one pool right after the parse', () => {
    expect(checkInsightsQuery(APP_LOG_QUERY)).toEqual([]);
    expect(checkInsightsQuery(appLogQueryForPool('blue'))).toEqual([]);
    expect(appLogQueryForPool('blue').split('\n').slice(1, 3)).toEqual([
      '| parse @logStream "*/*/*" as pool, release, host',
      '| filter pool = "blue"',
    ]);
  });

  test("the link opens the stage's app group with the pool's query, from 5 minutes before that minute to 5 after it", () => {
    const url = appLogInsightsUrl('eu-west-1', '/bluegreen/prod/app', 'blue', at);
    expect(
      url.startsWith('https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:logs-insights'),
    ).toBe(true);
    // The console's encoding: '%XX' written '*xx'.
    const detail = decodeURIComponent(url.split('$3FqueryDetail$3D')[1].replace(/\*([0-9a-f]{2})/g, '%$1'));
    expect(detail).toContain("~start~'2026-11-22T09:55:00.000Z");
    expect(detail).toContain("~(end~'2026-11-22T10:06:00.000Z");
    expect(detail).toContain(`~editorString~'${appLogQueryForPool('blue')}~`);
    expect(detail).toContain("~source~(~'/bluegreen/prod/app)");
  });

  test('failover and error-rate messages carry the button; others do not', () => {
    const appLog = { region: 'eu-west-1', logGroup: '/bluegreen/prod/app' };
    const buttons = (d: Decision) => {
      const [attachment] = slackMessage(d, { stage: 'prod', appLog }).attachments as Array<{
        blocks: Array<{ type: string; elements?: Array<{ text: { text: string }; url: string }> }>;
      }>;
      return attachment.blocks.find((b) => b.type === 'actions')?.elements ?? [];
    };
    expect(failingPool(failover)).toBe('blue');
    expect(buttons(failover)).toEqual([
      {
        type: 'button',
        text: { type: 'plain_text', text: 'App log of blue' },
        url: appLogInsightsUrl('eu-west-1', '/bluegreen/prod/app', 'blue', at),
      },
    ]);
    const errorRate: Decision = {
      ...failover,
      kind: 'error_rate',
      window: {
        ...failover.window!,
        failedPools: [
          ['green', 9],
          ['blue', 1],
        ],
      },
    };
    expect(buttons(errorRate)[0].text.text).toBe('App log of green');
    // A failover with no window: the active pool, which the backup answered for.
    expect(failingPool({ ...failover, window: undefined })).toBe('blue');
    expect(buttons({ ...failover, kind: 'planned_switch' })).toEqual([]);
    // No app log group (local mode): no button.
    expect(JSON.stringify(slackMessage(failover, { stage: 'local' }))).not.toContain('App log');
  });
});
