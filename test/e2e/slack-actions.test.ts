// The Slack actions function's own code (lambda/slack-actions/runtime.ts) against moto_server (the
// ledger, the active-pool and canary parameters, the signing secret and the allowlist) and a real
// local "Slack" for the response URL: a signed click rolls a baking release back and the ledger
// names the person; forged, stale (301 s) and replayed requests change nothing; a person outside
// the allowlist is told so privately.
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SlackWork } from '../../core/slack-click';
import { ledgerTableName } from '../../core/release-ledger';
import { parameterNames } from '../../core/names';
import { ReleaseRecord } from '../../core/release-record';
import { SlackActionsRuntime } from '../../lambda/slack-actions/runtime';
import { DynamoReleaseLedger } from '../../support/release-ledger';
import { LedgerHistory } from '../../ops/release/ledger-history';
import { createLedgerTable, Moto, motoClientConfig, startMoto } from '../helpers/moto';
import { bakingRecord } from '../helpers/release';
import { SIGNING_SECRET, signedClick } from '../helpers/slack-click';
import { SlackReceiver, startSlackReceiver } from '../helpers/slack-receiver';

let moto: Moto;
let ssm: SSMClient;
let ddb: DynamoDBClient;
let slack: SlackReceiver;
let suite = 0;
let stage: string;
let names: ReturnType<typeof parameterNames>;
let ledger: DynamoReleaseLedger;
let deferred: SlackWork[];
let runtime: SlackActionsRuntime;
/** The function's clock (injected): requests are signed relative to it. */
const NOW = Date.parse('2026-11-23T14:00:00Z');
const NOW_S = Math.floor(NOW / 1000);

beforeAll(async () => {
  moto = await startMoto();
  ssm = new SSMClient(motoClientConfig(moto));
  ddb = new DynamoDBClient(motoClientConfig(moto));
});
afterAll(async () => moto?.stop());

const put = (Name: string, Value: string, Type: 'String' | 'SecureString' = 'String') =>
  ssm.send(new PutParameterCommand({ Name, Value, Type, Overwrite: true }));
const get = async (Name: string) => (await ssm.send(new GetParameterCommand({ Name }))).Parameter!.Value!;

beforeEach(async () => {
  stage = `slack${++suite}`;
  names = parameterNames(stage);
  slack = await startSlackReceiver();
  await createLedgerTable(moto, stage);
  ledger = new DynamoReleaseLedger({ ddb, table: ledgerTableName(stage) });
  await put(names.activePool, 'green');
  await put(names.canaryPercent, '0');
  await put(names.slackSigningSecret, SIGNING_SECRET, 'SecureString');
  await put(names.slackAllowedUsers, 'U012AB3CD, W0ONCALL2');
  deferred = [];
  runtime = actionsRuntime(names.slackAllowedUsers);
});
afterEach(() => slack.close());

/** The function's code on this test's stage, its work handed to `deferred`; `allowlistParam` may name none. */
function actionsRuntime(allowlistParam: string): SlackActionsRuntime {
  return new SlackActionsRuntime(
    {
      stage,
      ledgerTable: ledgerTableName(stage),
      signingSecretParam: names.slackSigningSecret,
      allowlistParam,
      activePoolParam: names.activePool,
      canaryParam: names.canaryPercent,
      responseUrlPrefix: 'http://127.0.0.1:',
    },
    { ssm, ddb, now: () => NOW, invokeSelf: async (work) => void deferred.push(work), log: () => undefined },
  );
}

/** A release baking on green (the active pool), in the ledger. */
async function baking(): Promise<ReleaseRecord> {
  return ledger.write(bakingRecord(NOW - 30_000), undefined);
}

/** The function URL's event for a request. */
const urlEvent = (req: { headers: Record<string, string>; rawBody: string }) => ({
  headers: req.headers,
  body: Buffer.from(req.rawBody).toString('base64'),
  isBase64Encoded: true,
  requestContext: { http: { method: 'POST' } },
});

