// Slack delivery against a real local HTTP server, and the Block Kit message.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { deliver } from '../../support/slack-webhook';
import { RUNBOOK_ANCHORS, slackMessage, SEVERITY_COLOURS } from '../../core/slack-message';
import { Decision } from '../../core/rules';
import { insightsUrl } from '../../core/insights-queries';
import { startSlackReceiver, SlackReceiver } from '../helpers/slack-receiver';

let slack: SlackReceiver;
let slept: number[];
const sleep = async (ms: number) => {
  slept.push(ms);
};
beforeEach(async () => {
  slack = await startSlackReceiver();
  slept = [];
});
afterEach(() => slack.close());

const body = { text: 'hello' };

test('200: delivered at once', async () => {
  expect(await deliver(slack.url, body, { sleep })).toEqual({ delivered: true, attempts: 1, last: 'HTTP 200' });
  expect(slack.received.map((r) => r.body)).toEqual([body]);
});

test('500 then 200: retried with backoff, delivered once', async () => {
  slack.script = [500, 503];
  expect(await deliver(slack.url, body, { sleep, baseDelayMs: 100 })).toEqual({
    delivered: true,
    attempts: 3,
    last: 'HTTP 200',
  });
  expect(slept).toEqual([100, 200]);
  expect(slack.received).toHaveLength(1);
});

test('429 with Retry-After: waits what Slack asks, then delivers', async () => {
  slack.script = [{ status: 429, headers: { 'Retry-After': '2' } }];
  expect(await deliver(slack.url, body, { sleep })).toEqual({ delivered: true, attempts: 2, last: 'HTTP 200' });
  expect(slept).toEqual([2000]);
});

test('a Retry-After beyond the cap is capped', async () => {
  slack.script = [{ status: 429, headers: { 'Retry-After': '120' } }];
  await deliver(slack.url, body, { sleep, maxDelayMs: 5000 });
  expect(slept).toEqual([5000]);
});

test('timeouts: each attempt bounded, then given up and reported', async () => {
  slack.script = ['hang', 'hang', 'hang'];
  const result = await deliver(slack.url, body, { sleep, timeoutMs: 200, maxAttempts: 3 });
  expect(result).toEqual({ delivered: false, attempts: 3, last: 'timeout after 200 ms' });
  expect(slack.hits).toBe(3);
});

test('404 (a wrong or revoked webhook): no retry, reported', async () => {
  slack.script = [404];
  expect(await deliver(slack.url, body, { sleep })).toEqual({ delivered: false, attempts: 1, last: 'HTTP 404' });
  expect(slept).toEqual([]);
});

test('nothing listening: retried, then reported, never thrown', async () => {
  const url = slack.url;
  await slack.close();
  const result = await deliver(url, body, { sleep, maxAttempts: 2 });
  expect(result.delivered).toBe(false);
  expect(result.last).toMatch(/^error: /);
});

