// The deployed entry point itself: handler.ts with the environment the stack sets, its SDK clients
// reaching moto_server through AWS_ENDPOINT_URL, fed a real subscription payload.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CloudWatchLogsClient, CreateLogGroupCommand } from '@aws-sdk/client-cloudwatch-logs';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { encodeSubscription } from '../../lambda/alert/decode';
import { REPO_ROOT } from '../../local/paths';
import { Moto, startMoto } from '../helpers/moto';
import { startSlackReceiver, SlackReceiver } from '../helpers/slack-receiver';

let moto: Moto;
let slack: SlackReceiver;
const saved = { ...process.env };
beforeAll(async () => {
  moto = await startMoto();
  slack = await startSlackReceiver();
});
afterAll(async () => {
  process.env = saved;
  await slack.close();
  await moto.stop();
});

test('handler: env from the stack, clients at module scope, a real payload → Slack', async () => {
  const config = {
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  const ssm = new SSMClient(config);
  await ssm.send(new PutParameterCommand({ Name: '/bluegreen/h/maintenance', Value: 'off', Type: 'String' }));
  await ssm.send(
    new PutParameterCommand({ Name: '/bluegreen/h/slack-webhook-url', Value: slack.url, Type: 'SecureString' }),
  );
  await new CloudWatchLogsClient(config).send(new CreateLogGroupCommand({ logGroupName: '/bluegreen/h/nginx/access' }));
  const queueUrl = (await new SQSClient(config).send(new CreateQueueCommand({ QueueName: 'h-undelivered' }))).QueueUrl!;
  Object.assign(process.env, moto.env, {
    STAGE: 'h',
    ACCESS_LOG_GROUP: '/bluegreen/h/nginx/access',
    MAINTENANCE_PARAM: '/bluegreen/h/maintenance',
    SLACK_WEBHOOK_PARAM: '/bluegreen/h/slack-webhook-url',
    STATE_PARAM: '/bluegreen/h/alert-state',
    DEAD_LETTER_QUEUE_URL: queueUrl,
    METRICS_NAMESPACE: 'Bluegreen/h/Alerts',
    ALERT_WINDOW: '10',
    ALERT_MIN_WINDOW: '5',
  });
  let handler!: (event: unknown) => Promise<{ status: string; posted: number }>;
  jest.isolateModules(() => {
    handler = require('../../lambda/alert/handler').handler;
  });
  const lines = readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'nginx-access.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean);
  const now = Date.now();
  const event = encodeSubscription({
    messageType: 'DATA_MESSAGE',
    logGroup: '/bluegreen/h/nginx/access',
    logStream: 'i-0fff',
    logEvents: lines.map((message, i) => ({ id: `h-${i}`, timestamp: now + i, message })),
  });
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  const result = await handler(event);
  log.mockRestore();
  expect(result.status).toBe('processed');
  expect(result.posted).toBeGreaterThan(0);
  expect(slack.received.some((r) => /Failover on i-0fff/.test(r.body.text ?? ''))).toBe(true);
});
