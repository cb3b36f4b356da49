// The server-side release guard in the alert function, against moto_server (the record in the
// ledger, the active-pool and canary parameters, the state) and a real local "Slack": a bad release baking is
// rolled back by the function alone (no CLI involved), a clean bake is promoted, a failing canary
// is aborted, and each release event reaches Slack exactly once.
import { CloudWatchLogsClient, CreateLogGroupCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { encodeSubscription, LogEvent } from '../../lambda/alert/decode';
import { ReleaseRecord } from '../../core/release-record';
import { AlertEnv, AlertRuntime } from '../../lambda/alert/runtime';
import { DEFAULT_RULE_CONFIG } from '../../core/rules';
import { createLedgerTable, Moto, motoClientConfig, startMoto } from '../helpers/moto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CloudWatchClient, GetDashboardCommand, PutDashboardCommand } from '@aws-sdk/client-cloudwatch';
import { RELEASE_GRAPH_TITLES } from '../../core/dashboard-annotations';
import { ledgerTableName } from '../../core/release-ledger';
import { DynamoReleaseLedger } from '../../support/release-ledger';
import { bakingRecord } from '../helpers/release';
import { SlackReceiver, startSlackReceiver } from '../helpers/slack-receiver';

const STAGE = 'guard';
const LOG_GROUP = `/bluegreen/${STAGE}/nginx/access`;
const STREAM = 'i-0123456789abcdef0';

let moto: Moto;
let clients: {
  ssm: SSMClient;
  logs: CloudWatchLogsClient;
  sqs: SQSClient;
  ddb: DynamoDBClient;
  cloudwatch: CloudWatchClient;
};
let ledger: DynamoReleaseLedger;
let slack: SlackReceiver;
let env: AlertEnv;
let root: string;
let suite = 0;
const logged: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  moto = await startMoto();
  const config = {
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  clients = {
    ssm: new SSMClient(config),
    logs: new CloudWatchLogsClient(config),
    sqs: new SQSClient(config),
    ddb: new DynamoDBClient(motoClientConfig(moto)),
    cloudwatch: new CloudWatchClient(motoClientConfig(moto)),
  };
  await clients.logs.send(new CreateLogGroupCommand({ logGroupName: LOG_GROUP }));
});
afterAll(async () => moto?.stop());

const put = (name: string, value: string, type: 'String' | 'SecureString' = 'String') =>
  clients.ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: type, Overwrite: true }));
const get = async (name: string) => (await clients.ssm.send(new GetParameterCommand({ Name: name }))).Parameter!.Value!;
/** The record as a CLI writes it: a conditional write on whatever the ledger holds now. */
const setRecord = async (r: ReleaseRecord) => ledger.write(r, await ledger.head());
const storedRecord = async () => (await ledger.head())!;
/** The ledger's stream on a head change, as the stack's event source mapping delivers it. */
const STREAM_EVENT = { Records: [{ eventSource: 'aws:dynamodb', eventName: 'MODIFY' }] };

beforeEach(async () => {
  suite++;
  root = `/bluegreen/${STAGE}-${suite}`;
  await createLedgerTable(moto, `${STAGE}-${suite}`);
  ledger = new DynamoReleaseLedger({ ddb: clients.ddb, table: ledgerTableName(`${STAGE}-${suite}`) });
  slack = await startSlackReceiver();
  const queueUrl = (await clients.sqs.send(new CreateQueueCommand({ QueueName: `guard-${suite}` }))).QueueUrl!;
  await put(`${root}/maintenance`, 'off');
  await put(`${root}/slack-webhook-url`, slack.url, 'SecureString');
  await put(`${root}/active-pool`, 'green');
  await put(`${root}/canary-percent`, '0');
  env = {
    stage: STAGE,
    region: 'us-east-1',
    logGroup: LOG_GROUP,
    maintenanceParam: `${root}/maintenance`,
    webhookParam: `${root}/slack-webhook-url`,
    stateParam: `${root}/alert-state`,
    deadLetterQueueUrl: queueUrl,
    metricsNamespace: 'Test',
    rules: DEFAULT_RULE_CONFIG,
    rebuildLookbackMs: 60_000,
    parameterMaxAgeMs: 0,
    release: {
      ledgerTable: ledgerTableName(`${STAGE}-${suite}`),
      activePoolParam: `${root}/active-pool`,
      canaryParam: `${root}/canary-percent`,
      gate: { errorRate: 0.02, minRequests: 20, maxP99Ratio: 3, latencyMarginMs: 100 },
    },
  };
});
afterEach(() => slack.close());