describe('message', () => {
  const decision: Decision = {
    kind: 'error_rate',
    severity: 'warning',
    at: Date.parse('2026-11-22T10:00:00Z'),
    host: 'i-0abc',
    activePool: 'blue',
    summary:
      'Error rate 4.0% over the last 200 requests (threshold 2.0%): 8 failed by their primary pool (blue 8), users saw 5xx on 0 (0.0%)',
    window: {
      requests: 200,
      bad: 8,
      rate: 0.04,
      usersSaw5xx: 0,
      failedPools: [['blue', 8]],
      topUris: [
        ['/pay', 6],
        ['/cart', 2],
      ],
      topUpstreams: [['10.0.0.5:3000', 8]],
    },
    suppressed: null,
    details: { failed: 8, requests: 200, users_saw_5xx: 0 },
  };

  test('colour by severity, the figures on-call needs, links to logs and runbook', () => {
    const logsUrl = insightsUrl(
      'eu-west-1',
      '/bluegreen/prod/nginx/access',
      'fields @timestamp',
      new Date(decision.at - 300_000),
      new Date(decision.at + 300_000),
    );
    const message = slackMessage(decision, { stage: 'prod', logsUrl, runbookUrl: 'https://example.com/RUNBOOK.md' });
    expect(message.text).toBe(
      '[prod] Error rate 4.0% over the last 200 requests (threshold 2.0%): 8 failed by their primary pool (blue 8), users saw 5xx on 0 (0.0%)',
    );
    const [attachment] = message.attachments as Array<{ color: string; blocks: unknown[] }>;
    expect(attachment.color).toBe(SEVERITY_COLOURS.warning);
    const text = JSON.stringify(attachment.blocks);
    for (const fact of [
      '*Stage*\\nprod',
      '*Host*\\ni-0abc',
      '*Active pool*\\nblue',
      '8 of 200 requests failed by their primary pool (4.0%: served by the other pool, a 5xx attempt or a 5xx status)',
      '*Users saw 5xx*: 0 of 200 (0.0%): failover answered every one',
      '*Failing pool*: blue ×8',
      '`/pay` ×6',
      '`10.0.0.5:3000` ×8',
      '2026-11-22T10:00:00.000Z',
    ]) {
      expect(text).toContain(fact);
    }
    expect(text).toContain('https://example.com/RUNBOOK.md#error-rate');
    expect(logsUrl).toBe(
      "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:logs-insights$3FqueryDetail$3D~(end~'2026-11-22T10*3a05*3a00.000Z~start~'2026-11-22T09*3a55*3a00.000Z~timeType~'ABSOLUTE~tz~'UTC~editorString~'fields*20*40timestamp~source~(~'*2fbluegreen*2fprod*2fnginx*2faccess))",
    );
    expect(text).toContain(logsUrl.slice(0, 60));
  });

  test('a fleet: the failing hosts with their counts, and the "N of M hosts" details (a single host shows neither)', () => {
    const fleet: Decision = {
      ...decision,
      summary: `${decision.summary} — failed requests from 2 of 3 hosts: i-0abc 6, i-0def 2`,
      window: {
        ...decision.window!,
        failedHosts: [
          ['i-0abc', 6],
          ['i-0def', 2],
        ],
      },
      details: { ...decision.details, hosts_with_failures: '2 of 3' },
    };
    const message = slackMessage(fleet, { stage: 'prod' });
    expect(message.text).toContain('— failed requests from 2 of 3 hosts: i-0abc 6, i-0def 2');
    const text = JSON.stringify(message.attachments);
    expect(text).toContain('*Failing hosts*: `i-0abc` ×6, `i-0def` ×2');
    expect(text).toContain('hosts_with_failures: `2 of 3`');
    const many = slackMessage(
      {
        ...fleet,
        window: {
          ...fleet.window!,
          failedHosts: Array.from({ length: 12 }, (_, i): [string, number] => [`i-${i}`, 1]),
        },
      },
      { stage: 'prod' },
    );
    expect(JSON.stringify(many.attachments)).toContain('`i-9` ×1, and 2 more');
    const single = JSON.stringify(slackMessage(decision, { stage: 'prod' }).attachments);
    expect(single).not.toContain('Failing hosts');
    expect(single).not.toContain('hosts_');
  });

  test.each([
    ['critical', '#d32f2f'],
    ['ok', '#2e7d32'],
    ['info', '#1e88e5'],
  ] as const)('%s is %s', (severity, colour) => {
    const m = slackMessage({ ...decision, severity }, { stage: 'x' });
    expect((m.attachments as Array<{ color: string }>)[0].color).toBe(colour);
  });
});

