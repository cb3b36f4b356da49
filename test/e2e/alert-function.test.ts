// The alert function's runtime against moto_server (SSM parameters incl. the SecureString webhook,
// CloudWatch Logs for the cold-start rebuild, SQS as the dead-letter queue) and a real local HTTP
// "Slack", fed real subscription payloads (gzip + base64) built from lines real nginx wrote.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { GetParameterCommand, PutParameterCommand, SSMClient, DeleteParameterCommand } from '@aws-sdk/client-ssm';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { limit } from '../../core/aws-limits';
import { encodeSubscription, LogEvent } from '../../lambda/alert/decode';
import { AlertDeps, AlertEnv, AlertRuntime } from '../../lambda/alert/runtime';
import { DEFAULT_RULE_CONFIG } from '../../core/rules';
import { REPO_ROOT } from '../../local/paths';
import { Moto, startMoto } from '../helpers/moto';
import { startThrottleProxy } from '../helpers/throttle-proxy';
import { CLIENT_CONFIG } from '../../lambda/alert/handler';
import { STATE_SAVE_INTERVAL_MS } from '../../core/ssm-budget';
import { startSlackReceiver, SlackReceiver } from '../helpers/slack-receiver';

const FIXTURE = readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'nginx-access.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean);
const STAGE = 'fn';
const LOG_GROUP = `/bluegreen/${STAGE}/nginx/access`;
const STREAM = 'i-0123456789abcdef0';

let moto: Moto;
let clients: { ssm: SSMClient; logs: CloudWatchLogsClient; sqs: SQSClient };
let slack: SlackReceiver;
let queueUrl: string;
let env: AlertEnv;
let records: Array<Record<string, unknown>>;
let suite = 0;