/** The EMF lines the function printed (CloudWatch turns them into metrics; the release-held alarm watches one). */
let emitted: string[] = [];
beforeEach(() => (emitted = []));
const runtime = (now?: () => number) =>
  new AlertRuntime(env, {
    ...clients,
    delivery: { sleep: async () => undefined, timeoutMs: 1000 },
    log: (r) => logged.push(r),
    emit: (l) => emitted.push(l),
    ...(now ? { now } : {}),
  });

/** A release baking on green, started 30 s ago (bakeUntil 50 s from now); one id per test. */
const record = (overrides: Partial<ReleaseRecord>): ReleaseRecord =>
  bakingRecord(Date.now() - 30_000, { id: `20261123-140000-green-v2-${suite}`, ...overrides });

/** An access-log line as nginx writes it: `primary` is where the request went first, `pool` who answered. */
function line(at: number, primary: string, pool: string, upstreamStatus: string, active = 'green'): string {
  return JSON.stringify({
    time: new Date(at).toISOString(),
    msec: at / 1000,
    request_id: `r${at}${Math.random()}`,
    remote_addr: '127.0.0.1',
    method: 'GET',
    uri: '/',
    status: 200,
    body_bytes_sent: 10,
    request_time: 0.002,
    upstream_addr: '10.0.0.2:3000',
    upstream_status: upstreamStatus,
    upstream_response_time: '0.001',
    upstream_connect_time: '0.000',
    pool,
    release: pool === 'green' ? 'v2' : 'v1',
    active_pool: active,
    primary_pool: primary,
  });
}
let nextId = 0;
function batch(lines: string[], at: number) {
  const logEvents: LogEvent[] = lines.map((message, i) => ({ id: `${suite}-${nextId++}`, timestamp: at + i, message }));
  return encodeSubscription({ messageType: 'DATA_MESSAGE', logGroup: LOG_GROUP, logStream: STREAM, logEvents });
}
const titles = () => slack.received.map((r) => r.body.text ?? '');

test('a baking release whose pool fails its requests is rolled back by the function alone', async () => {
  // GIVEN a release baking on green (the CLI may be gone)
  await setRecord(record({}));
  const now = Date.now();
  // WHEN green fails 1 in 5 of its requests (each saved by blue inside the request: users see 200)
  const lines = Array.from({ length: 100 }, (_, i) =>
    i % 5 === 0 ? line(now + i, 'green', 'blue', '500, 200') : line(now + i, 'green', 'green', '200'),
  );
  const result = await runtime().handle(batch(lines, now));
  // THEN the active pool is blue again, the record says rolled-back with the figures, Slack heard it
  expect(result.guard).toBe('rollback');
  expect(await get(`${root}/active-pool`)).toBe('blue');
  const saved = await storedRecord();
  expect(saved.state).toBe('rolled-back');
  expect(saved.figures).toMatchObject({
    requests: 100,
    judged: 100,
    notTried: 0,
    failed: 20,
    rate: 0.2,
    usersSaw5xx: 0,
  });
  expect(saved.reason).toMatch(/green failed 20 of 100/);
  expect(saved.steps.at(-1)).toMatchObject({ step: 'rollback', ok: true, host: 'alert-function' });
  expect(titles().filter((t) => /rolled back/i.test(t))).toHaveLength(1);
});