describe('release messages', () => {
  const base: Decision = {
    kind: 'release_rolled_back',
    severity: 'warning',
    at: Date.parse('2026-11-23T14:03:53Z'),
    pool: 'green',
    activePool: 'blue',
    previousPool: 'blue',
    release: 'v2',
    previousRelease: 'v1',
    releaseId: '20261123-140233-green-v2',
    strategy: 'canary 10%',
    figures: { requests: 40, failed: 6, rate: 0.15, usersSaw5xx: 0 },
    reason: 'gate crossed while baking',
    summary: 'Release v2 rolled back: traffic is back on blue (v1): gate crossed while baking',
    suppressed: null,
    details: { record: '20261123-140233-green-v2', strategy: 'canary 10%', bake_s: 60, duration_s: 80 },
  };

  test.each<[Decision['kind'], Decision['severity'], string, string]>([
    ['release_started', 'info', ':rocket: Release started', 'release-started'],
    ['release_promoted', 'ok', ':white_check_mark: Release promoted', 'release-promoted'],
    ['release_deployed', 'info', ':package: Release deployed to the idle pool (not promoted)', 'release-promoted'],
    ['release_failed', 'warning', ':no_entry: Release failed its gate: not promoted', 'release-failed'],
    ['release_canary_aborted', 'warning', ':no_entry: Canary aborted: release not promoted', 'release-failed'],
    ['release_rolled_back', 'warning', ':rewind: Release rolled back automatically', 'release-rolled-back'],
  ])('%s: %s colour, title, release facts, figures, reason, runbook #%s', (kind, severity, title, anchor) => {
    const m = slackMessage(
      { ...base, kind, severity },
      { stage: 'prod', runbookUrl: 'https://example.com/RUNBOOK.md', logsHint: 'hint' },
    );
    const [attachment] = m.attachments as Array<{ color: string; blocks: unknown[] }>;
    expect(attachment.color).toBe(SEVERITY_COLOURS[severity]);
    const text = JSON.stringify(attachment.blocks);
    for (const fact of [
      `*${title}*`,
      '*Release*\\nv2',
      '*Pool*\\ngreen',
      '*Previous*\\nv1 on blue',
      '*Active pool*\\nblue',
      '*Strategy*\\ncanary 10%',
      '*Gate figures*: green failed 6 of 40 requests first sent to it (15.0%); users saw 5xx on 0',
      '*Reason*: gate crossed while baking',
      'record: `20261123-140233-green-v2`',
      `https://example.com/RUNBOOK.md#${anchor}`,
    ]) {
      expect(text).toContain(fact);
    }
    expect(text).not.toContain('Served by');
    expect(m.text).toBe('[prod] Release v2 rolled back: traffic is back on blue (v1): gate crossed while baking');
  });

  test('no figures and no reason (a release just started): no empty section', () => {
    const { figures: _f, reason: _r, ...started } = base;
    const m = slackMessage({ ...started, kind: 'release_started', severity: 'info' }, { stage: 'prod' });
    const blocks = (m.attachments as Array<{ blocks: Array<{ type: string; text?: { text: string } }> }>)[0].blocks;
    expect(blocks.map((b) => b.type)).toEqual(['section', 'section', 'context']);
  });
});

test('every runbook link in a Slack message lands on a RUNBOOK.md section', () => {
  const runbook = readFileSync(path.join(REPO_ROOT, 'RUNBOOK.md'), 'utf8');
  // GitHub's anchor for "## Users see errors" is "users-see-errors".
  const anchors = runbook
    .split('\n')
    .filter((l) => l.startsWith('## '))
    .map((l) =>
      l
        .slice(3)
        .trim()
        .toLowerCase()
        .replace(/[^a-z0-9 -]/g, '')
        .replace(/ /g, '-'),
    );
  for (const anchor of Object.values(RUNBOOK_ANCHORS)) expect(anchors).toContain(anchor);
});

describe('a deadline (the invocation budget)', () => {
  test('a Retry-After that would end past the deadline stops the retries: out of time, not slept', async () => {
    slack.script = [{ status: 429, headers: { 'Retry-After': '2' } }];
    const result = await deliver(slack.url, body, { sleep, deadline: Date.now() + 1500 });
    expect(result).toMatchObject({ delivered: false, attempts: 1, outOfTime: true });
    expect(result.last).toMatch(/^HTTP 429, next try in 2000 ms but \d+ ms left$/);
    expect(slept).toEqual([]);
    expect(slack.hits).toBe(1);
  });

  test('a Retry-After that fits is honoured', async () => {
    slack.script = [{ status: 429, headers: { 'Retry-After': '2' } }];
    expect(await deliver(slack.url, body, { sleep, deadline: Date.now() + 10_000 })).toEqual({
      delivered: true,
      attempts: 2,
      last: 'HTTP 200',
    });
    expect(slept).toEqual([2000]);
  });

  test('no attempt starts at or past the deadline', async () => {
    const result = await deliver(slack.url, body, { sleep, deadline: Date.now() - 1 });
    expect(result).toMatchObject({ delivered: false, attempts: 0, outOfTime: true });
    expect(slack.hits).toBe(0);
  });

  test("an attempt's timeout is cut to the deadline", async () => {
    slack.script = ['hang'];
    const started = Date.now();
    const result = await deliver(slack.url, body, { sleep, timeoutMs: 5000, deadline: started + 400 });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(result).toMatchObject({ delivered: false, outOfTime: true });
    expect(result.last).toMatch(/^timeout after \d+ ms/);
  });

  test('the clock is the one the deadline was set with', async () => {
    slack.script = [500];
    let t = 0;
    const result = await deliver(slack.url, body, { sleep, baseDelayMs: 300, clock: () => t, deadline: 350 });
    expect(result).toMatchObject({ delivered: false, attempts: 1, outOfTime: true });
    t = 0;
    slack.script = [500];
    expect(await deliver(slack.url, body, { sleep, baseDelayMs: 300, clock: () => t, deadline: 1000 })).toMatchObject({
      delivered: true,
      attempts: 2,
    });
  });
});
