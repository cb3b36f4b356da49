// `bluegreen release --stage` on its AWS backend against moto_server: the pool state in SSM, the
// record in the stage's ledger (DynamoDB), the SSM record imported on first use, and the whole flow with a stand-in host
// (Run Command cannot reach one here: the host's answer is injected, the SSM side is real) and an
// endpoint that answers from whichever pool the active-pool parameter names.
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { parameterNames } from '../../core/names';
import { AwsReleaseBackend } from '../../ops/release/aws-backend';
import { ReleaseOptions } from '../../ops/release/args';
import { promoteHeld, runRelease } from '../../ops/release/orchestrator';
import { RunOnHostsResult } from '../../ops/release/run-command';
import { ReleaseRecord } from '../../core/release-record';
import { RecordChanged } from '../../core/release-backend';
import { createLedgerTable, Moto, motoClientConfig, startMoto } from '../helpers/moto';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { ledgerTableName } from '../../core/release-ledger';
import { startThrottleProxy } from '../helpers/throttle-proxy';
import { awsTarget } from '../../ops/aws-target';
import { bakingRecord } from '../helpers/release';
import { historyCommand } from '../../ops/release/release-commands';

const unused = () => {
  throw new Error('local mode is not used here');
};

let moto: Moto;
let ssm: SSMClient;
let ddb: DynamoDBClient;
let endpoint: http.Server;
let stage: string;
let names: ReturnType<typeof parameterNames>;
let suite = 0;

beforeAll(async () => {
  moto = await startMoto();
  ssm = new SSMClient({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  ddb = new DynamoDBClient(motoClientConfig(moto));
});
afterAll(async () => moto?.stop());

const put = (name: string, value: string) =>
  ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: 'String', Overwrite: true }));