test("a release's end: its delivery figures are published once, and it is drawn on the dashboard's request and error graphs", async () => {
  const dashboard = `bluegreen-${STAGE}-${suite}`;
  await clients.cloudwatch.send(
    new PutDashboardCommand({
      DashboardName: dashboard,
      DashboardBody: JSON.stringify({
        widgets: Object.values(RELEASE_GRAPH_TITLES).map((title) => ({ type: 'metric', properties: { title } })),
      }),
    }),
  );
  env = { ...env, dashboardName: dashboard };
  // A release promoted (its flip: users reached it) 30 s ago, failing now.
  const promotedAt = new Date(Date.now() - 30_000).toISOString();
  await setRecord(record({ steps: [{ at: promotedAt, step: 'promote', ok: true }] }));
  const now = Date.now();
  const lines = Array.from({ length: 100 }, (_, i) =>
    i % 5 === 0 ? line(now + i, 'green', 'blue', '500, 200') : line(now + i, 'green', 'green', '200'),
  );
  const fn = runtime();
  expect((await fn.handle(batch(lines, now))).guard).toBe('rollback');
  const figures = emitted.map((l) => JSON.parse(l) as Record<string, unknown>).filter((m) => 'ChangeFailures' in m);
  expect(figures).toHaveLength(1);
  expect(figures[0]).toMatchObject({ Deployments: 0, ReachedUsers: 1, ChangeFailures: 1 });
  expect(figures[0].RestoreSeconds as number).toBeGreaterThanOrEqual(30);
  const body = JSON.parse(
    (await clients.cloudwatch.send(new GetDashboardCommand({ DashboardName: dashboard }))).DashboardBody!,
  ) as { widgets: Array<{ properties: { annotations?: { vertical: Array<{ label: string; value: string }> } } }> };
  for (const w of body.widgets)
    expect(w.properties.annotations?.vertical).toEqual([
      { value: promotedAt, label: 'v2 rolled-back', color: '#d62728' },
    ]);
  // The stream's event for the function's own write: nothing published again.
  await fn.handle(STREAM_EVENT);
  expect(
    emitted.map((l) => JSON.parse(l) as Record<string, unknown>).filter((m) => 'ChangeFailures' in m),
  ).toHaveLength(1);
});

test('a clean bake is promoted once the bake time has passed; a redelivered event posts nothing again', async () => {
  const now = Date.now();
  await setRecord(record({ bakeUntil: new Date(now - 1000).toISOString() }));
  const fn = runtime();
  const result = await fn.handle(
    batch(
      Array.from({ length: 30 }, (_, i) => line(now + i, 'green', 'green', '200')),
      now,
    ),
  );
  expect(result.guard).toBe('promote');
  const saved = await storedRecord();
  expect(saved.state).toBe('promoted');
  expect(await get(`${root}/active-pool`)).toBe('green');
  expect(titles().filter((t) => /promoted/i.test(t))).toHaveLength(1);
  // The function's own write of the record comes back as an EventBridge event: nothing new to say.
  const again = await fn.handle(STREAM_EVENT);
  expect(again.posted).toBe(0);
  expect(titles().filter((t) => /promoted/i.test(t))).toHaveLength(1);
});

/** 90% of requests go to blue first; the canary's 10% to green, which fails half of them. */
function failingCanary(now: number): string[] {
  return Array.from({ length: 200 }, (_, i) =>
    i % 10 === 0
      ? i % 20 === 0
        ? line(now + i, 'green', 'blue', '500, 200', 'blue')
        : line(now + i, 'green', 'green', '200', 'blue')
      : line(now + i, 'blue', 'blue', '200', 'blue'),
  );
}

test('a failing canary is aborted: share back to 0, record failed, the active pool untouched', async () => {
  await put(`${root}/active-pool`, 'blue');
  await put(`${root}/canary-percent`, '10');
  await setRecord(record({ state: 'verifying', strategy: 'canary', canaryPercent: 10, bakeUntil: undefined }));
  const now = Date.now();
  const lines = failingCanary(now);
  const result = await runtime().handle(batch(lines, now));
  expect(result.guard).toBe('abort-canary');
  expect(await get(`${root}/canary-percent`)).toBe('0');
  expect(await get(`${root}/active-pool`)).toBe('blue');
  const saved = await storedRecord();
  expect(saved.state).toBe('failed');
  expect(saved.figures).toMatchObject({ requests: 20, failed: 10 });
});

