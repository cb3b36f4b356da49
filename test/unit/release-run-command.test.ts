// The release's deploy on AWS: Run Command to the stage's hosts, per-host status and the agent's
// step lines read back (aws-sdk-client-mock: moto runs no commands).
import { GetCommandInvocationCommand, ListCommandInvocationsCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { parseStepLines, runApplyOnStageHosts } from '../../ops/release/run-command';

const ssmMock = mockClient(SSMClient);
afterEach(() => ssmMock.reset());
const noSleep = async () => undefined;

const OUTPUT = [
  'bluegreen-apply: /bluegreen/p/active-pool = blue',
  'step=pull pool=green ok=true detail=registry/app:2 pulled in 3.1 s',
  'step=recreate pool=green ok=true',
  'step=health pool=green ok=true detail=healthy after 4 s',
  'step=smoke pool=green ok=true detail=/version answers release v2',
  'step=active pool=blue ok=true detail=not touched (active)',
].join('\n');

test('parseStepLines keeps the step lines in order and ignores the rest', () => {
  const steps = parseStepLines(OUTPUT, 'i-1');
  expect(steps.map((s) => s.step)).toEqual(['pull', 'recreate', 'health', 'smoke', 'active']);
  expect(steps[0]).toEqual({ host: 'i-1', step: 'pull', pool: 'green', ok: true, detail: 'registry/app:2 pulled in 3.1 s' });
  expect(steps[1]).toEqual({ host: 'i-1', step: 'recreate', pool: 'green', ok: true });
  expect(parseStepLines('step=health pool=green ok=false detail=unhealthy after 60 s', 'i-2')[0].ok).toBe(false);
});

describe('runApplyOnStageHosts', () => {
  const ssm = new SSMClient({ region: 'us-east-1' });

  test('targets the stage tag, waits for every host and reads each one\'s steps', async () => {
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-1' } });
    ssmMock
      .on(ListCommandInvocationsCommand)
      .resolvesOnce({ CommandInvocations: [] })
      .resolvesOnce({ CommandInvocations: [{ InstanceId: 'i-1', Status: 'InProgress' }] })
      .resolves({ CommandInvocations: [{ InstanceId: 'i-1', Status: 'Success' }] });
    ssmMock.on(GetCommandInvocationCommand).resolves({ StandardOutputContent: OUTPUT, StandardErrorContent: '' });
    const lines: string[] = [];
    const result = await runApplyOnStageHosts({ ssm, stage: 'p', timeoutMs: 60_000, pollMs: 1, sleep: noSleep, out: (l) => lines.push(l) });
    expect(result.problem).toBeUndefined();
    expect(result.hosts).toHaveLength(1);
    expect(result.hosts[0]).toMatchObject({ host: 'i-1', status: 'Success', ok: true });
    expect(result.hosts[0].steps).toHaveLength(5);
    const input = ssmMock.commandCalls(SendCommandCommand)[0].args[0].input;
    expect(input.DocumentName).toBe('AWS-RunShellScript');
    expect(input.Targets).toEqual([{ Key: 'tag:BluegreenStage', Values: ['p'] }]);
    expect(input.Parameters?.commands).toEqual(['/usr/local/bin/bluegreen-apply']);
    expect(lines.some((l) => l.includes('i-1 InProgress'))).toBe(true);
  });

  test('a host whose command failed is not ok, with its error and the failing step', async () => {
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-2' } });
    ssmMock.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [{ InstanceId: 'i-1', Status: 'Success' }, { InstanceId: 'i-2', Status: 'Failed' }] });
    ssmMock.on(GetCommandInvocationCommand, { CommandId: 'c-2', InstanceId: 'i-1' }).resolves({ StandardOutputContent: OUTPUT });
    ssmMock
      .on(GetCommandInvocationCommand, { CommandId: 'c-2', InstanceId: 'i-2' })
      .resolves({ StandardOutputContent: 'step=pull pool=green ok=false detail=manifest unknown', StandardErrorContent: 'bluegreen-apply: pull of registry/app:2 failed\n' });
    const result = await runApplyOnStageHosts({ ssm, stage: 'p', timeoutMs: 60_000, pollMs: 1, sleep: noSleep });
    const byHost = Object.fromEntries(result.hosts.map((h) => [h.host, h]));
    expect(byHost['i-1'].ok).toBe(true);
    expect(byHost['i-2']).toMatchObject({ ok: false, status: 'Failed', error: 'bluegreen-apply: pull of registry/app:2 failed' });
    expect(byHost['i-2'].steps[0]).toMatchObject({ step: 'pull', ok: false, detail: 'manifest unknown' });
  });

  test('no host picks the command up: a problem naming the tag', async () => {
    let t = 0;
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-3' } });
    ssmMock.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [] });
    const result = await runApplyOnStageHosts({ ssm, stage: 'p', timeoutMs: 600_000, pollMs: 1, noHostsAfterMs: 30_000, sleep: noSleep, now: () => (t += 10_000) });
    expect(result.hosts).toEqual([]);
    expect(result.problem).toMatch(/no host tagged BluegreenStage=p picked the command up/);
  });

  test('hosts still running at the deadline: a problem, with what they reported so far', async () => {
    let t = 0;
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-4' } });
    ssmMock.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [{ InstanceId: 'i-1', Status: 'InProgress' }] });
    ssmMock.on(GetCommandInvocationCommand).resolves({ StandardOutputContent: 'step=pull pool=green ok=true' });
    const result = await runApplyOnStageHosts({ ssm, stage: 'p', timeoutMs: 30_000, pollMs: 1, sleep: noSleep, now: () => (t += 10_000) });
    expect(result.problem).toMatch(/did not finish within 30 s/);
    expect(result.hosts[0]).toMatchObject({ host: 'i-1', status: 'InProgress', ok: false });
    expect(result.hosts[0].steps).toHaveLength(1);
  });
});