const get = async (name: string) => (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;

beforeEach(async () => {
  stage = `rel${++suite}`;
  names = parameterNames(stage);
  // What the stack creates once (lib/pool-parameters.ts).
  await put(names.activePool, 'blue');
  await put(names.canaryPercent, '0');
  await put(names.release, '{}');
  await createLedgerTable(moto, stage);
  for (const [pool, release] of [
    ['blue', 'v1'],
    ['green', 'v0'],
  ] as const) {
    await put(names.pools[pool].image, 'bluegreen-app:local');
    await put(names.pools[pool].release, release);
    await put(names.pools[pool].env, '{}');
  }
  // The public endpoint: answers from the pool the parameter names, as a host that applied it would.
  endpoint = http.createServer((_req, res) => {
    void get(names.activePool).then((pool) => {
      res.writeHead(200, {
        'X-App-Pool': pool ?? 'none',
        'X-Active-Pool': pool ?? 'none',
        'Content-Type': 'application/json',
      });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
  await put(names.publicUrl, `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}`);
  await put(names.instanceId, 'i-0123456789abcdef0');
});
afterEach(async () => {
  endpoint.closeAllConnections();
  await new Promise((r) => endpoint.close(r));
});

/** A host that reads its desired state from SSM as bluegreen-apply does, and reports each step. */
function host(healthy: (release: string) => boolean): {
  runApply: (args: string[]) => Promise<RunOnHostsResult>;
  calls: string[][];
} {
  const calls: string[][] = [];
  return {
    calls,
    async runApply(args) {
      calls.push(args);
      const active = await get(names.activePool);
      const idle = active === 'blue' ? 'green' : 'blue';
      const release = (await get(names.pools[idle].release))!;
      const ok = healthy(release);
      const steps = [
        { host: 'i-1', step: 'recreate', pool: idle, ok: true },
        { host: 'i-1', step: 'health', pool: idle, ok, detail: ok ? 'healthy' : 'unhealthy after 60 s' },
        ...(ok ? [{ host: 'i-1', step: 'smoke', pool: idle, ok: true, detail: `/version answers ${release}` }] : []),
      ];
      return { commandId: 'c-1', hosts: [{ host: 'i-1', status: ok ? 'Success' : 'Failed', ok, steps }] };
    },
  };
}

const options = (o: Partial<ReleaseOptions> = {}): ReleaseOptions => ({
  release: 'v2',
  env: { FEATURE: 'on' },
  strategy: 'all-at-once',
  canaryPercent: 0,
  canarySeconds: 1,
  bakeSeconds: 1,
  promote: true,
  deployTimeoutSeconds: 30,
  ...o,
});
const io = (lines: string[]) => ({ out: (l: string) => lines.push(l), pollMs: 50, graceMs: 300 });

test('pool state round-trips through SSM, the record through the ledger; every write is conditional on the version read', async () => {
  const backend = new AwsReleaseBackend({ ssm, ddb, stage });
  await backend.setDesiredPool('green', {
    release: 'v9',
    image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/bluegreen-x:v9',
    env: { A: '1' },
  });
  expect(await backend.desiredPool('green')).toEqual({
    release: 'v9',
    image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/bluegreen-x:v9',
    env: { A: '1' },
  });
  // The app image is "no image" to the CLI.
  expect(await backend.desiredPool('blue')).toEqual({ release: 'v1', env: {} });
  expect(await backend.readRecord()).toBeUndefined(); // "{}" before the first release: nothing to import
  const first = {
    id: 'a',
    pool: 'green',
    state: 'deploying',
    env: { A: 'secret-ish' },
    steps: [],
  } as unknown as ReleaseRecord;
  const stored = await backend.writeRecord(first, undefined);
  expect(stored.revision).toBe(1);
  // A write on a stale version (or "none" when there is one) loses and changes nothing.
  await expect(backend.writeRecord({ ...first, state: 'failed' }, undefined)).rejects.toThrow(RecordChanged);
  await backend.writeRecord({ ...first, state: 'failed' }, stored);
  await expect(backend.writeRecord({ ...first, state: 'promoted' }, stored)).rejects.toMatchObject({
    current: { state: 'failed', revision: 2 },
  });
  expect(await backend.history()).toMatchObject([{ id: 'a', state: 'failed', env: { A: '(set)' } }]);
  // The head keeps the values (a joining host boots from them); history items keep the keys only.
  expect(await backend.readRecord()).toMatchObject({ state: 'failed', revision: 2, env: { A: 'secret-ish' } });
  expect((await backend.ledgerHistory.events('a')).map((r) => r.state)).toEqual(['deploying', 'failed']);
  expect(await backend.activePool()).toBe('blue');
});

test('a release goes to the idle pool, is promoted through the flip path and recorded; held without a guard, then promoted by hand', async () => {
  const fake = host(() => true);
  const lines: string[] = [];
  const backend = new AwsReleaseBackend({ ssm, ddb, stage, pollMs: 50, runApply: fake.runApply });
  const code = await runRelease(options(), backend, io(lines));
  // No alert function here to judge the bake: the CLI holds it (exit 3), never promotes it itself...
  expect(code).toBe(3);
  expect((await backend.readRecord())!.state).toBe('held');
  expect(lines.join('\n')).toMatch(/HELD: v2 on green/);
  // ...and the operator's way out, `bluegreen release promote <id> --stage`, on the AWS backend.
  expect(await promoteHeld((await backend.readRecord())!.id, backend, (l) => lines.push(l))).toBe(0);
  expect(await get(names.activePool)).toBe('green');
  expect(await get(names.pools.green.release)).toBe('v2');
  expect(JSON.parse((await get(names.pools.green.env))!)).toEqual({ FEATURE: 'on' });
  expect(await get(names.pools.blue.release)).toBe('v1'); // the previous release stays on blue
  const record = (await backend.readRecord())!;
  expect(record).toMatchObject({
    pool: 'green',
    release: 'v2',
    previousPool: 'blue',
    previousRelease: 'v1',
    replacedRelease: 'v0',
    state: 'promoted',
  });
  // What blue ran (the app image: no previousImage), for a fleet host that boots later.
  expect(record.previousEnv).toEqual({});
  expect(record.previousImage).toBeUndefined();
  expect(record.steps.filter((s) => s.host === 'i-1').map((s) => s.step)).toEqual([
    'recreate',
    'health',
    'smoke',
    'host',
  ]);
  // The deploy only: an all-at-once release promoted at once opens no preview.
  expect(fake.calls).toEqual([['--retry']]);
  expect(record.preview).toBeUndefined();
  expect(lines.join('\n')).toMatch(/PROMOTED by hand: v2 on green/);
});

test('--no-promote opens a preview on every host (the token in a SecureString); the next release ends it at its start', async () => {
  const fake = host(() => true);
  const lines: string[] = [];
  const backend = new AwsReleaseBackend({ ssm, ddb, stage, pollMs: 50, runApply: fake.runApply });
  expect(await runRelease(options({ promote: false }), backend, io(lines))).toBe(0);
  // The deploy, then bluegreen-apply --preview on every host; the token is printed, never recorded.
  expect(fake.calls).toEqual([['--retry'], ['--preview']]);
  const token = /X-Bluegreen-Preview: ([A-Za-z0-9_-]{32})/.exec(lines.join('\n'))![1];
  const record = (await backend.readRecord())!;
  expect(record).toMatchObject({ state: 'deployed', preview: true });
  expect(JSON.stringify(record)).not.toContain(token);
  const read = async () =>
    (await ssm.send(new GetParameterCommand({ Name: names.preview, WithDecryption: true }))).Parameter!;
  expect(await read()).toMatchObject({ Type: 'SecureString', Value: `${record.pool} ${token}` });
  // The next release redeploys that pool: its preview ends first.
  fake.calls.length = 0;
  expect(await runRelease(options({ release: 'v3', promote: false }), backend, io(lines))).toBe(0);
  expect(fake.calls.slice(0, 2)).toEqual([['--preview'], ['--retry']]);
  expect(lines.join('\n')).toMatch(/the preview of .* ended/);
  expect((await read()).Value).not.toContain(token);
});

test('a host failing the health gate fails the release and puts the idle pool back on its previous release', async () => {
  const fake = host((release) => release !== 'v2');
  const lines: string[] = [];
  const backend = new AwsReleaseBackend({ ssm, ddb, stage, pollMs: 50, runApply: fake.runApply });
  const code = await runRelease(options(), backend, io(lines));
  expect(code).toBe(1);
  expect(await get(names.activePool)).toBe('blue');
  expect(await get(names.pools.green.release)).toBe('v0');
  const record = (await backend.readRecord())!;
  expect(record.state).toBe('failed');
  expect(record.reason).toMatch(/i-1: step health failed \(unhealthy after 60 s\)/);
  expect(fake.calls).toHaveLength(2); // the deploy, then the restore
  expect(lines.join('\n')).toMatch(/RUNBOOK.md#release-failed/);
});

test('naming the active pool is bad input: exit 2 and nothing written', async () => {
  const fake = host(() => true);
  const backend = new AwsReleaseBackend({ ssm, ddb, stage, runApply: fake.runApply });
  const lines: string[] = [];
  expect(await runRelease(options({ pool: 'blue' }), backend, io(lines))).toBe(2);
  expect(await backend.readRecord()).toBeUndefined();
  expect(await get(names.pools.blue.release)).toBe('v1');
  expect(fake.calls).toEqual([]);
  expect(lines.join('\n')).toMatch(/--pool blue is the active pool/);
});

test("the CLI's own SSM client (awsTarget) retries throttled calls with backoff: a release whose reads and writes are throttled goes through all the same", async () => {
  // Parameter Store's budget is the account's: the hosts' timers, the alert function or another stage
  // can use it up for a second. Throttle the release's first calls past the SDK's default 3 attempts.
  const proxy = await startThrottleProxy(moto.endpoint);
  const saved = { ...process.env };
  Object.assign(process.env, { ...moto.env, AWS_ENDPOINT_URL: proxy.endpoint });
  try {
    const target = awsTarget({ stage, region: 'us-east-1' }, {});
    const fake = host(() => true);
    const backend = new AwsReleaseBackend({ ssm: target.ssm, ddb, stage, pollMs: 50, runApply: fake.runApply });
    proxy.throttleNext(4, ['GetParameter', 'GetParameters', 'PutParameter']);
    const lines: string[] = [];
    const code = await runRelease(options(), backend, io(lines));
    expect(Object.values(proxy.throttled).reduce((a, b) => a + b, 0)).toBe(4);
    // Flipped and baked; held at the end only because no guard runs here (see above).
    expect(code).toBe(3);
    expect(await get(names.activePool)).toBe('green');
    expect((await backend.readRecord())?.state).toBe('held');
  } finally {
    process.env = saved;
    await proxy.close();
  }
}, 60_000);

/** Resolves once `n` callers arrived: both CLIs hold the same read before either writes. */
function barrier(n: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return () => {
    if (++arrived === n) open();
    return opened;
  };
}

/** A backend (its own SDK client: another process) whose first record write waits at `arrive`. */
function cli(arrive: () => Promise<void>, runApply: (args: string[]) => Promise<RunOnHostsResult>): AwsReleaseBackend {
  const own = new AwsReleaseBackend({
    ssm,
    ddb: new DynamoDBClient(motoClientConfig(moto)),
    stage,
    pollMs: 50,
    runApply,
  });
  let first = true;
  return Object.assign(Object.create(own) as AwsReleaseBackend, {
    writeRecord: async (record: ReleaseRecord, basis: ReleaseRecord | undefined) => {
      if (first) {
        first = false;
        await arrive();
      }
      return own.writeRecord(record, basis);
    },
  });
}

test('two CLIs starting a release at the same moment: exactly one wins, every time over 50 tries', async () => {
  const fake = host(() => true);
  let wins = 0;
  for (let attempt = 1; attempt <= 50; attempt++) {
    const arrive = barrier(2);
    const out: string[][] = [[], []];
    // --no-promote: the winner ends deployed (final) at once, so the next try can start.
    const codes = await Promise.all(
      [0, 1].map((i) =>
        runRelease(options({ release: `v${attempt}-${i}`, promote: false }), cli(arrive, fake.runApply), io(out[i])),
      ),
    );
    expect(codes.slice().sort()).toEqual([0, 2]);
    const loser = codes.indexOf(2);
    expect(out[loser].join('\n')).toMatch(/started on stage .* since this command's checks; one release at a time/);
    const head = (await new AwsReleaseBackend({ ssm, ddb, stage }).readRecord())!;
    expect(head).toMatchObject({ release: `v${attempt}-${1 - loser}`, state: 'deployed' });
    wins++;
  }
  expect(wins).toBe(50);
  // Every try left exactly one release in the ledger: the loser wrote nothing.
  expect(await new AwsReleaseBackend({ ssm, ddb, stage }).history()).toHaveLength(50);
}, 240_000);

test("a guard's decision is never overwritten: of a guard and a CLI writing on the same version, one wins, 50 times", async () => {
  const ledger = new AwsReleaseBackend({ ssm, ddb, stage }).ledger;
  const other = new AwsReleaseBackend({ ssm, ddb: new DynamoDBClient(motoClientConfig(moto)), stage }).ledger;
  const outcomes = { guard: 0, cli: 0 };
  for (let attempt = 1; attempt <= 50; attempt++) {
    const baking = await ledger.write(bakingRecord(Date.now(), { id: `r${attempt}` }), await ledger.head());
    // The guard rolls back; the CLI, on the same version, refreshes the record (its bake wait).
    const [guard, refresh] = await Promise.allSettled([
      ledger.write({ ...baking, state: 'rolled-back', decidedBy: 'release guard (alert-function)' }, baking),
      other.write({ ...baking, updatedAt: new Date().toISOString() }, baking),
    ]);
    expect([guard.status, refresh.status].sort()).toEqual(['fulfilled', 'rejected']);
    const lost = (guard.status === 'rejected' ? guard : refresh) as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(RecordChanged);
    const head = (await ledger.head())!;
    if (guard.status === 'fulfilled') {
      outcomes.guard++;
      expect(head.state).toBe('rolled-back');
    } else {
      outcomes.cli++;
      // The CLI's refresh won: the guard's write failed and its decision is taken on the next event.
      expect(head.state).toBe('baking');
    }
    expect(head.revision).toBe(baking.revision! + 1);
  }
  expect(outcomes.guard + outcomes.cli).toBe(50);
}, 120_000);

test("with the stage's releaseHistoryDays, a release's items expire that many days after its start; the head never", async () => {
  await put(names.releaseHistoryDays, '90');
  const fake = host(() => true);
  const backend = new AwsReleaseBackend({ ssm, ddb, stage, pollMs: 50, runApply: fake.runApply });
  expect(await runRelease(options({ promote: false }), backend, io([]))).toBe(0);
  const head = (await backend.readRecord())!;
  expect(head.historyDays).toBe(90);
  const expected = String(Math.floor((Date.parse(head.startedAt) + 90 * 86_400_000) / 1000));
  const items = (await ddb.send(new ScanCommand({ TableName: ledgerTableName(stage) }))).Items ?? [];
  const byPk = (pk: string) => items.filter((i) => i.pk.S!.startsWith(pk));
  expect(byPk('head').map((i) => i.expiresAt)).toEqual([undefined]);
  for (const item of [...byPk('release'), ...byPk('events#')]) expect(item.expiresAt).toEqual({ N: expected });
  expect(byPk('events#').length).toBeGreaterThanOrEqual(3);
});

test('the SSM record is imported on first use; history over 300 releases reads the ledger in full', async () => {
  // A stage from before the ledger: the record parameter's versions (what SSM kept).
  await put(names.release, JSON.stringify({ ...bakingRecord(Date.parse('2026-11-01T10:00:00Z'), { id: 'old-1' }) }));
  await put(
    names.release,
    JSON.stringify({ ...bakingRecord(Date.parse('2026-11-01T10:00:00Z'), { id: 'old-1' }), state: 'promoted' }),
  );
  const backend = new AwsReleaseBackend({ ssm, ddb, stage });
  expect(await backend.readRecord()).toMatchObject({ id: 'old-1', state: 'promoted', revision: 2 });
  // A second reader (another CLI) finds it imported, not imported twice.
  expect((await new AwsReleaseBackend({ ssm, ddb, stage }).history()).map((r) => r.id)).toEqual(['old-1']);
  // 300 more releases, each written twice (started, finished), then the history.
  const t0 = Date.parse('2026-11-02T00:00:00Z');
  let head = await backend.readRecord();
  for (let i = 0; i < 300; i++) {
    const started = bakingRecord(t0 + i * 3_600_000, {
      id: `20261102-${String(i).padStart(4, '0')}-green-v${i}`,
      release: `v${i}`,
    });
    head = await backend.writeRecord(started, head);
    head = await backend.writeRecord({ ...started, state: i % 10 === 0 ? 'rolled-back' : 'promoted' }, head);
  }
  const all = await backend.history();
  expect(all).toHaveLength(301);
  const lines: string[] = [];
  const saved = { ...process.env };
  Object.assign(process.env, moto.env);
  try {
    expect(await historyCommand(['--stage', stage, '--limit', '1000'], moto.env, (l) => lines.push(l), unused)).toBe(0);
    expect(
      lines
        .join('\n')
        .split('\n')
        .filter((l) => /^20261102-/.test(l)),
    ).toHaveLength(300);
    lines.length = 0;
    expect(
      await historyCommand(['--stage', stage, '--json', '--limit', '1000'], moto.env, (l) => lines.push(l), unused),
    ).toBe(0);
    const json = JSON.parse(lines.join('\n')) as ReleaseRecord[];
    expect(json).toHaveLength(301);
    expect(json.filter((r) => r.state === 'rolled-back')).toHaveLength(30);
  } finally {
    process.env = saved;
  }
}, 240_000);
