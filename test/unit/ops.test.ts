// The AWS operator commands' logic with injected SDK clients (aws-sdk-client-mock): query polling
// and its failure states, the flip's wait loop (success, host failure, timeout), the table.
import { CloudWatchLogsClient, GetQueryResultsCommand, StartQueryCommand } from '@aws-sdk/client-cloudwatch-logs';
import {
  CommandInvocationStatus,
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  GetParameterCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mockLedger } from '../helpers/ledger';
import type { ReleaseRecord } from '../../core/release-record';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { flipOnAws } from '../../ops/aws-flip';
import { awsStatusCommand } from '../../ops/stage-commands';
import { formatTable, parseSince, QueryError, runQuery } from '../../ops/insights-query';

const logsMock = mockClient(CloudWatchLogsClient);
const ssmMock = mockClient(SSMClient);
// The release ledger (status reads its head), in memory: no test reaches AWS.
const ddbMock = mockClient(DynamoDBClient);
let ledger = mockLedger(ddbMock);
beforeEach(() => (ledger = mockLedger(ddbMock)));
afterEach(() => {
  logsMock.reset();
  ssmMock.reset();
  ddbMock.reset();
});
const noSleep = async () => undefined;

describe('runQuery', () => {
  const base = {
    logs: new CloudWatchLogsClient({ region: 'us-east-1' }),
    logGroup: '/bluegreen/p/nginx/access',
    query: 'stats count(*)',
    startMs: 1_000_000,
    endMs: 4_600_000,
    pollMs: 1,
    timeoutMs: 60_000,
    sleep: noSleep,
  };

  test('polls until Complete and returns the rows without @ptr', async () => {
    logsMock.on(StartQueryCommand).resolves({ queryId: 'q1' });
    logsMock
      .on(GetQueryResultsCommand)
      .resolvesOnce({ status: 'Scheduled' })
      .resolvesOnce({ status: 'Running' })
      .resolves({
        status: 'Complete',
        results: [
          [
            { field: 'pool', value: 'blue' },
            { field: 'requests', value: '42' },
            { field: '@ptr', value: 'x' },
          ],
        ],
      });
    expect(await runQuery(base)).toEqual([{ pool: 'blue', requests: '42' }]);
    expect(logsMock.commandCalls(StartQueryCommand)[0].args[0].input).toEqual({
      logGroupName: '/bluegreen/p/nginx/access',
      queryString: 'stats count(*)',
      startTime: 1000,
      endTime: 4600,
    });
    expect(logsMock.commandCalls(GetQueryResultsCommand)).toHaveLength(3);
  });

  test.each(['Failed', 'Cancelled', 'Timeout'] as const)('status %s is an error saying so', async (status) => {
    logsMock.on(StartQueryCommand).resolves({ queryId: 'q1' });
    logsMock.on(GetQueryResultsCommand).resolves({ status });
    await expect(runQuery(base)).rejects.toThrow(new QueryError(`the query ended with status ${status}`));
  });

  test('a query that never completes is given up after the timeout', async () => {
    let t = 0;
    logsMock.on(StartQueryCommand).resolves({ queryId: 'q1' });
    logsMock.on(GetQueryResultsCommand).resolves({ status: 'Running' });
    await expect(runQuery({ ...base, timeoutMs: 5000, now: () => (t += 1000) })).rejects.toThrow(
      'the query did not complete within 5 s (status Running)',
    );
  });

  test('throttling from StartQuery surfaces as the SDK error', async () => {
    logsMock.on(StartQueryCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    await expect(runQuery(base)).rejects.toThrow('Rate exceeded');
  });
});

test('formatTable: aligned columns in first-seen order', () => {
  expect(
    formatTable([
      { minute: '2026-11-22 10:01:00.000', pool: 'green', requests: '1200', errors_5xx: '0' },
      { minute: '2026-11-22 10:00:00.000', pool: 'blue', requests: '98', errors_5xx: '12' },
    ]),
  ).toMatchSnapshot();
  expect(formatTable([])).toBe('(no rows)');
});

test('parseSince', () => {
  expect(parseSince('30m')).toBe(1_800_000);
  expect(parseSince('2d')).toBe(172_800_000);
  expect(() => parseSince('1 hour')).toThrow('--since must look like 30m, 1h or 2d, got "1 hour"');
});

describe('flipOnAws', () => {
  // The public URL: one host's nginx, or a load balancer in front of several hosts, answering in
  // turn (round robin). Each host serves `served[i]` and reports `active[i]` as its active pool.
  let server: http.Server;
  let served: string[] = ['blue'];
  /** Undefined: each host reports the pool it serves as active. */
  let active: string[] | undefined;
  let turn = 0;
  let url: string;
  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      const i = turn++ % served.length;
      res.writeHead(200, { 'X-App-Pool': served[i], 'X-Active-Pool': active?.[i] ?? served[i] });
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  const params = { activePool: '/bluegreen/p/active-pool', publicUrl: '/bluegreen/p/public-url' };
  const base = () => ({
    ssm: new SSMClient({ region: 'us-east-1' }),
    stage: 'p',
    params,
    pool: 'green' as const,
    wait: true,
    timeoutMs: 10_000,
    pollMs: 1,
    out: (l: string) => lines.push(l),
    sleep: noSleep,
  });
  /** The command the pool-switch rule sends: AWS-RunShellScript to the stage tag. */
  const switchCommand = {
    CommandId: 'c-switch',
    Targets: [{ Key: 'tag:BluegreenStage', Values: ['p'] }],
    RequestedDateTime: new Date(),
    Status: 'InProgress' as const,
  };
  const invocations = (statuses: Record<string, string>) => ({
    CommandInvocations: Object.entries(statuses).map(([InstanceId, Status]) => ({
      InstanceId,
      Status: Status as CommandInvocationStatus,
    })),
  });
  let lines: string[];
  beforeEach(() => {
    lines = [];
    served = ['blue'];
    active = undefined;
    turn = 0;
    ssmMock.on(GetParameterCommand, { Name: params.activePool }).resolves({ Parameter: { Value: 'blue' } });
    ssmMock.on(GetParameterCommand, { Name: params.publicUrl }).resolves({ Parameter: { Value: url } });
    ssmMock.on(PutParameterCommand).resolves({});
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [switchCommand] });
  });

  test('one host: writes the parameter, waits with progress, confirms when the host applied it and the endpoint answers from the new pool', async () => {
    let polls = 0;
    ssmMock.on(ListCommandInvocationsCommand).callsFake(() => {
      polls++;
      if (polls === 2) served = ['green']; // the host applied it
      return invocations({ 'i-0abc': polls < 2 ? 'InProgress' : 'Success' });
    });
    const outcome = await flipOnAws(base());
    expect(outcome.ok).toBe(true);
    expect(ssmMock.commandCalls(PutParameterCommand)[0].args[0].input).toEqual({
      Name: params.activePool,
      Value: 'green',
      Type: 'String',
      Overwrite: true,
    });
    expect(lines[0]).toBe('/bluegreen/p/active-pool: blue → green');
    // The pool-switch's command is found by document and time; its hosts by its invocations.
    expect(ssmMock.commandCalls(ListCommandsCommand)[0].args[0].input.Filters).toEqual(
      expect.arrayContaining([{ key: 'DocumentName', value: 'AWS-RunShellScript' }]),
    );
    expect(ssmMock.commandCalls(ListCommandInvocationsCommand)[0].args[0].input).toMatchObject({
      CommandId: 'c-switch',
    });
    expect(lines).toContain(
      'waiting… hosts: i-0abc InProgress; endpoint: 0 of 10 in a row from green (last: 200 from blue, active blue)',
    );
    expect(lines.at(-1)).toMatch(
      /^confirmed: http:\/\/127\.0\.0\.1:\d+ is answered by green after [\d.]+ s \(10 answers in a row; hosts: i-0abc Success\)$/,
    );
  });

  test('the host command failing ends the wait with the host, the reason and the runbook section', async () => {
    ssmMock.on(ListCommandInvocationsCommand).resolves(invocations({ 'i-0abc': 'Failed' }));
    const outcome = await flipOnAws(base());
    expect(outcome).toEqual({
      ok: false,
      reason: expect.stringContaining('bluegreen-apply ended Failed on i-0abc (of 1 hosts'),
    });
    expect(outcome.ok || outcome.reason).toMatch(
      /the endpoint answers 200 from blue.*RUNBOOK\.md "When a flip does not land"/,
    );
  });

  test('no confirmation within the timeout: not ok, saying what the endpoint answers', async () => {
    let t = 0;
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [] });
    const outcome = await flipOnAws({ ...base(), timeoutMs: 3000, now: () => (t += 500) });
    expect(outcome).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /^not confirmed within 3 s: http:\/\/127\.0\.0\.1:\d+ does not answer from green 10 times in a row \(last: 200 from blue, active blue; hosts: no command seen yet\)/,
      ),
    });
  });

  test("confirm 'active': a promotion is confirmed by the host's active pool while the other pool still answers", async () => {
    let polls = 0;
    ssmMock.on(ListCommandInvocationsCommand).callsFake(() => {
      if (++polls === 2) active = ['green']; // applied; green fails, so blue keeps answering
      return invocations({ 'i-0abc': polls < 2 ? 'InProgress' : 'Success' });
    });
    const outcome = await flipOnAws({ ...base(), confirm: 'active' });
    expect(outcome.ok).toBe(true);
    expect(lines.at(-1)).toMatch(
      /^confirmed: http:\/\/127\.0\.0\.1:\d+ has green active after [\d.]+ s \(10 answers in a row; hosts: i-0abc Success\); the last answer came from blue \(200\)$/,
    );
    // The default still wants the new pool's own answer.
    let t = 0;
    expect((await flipOnAws({ ...base(), timeoutMs: 2000, now: () => (t += 500) })).ok).toBe(false);
  });

  test('--no-wait: only the write', async () => {
    expect(await flipOnAws({ ...base(), wait: false })).toEqual({ ok: true });
    expect(ssmMock.commandCalls(ListCommandsCommand)).toHaveLength(0);
  });

  test('a stage that is not deployed: no write, a clear reason', async () => {
    ssmMock
      .on(GetParameterCommand, { Name: params.activePool })
      .rejects(Object.assign(new Error('not found'), { name: 'ParameterNotFound' }));
    expect(await flipOnAws(base())).toEqual({
      ok: false,
      reason: '/bluegreen/p/active-pool does not exist: is the stack deployed in this account and region?',
    });
    expect(ssmMock.commandCalls(PutParameterCommand)).toHaveLength(0);
  });

  describe('a fleet of three hosts behind a load balancer (no instance-id parameter)', () => {
    test('one lagging host: not confirmed by a lucky answer; confirmed once N answers in a row come from the new pool', async () => {
      // No command listed (the hosts' timers apply it): the endpoint alone decides.
      ssmMock.on(ListCommandsCommand).resolves({ Commands: [] });
      served = ['green', 'green', 'blue'];
      let polls = 0;
      ssmMock.on(ListCommandsCommand).callsFake(() => {
        if (++polls === 3) served = ['green', 'green', 'green']; // the third host's timer applied it
        return { Commands: [] };
      });
      const outcome = await flipOnAws(base());
      expect(outcome.ok).toBe(true);
      expect(lines).toContain(
        'waiting… hosts: no command seen yet; endpoint: 2 of 10 in a row from green (last: 200 from blue, active blue)',
      );
      expect(polls).toBe(3);
    });

    test('every host must report Success: confirmed only after the last one did, each host named', async () => {
      served = ['green', 'green', 'green'];
      let polls = 0;
      ssmMock.on(ListCommandInvocationsCommand).callsFake(() => {
        polls++;
        return invocations({ 'i-1': 'Success', 'i-2': 'Success', 'i-3': polls < 3 ? 'InProgress' : 'Success' });
      });
      const outcome = await flipOnAws(base());
      expect(outcome.ok).toBe(true);
      expect(polls).toBe(3);
      expect(lines).toContain(
        'waiting… hosts: i-1 Success, i-2 Success, i-3 InProgress; endpoint: 10 of 10 in a row from green (last: 200 from green, active green)',
      );
      expect(lines.at(-1)).toMatch(
        /is answered by green after [\d.]+ s \(10 answers in a row; hosts: i-1 Success, i-2 Success, i-3 Success\)$/,
      );
    });

    test('one host failing the switch: not confirmed, naming that host, at once', async () => {
      served = ['green', 'blue', 'green'];
      ssmMock
        .on(ListCommandInvocationsCommand)
        .resolves(invocations({ 'i-1': 'Success', 'i-2': 'Failed', 'i-3': 'Success' }));
      const outcome = await flipOnAws(base());
      expect(outcome).toEqual({
        ok: false,
        reason: expect.stringMatching(
          /^bluegreen-apply ended Failed on i-2 \(of 3 hosts; those keep the old pool until their one-minute timer applies it\)/,
        ),
      });
      expect(ssmMock.commandCalls(ListCommandInvocationsCommand)).toHaveLength(1);
    });

    test("the CLI's own commands (a release's canary share just before the promotion) are not taken for the rule's", async () => {
      served = ['green'];
      const at = new Date();
      ssmMock.on(ListCommandsCommand).resolves({
        Commands: [
          { ...switchCommand, CommandId: 'c-switch', RequestedDateTime: new Date(at.getTime() - 1000) },
          {
            ...switchCommand,
            CommandId: 'c-canary',
            RequestedDateTime: at,
            Comment: 'bluegreen p: release deploy (/usr/local/bin/bluegreen-apply)',
          },
        ],
      });
      ssmMock.on(ListCommandInvocationsCommand, { CommandId: 'c-switch' }).resolves(invocations({ 'i-1': 'Success' }));
      ssmMock.on(ListCommandInvocationsCommand, { CommandId: 'c-canary' }).resolves(invocations({ 'i-1': 'Failed' }));
      expect((await flipOnAws(base())).ok).toBe(true);
      expect(ssmMock.commandCalls(ListCommandInvocationsCommand).map((c) => c.args[0].input.CommandId)).toEqual([
        'c-switch',
      ]);
    });

    test('--answers bounds the requests of one round', async () => {
      served = ['green'];
      ssmMock.on(ListCommandInvocationsCommand).resolves(invocations({ 'i-1': 'Success' }));
      expect((await flipOnAws({ ...base(), answers: 3 })).ok).toBe(true);
      expect(turn).toBe(3);
      expect(lines.at(-1)).toMatch(/\(3 answers in a row; hosts: i-1 Success\)$/);
    });
  });
});

