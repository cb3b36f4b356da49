// Alarm state changes from SNS records (pure), and their Slack message: the alerts' style, the
// runbook section of each of the pipeline's alarms, which RUNBOOK.md must have.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  alarmChanges,
  isNotified,
  isSnsEvent,
  PIPELINE_ALARMS,
  pipelineAlarmName,
  pipelineAlarmOf,
  runbookLink,
} from '../../core/alarm-notification';
import { Decision } from '../../core/rules';
import { alarmSlackMessage, SEVERITY_COLOURS, slackMessage } from '../../core/slack-message';
import { REPO_ROOT } from '../../local/paths';

const FIXTURES = JSON.parse(readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'alarm-notifications.json'), 'utf8'));
type Block = {
  type: string;
  text?: { type: string; text: string };
  fields?: Array<{ type: string }>;
  elements?: Array<{ text: { text: string }; url: string }>;
};
type Message = { text: string; attachments: Array<{ color: string; blocks: Block[] }> };

const snsRecord = (message: unknown, id = 'm-1') => ({
  EventSource: 'aws:sns',
  Sns: {
    MessageId: id,
    Message: typeof message === 'string' ? message : JSON.stringify(message),
    Timestamp: '2026-11-23T16:00:00.000Z',
  },
});

test('an SNS event is recognised; log batches, EventBridge events and mixed records are not', () => {
  expect(isSnsEvent(FIXTURES.undeliveredAlarm)).toBe(true);
  expect(isSnsEvent({ awslogs: { data: 'x' } })).toBe(false);
  expect(isSnsEvent({ source: 'aws.events', 'detail-type': 'Scheduled Event' })).toBe(false);
  expect(isSnsEvent({ Records: [] })).toBe(false);
  expect(isSnsEvent({ Records: [{ EventSource: 'aws:sqs' }] })).toBe(false);
  expect(isSnsEvent(null)).toBe(false);
});

test('the fixture notification parses into the state change on-call reads', () => {
  const { changes, rejected } = alarmChanges(FIXTURES.undeliveredAlarm);
  expect(rejected).toEqual([]);
  expect(changes).toEqual([
    expect.objectContaining({
      messageId: '5b4a8c1e-2f7d-5e0a-9c3b-7f1d2e3a4b5c',
      alarmName: 'bluegreen-prod-undelivered-alerts',
      state: 'ALARM',
      previousState: 'OK',
      at: Date.parse('2026-11-23T16:42:07.381Z'),
      alarmArn: 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:bluegreen-prod-undelivered-alerts',
      trigger: expect.objectContaining({
        metricName: 'ApproximateNumberOfMessagesVisible',
        namespace: 'AWS/SQS',
        threshold: 1,
      }),
    }),
  ]);
});

test('records that are not alarm notifications are rejected with the reason, the others still parsed', () => {
  const { changes, rejected } = alarmChanges({
    Records: [
      snsRecord('plain text', 'a'),
      snsRecord({ hello: 1 }, 'b'),
      snsRecord({ AlarmName: 'x', NewStateValue: 'MAYBE' }, 'c'),
      snsRecord({ AlarmName: 'x', NewStateValue: 'OK' }, 'd'),
    ],
  });
  expect(rejected.map((r) => r.messageId)).toEqual(['a', 'b', 'c']);
  expect(changes).toEqual([
    expect.objectContaining({
      messageId: 'd',
      alarmName: 'x',
      state: 'OK',
      reason: '',
      at: Date.parse('2026-11-23T16:00:00.000Z'),
    }),
  ]);
});

test('pipeline alarm names: one definition, read back per stage (prod is not prod-eu)', () => {
  expect(pipelineAlarmName('prod', 'undelivered-alerts')).toBe('bluegreen-prod-undelivered-alerts');
  expect(pipelineAlarmOf('prod', 'bluegreen-prod-alert-function-errors')).toBe('alert-function-errors');
  expect(pipelineAlarmOf('prod', 'bluegreen-prod-eu-undelivered-alerts')).toBeUndefined();
  expect(pipelineAlarmOf('prod-eu', 'bluegreen-prod-eu-undelivered-alerts')).toBe('undelivered-alerts');
});

describe("which state changes are notified (the function applies the subscriptions' filter again)", () => {
  test.each([
    ['OK', 'ALARM', true],
    ['INSUFFICIENT_DATA', 'ALARM', true],
    [undefined, 'ALARM', true],
    ['ALARM', 'OK', true],
    ['ALARM', 'INSUFFICIENT_DATA', true],
    // A new or replaced alarm's first evaluation: not news, after every deploy that creates one.
    ['INSUFFICIENT_DATA', 'OK', false],
    ['OK', 'INSUFFICIENT_DATA', false],
    [undefined, 'OK', false],
  ] as const)('%s → %s: %s', (previousState, state, expected) => {
    expect(isNotified({ previousState, state })).toBe(expected);
  });
});