beforeAll(async () => {
  moto = await startMoto();
  const config = {
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  clients = { ssm: new SSMClient(config), logs: new CloudWatchLogsClient(config), sqs: new SQSClient(config) };
  await clients.logs.send(new CreateLogGroupCommand({ logGroupName: LOG_GROUP }));
  await clients.logs.send(new CreateLogStreamCommand({ logGroupName: LOG_GROUP, logStreamName: STREAM }));
});
afterAll(async () => {
  await moto?.stop();
});

beforeEach(async () => {
  suite++;
  slack = await startSlackReceiver();
  records = [];
  metricLines = [];
  const root = `/bluegreen/${STAGE}-${suite}`;
  queueUrl = (await clients.sqs.send(new CreateQueueCommand({ QueueName: `undelivered-${suite}` }))).QueueUrl!;
  await clients.ssm.send(new PutParameterCommand({ Name: `${root}/maintenance`, Value: 'off', Type: 'String' }));
  await clients.ssm.send(
    new PutParameterCommand({ Name: `${root}/slack-webhook-url`, Value: slack.url, Type: 'SecureString' }),
  );
  await clients.ssm.send(new PutParameterCommand({ Name: `${root}/alert-state`, Value: '{}', Type: 'String' }));
  env = {
    stage: STAGE,
    region: 'us-east-1',
    logGroup: LOG_GROUP,
    maintenanceParam: `${root}/maintenance`,
    webhookParam: `${root}/slack-webhook-url`,
    stateParam: `${root}/alert-state`,
    deadLetterQueueUrl: queueUrl,
    metricsNamespace: 'Test',
    rules: { ...DEFAULT_RULE_CONFIG, windowSize: 10, minWindow: 5 },
    rebuildLookbackMs: 3_600_000,
    parameterMaxAgeMs: 0,
  };
});
afterEach(() => slack.close());

let metricLines: string[] = [];
/** When nginx wrote the fixture's lines (their `msec`): the tests' clocks are set from it, never from the calendar. */
const WRITTEN_AT = Math.max(...FIXTURE.map((l) => Math.round(JSON.parse(l).msec * 1000)));
const DAY_MS = 24 * 3_600_000;
const runtime = (overrides: Partial<AlertDeps> = {}) =>
  new AlertRuntime(env, {
    ...clients,
    delivery: { sleep: async () => undefined, timeoutMs: 500 },
    log: (r) => records.push(r),
    emit: (l) => metricLines.push(l),
    ...overrides,
  });

let nextId = 0;
function events(lines: string[], at = Date.now()): LogEvent[] {
  return lines.map((message, i) => ({ id: `${at}-${nextId++}`, timestamp: at + i, message }));
}
const payload = (logEvents: LogEvent[], messageType: 'DATA_MESSAGE' | 'CONTROL_MESSAGE' = 'DATA_MESSAGE') =>
  encodeSubscription({ messageType, logGroup: LOG_GROUP, logStream: STREAM, logEvents });

const posted = () => slack.received.map((r) => r.body.text ?? '');

test('CONTROL_MESSAGE, an empty batch and a foreign payload are acknowledged, never an error', async () => {
  const fn = runtime();
  expect((await fn.handle(payload([], 'CONTROL_MESSAGE'))).status).toBe('ignored');
  expect((await fn.handle(payload([]))).status).toBe('ignored');
  expect((await fn.handle({ hello: 'world' })).status).toBe('rejected');
  expect((await fn.handle({ awslogs: { data: 'bm90IGd6aXA=' } })).status).toBe('rejected');
  expect(slack.received).toEqual([]);
});

test('real nginx lines: failover and users-see-errors posted to Slack, malformed counted, state saved in SSM', async () => {
  const fn = runtime();
  const result = await fn.handle(payload(events([...FIXTURE, 'garbage {'])));
  expect(result).toMatchObject({ status: 'processed', evaluated: FIXTURE.length, malformed: 1 });
  expect(
    posted().some((t) => t.startsWith(`[${STAGE}] Failover on ${STREAM}: blue is failing, green is answering`)),
  ).toBe(true);
  expect(posted().some((t) => t.includes(`Users see errors on ${STREAM}`))).toBe(true);
  const failover = slack.received.find((r) => /Failover/.test(r.body.text ?? ''))!;
  expect(JSON.stringify(failover.body)).toContain('logs-insights$3FqueryDetail');
  expect(records.some((r) => r.msg === 'malformed log line')).toBe(true);
  const saved = JSON.parse(
    (await clients.ssm.send(new GetParameterCommand({ Name: env.stateParam }))).Parameter!.Value!,
  );
  expect(Object.keys(saved.hosts)).toEqual([STREAM]);
  expect(saved.lastPosted[`failover:${STREAM}`]).toEqual(expect.any(Number));
  // Metrics as EMF: posted, suppressed, undelivered, malformed, error rate.
  const metrics = JSON.parse(metricLines.at(-1)!);
  expect(metrics).toMatchObject({
    Stage: STAGE,
    MalformedLines: 1,
    AlertsPosted: result.posted,
    AlertsUndelivered: 0,
    LinesEvaluated: FIXTURE.length,
  });
  expect(metrics._aws.CloudWatchMetrics[0].Namespace).toBe('Test');
});

test('a redelivered batch (same event ids) is not evaluated twice', async () => {
  const fn = runtime();
  const batch = events(FIXTURE);
  await fn.handle(payload(batch));
  const count = slack.received.length;
  const again = await fn.handle(payload(batch));
  expect(again).toMatchObject({ duplicates: batch.length, evaluated: 0 });
  expect(slack.received.length).toBe(count);
});

test('state survives a cold start: cooldowns from SSM, the error-rate window rebuilt from the log group', async () => {
  const at = Date.now() - 60_000;
  // History in the log group: 10 requests, 4 of them failed over (40%).
  const failed = FIXTURE.find((l) => l.includes('"upstream_status":"500, 200"'))!;
  const fine = FIXTURE.find((l) => l.includes('"pool":"blue"') && l.includes('"status":200'))!;
  const history = [failed, failed, failed, failed, fine, fine, fine, fine, fine, fine];
  await clients.logs.send(
    new PutLogEventsCommand({
      logGroupName: LOG_GROUP,
      logStreamName: STREAM,
      logEvents: history.map((message, i) => ({ message, timestamp: at + i })),
    }),
  );

  const first = runtime();
  await first.handle(payload(events([failed], at + 100)));
  const afterFirst = posted().length;
  expect(posted().filter((t) => /Failover/.test(t))).toHaveLength(1);

  // A new container: nothing in memory.
  const second = runtime();
  const result = await second.handle(payload(events([failed], at + 200)));
  expect(result.status).toBe('processed');
  // The failover cooldown came back from SSM: no second failover message.
  expect(
    posted()
      .slice(afterFirst)
      .filter((t) => /Failover/.test(t)),
  ).toEqual([]);
  const cold = records.find((r) => r.msg === 'cold start' && r.restoredState === true);
  expect(cold).toMatchObject({ windowRebuiltFrom: expect.any(Number) });
  expect(cold!.windowRebuiltFrom as number).toBeGreaterThanOrEqual(5);
});

test('maintenance on: decisions logged, nothing posted', async () => {
  await clients.ssm.send(
    new PutParameterCommand({ Name: env.maintenanceParam, Value: 'on', Type: 'String', Overwrite: true }),
  );
  const result = await runtime().handle(payload(events(FIXTURE)));
  expect(result.posted).toBe(0);
  expect(result.suppressed).toBeGreaterThan(0);
  expect(slack.received).toEqual([]);
  expect(records.filter((r) => r.msg === 'decision').length).toBe(result.decisions);
});

test('no webhook parameter: every alert is logged as undelivered and lands in the dead-letter queue', async () => {
  await clients.ssm.send(new DeleteParameterCommand({ Name: env.webhookParam }));
  const result = await runtime().handle(payload(events(FIXTURE)));
  expect(result.undelivered).toBeGreaterThan(0);
  expect(result.posted).toBe(0);
  const messages =
    (await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }))).Messages ?? [];
  expect(messages.length).toBe(result.undelivered);
  const body = JSON.parse(messages[0].Body!);
  expect(body.reason).toContain('does not exist');
  expect(body.decision.kind).toEqual(expect.any(String));
});