test('a record the CLI rewrote while the guard switched is not overwritten (the write is conditional)', async () => {
  // GIVEN a failing canary, and an operator whose Ctrl-C lands while the function resets the share
  await put(`${root}/active-pool`, 'blue');
  await put(`${root}/canary-percent`, '10');
  const canary = record({ state: 'verifying', strategy: 'canary', canaryPercent: 10, bakeUntil: undefined });
  await setRecord(canary);
  const cancelled: ReleaseRecord = {
    ...canary,
    state: 'failed',
    reason: 'cancelled by the operator',
    updatedAt: new Date(Date.now() + 1000).toISOString(),
  };
  const real = clients.ssm;
  const racing = {
    send: async (command: unknown) => {
      const answer = await real.send(command as GetParameterCommand);
      const input = (command as { input?: { Name?: string } }).input;
      if (command instanceof PutParameterCommand && input?.Name === env.release!.canaryParam)
        await setRecord(cancelled);
      return answer;
    },
  } as unknown as SSMClient;
  const now = Date.now();
  const lines = failingCanary(now);
  // WHEN the function judges the canary and acts
  const fn = new AlertRuntime(env, {
    ...clients,
    ssm: racing,
    delivery: { sleep: async () => undefined, timeoutMs: 1000 },
    log: (r) => logged.push(r),
    emit: () => undefined,
  });
  const result = await fn.handle(batch(lines, now));
  // THEN the share is 0 and the record is the CLI's, not the guard's copy of the older one
  expect(await get(`${root}/canary-percent`)).toBe('0');
  expect(result.guard).toBeUndefined();
  const saved = await storedRecord();
  expect(saved).toMatchObject({ state: 'failed', reason: 'cancelled by the operator' });
  expect(saved.steps.map((s) => s.step)).not.toContain('canary-aborted');
});

test("the ledger's head changing (its stream) announces a new release once, with no traffic at all", async () => {
  const fn = runtime();
  const event = STREAM_EVENT;
  await setRecord(record({ state: 'deploying', bakeUntil: undefined }));
  expect((await fn.handle(event)).posted).toBe(1);
  await setRecord(record({ state: 'verifying', bakeUntil: undefined }));
  expect((await fn.handle(event)).posted).toBe(0);
  expect(titles()).toHaveLength(1);
  expect(titles()[0]).toMatch(/started/i);
  // The announcement survives a cold start: a new runtime (new container) does not repeat it.
  expect((await runtime().handle(event)).posted).toBe(0);
});

test('requests from before the release started never count against it', async () => {
  const now = Date.now();
  await setRecord(record({ startedAt: new Date(now).toISOString() }));
  // Green failing earlier (the release it replaced), then clean since the start.
  const before = Array.from({ length: 50 }, (_, i) => line(now - 60_000 + i, 'green', 'blue', '500, 200'));
  const after = Array.from({ length: 30 }, (_, i) => line(now + 10 + i, 'green', 'green', '200'));
  const result = await runtime().handle(batch([...before, ...after], now - 60_000));
  expect(result.guard).toBeUndefined();
  expect((await storedRecord()).state).toBe('baking');
});

test('with traffic seen and no CLI, the one-minute tick promotes a clean bake once it is over', async () => {
  const now = Date.now();
  await setRecord(record({ bakeUntil: new Date(now + 60_000).toISOString() }));
  const fn = runtime();
  // 30 clean requests to green during the bake (the gate's minimum here is 20)...
  await fn.handle(
    batch(
      Array.from({ length: 30 }, (_, i) => line(now + i, 'green', 'green', '200')),
      now,
    ),
  );
  await setRecord({
    ...record({}),
    bakeUntil: new Date(now - 1000).toISOString(),
    maxBakeUntil: new Date(now + 60_000).toISOString(),
  });
  // ...then the bake ends with no more traffic: the tick finishes it.
  const result = await fn.handle({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} });
  expect(result.guard).toBe('promote');
  const saved = await storedRecord();
  expect(saved.state).toBe('promoted');
  expect(saved.figures).toMatchObject({ judged: 30, failed: 0, minRequests: 20 });
});

