// `bluegreen release --stage` on its AWS backend against moto_server: the pool state and the record
// in SSM, the history from the record parameter's versions, and the whole flow with a stand-in host
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
import { Moto, startMoto } from '../helpers/moto';
import { startThrottleProxy } from '../helpers/throttle-proxy';
import { awsTarget } from '../../ops/aws-target';

let moto: Moto;
let ssm: SSMClient;
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

test('pool state and record round-trip through SSM; history holds every version of the record', async () => {
  const backend = new AwsReleaseBackend({ ssm, stage });
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
  expect(await backend.readRecord()).toBeUndefined(); // "{}" before the first release
  const first = { id: 'a', pool: 'green', state: 'deploying', steps: [] } as unknown as ReleaseRecord;
  await backend.writeRecord(first);
  await backend.writeRecord({ ...first, state: 'failed' });
  const history = await backend.history();
  expect(history.map((r) => r.state)).toEqual(['deploying', 'failed']);
  expect((await backend.readRecord())?.state).toBe('failed');
  expect(await backend.activePool()).toBe('blue');
});

test('a release goes to the idle pool, is promoted through the flip path and recorded; held without a guard, then promoted by hand', async () => {
  const fake = host(() => true);
  const lines: string[] = [];
  const backend = new AwsReleaseBackend({ ssm, stage, pollMs: 50, runApply: fake.runApply });
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
  const backend = new AwsReleaseBackend({ ssm, stage, pollMs: 50, runApply: fake.runApply });
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
  const backend = new AwsReleaseBackend({ ssm, stage, pollMs: 50, runApply: fake.runApply });
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
  const backend = new AwsReleaseBackend({ ssm, stage, runApply: fake.runApply });
  const lines: string[] = [];
  expect(await runRelease(options({ pool: 'blue' }), backend, io(lines))).toBe(2);
  expect(await get(names.release)).toBe('{}');
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
    const backend = new AwsReleaseBackend({ ssm: target.ssm, stage, pollMs: 50, runApply: fake.runApply });
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