test('Slack down: retried, then the alert goes to the dead-letter queue', async () => {
  slack.script = Array(50).fill(503);
  const result = await runtime().handle(payload(events(FIXTURE)));
  expect(result.undelivered).toBeGreaterThan(0);
  const messages =
    (await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }))).Messages ?? [];
  expect(JSON.parse(messages[0].Body!).reason).toBe('Slack did not take it: HTTP 503 after 4 attempts');
});

describe('Slack delivery within the invocation budget (Lambda timeout)', () => {
  const rateLimited = { status: 429, headers: { 'Retry-After': '2' } };
  const perAlert = () => {
    const counts = new Map<string, number>();
    for (const t of posted()) counts.set(t, (counts.get(t) ?? 0) + 1);
    return counts;
  };
  const deadLetters = async () => {
    const all: Array<{ reason: string; decision: { kind: string } }> = [];
    for (;;) {
      const res = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (!res.Messages?.length) return all;
      all.push(...res.Messages.map((m) => JSON.parse(m.Body!)));
    }
  };

  test('a budget too short for every alert under 429 + Retry-After: what fits is posted once, the rest dead-lettered as out of time, returned before the budget', async () => {
    // Real sleeps: Slack asks for 2 s before each retry. Budget 5 s with a 1 s margin = 4 s for Slack.
    slack.script = [rateLimited, 200, ...Array(20).fill(rateLimited)];
    const fn = runtime({ delivery: { timeoutMs: 500 }, safetyMarginMs: 1000 });
    const started = Date.now();
    const budgetMs = 5000;
    const result = await fn.handle(payload(events(FIXTURE)), () => started + budgetMs - Date.now());
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(budgetMs);
    const toPost = result.posted + result.undelivered;
    expect(toPost).toBeGreaterThanOrEqual(2);
    expect(result.posted).toBe(1);
    expect([...perAlert().values()]).toEqual([1]);
    const dlq = await deadLetters();
    expect(dlq).toHaveLength(result.undelivered);
    for (const m of dlq)
      expect(m.reason).toMatch(
        /^no time left in this invocation: HTTP 429, next try in 2000 ms but \d+ ms left after 1 attempts$/,
      );
    // Each undelivered alert tried once, none slept past the deadline.
    expect(slack.hits).toBe(2 + result.undelivered);
  }, 20_000);

  // The clock the function runs with: the minute the lines were written, or 14 days later (the
  // CloudWatch agent ships a backlog that old after an outage: its lines keep their own times).
  test.each([
    ['a minute after the lines were written', WRITTEN_AT + 60_000],
    ['14 days after (a backlog shipped after an outage)', WRITTEN_AT + 14 * DAY_MS],
  ])(
    'a retry of a batch that stopped mid-delivery (timeout) posts nothing twice, in a new container or the same one: %s',
    async (_when, nowMs) => {
      const now = () => nowMs;
      // How many alerts this batch makes, from a clean run on a copy of the state.
      const clean = await runtime({ now }).handle(payload(events(FIXTURE, nowMs)));
      expect(clean.posted).toBeGreaterThanOrEqual(2);

      for (const container of ['new', 'same'] as const) {
        slack.received.length = 0;
        await clients.ssm.send(
          new PutParameterCommand({ Name: env.stateParam, Value: '{}', Type: 'String', Overwrite: true }),
        );
        // The first alert goes out, the second meets a 429 and the "function" dies while waiting:
        // what Lambda's timeout does (the process is frozen, nothing after runs).
        slack.script = [200, rateLimited];
        const dying = runtime({
          now,
          delivery: {
            timeoutMs: 500,
            sleep: async () => {
              throw new Error('Task timed out after 120.00 seconds');
            },
          },
        });
        const batch = events(FIXTURE, nowMs);
        await expect(dying.handle(payload(batch))).rejects.toThrow('Task timed out');
        expect(posted()).toHaveLength(1);
        const first = posted()[0];

        // Lambda retries the same batch (same event ids).
        const retryFn = container === 'new' ? runtime({ now }) : dying;
        // The same instance, with Slack back to normal (its delivery options are private deps).
        if (container === 'same')
          (retryFn as unknown as { deps: AlertDeps }).deps.delivery = { sleep: async () => undefined, timeoutMs: 500 };
        const retry = await retryFn.handle(payload(batch));
        expect(retry).toMatchObject({
          status: 'processed',
          duplicates: 0,
          alreadyDelivered: 1,
          posted: clean.posted - 1,
          undelivered: 0,
        });
        const counts = perAlert();
        expect(counts.get(first)).toBe(1);
        expect([...counts.values()].every((n) => n === 1)).toBe(true);
        expect(posted()).toHaveLength(clean.posted);

        // A further redelivery is a duplicate; the state parameter stays small.
        expect(await retryFn.handle(payload(batch))).toMatchObject({ duplicates: batch.length, posted: 0 });
        const saved = (await clients.ssm.send(new GetParameterCommand({ Name: env.stateParam }))).Parameter!.Value!;
        expect(JSON.parse(saved).delivered).toHaveLength(clean.posted);
        expect(Buffer.byteLength(saved)).toBeLessThanOrEqual(limit('standardParameterValue'));
      }
    },
    20_000,
  );
});

