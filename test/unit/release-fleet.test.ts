// `bluegreen release --stage` on a fleet of three hosts, through the real AWS backend and the real
// Run Command client code, with SSM played by aws-sdk-client-mock (moto runs no commands): the
// parameters in memory, Run Command answering per host with the step lines bluegreen-apply prints,
// the pool-switch rule's command appearing once the active pool is written, and a public URL that
// answers from the pool the parameter names (a load balancer whose hosts all applied it).
import {
  GetCommandInvocationCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  PutParameterCommand,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mockLedger } from '../helpers/ledger';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { parameterNames } from '../../core/names';
import { hostApplyCommand, JOINING_DETAIL, JOINING_STEP } from '../../core/host-command';
import { parseReleaseArgs } from '../../ops/release/args';
import { AwsReleaseBackend } from '../../ops/release/aws-backend';
import { formatHistory, historyRows } from '../../ops/release/history';
import { runRelease } from '../../ops/release/orchestrator';

const STAGE = 'fleet';
const names = parameterNames(STAGE);
const HOSTS = ['i-1', 'i-2', 'i-3'];
const ssmMock = mockClient(SSMClient);
const ddbMock = mockClient(DynamoDBClient);
let ledger: ReturnType<typeof mockLedger>;

let store: Map<string, string>;
let endpoint: http.Server;
let url: string;

beforeAll(async () => {
  endpoint = http.createServer((_req, res) => {
    const pool = store.get(names.activePool) ?? 'none';
    res.writeHead(200, { 'X-App-Pool': pool, 'X-Active-Pool': pool });
    res.end('{}');
  });
  await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => endpoint.close(r)));
afterEach(() => ssmMock.reset());

interface HostAnswer {
  status: 'Success' | 'Failed' | 'Pending';
  stdout?: string;
  stderr?: string;
}

const ok = (pool: string, release: string) =>
  [
    `step=recreate pool=${pool} ok=true`,
    `step=health pool=${pool} ok=true detail=healthy after 3 s`,
    `step=smoke pool=${pool} ok=true detail=/version answers ${release}`,
  ].join('\n');

/**
 * The stage as SSM sees it. `deploys[n]` is what each host answers to the n-th bluegreen-apply the
 * CLI sends (the deploy, then the restore); the pool-switch rule's command shows up after a write
 * of the active pool, every host Success.
 */
function stage(deploys: Array<Record<string, HostAnswer>>, commandStatus: (n: number) => string = () => 'Success') {
  store = new Map([
    [names.activePool, 'blue'],
    [names.canaryPercent, '0'],
    [names.publicUrl, url],
    [names.pools.blue.image, 'bluegreen-app:local'],
    [names.pools.blue.release, 'v1'],
    [names.pools.blue.env, '{}'],
    [names.pools.green.image, 'bluegreen-app:local'],
    [names.pools.green.release, 'v0'],
    [names.pools.green.env, '{}'],
  ]);
  ledger = mockLedger(ddbMock);
  const sent: string[] = [];
  let switchSentAt: Date | undefined;
  ssmMock.on(GetParameterCommand).callsFake(({ Name }) => {
    if (!store.has(Name))
      return Promise.reject(Object.assign(new Error(`${Name} not found`), { name: 'ParameterNotFound' }));
    return { Parameter: { Name, Value: store.get(Name) } };
  });
  ssmMock.on(GetParametersCommand).callsFake(({ Names }) => ({
    Parameters: (Names as string[]).filter((n) => store.has(n)).map((n) => ({ Name: n, Value: store.get(n) })),
  }));
  // The stage's secrets (none here): a path read of the store.
  ssmMock.on(GetParametersByPathCommand).callsFake(({ Path }) => ({
    Parameters: [...store.keys()]
      .filter((n) => n.startsWith(`${Path}/`))
      .map((n) => ({ Name: n, Value: store.get(n) })),
  }));
  ssmMock.on(PutParameterCommand).callsFake(({ Name, Value }) => {
    store.set(Name, Value);
    if (Name === names.activePool) switchSentAt = new Date();
    return {};
  });
  ssmMock.on(SendCommandCommand).callsFake(() => {
    sent.push(`c-${sent.length}`);
    return { Command: { CommandId: sent.at(-1) } };
  });
  const answer = (id: string, host: string): HostAnswer =>
    id === 'c-switch' ? { status: 'Success' } : deploys[Math.min(Number(id.slice(2)), deploys.length - 1)][host];
  ssmMock.on(ListCommandInvocationsCommand).callsFake(({ CommandId }) => ({
    CommandInvocations: HOSTS.map((h) => ({ InstanceId: h, Status: answer(CommandId, h).status })),
  }));
  ssmMock.on(GetCommandInvocationCommand).callsFake(({ CommandId, InstanceId }) => ({
    StandardOutputContent: answer(CommandId, InstanceId).stdout ?? '',
    StandardErrorContent: answer(CommandId, InstanceId).stderr ?? '',
  }));
  ssmMock.on(ListCommandsCommand).callsFake(({ CommandId }) => {
    if (CommandId) return { Commands: [{ CommandId, Status: commandStatus(Number(String(CommandId).slice(2))) }] };
    // The pool-switch rule's command: to the stage tag, after the active pool changed.
    return {
      Commands: switchSentAt
        ? [
            {
              CommandId: 'c-switch',
              Targets: [{ Key: 'tag:BluegreenStage', Values: [STAGE] }],
              RequestedDateTime: switchSentAt,
              Status: 'Success',
            },
          ]
        : [],
    };
  });
  return { sent };
}

