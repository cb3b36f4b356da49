// The alert pipeline's alarms reaching Slack: real SNS-wrapped CloudWatch alarm notifications (the
// shape SNS invokes Lambda with) through the deployed entry point, handler.ts, with the stack's
// environment, its SDK clients on moto_server (the webhook SecureString, the dead-letter queue) and
// a real local HTTP "Slack". No access-log group exists: the alarm path must not need one.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { REPO_ROOT } from '../../local/paths';
import { Moto, startMoto } from '../helpers/moto';
import { Received, startSlackReceiver, SlackReceiver } from '../helpers/slack-receiver';

type SnsEvent = { Records: Array<{ Sns: { MessageId: string; Message: string } }> };
const FIXTURES = JSON.parse(
  readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'alarm-notifications.json'), 'utf8'),
) as Record<'undeliveredAlarm' | 'undeliveredOk' | 'functionErrorsAlarm', SnsEvent>;
const RUNBOOK = 'https://wiki.example.com/RUNBOOK.md';

let moto: Moto;
let slack: SlackReceiver;
let sqs: SQSClient;
let queueUrl: string;
let handler: (
  event: unknown,
) => Promise<{ status: string; posted: number; undelivered: number; duplicates: number; suppressed: number }>;
const saved = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
  slack = await startSlackReceiver();
  const config = {
    endpoint: moto.endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  await new SSMClient(config).send(
    new PutParameterCommand({ Name: '/bluegreen/prod/slack-webhook-url', Value: slack.url, Type: 'SecureString' }),
  );
  sqs = new SQSClient(config);
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'prod-undelivered' }))).QueueUrl!;
  Object.assign(process.env, moto.env, {
    // The region the alarms in the fixtures live in.
    AWS_REGION: 'eu-west-1',
    AWS_DEFAULT_REGION: 'eu-west-1',
    STAGE: 'prod',
    ACCESS_LOG_GROUP: '/bluegreen/prod/nginx/access',
    MAINTENANCE_PARAM: '/bluegreen/prod/maintenance',
    SLACK_WEBHOOK_PARAM: '/bluegreen/prod/slack-webhook-url',
    STATE_PARAM: '/bluegreen/prod/alert-state',
    DEAD_LETTER_QUEUE_URL: queueUrl,
    METRICS_NAMESPACE: 'Bluegreen/prod/Alerts',
    RUNBOOK_URL: RUNBOOK,
  });
  jest.isolateModules(() => {
    handler = require('../../lambda/alert/handler').handler;
  });
});
afterAll(async () => {
  process.env = saved;
  await slack.close();
  await moto.stop();
});

let log: jest.SpyInstance;
beforeEach(() => {
  slack.received.length = 0;
  slack.script = [];
  log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
});
afterEach(() => log.mockRestore());

let copies = 0;
/** The same notification as a new SNS message (its own MessageId), as a second state change would be. */
function fresh(event: SnsEvent): SnsEvent {
  const copy = structuredClone(event);
  for (const r of copy.Records) r.Sns.MessageId = `${r.Sns.MessageId.slice(0, -4)}${String(++copies).padStart(4, '0')}`;
  return copy;
}

type Block = {
  type: string;
  text?: { text: string };
  fields?: Array<{ text: string }>;
  elements?: Array<{ text: { text: string }; url: string }>;
};
const blocksOf = (r: Received) => r.body.attachments![0].blocks as Block[];
const buttons = (r: Received) =>
  Object.fromEntries(
    blocksOf(r)
      .flatMap((b) => (b.type === 'actions' ? b.elements! : []))
      .map((e) => [e.text.text, e.url]),
  );
const fieldsOf = (r: Received) =>
  blocksOf(r)
    .flatMap((b) => b.fields ?? [])
    .map((f) => f.text);