test('a signed Roll back now: answered at once, then flipped back, the record rolled back by the person, the message updated', async () => {
  const record = await baking();
  const click = signedClick({ timestamp: NOW_S, kind: 'rollback', releaseId: record.id, responseUrl: slack.url });
  const answer = await runtime.receive(urlEvent(click));
  expect(answer.statusCode).toBe(200);
  // Nothing acted yet: the work was handed on (an asynchronous invocation on AWS).
  expect(await get(names.activePool)).toBe('green');
  expect(deferred).toHaveLength(1);
  const outcome = await runtime.act(deferred[0]);
  expect(outcome.kind).toBe('written');
  expect(await get(names.activePool)).toBe('blue');
  const head = (await ledger.head())!;
  expect(head).toMatchObject({
    state: 'rolled-back',
    decidedBy: '@alice (U012AB3CD) in Slack',
    reason: 'rolled back by @alice (U012AB3CD) in Slack',
  });
  expect(head.steps.at(-1)).toMatchObject({ step: 'rollback', host: 'slack', ok: true });
  // The message, in place: "Rolled back by @alice at HH:MM UTC".
  expect(slack.received).toHaveLength(1);
  expect(slack.received[0].body).toMatchObject({ replace_original: true });
  expect(String(slack.received[0].body.text)).toMatch(/Rolled back by @alice at \d\d:\d\d UTC/);
  // The ledger's events keep who decided.
  expect((await new LedgerHistory(ddb, ledgerTableName(stage)).events(record.id)).at(-1)).toMatchObject({
    state: 'rolled-back',
    decidedBy: /@alice/,
  });
});

test.each([
  ['forged (another secret)', { secret: 'not-the-signing-secret-000000000' }],
  ['stale (301 s old)', { timestamp: NOW_S - 301 }],
  ['from the future (301 s ahead)', { timestamp: NOW_S + 301 }],
])('a %s request is refused (401) and changes nothing', async (_why, over) => {
  const record = await baking();
  const click = signedClick({
    kind: 'rollback',
    releaseId: record.id,
    responseUrl: slack.url,
    timestamp: NOW_S,
    ...over,
  });
  expect((await runtime.receive(urlEvent(click))).statusCode).toBe(401);
  expect(deferred).toEqual([]);
  expect(await get(names.activePool)).toBe('green');
  expect(await ledger.head()).toEqual(record);
});

test('a body changed after signing is refused', async () => {
  const record = await baking();
  const click = signedClick({ timestamp: NOW_S, kind: 'promote', releaseId: record.id, responseUrl: slack.url });
  const tampered = { ...click, rawBody: click.rawBody.replace('bluegreen-promote', 'bluegreen-rollback') };
  expect((await runtime.receive(urlEvent(tampered))).statusCode).toBe(401);
  expect(deferred).toEqual([]);
});

test('a replayed request (the same signed click again, inside the 5 minutes) is acted on once', async () => {
  const record = await baking();
  const click = signedClick({ timestamp: NOW_S, kind: 'rollback', releaseId: record.id, responseUrl: slack.url });
  expect((await runtime.receive(urlEvent(click))).statusCode).toBe(200);
  expect((await runtime.receive(urlEvent(click))).statusCode).toBe(200);
  expect(deferred).toHaveLength(1);
  await runtime.act(deferred[0]);
  // Flipped back once; a replay of an older click cannot flip it forward again either.
  expect(await get(names.activePool)).toBe('blue');
  expect((await new LedgerHistory(ddb, ledgerTableName(stage)).events(record.id)).map((r) => r.state)).toEqual([
    'baking',
    'rolled-back',
  ]);
});

