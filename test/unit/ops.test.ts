// The AWS operator commands' logic with injected SDK clients (aws-sdk-client-mock): query polling
// and its failure states, the flip's wait loop (success, host failure, timeout), the table.
import { CloudWatchLogsClient, GetQueryResultsCommand, StartQueryCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetParameterCommand, ListCommandsCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { flipOnAws } from '../../ops/aws-flip';
import { formatTable, parseSince, QueryError, runQuery } from '../../ops/insights';

const logsMock = mockClient(CloudWatchLogsClient);
const ssmMock = mockClient(SSMClient);
afterEach(() => {
  logsMock.reset();
  ssmMock.reset();
});
const noSleep = async () => undefined;

describe('runQuery', () => {
  const base = { logs: new CloudWatchLogsClient({ region: 'us-east-1' }), logGroup: '/bluegreen/p/nginx/access', query: 'stats count(*)', startMs: 1_000_000, endMs: 4_600_000, pollMs: 1, timeoutMs: 60_000, sleep: noSleep };

  test('polls until Complete and returns the rows without @ptr', async () => {
    logsMock.on(StartQueryCommand).resolves({ queryId: 'q1' });
    logsMock
      .on(GetQueryResultsCommand)
      .resolvesOnce({ status: 'Scheduled' })
      .resolvesOnce({ status: 'Running' })
      .resolves({ status: 'Complete', results: [[{ field: 'pool', value: 'blue' }, { field: 'requests', value: '42' }, { field: '@ptr', value: 'x' }]] });
    expect(await runQuery(base)).toEqual([{ pool: 'blue', requests: '42' }]);
    expect(logsMock.commandCalls(StartQueryCommand)[0].args[0].input).toEqual({ logGroupName: '/bluegreen/p/nginx/access', queryString: 'stats count(*)', startTime: 1000, endTime: 4600 });
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
    await expect(runQuery({ ...base, timeoutMs: 5000, now: () => (t += 1000) })).rejects.toThrow('the query did not complete within 5 s (status Running)');
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
  let server: http.Server;
  let servedPool = 'blue';
  let activeOnHost = 'blue';
  let url: string;
  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'X-App-Pool': servedPool, 'X-Active-Pool': activeOnHost });
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  const params = { activePool: '/bluegreen/p/active-pool', publicUrl: '/bluegreen/p/public-url', instanceId: '/bluegreen/p/instance-id' };
  const base = () => ({ ssm: new SSMClient({ region: 'us-east-1' }), params, pool: 'green' as const, wait: true, timeoutMs: 10_000, pollMs: 1, out: (l: string) => lines.push(l), sleep: noSleep });
  let lines: string[];
  beforeEach(() => {
    lines = [];
    servedPool = 'blue';
    activeOnHost = 'blue';
    ssmMock.on(GetParameterCommand, { Name: params.activePool }).resolves({ Parameter: { Value: 'blue' } });
    ssmMock.on(GetParameterCommand, { Name: params.publicUrl }).resolves({ Parameter: { Value: url } });
    ssmMock.on(GetParameterCommand, { Name: params.instanceId }).resolves({ Parameter: { Value: 'i-0abc' } });
    ssmMock.on(PutParameterCommand).resolves({});
  });

  test('writes the parameter, waits with progress, confirms when the endpoint answers from the new pool', async () => {
    let polls = 0;
    ssmMock.on(ListCommandsCommand).callsFake(() => {
      polls++;
      if (polls === 2) servedPool = 'green'; // the host applied it
      return { Commands: [{ Status: polls < 2 ? 'InProgress' : 'Success' }] };
    });
    const outcome = await flipOnAws(base());
    expect(outcome.ok).toBe(true);
    expect(ssmMock.commandCalls(PutParameterCommand)[0].args[0].input).toEqual({ Name: params.activePool, Value: 'green', Type: 'String', Overwrite: true });
    expect(lines[0]).toBe('/bluegreen/p/active-pool: blue → green');
    expect(ssmMock.commandCalls(ListCommandsCommand)[0].args[0].input).toMatchObject({ InstanceId: 'i-0abc' });
    expect(lines).toContain('waiting… host command: InProgress, endpoint: 200 from blue, active blue');
    expect(lines.at(-1)).toMatch(/^confirmed: http:\/\/127\.0\.0\.1:\d+ is answered by green after [\d.]+ s \(host command: Success\)$/);
  });

  test('the host command failing ends the wait with the reason and the runbook section', async () => {
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [{ Status: 'Failed' }] });
    const outcome = await flipOnAws(base());
    expect(outcome).toEqual({ ok: false, reason: expect.stringContaining("the host's bluegreen-apply command Failed; the endpoint still answers 200 from blue") });
  });

  test('no confirmation within the timeout: not ok, saying what the endpoint answers', async () => {
    let t = 0;
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [] });
    const outcome = await flipOnAws({ ...base(), timeoutMs: 3000, now: () => (t += 500) });
    expect(outcome).toEqual({ ok: false, reason: expect.stringMatching(/^not confirmed within 3 s: http:\/\/127\.0\.0\.1:\d+ does not answer from green/) });
  });

  test("confirm 'active': a promotion is confirmed by the host's active pool while the other pool still answers", async () => {
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [{ Status: 'Success' }] });
    let polls = 0;
    ssmMock.on(ListCommandsCommand).callsFake(() => {
      if (++polls === 2) activeOnHost = 'green'; // applied; green fails, so blue keeps answering
      return { Commands: [{ Status: 'Success' }] };
    });
    const outcome = await flipOnAws({ ...base(), confirm: 'active' });
    expect(outcome.ok).toBe(true);
    expect(lines.at(-1)).toMatch(/^confirmed: http:\/\/127\.0\.0\.1:\d+ has green active after [\d.]+ s \(host command: Success\); this answer came from blue \(200\)$/);
    // The default still wants the new pool's own answer.
    activeOnHost = 'green';
    let t = 0;
    expect((await flipOnAws({ ...base(), timeoutMs: 2000, now: () => (t += 500) })).ok).toBe(false);
  });

  test('--no-wait: only the write', async () => {
    expect(await flipOnAws({ ...base(), wait: false })).toEqual({ ok: true });
    expect(ssmMock.commandCalls(ListCommandsCommand)).toHaveLength(0);
  });

  test('a stage that is not deployed: no write, a clear reason', async () => {
    ssmMock.on(GetParameterCommand, { Name: params.activePool }).rejects(Object.assign(new Error('not found'), { name: 'ParameterNotFound' }));
    expect(await flipOnAws(base())).toEqual({ ok: false, reason: '/bluegreen/p/active-pool does not exist: is the stack deployed in this account and region?' });
    expect(ssmMock.commandCalls(PutParameterCommand)).toHaveLength(0);
  });
});