test('runbookLink: the one way a RUNBOOK.md section is linked (a fragment already on the URL is replaced, not doubled)', () => {
  expect(runbookLink('https://example.com/RUNBOOK.md', 'undelivered-alerts')).toBe(
    'https://example.com/RUNBOOK.md#undelivered-alerts',
  );
  expect(runbookLink('https://github.com/o/r/blob/main/RUNBOOK.md#readme', 'failover')).toBe(
    'https://github.com/o/r/blob/main/RUNBOOK.md#failover',
  );
  expect(runbookLink('RUNBOOK.md', 'alert-function-errors')).toBe('RUNBOOK.md#alert-function-errors');
});

test("RUNBOOK's Undelivered alerts section tells every body the dead-letter queue can hold, the SNS redrive envelope included", () => {
  const runbook = readFileSync(path.join(REPO_ROOT, 'RUNBOOK.md'), 'utf8');
  const section = runbook.slice(
    runbook.indexOf('\n## Undelivered alerts'),
    runbook.indexOf('\n## ', runbook.indexOf('\n## Undelivered alerts') + 1),
  );
  // An alert or alarm the function could not post; a whole invocation Lambda gave up on; a notification SNS could not hand over.
  for (const shape of [
    '`reason`',
    '`alarm`',
    '`requestContext`',
    '`"Type": "Notification"`',
    '`TopicArn`',
    '`Message`',
  ])
    expect(section).toContain(shape);
});

describe('the Slack message', () => {
  const ctx = { stage: 'prod', runbookUrl: 'https://example.com/RUNBOOK.md' };
  const [change] = alarmChanges(FIXTURES.undeliveredAlarm).changes;

  test("the alerts' style: [stage] text, one attachment coloured by severity, title section, fields section, buttons", () => {
    const decision: Decision = {
      kind: 'failover',
      severity: 'warning',
      at: change.at,
      host: 'i-1',
      summary: 'x',
      suppressed: null,
      details: {},
    };
    const alert = slackMessage(decision, ctx) as Message;
    const alarm = alarmSlackMessage(change, ctx) as Message;
    expect(alarm.text.startsWith('[prod] ')).toBe(alert.text.startsWith('[prod] '));
    expect(alarm.attachments).toHaveLength(alert.attachments.length);
    expect(alarm.attachments[0].color).toBe(SEVERITY_COLOURS.critical);
    const shape = (m: Message) =>
      m.attachments[0].blocks
        .filter((b) => b.type !== 'context')
        .map((b) => `${b.type}:${b.text ? 'text' : b.fields ? 'fields' : 'elements'}`);
    expect(shape(alarm)).toEqual(shape(alert));
    const runbook = (m: Message) =>
      m.attachments[0].blocks.find((b) => b.type === 'actions')!.elements!.find((e) => e.text.text === 'Runbook')!;
    expect(runbook(alarm).url).toBe('https://example.com/RUNBOOK.md#undelivered-alerts');
    expect(runbook(alert).url).toBe('https://example.com/RUNBOOK.md#failover');
  });

  test('a runbookUrl with a fragment: alert and alarm buttons both link the section, not "#top#section"', () => {
    const withFragment = { stage: 'prod', runbookUrl: 'https://github.com/o/r/blob/main/RUNBOOK.md#top' };
    const decision: Decision = {
      kind: 'failover',
      severity: 'warning',
      at: change.at,
      host: 'i-1',
      summary: 'x',
      suppressed: null,
      details: {},
    };
    const runbook = (m: Message) =>
      m.attachments[0].blocks.find((b) => b.type === 'actions')!.elements!.find((e) => e.text.text === 'Runbook')!.url;
    expect(runbook(alarmSlackMessage(change, withFragment) as Message)).toBe(
      'https://github.com/o/r/blob/main/RUNBOOK.md#undelivered-alerts',
    );
    expect(runbook(slackMessage(decision, withFragment) as Message)).toBe(
      'https://github.com/o/r/blob/main/RUNBOOK.md#failover',
    );
  });

  test('without runbookUrl: no runbook button, the console button stays', () => {
    const m = alarmSlackMessage(change, { stage: 'prod' }) as Message;
    const buttons = m.attachments[0].blocks.find((b) => b.type === 'actions')!.elements!.map((e) => e.text.text);
    expect(buttons).toEqual(['Alarm in the console']);
  });

  test('another alarm on the topic: titled by its name, its description shown, no runbook section to link', () => {
    const other = { ...change, alarmName: 'team-db-cpu', description: 'the database is busy', alarmArn: undefined };
    const m = alarmSlackMessage(other, ctx) as Message;
    expect(m.attachments[0].blocks[0].text!.text).toMatch(
      /^\*:rotating_light: Alarm: team-db-cpu\*\nthe database is busy\nThreshold Crossed/,
    );
    expect(m.attachments[0].blocks.some((b) => b.type === 'actions')).toBe(false);
  });
});

test('every pipeline alarm links to a RUNBOOK.md section that exists', () => {
  const runbook = readFileSync(path.join(REPO_ROOT, 'RUNBOOK.md'), 'utf8');
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
  for (const { anchor } of Object.values(PIPELINE_ALARMS)) expect(anchors).toContain(anchor);
});