describe('Parameter Store requests', () => {
  /** A line every request of which its primary pool answered: nothing but the host's last-seen time moves. */
  const healthy = FIXTURE.find((l) => {
    const e = JSON.parse(l);
    return (
      e.status === 200 &&
      e.pool === e.active_pool &&
      e.primary_pool === e.active_pool &&
      !String(e.upstream_status).includes(',')
    );
  })!;
  const at = (when: number) =>
    JSON.stringify({ ...JSON.parse(healthy), msec: when / 1000, time: new Date(when).toISOString() });

  test('a host whose batches change only its last-seen time: the state is saved at most once a minute, not per batch', async () => {
    const counting = new SSMClient({ region: 'us-east-1' });
    const mock = mockClient(counting);
    const puts: string[] = [];
    mock.on(GetParameterCommand).callsFake((input) => clients.ssm.send(new GetParameterCommand(input)));
    mock.on(PutParameterCommand).callsFake((input) => {
      puts.push(input.Name);
      return clients.ssm.send(new PutParameterCommand(input));
    });
    let now = WRITTEN_AT;
    const fn = runtime({ ssm: counting, now: () => now });
    // Two minutes of one fleet host: the CloudWatch agent ships a batch every 5 s.
    const batches = 24;
    for (let i = 0; i < batches; i++) {
      const result = await fn.handle(
        payload(
          Array.from({ length: 3 }, (_, j) => ({ id: `seen-${i}-${j}`, timestamp: now + j, message: at(now + j) })),
        ),
      );
      expect(result.status).toBe('processed');
      now += 5_000;
    }
    mock.restore();
    const saves = puts.filter((n) => n === env.stateParam).length;
    // The first batch (a host never seen before), then one save a minute for the last-seen times.
    expect(saves).toBeLessThanOrEqual(1 + Math.ceil((batches * 5_000) / STATE_SAVE_INTERVAL_MS));
    expect(saves).toBeGreaterThanOrEqual(2);
    const saved = JSON.parse(
      (await clients.ssm.send(new GetParameterCommand({ Name: env.stateParam }))).Parameter!.Value!,
    );
    expect(now - 5_000 - saved.hosts[STREAM].lastSeen).toBeLessThanOrEqual(STATE_SAVE_INTERVAL_MS);
    expect(slack.received).toEqual([]);
  });

  test("throttled SSM calls are retried with backoff inside the invocation (the clients' retry configuration): the batch is processed and posted", async () => {
    const proxy = await startThrottleProxy(moto.endpoint);
    try {
      const ssm = new SSMClient({
        ...CLIENT_CONFIG,
        endpoint: proxy.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
      // Past the SDK's default 3 attempts: the first read (the state, at a cold start) throttled 4 times.
      proxy.throttleNext(4, ['GetParameter', 'PutParameter']);
      const result = await runtime({ ssm }).handle(payload(events(FIXTURE)));
      expect(Object.values(proxy.throttled).reduce((a, b) => a + b, 0)).toBe(4);
      expect(result).toMatchObject({ status: 'processed', evaluated: FIXTURE.length, undelivered: 0 });
      expect(posted().some((t) => t.startsWith(`[${STAGE}] Failover on ${STREAM}`))).toBe(true);
    } finally {
      await proxy.close();
    }
  }, 30_000);
});

describe('faults injected with aws-sdk-client-mock', () => {
  test("SSM still throttled after the SDK's retries (a stubbed send has none) fails the invocation (Lambda retries it) without touching state", async () => {
    const ssm = mockClient(SSMClient);
    ssm.on(GetParameterCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const fn = runtime({ ssm: new SSMClient({ region: 'us-east-1' }) });
    await expect(fn.handle(payload(events(FIXTURE)))).rejects.toThrow('Rate exceeded');
    expect(slack.received).toEqual([]);
    ssm.restore();
  });

  test("a batch that failed half-way is evaluated again on Lambda's retry, not skipped as a duplicate", async () => {
    const ssmFaulty = new SSMClient({ region: 'us-east-1' });
    const ssm = mockClient(ssmFaulty);
    ssm
      .on(GetParameterCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }))
      .callsFake((input) => clients.ssm.send(new GetParameterCommand(input)));
    ssm.on(PutParameterCommand).callsFake((input) => clients.ssm.send(new PutParameterCommand(input)));
    const fn = runtime({ ssm: ssmFaulty });
    const batch = events(FIXTURE);
    await expect(fn.handle(payload(batch))).rejects.toThrow('Rate exceeded');
    const retry = await fn.handle(payload(batch));
    expect(retry).toMatchObject({ status: 'processed', duplicates: 0, evaluated: FIXTURE.length });
    expect(posted().some((t) => /Failover on/.test(t))).toBe(true);
    ssm.restore();
  });

  test('when even the dead-letter queue fails, the invocation fails so Lambda retries and its on-failure destination keeps the batch', async () => {
    await clients.ssm.send(new DeleteParameterCommand({ Name: env.webhookParam }));
    const sqs = mockClient(SQSClient);
    sqs.onAnyCommand().rejects(new Error('SQS unavailable'));
    const fn = runtime({ sqs: new SQSClient({ region: 'us-east-1' }) });
    await expect(fn.handle(payload(events(FIXTURE)))).rejects.toThrow('SQS unavailable');
    sqs.restore();
  });
});