test('with no traffic and no CLI (the README bad-release line, CLI killed), the tick extends the bake, then holds it and pages', async () => {
  const t0 = Date.now();
  let t = t0;
  const fn = runtime(() => t);
  const tick = () => fn.handle({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} });
  await setRecord(
    record({
      release: 'v3',
      env: { FAULT_RATE: '0.2' },
      bakeSeconds: 30,
      bakeUntil: new Date(t0 - 1000).toISOString(),
      maxBakeUntil: new Date(t0 + 90_000).toISOString(),
    }),
  );
  // The bake is over with 0 of the 20 requests: extended (once), not promoted.
  expect((await tick()).guard).toBe('extend');
  let saved = await storedRecord();
  expect(saved.state).toBe('baking');
  expect(saved.steps.at(-1)).toMatchObject({ step: 'bake-extended', host: 'alert-function' });
  t = t0 + 60_000;
  expect((await tick()).guard).toBeUndefined();
  // The longest extension is over, still without evidence: held, never promoted.
  t = t0 + 91_000;
  expect((await tick()).guard).toBe('hold');
  saved = await storedRecord();
  expect(saved).toMatchObject({ state: 'held', figures: { requests: 0, judged: 0, minRequests: 20 } });
  expect(saved.reason).toMatch(/^inconclusive: 0 of the 20 requests the gate needs reached green \(v3\)/);
  // Paged: Slack (critical, with the two ways out) and the metric the release-held alarm watches.
  const held = slack.received.map((r) => JSON.stringify(r.body)).filter((b) => /Release held/.test(b));
  expect(held).toHaveLength(1);
  expect(held[0]).toContain(`bluegreen release promote ${saved.id}`);
  expect(held[0]).toContain('bluegreen flip blue');
  const metric = emitted.map((l) => JSON.parse(l) as Record<string, unknown>).find((m) => m.ReleasesHeld === 1);
  expect(metric).toMatchObject({ Stage: env.stage, ReleasesHeld: 1 });
  // Final: a later tick does nothing more.
  t = t0 + 200_000;
  expect((await tick()).guard).toBeUndefined();
});

test('an --irreversible release crossing the gate is frozen by the function: never flipped back, paged (Slack critical + ReleasesFrozen)', async () => {
  await put(`${root}/active-pool`, 'green');
  await setRecord(record({ irreversible: true }));
  const now = Date.now();
  const lines = Array.from({ length: 100 }, (_, i) =>
    i % 5 === 0 ? line(now + i, 'green', 'blue', '500, 200') : line(now + i, 'green', 'green', '200'),
  );
  const result = await runtime().handle(batch(lines, now));
  expect(result.guard).toBe('freeze');
  // Not flipped back: green stays active.
  expect(await get(`${root}/active-pool`)).toBe('green');
  const saved = await storedRecord();
  expect(saved).toMatchObject({ state: 'frozen', irreversible: true, figures: { judged: 100, failed: 20, rate: 0.2 } });
  expect(saved.steps.at(-1)).toMatchObject({ step: 'frozen', ok: false, host: 'alert-function' });
  const frozen = slack.received.map((r) => JSON.stringify(r.body)).filter((b) => /FROZEN/.test(b));
  expect(frozen).toHaveLength(1);
  expect(frozen[0]).toContain('green failed 20 of 100 requests first sent to it (20.0%)');
  expect(frozen[0]).toContain('#d32f2f');
  const metric = emitted.map((l) => JSON.parse(l) as Record<string, unknown>).find((m) => m.ReleasesFrozen === 1);
  expect(metric).toMatchObject({ Stage: env.stage, ReleasesFrozen: 1 });
  // Final: later batches of failures change nothing.
  expect((await runtime().handle(batch(lines, now + 1000))).guard).toBeUndefined();
  expect(await get(`${root}/active-pool`)).toBe('green');
});