describe('status --stage on a fleet: one row per host', () => {
  let server: http.Server;
  let url: string;
  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'X-App-Pool': 'green', 'X-Release-Id': 'v2', 'X-Active-Pool': 'green' });
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  test('the hosts by the stage tag: agent, the last bluegreen-apply and the active pool it reported, the last release gate per host', async () => {
    const at = '2026-11-23T18:00:00.000Z';
    const record: ReleaseRecord = {
      id: '20261123-180000-green-v3',
      pool: 'green',
      release: 'v3',
      env: {},
      previousPool: 'blue',
      previousRelease: 'v2',
      replacedRelease: 'v1',
      strategy: 'all-at-once',
      canaryPercent: 0,
      bakeSeconds: 60,
      state: 'failed',
      reason: 'gate failed on green: i-2: step health failed',
      startedAt: at,
      updatedAt: at,
      steps: [
        { at, step: 'start', ok: true },
        { at, step: 'smoke', ok: true, host: 'i-1', detail: 'green: /version answers v3' },
        { at, step: 'host', ok: true, host: 'i-1', detail: 'Run Command Success' },
        { at, step: 'health', ok: false, host: 'i-2', detail: 'green: unhealthy after 60 s' },
        { at, step: 'host', ok: false, host: 'i-2', detail: 'Run Command Failed' },
        { at, step: 'host', ok: false, host: 'i-3', detail: 'Run Command NotRun: not run' },
        // The restore that followed: not the gate.
        { at, step: 'host', ok: true, host: 'i-2', detail: 'Run Command Success' },
      ],
    };
    const values: Record<string, string> = {
      '/bluegreen/p/active-pool': 'green',
      '/bluegreen/p/maintenance': 'off',
      '/bluegreen/p/public-url': url,
      '/bluegreen/p/canary-percent': '10 cookie:session',
    };
    ledger.seed(record);
    ssmMock
      .on(GetParameterCommand)
      .callsFake(({ Name }) =>
        Name in values
          ? { Parameter: { Value: values[Name] } }
          : Promise.reject(Object.assign(new Error('nf'), { name: 'ParameterNotFound' })),
      );
    ssmMock.on(DescribeInstanceInformationCommand).resolves({
      InstanceInformationList: [
        { InstanceId: 'i-1', PingStatus: 'Online' },
        { InstanceId: 'i-2', PingStatus: 'Online' },
        { InstanceId: 'i-3', PingStatus: 'ConnectionLost' },
      ],
    });
    ssmMock.on(ListCommandsCommand).resolves({
      Commands: [
        {
          CommandId: 'c-9',
          Targets: [{ Key: 'tag:BluegreenStage', Values: ['p'] }],
          RequestedDateTime: new Date(at),
        },
      ],
    });
    ssmMock.on(ListCommandInvocationsCommand).resolves({
      CommandInvocations: [
        { InstanceId: 'i-1', Status: 'Success' },
        { InstanceId: 'i-2', Status: 'Success' },
        { InstanceId: 'i-3', Status: 'Failed' },
      ],
    });
    ssmMock
      .on(GetCommandInvocationCommand)
      .resolves({ StandardOutputContent: 'step=active pool=green ok=true detail=unchanged\n' });
    const lines: string[] = [];
    // Half an hour after the command: status looks back 24 h from its own clock.
    const code = await awsStatusCommand(
      ['--stage', 'p', '--region', 'us-east-1'],
      {},
      (l) => lines.push(l),
      () => Date.parse(at) + 30 * 60_000,
    );
    expect(code).toBe(0);
    expect(ssmMock.commandCalls(ListCommandsCommand)[0].args[0].input.Filters).toContainEqual({
      key: 'InvokedAfter',
      value: '2026-11-22T18:30:00.000Z',
    });
    const text = lines.join('\n');
    expect(text).toMatch(/^host\s+none named \(a fleet: see hosts\)$/m);
    expect(text).toMatch(/^canary\s+10% of requests try blue first \(sticky on cookie:session: /m);
    // The failed release's preview ended with it.
    expect(text).toMatch(/^preview\s+none$/m);
    expect(text).toMatch(
      /^last release\s+20261123-180000-green-v3: failed \(gate failed on green: i-2: step health failed\)$/m,
    );
    expect(text).toMatch(
      /^hosts\s+3 tagged BluegreenStage=p \(2 online\); last bluegreen-apply Run Command c-9 at 2026-11-23T18:00:00\.000Z$/m,
    );
    expect(text).toMatch(/^ {2}i-1\s+agent Online; last apply Success, active green; release v3: gate ok$/m);
    expect(text).toMatch(
      /^ {2}i-2\s+agent Online; last apply Success, active green; release v3: gate FAILED \(step health \(green: unhealthy after 60 s\)\)$/m,
    );
    expect(text).toMatch(/^ {2}i-3\s+agent ConnectionLost; last apply Failed; release v3: not run$/m);
    // Found by the stage tag, never by an instance id.
    expect(ssmMock.commandCalls(DescribeInstanceInformationCommand)[0].args[0].input.Filters).toEqual([
      { Key: 'tag:BluegreenStage', Values: ['p'] },
    ]);
  });

  test('SSM refusing the host calls is said in the row, not fatal', async () => {
    ssmMock
      .on(GetParameterCommand)
      .callsFake(({ Name }) =>
        Name === '/bluegreen/p/active-pool'
          ? { Parameter: { Value: 'blue' } }
          : Name === '/bluegreen/p/public-url'
            ? { Parameter: { Value: url } }
            : Promise.reject(Object.assign(new Error('nf'), { name: 'ParameterNotFound' })),
      );
    ssmMock.on(DescribeInstanceInformationCommand).rejects(
      Object.assign(new Error('not authorized to perform ssm:DescribeInstanceInformation'), {
        name: 'AccessDeniedException',
      }),
    );
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [] });
    const lines: string[] = [];
    expect(await awsStatusCommand(['--stage', 'p', '--region', 'us-east-1'], {}, (l) => lines.push(l))).toBe(0);
    expect(lines.join('\n')).toMatch(
      /^hosts\s+0 tagged BluegreenStage=p \(0 online\); no bluegreen-apply Run Command in 24 h; agents not readable: not authorized to perform ssm:DescribeInstanceInformation$/m,
    );
  });
});