function run(args: string[] = []) {
  const lines: string[] = [];
  const backend = new AwsReleaseBackend({
    ssm: new SSMClient({ region: 'us-east-1' }),
    ddb: new DynamoDBClient({ region: 'us-east-1' }),
    stage: STAGE,
    pollMs: 1,
    sleep: async () => undefined,
  });
  const options = parseReleaseArgs(['--release', 'v2', '--bake', '1s', ...args]).options;
  return { lines, promise: runRelease(options, backend, { out: (l) => lines.push(l), pollMs: 5, graceMs: 50 }) };
}

const sendInputs = () => ssmMock.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
const writesOf = (name: string) =>
  ssmMock
    .commandCalls(PutParameterCommand)
    .filter((c) => c.args[0].input.Name === name)
    .map((c) => c.args[0].input.Value);

test('one host of three fails its gate: exit 1, nothing promoted, the record names the host and why, every host restored', async () => {
  const failing = {
    status: 'Failed' as const,
    stdout: 'step=recreate pool=green ok=true\nstep=health pool=green ok=false detail=unhealthy after 60 s',
    stderr: 'bluegreen-apply: green did not become healthy\n',
  };
  // The deploy: i-1 passes, i-2 fails, i-3 is never started (MaxErrors 0 stopped the command). The restore: all pass.
  stage(
    [
      { 'i-1': { status: 'Success', stdout: ok('green', 'v2') }, 'i-2': failing, 'i-3': { status: 'Pending' } },
      Object.fromEntries(HOSTS.map((h) => [h, { status: 'Success', stdout: ok('green', 'v0') }])),
    ],
    (n) => (n === 0 ? 'Failed' : 'Success'),
  );
  const { lines, promise } = run();
  expect(await promise).toBe(1);

  // Nothing promoted: the active pool was never written, on any host.
  expect(writesOf(names.activePool)).toEqual([]);
  expect(store.get(names.activePool)).toBe('blue');
  // The idle pool is back on what it ran, on every host (the restore runs everywhere, whatever fails).
  expect(store.get(names.pools.green.release)).toBe('v0');
  expect(sendInputs().map((i) => [i.MaxConcurrency, i.MaxErrors, i.Parameters?.commands])).toEqual([
    ['50%', '0', [hostApplyCommand(['--retry'])]],
    ['100%', '100%', [hostApplyCommand(['--retry'])]],
  ]);

  const record = ledger.head()!;
  expect(record.state).toBe('failed');
  expect(record.reason).toBe(
    'gate failed on green: i-2: step health failed (unhealthy after 60 s); not run on i-3 (Run Command stopped after the failure) [1 of 3 hosts failed]',
  );
  const hostSteps = record.steps.filter((s) => s.step === 'host').map((s) => [s.host, s.ok]);
  expect(hostSteps.slice(0, 3)).toEqual([
    ['i-1', true],
    ['i-2', false],
    ['i-3', false],
  ]);
  expect(record.steps.find((s) => s.host === 'i-2' && s.step === 'health')).toMatchObject({
    ok: false,
    detail: 'green: unhealthy after 60 s',
  });

  const text = lines.join('\n');
  expect(text).toMatch(/FAIL health \[i-2\]: green: unhealthy after 60 s/);
  expect(text).toContain('hosts: 1 of 3 passed the gate; failed: i-2; not run: i-3');
  expect(text).toContain('RUNBOOK.md#release-failed');
  expect(text).not.toMatch(/promoted/i);

  // history: each host's gate in its own column (the deploy's, not the restore's).
  const rows = historyRows([record], Date.now());
  expect(rows[0].hosts).toBe('1/3 ok; failed i-2; not run i-3');
  const table = formatHistory(rows).split('\n');
  expect(table[0]).toMatch(/^ID\s+POOL\s+RELEASE\s+STRATEGY\s+OUTCOME\s+DURATION\s+HOSTS\s+REASON$/);
  expect(table[1]).toMatch(/\s1\/3 ok; failed i-2; not run i-3\s+gate failed on green: i-2: step health failed/);
});