test('a person outside the allowlist is told privately; nothing changes', async () => {
  const record = await baking();
  const click = signedClick({
    kind: 'rollback',
    releaseId: record.id,
    responseUrl: slack.url,
    timestamp: NOW_S,
    user: { id: 'U0MALLORY', username: 'mallory' },
  });
  expect((await runtime.receive(urlEvent(click))).statusCode).toBe(200);
  expect(deferred).toEqual([expect.objectContaining({ kind: 'refuse' })]);
  expect(await runtime.act(deferred[0])).toMatchObject({ kind: 'refused' });
  expect(slack.received[0].body).toMatchObject({ response_type: 'ephemeral', replace_original: false });
  expect(String(slack.received[0].body.text)).toMatch(/not on this stage's list/);
  expect(await get(names.activePool)).toBe('green');
  expect(await ledger.head()).toEqual(record);
});

test('without an allowlist parameter nobody may act (the safe default)', async () => {
  const fresh = `slack${suite}b`;
  const r = actionsRuntime(`/bluegreen/${fresh}/slack-allowed-users`);
  const record = await baking();
  await r.receive(
    urlEvent(signedClick({ timestamp: NOW_S, kind: 'rollback', releaseId: record.id, responseUrl: slack.url })),
  );
  expect(deferred).toEqual([expect.objectContaining({ kind: 'refuse' })]);
});

test("a button that no longer applies is refused privately with the reason; the guard's decision stands", async () => {
  const record = await baking();
  // The guard rolled it back first.
  await ledger.write({ ...record, state: 'rolled-back', decidedBy: 'release guard (alert-function)' }, record);
  await put(names.activePool, 'blue');
  await runtime.receive(
    urlEvent(signedClick({ timestamp: NOW_S, kind: 'promote', releaseId: record.id, responseUrl: slack.url })),
  );
  expect(await runtime.act(deferred[0])).toMatchObject({ kind: 'refused' });
  expect(String(slack.received[0].body.text)).toMatch(
    /Promote now: refused\. .* is rolled-back: only a baking, held or frozen release/,
  );
  expect((await ledger.head())!.decidedBy).toBe('release guard (alert-function)');
});

test('Extend bake moves the bake end; Promote now ends it; response URLs outside Slack are never posted to', async () => {
  const record = await baking();
  await runtime.receive(
    urlEvent(signedClick({ timestamp: NOW_S, kind: 'extend-bake', releaseId: record.id, responseUrl: slack.url })),
  );
  await runtime.act(deferred.shift()!);
  const extended = (await ledger.head())!;
  expect(Date.parse(extended.bakeUntil!)).toBeGreaterThan(Date.parse(record.bakeUntil!) + 9 * 60_000);
  expect(extended.state).toBe('baking');
  await runtime.receive(
    urlEvent(
      signedClick({
        timestamp: NOW_S,
        kind: 'promote',
        releaseId: record.id,
        responseUrl: 'https://example.com/steal',
      }),
    ),
  );
  await runtime.act(deferred.shift()!);
  expect((await ledger.head())!).toMatchObject({ state: 'promoted', decidedBy: '@alice (U012AB3CD) in Slack' });
  expect(slack.received).toHaveLength(1); // the extension's update only
});

test('the active pool is read at the moment of each decision, not from a warm container', async () => {
  const record = await baking();
  await runtime.receive(
    urlEvent(signedClick({ timestamp: NOW_S, kind: 'extend-bake', releaseId: record.id, responseUrl: slack.url })),
  );
  await runtime.act(deferred.shift()!);
  // Someone flipped back by hand (same clock: a cache of any age would still hold green).
  await put(names.activePool, 'blue');
  await runtime.receive(
    urlEvent(signedClick({ timestamp: NOW_S, kind: 'rollback', releaseId: record.id, responseUrl: slack.url })),
  );
  expect(await runtime.act(deferred.shift()!)).toMatchObject({
    kind: 'refused',
    reason: expect.stringMatching(/green is not the active pool any more \(blue is\)/),
  });
  expect(await get(names.activePool)).toBe('blue');
});