test("undelivered-alerts ALARM then OK: both reach Slack in the alerts' style, with the state, the condition, the alarm and the runbook section", async () => {
  // WHEN the alarm goes to ALARM
  const alarm = await handler(fresh(FIXTURES.undeliveredAlarm));
  // THEN one message, critical red, saying what it means and linking to what to do
  expect(alarm).toMatchObject({ status: 'processed', posted: 1, undelivered: 0 });
  expect(slack.received).toHaveLength(1);
  const a = slack.received[0];
  expect(a.body.text).toBe(
    '[prod] ALARM: bluegreen-prod-undelivered-alerts (Threshold Crossed: 1 out of the last 1 datapoints [3.0 (23/11/26 16:41:00)] was greater than or equal to the threshold (1.0) (minimum 1 datapoint for OK -> ALARM transition).)',
  );
  expect(a.body.attachments![0].color).toBe('#d32f2f');
  expect(blocksOf(a)[0].text!.text).toMatch(
    /^\*:rotating_light: Alarm: alerts did not reach Slack \(waiting in the dead-letter queue\)\*\nThreshold Crossed/,
  );
  expect(fieldsOf(a)).toEqual([
    '*Stage*\nprod',
    '*Alarm*\nbluegreen-prod-undelivered-alerts',
    '*State*\nOK → ALARM',
    '*When*\n2026-11-23T16:42:07.381Z',
    '*Condition*\nApproximateNumberOfMessagesVisible (AWS/SQS) maximum over 60 s >= 1',
  ]);
  expect(buttons(a)).toEqual({
    'Alarm in the console':
      'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/bluegreen-prod-undelivered-alerts',
    Runbook: `${RUNBOOK}#undelivered-alerts`,
  });

  // WHEN it recovers
  const ok = await handler(fresh(FIXTURES.undeliveredOk));
  // THEN the OK reaches the same channel, green
  expect(ok).toMatchObject({ status: 'processed', posted: 1 });
  const o = slack.received[1];
  expect(o.body.text).toMatch(
    /^\[prod\] OK: bluegreen-prod-undelivered-alerts \(Threshold Crossed: .* was not greater than or equal to the threshold/,
  );
  expect(o.body.attachments![0].color).toBe('#2e7d32');
  expect(blocksOf(o)[0].text!.text).toMatch(/^\*:white_check_mark: OK: no undelivered alerts are waiting\*/);
  expect(fieldsOf(o)).toContain('*State*\nALARM → OK');
  expect(buttons(o).Runbook).toBe(`${RUNBOOK}#undelivered-alerts`);
});

test("a new alarm's first OK (INSUFFICIENT_DATA → OK, after a deploy) is logged, not posted; a recovery (ALARM → OK) still is", async () => {
  // GIVEN the OK notification of an alarm a deploy just created (its previous state: INSUFFICIENT_DATA)
  const first = fresh(FIXTURES.undeliveredOk);
  const message = JSON.parse(first.Records[0].Sns.Message);
  first.Records[0].Sns.Message = JSON.stringify({ ...message, OldStateValue: 'INSUFFICIENT_DATA' });
  // WHEN SNS delivers it (a subscription without the filter policy)
  const result = await handler(first);
  // THEN nothing reaches Slack or the dead-letter queue; the log says why
  expect(result).toMatchObject({ status: 'processed', posted: 0, undelivered: 0, suppressed: 1 });
  expect(slack.received).toEqual([]);
  const lines = log.mock.calls.map((c) => JSON.parse(String(c[0])));
  expect(lines).toContainEqual(
    expect.objectContaining({
      level: 'INFO',
      msg: 'alarm state change not posted',
      alarm: 'bluegreen-prod-undelivered-alerts',
    }),
  );
  // AND a real recovery of the same alarm is posted
  expect(await handler(fresh(FIXTURES.undeliveredOk))).toMatchObject({ posted: 1 });
  expect(slack.received).toHaveLength(1);
});

test('alert-function-errors ALARM: its own title and runbook section', async () => {
  const result = await handler(fresh(FIXTURES.functionErrorsAlarm));
  expect(result).toMatchObject({ status: 'processed', posted: 1 });
  const m = slack.received[0];
  expect(m.body.text).toMatch(/^\[prod\] ALARM: bluegreen-prod-alert-function-errors \(Threshold Crossed/);
  expect(blocksOf(m)[0].text!.text).toMatch(
    /^\*:rotating_light: Alarm: the alert function is failing \(alerts may be late or lost\)\*/,
  );
  expect(fieldsOf(m)).toContain('*Condition*\nErrors (AWS/Lambda) sum over 300 s >= 1');
  expect(buttons(m).Runbook).toBe(`${RUNBOOK}#alert-function-errors`);
});

test('SNS delivers the same message twice: posted once', async () => {
  const event = fresh(FIXTURES.functionErrorsAlarm);
  await handler(event);
  const again = await handler(event);
  expect(again).toMatchObject({ posted: 0, duplicates: 1 });
  expect(slack.received).toHaveLength(1);
});

test('Slack down: the alarm notification goes to the dead-letter queue with the reason (the email subscribers have it from SNS)', async () => {
  slack.script = Array(10).fill(503);
  const result = await handler(fresh(FIXTURES.undeliveredAlarm));
  expect(result).toMatchObject({ status: 'processed', posted: 0, undelivered: 1 });
  const messages =
    (
      await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }),
      )
    ).Messages ?? [];
  expect(messages).toHaveLength(1);
  const body = JSON.parse(messages[0].Body!);
  expect(body).toMatchObject({
    stage: 'prod',
    reason: 'Slack did not take it: HTTP 503 after 4 attempts',
    alarm: { alarmName: 'bluegreen-prod-undelivered-alerts', state: 'ALARM' },
  });
  expect(messages[0].MessageAttributes).toMatchObject({
    kind: { StringValue: 'alarm' },
    severity: { StringValue: 'critical' },
  });
}, 15_000);

test('an SNS message that is not an alarm (someone published by hand) is said in the log, not posted, not an error', async () => {
  const event = fresh(FIXTURES.undeliveredAlarm);
  event.Records[0].Sns.Message = 'hello from the console';
  const result = await handler(event);
  expect(result.status).toBe('rejected');
  expect(slack.received).toEqual([]);
  const lines = log.mock.calls.map((c) => JSON.parse(String(c[0])));
  expect(lines).toContainEqual(
    expect.objectContaining({
      level: 'ERROR',
      msg: 'rejected SNS record',
      reason: 'the SNS message is not JSON: not a CloudWatch alarm notification',
    }),
  );
});