test('every host passes: the gate says so per host, the flip is confirmed on every host and through the URL, promoted', async () => {
  stage([Object.fromEntries(HOSTS.map((h) => [h, { status: 'Success', stdout: ok('green', 'v2') }]))]);
  const { lines, promise } = run();
  // The bake is the server side's: here nobody judges it, so the CLI holds it after the grace
  // (exit 3): it never promotes what nobody saw.
  expect(await promise).toBe(3);
  expect(writesOf(names.activePool)).toEqual(['green']);
  const record = ledger.head()!;
  expect(record.state).toBe('held');
  expect(record.steps.find((s) => s.step === 'gate')).toMatchObject({ ok: true, detail: '3 of 3 hosts' });
  expect(historyRows([record], Date.now())[0].hosts).toBe('3/3 ok');
  const text = lines.join('\n');
  expect(text).toContain('hosts: 3 of 3 passed the gate');
  expect(text).toContain('gate passed: green is healthy and answers v2 on all 3 hosts');
  expect(text).toMatch(
    /promoted: confirmed: http:\/\/127\.0\.0\.1:\d+ has green active after [\d.]+ s \(10 answers in a row; hosts: i-1 Success, i-2 Success, i-3 Success\)/,
  );
});

// Scale-out during a release: a host launched minutes ago carries the stage tag and
// answers Run Command before its bootstrap is done; the command answers the join step there.
const joining: HostAnswer = {
  status: 'Success',
  stdout: `step=${JOINING_STEP} pool=- ok=true detail=${JOINING_DETAIL}`,
};

test('a host still bootstrapping during the deploy is neither gated nor a failure: the release goes on with the hosts in service, and says so', async () => {
  stage([
    {
      'i-1': { status: 'Success', stdout: ok('green', 'v2') },
      'i-2': { status: 'Success', stdout: ok('green', 'v2') },
      'i-3': joining,
    },
  ]);
  const { lines, promise } = run();
  expect(await promise).toBe(3); // held: nobody judges the bake here (see above)
  expect(writesOf(names.activePool)).toEqual(['green']);
  const record = ledger.head()!;
  expect(record.state).toBe('held');
  expect(record.steps.find((s) => s.step === 'gate')).toMatchObject({ ok: true, detail: '2 of 2 hosts (1 joining)' });
  expect(historyRows([record], Date.now())[0].hosts).toBe('2/3 ok; joining i-3');
  const text = lines.join('\n');
  expect(text).toContain(
    'hosts: 2 of 2 passed the gate; 1 still bootstrapping (i-3): not in service, they join after this release with its outcome',
  );
  expect(text).toContain('gate passed: green is healthy and answers v2 on all 2 hosts');
});

test('no host in service took the deploy (all still bootstrapping): no gate, so nothing is promoted', async () => {
  stage([Object.fromEntries(HOSTS.map((h) => [h, joining]))]);
  const { lines, promise } = run();
  expect(await promise).toBe(1);
  expect(writesOf(names.activePool)).toEqual([]);
  const record = ledger.head()!;
  expect(record.state).toBe('failed');
  expect(record.reason).toBe(
    'gate not run on green: no host in service took the deploy (3 still bootstrapping: i-1, i-2, i-3)',
  );
  expect(lines.join('\n')).not.toMatch(/gate passed/);
});
