// Fleet wording through the deployed entry point: handler.ts with the environment a
// fleet stack sets (HOSTS_PARAM), the hosts parameter in moto_server, subscription payloads from three
// log streams (three hosts) built from lines real nginx wrote, and the real local Slack receiver.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { limit, MAX_FLEET_HOSTS } from '../../core/aws-limits';
import { encodeSubscription } from '../../lambda/alert/decode';
import { REPO_ROOT } from '../../local/paths';
import { Moto, startMoto } from '../helpers/moto';
import { startSlackReceiver, SlackReceiver } from '../helpers/slack-receiver';

const FIXTURE = readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'nginx-access.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean);
const HEALTHY = FIXTURE.find((l) => l.includes('"pool":"blue"') && l.includes('"upstream_status":"200"'))!;
const FAILED_OVER = FIXTURE.find((l) => l.includes('"upstream_status":"500, 200"'))!;
const HOSTS = ['i-0aaa', 'i-0bbb', 'i-0ccc'];

let moto: Moto;
let slack: SlackReceiver;
let ssm: SSMClient;
let cwl: CloudWatchLogsClient;
let queueUrl: string;
const saved = { ...process.env };
beforeAll(async () => {
  moto = await startMoto();
  const config = {
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  ssm = new SSMClient(config);
  cwl = new CloudWatchLogsClient(config);
  queueUrl = (await new SQSClient(config).send(new CreateQueueCommand({ QueueName: 'fleet-undelivered' }))).QueueUrl!;
});
afterAll(async () => {
  process.env = saved;
  await moto?.stop();
});
beforeEach(async () => {
  slack = await startSlackReceiver();
});
afterEach(() => slack.close());

/** A stage in moto with its hosts parameter, and a fresh handler module (its runtime lives at module scope). */
async function stage(name: string, hosts: string | undefined) {
  const root = `/bluegreen/${name}`;
  await ssm.send(new PutParameterCommand({ Name: `${root}/maintenance`, Value: 'off', Type: 'String' }));
  await ssm.send(
    new PutParameterCommand({ Name: `${root}/slack-webhook-url`, Value: slack.url, Type: 'SecureString' }),
  );
  if (hosts !== undefined)
    await ssm.send(new PutParameterCommand({ Name: `${root}/hosts`, Value: hosts, Type: 'String' }));
  await cwl.send(new CreateLogGroupCommand({ logGroupName: `${root}/nginx/access` }));
  process.env = {
    ...saved,
    ...moto.env,
    STAGE: name,
    ACCESS_LOG_GROUP: `${root}/nginx/access`,
    MAINTENANCE_PARAM: `${root}/maintenance`,
    HOSTS_PARAM: `${root}/hosts`,
    SLACK_WEBHOOK_PARAM: `${root}/slack-webhook-url`,
    STATE_PARAM: `${root}/alert-state`,
    DEAD_LETTER_QUEUE_URL: queueUrl,
    METRICS_NAMESPACE: `Bluegreen/${name}/Alerts`,
    ALERT_WINDOW: '10',
    ALERT_MIN_WINDOW: '5',
  };
  let handler!: (event: unknown) => Promise<{ status: string; posted: number }>;
  jest.isolateModules(() => {
    handler = require('../../lambda/alert/handler').handler;
  });
  let id = 0;
  const start = Date.now();
  /** A line restamped to `when`, so it counts as recent. */
  const stamped = (line: string, when: number) =>
    JSON.stringify({ ...JSON.parse(line), msec: when / 1000, time: new Date(when).toISOString() });
  /** History already in the log group (what a cold start rebuilds the window from), per host. */
  const history = async (host: string, lines: string[]) => {
    await cwl.send(new CreateLogStreamCommand({ logGroupName: `${root}/nginx/access`, logStreamName: host }));
    const at = start - 60_000 + id++ * 100;
    await cwl.send(
      new PutLogEventsCommand({
        logGroupName: `${root}/nginx/access`,
        logStreamName: host,
        logEvents: lines.map((line, i) => ({ message: stamped(line, at + i), timestamp: at + i })),
      }),
    );
  };
  /** One subscription batch from one host (log stream). */
  const send = async (host: string, lines: string[]) => {
    const at = start + id * 100;
    const event = encodeSubscription({
      messageType: 'DATA_MESSAGE',
      logGroup: `${root}/nginx/access`,
      logStream: host,
      logEvents: lines.map((line, i) => ({ id: `${name}-${id++}`, timestamp: at + i, message: stamped(line, at + i) })),
    });
    const result = await handler(event);
    expect(result.status).toBe('processed');
  };
  return { send, history, logs: jest.spyOn(console, 'log').mockImplementation(() => undefined) };
}

const texts = () => slack.received.map((r) => r.body.text ?? '');

test('hosts = fleet:3, two of three hosts fail over: Slack says "green answering on 2 of 3 hosts", the error rate names the host', async () => {
  const { send, logs } = await stage('fleet3', 'fleet:3');
  for (const host of HOSTS) await send(host, [HEALTHY, HEALTHY]);
  await send('i-0aaa', [FAILED_OVER]);
  await send('i-0bbb', [FAILED_OVER]);
  logs.mockRestore();
  expect(texts().filter((t) => t.includes('Failover on'))).toEqual([
    '[fleet3] Failover on i-0aaa: blue is failing, green is answering — green answering on 1 of 3 hosts',
    '[fleet3] Failover on i-0bbb: blue is failing, green is answering — green answering on 2 of 3 hosts',
  ]);
  const second = slack.received.find((r) => r.body.text?.includes('Failover on i-0bbb'))!;
  expect(JSON.stringify(second.body.attachments)).toContain('hosts_failing_over: `2 of 3`');
  // The error rate is the stage's (window 10, min 5): it fired on i-0aaa's failed request and says where it came from.
  const rate = texts().find((t) => t.includes('Error rate'))!;
  expect(rate).toContain('— failed requests from 1 of 3 hosts: i-0aaa 1');
  expect(JSON.stringify(slack.received.find((r) => r.body.text === rate)!.body.attachments)).toContain(
    '*Failing hosts*: `i-0aaa` ×1',
  );
});

test('a hosts parameter the function cannot parse: logged as an error, the alert still posted, M from the hosts seen logging', async () => {
  const { send, logs } = await stage('fleetbad', 'fleet:three');
  for (const host of HOSTS.slice(0, 2)) await send(host, [HEALTHY]);
  await send('i-0aaa', [FAILED_OVER]);
  const logged = logs.mock.calls.map(([line]) => String(line));
  logs.mockRestore();
  expect(texts().filter((t) => t.includes('Failover on'))).toEqual([
    '[fleetbad] Failover on i-0aaa: blue is failing, green is answering — green answering on 1 of 2 hosts',
  ]);
  expect(
    logged.some(
      (l) =>
        l.includes('"level":"ERROR"') &&
        l.includes('hosts parameter not usable') &&
        l.includes('/bluegreen/fleetbad/hosts') &&
        l.includes('got \\"fleet:three\\"'),
    ),
  ).toBe(true);
});

test("a cold start rebuilds the window with each failed request's host from its log stream", async () => {
  const { send, history, logs } = await stage('fleetcold', 'fleet:3');
  await history('i-0aaa', [FAILED_OVER, FAILED_OVER, HEALTHY]);
  await history('i-0bbb', [HEALTHY, HEALTHY]);
  await send('i-0ccc', [HEALTHY]);
  logs.mockRestore();
  const rate = texts().filter((t) => t.includes('Error rate'));
  expect(rate).toHaveLength(1);
  expect(rate[0]).toContain('2 failed by their primary pool');
  expect(rate[0]).toContain('— failed requests from 1 of 3 hosts: i-0aaa 2');
});

test('the largest fleet and a rolling update (twice its hosts logging in a day): the state still fits its 4 KB parameter and every batch is processed', async () => {
  const { send, logs } = await stage('fleet50', `fleet:${MAX_FLEET_HOSTS}`);
  const many = Array.from({ length: 2 * MAX_FLEET_HOSTS }, (_, i) => `i-0${String(i).padStart(16, '0')}`);
  for (const host of many) await send(host, [HEALTHY]);
  // A few hosts fail over: their episodes are what the state keeps first.
  for (const host of many.slice(-3)) await send(host, [FAILED_OVER]);
  logs.mockRestore();
  // moto stores any size; SSM refuses a standard parameter over 4,096 bytes (the old code saved 9,409 here).
  const { GetParameterCommand } = await import('@aws-sdk/client-ssm');
  const value = (await ssm.send(new GetParameterCommand({ Name: '/bluegreen/fleet50/alert-state' }))).Parameter!.Value!;
  expect(Buffer.byteLength(value)).toBeLessThanOrEqual(limit('standardParameterValue'));
  const state = JSON.parse(value) as { hosts: Record<string, { episode?: unknown }> };
  for (const host of many.slice(-3)) expect(state.hosts[host]?.episode).toBeDefined();
  expect(texts().filter((t) => t.includes('Failover on'))).toHaveLength(3);
});
