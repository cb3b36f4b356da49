// The release's deploy on AWS: Run Command to the stage's hosts, per-host status and the agent's
// step lines read back (aws-sdk-client-mock: moto runs no commands).
import { hostApplyCommand } from '../../core/host-command';
import {
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DEPLOY_RATE, EVERY_HOST_RATE, runApplyOnStageHosts } from '../../ops/release/run-command';
import { parseStepLines } from '../../core/step-line';
import { AwsReleaseBackend } from '../../ops/release/aws-backend';

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
  expect(steps[0]).toEqual({
    host: 'i-1',
    step: 'pull',
    pool: 'green',
    ok: true,
    detail: 'registry/app:2 pulled in 3.1 s',
  });
  expect(steps[1]).toEqual({ host: 'i-1', step: 'recreate', pool: 'green', ok: true });
  expect(parseStepLines('step=health pool=green ok=false detail=unhealthy after 60 s', 'i-2')[0].ok).toBe(false);
});

describe('runApplyOnStageHosts', () => {
  const ssm = new SSMClient({ region: 'us-east-1' });

  test("targets the stage tag, waits for every host and reads each one's steps", async () => {
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-1' } });
    ssmMock
      .on(ListCommandInvocationsCommand)
      .resolvesOnce({ CommandInvocations: [] })
      .resolvesOnce({ CommandInvocations: [{ InstanceId: 'i-1', Status: 'InProgress' }] })
      .resolves({ CommandInvocations: [{ InstanceId: 'i-1', Status: 'Success' }] });
    ssmMock.on(GetCommandInvocationCommand).resolves({ StandardOutputContent: OUTPUT, StandardErrorContent: '' });
    const lines: string[] = [];
    const result = await runApplyOnStageHosts({
      ssm,
      stage: 'p',
      timeoutMs: 60_000,
      pollMs: 1,
      sleep: noSleep,
      out: (l) => lines.push(l),
    });
    expect(result.problem).toBeUndefined();
    expect(result.hosts).toHaveLength(1);
    expect(result.hosts[0]).toMatchObject({ host: 'i-1', status: 'Success', ok: true });
    expect(result.hosts[0].steps).toHaveLength(5);
    const input = ssmMock.commandCalls(SendCommandCommand)[0].args[0].input;
    expect(input.DocumentName).toBe('AWS-RunShellScript');
    expect(input.Targets).toEqual([{ Key: 'tag:BluegreenStage', Values: ['p'] }]);
    expect(input.Parameters?.commands).toEqual([hostApplyCommand()]);
    expect(hostApplyCommand()).toContain('else /usr/local/bin/bluegreen-apply; fi');
    expect(lines.some((l) => l.includes('i-1 InProgress'))).toBe(true);
  });

  test('a host whose command failed is not ok, with its error and the failing step', async () => {
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-2' } });
    ssmMock.on(ListCommandInvocationsCommand).resolves({
      CommandInvocations: [
        { InstanceId: 'i-1', Status: 'Success' },
        { InstanceId: 'i-2', Status: 'Failed' },
      ],
    });
    ssmMock
      .on(GetCommandInvocationCommand, { CommandId: 'c-2', InstanceId: 'i-1' })
      .resolves({ StandardOutputContent: OUTPUT });
    ssmMock.on(GetCommandInvocationCommand, { CommandId: 'c-2', InstanceId: 'i-2' }).resolves({
      StandardOutputContent: 'step=pull pool=green ok=false detail=manifest unknown',
      StandardErrorContent: 'bluegreen-apply: pull of registry/app:2 failed\n',
    });
    const result = await runApplyOnStageHosts({ ssm, stage: 'p', timeoutMs: 60_000, pollMs: 1, sleep: noSleep });
    const byHost = Object.fromEntries(result.hosts.map((h) => [h.host, h]));
    expect(byHost['i-1'].ok).toBe(true);
    expect(byHost['i-2']).toMatchObject({
      ok: false,
      status: 'Failed',
      error: 'bluegreen-apply: pull of registry/app:2 failed',
    });
    expect(byHost['i-2'].steps[0]).toMatchObject({ step: 'pull', ok: false, detail: 'manifest unknown' });
  });

  test('no host picks the command up: a problem naming the tag', async () => {
    let t = 0;
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-3' } });
    ssmMock.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [] });
    const result = await runApplyOnStageHosts({
      ssm,
      stage: 'p',
      timeoutMs: 600_000,
      pollMs: 1,
      noHostsAfterMs: 30_000,
      sleep: noSleep,
      now: () => (t += 10_000),
    });
    expect(result.hosts).toEqual([]);
    expect(result.problem).toMatch(/no host tagged BluegreenStage=p picked the command up/);
  });

  test('hosts still running at the deadline: a problem, with what they reported so far', async () => {
    let t = 0;
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-4' } });
    ssmMock
      .on(ListCommandInvocationsCommand)
      .resolves({ CommandInvocations: [{ InstanceId: 'i-1', Status: 'InProgress' }] });
    ssmMock.on(GetCommandInvocationCommand).resolves({ StandardOutputContent: 'step=pull pool=green ok=true' });
    const result = await runApplyOnStageHosts({
      ssm,
      stage: 'p',
      timeoutMs: 30_000,
      pollMs: 1,
      sleep: noSleep,
      now: () => (t += 10_000),
    });
    expect(result.problem).toMatch(/did not finish within 30 s/);
    expect(result.hosts[0]).toMatchObject({ host: 'i-1', status: 'InProgress', ok: false });
    expect(result.hosts[0].steps).toHaveLength(1);
  });
});

describe('runApplyOnStageHosts on a fleet: rate control', () => {
  const ssm = new SSMClient({ region: 'us-east-1' });

  test('SendCommand carries MaxConcurrency/MaxErrors: the deploy default (half the hosts, stop at the first failure) or the rate given', async () => {
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-5' } });
    ssmMock
      .on(ListCommandInvocationsCommand)
      .resolves({ CommandInvocations: [{ InstanceId: 'i-1', Status: 'Success' }] });
    ssmMock.on(GetCommandInvocationCommand).resolves({ StandardOutputContent: OUTPUT });
    await runApplyOnStageHosts({ ssm, stage: 'p', timeoutMs: 300_000, pollMs: 1, sleep: noSleep });
    await runApplyOnStageHosts({
      ssm,
      stage: 'p',
      timeoutMs: 120_000,
      pollMs: 1,
      sleep: noSleep,
      rate: EVERY_HOST_RATE,
    });
    const [deploy, everyHost] = ssmMock.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
    expect(deploy).toMatchObject({ MaxConcurrency: '50%', MaxErrors: '0', Parameters: { executionTimeout: ['300'] } });
    // Hosts of the second round start when the first round is done: delivery covers both rounds.
    expect(deploy.TimeoutSeconds).toBe(600);
    expect(everyHost).toMatchObject({ MaxConcurrency: '100%', MaxErrors: '100%', TimeoutSeconds: 120 });
    expect(DEPLOY_RATE).toEqual({ maxConcurrency: '50%', maxErrors: '0' });
  });

  test('MaxErrors reached: the hosts never started are reported as not run, without waiting for the deadline', async () => {
    let t = 0;
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-6' } });
    ssmMock.on(ListCommandInvocationsCommand).resolves({
      CommandInvocations: [
        { InstanceId: 'i-1', Status: 'Success' },
        { InstanceId: 'i-2', Status: 'Failed' },
        { InstanceId: 'i-3', Status: 'Pending' },
      ],
    });
    ssmMock
      .on(ListCommandsCommand, { CommandId: 'c-6' })
      .resolves({ Commands: [{ CommandId: 'c-6', Status: 'Failed' }] });
    ssmMock
      .on(GetCommandInvocationCommand, { CommandId: 'c-6', InstanceId: 'i-1' })
      .resolves({ StandardOutputContent: OUTPUT });
    ssmMock.on(GetCommandInvocationCommand, { CommandId: 'c-6', InstanceId: 'i-2' }).resolves({
      StandardOutputContent: 'step=health pool=green ok=false detail=unhealthy after 60 s',
      StandardErrorContent: 'bluegreen-apply: green did not become healthy\n',
    });
    const result = await runApplyOnStageHosts({
      ssm,
      stage: 'p',
      timeoutMs: 300_000,
      pollMs: 1,
      sleep: noSleep,
      now: () => (t += 1000),
    });
    expect(result.problem).toBeUndefined();
    expect(t).toBeLessThan(10_000); // it did not sit out the 300 s
    const byHost = Object.fromEntries(result.hosts.map((h) => [h.host, h]));
    expect(byHost['i-1'].ok).toBe(true);
    expect(byHost['i-2']).toMatchObject({ ok: false, status: 'Failed' });
    expect(byHost['i-3']).toMatchObject({
      ok: false,
      status: 'NotRun',
      steps: [],
      error: expect.stringMatching(/^not run: Run Command stopped after the failure/),
    });
    expect(ssmMock.commandCalls(GetCommandInvocationCommand).map((c) => c.args[0].input.InstanceId)).toEqual([
      'i-1',
      'i-2',
    ]);
  });

  test('hosts finishing round after round keep the wait alive past the timeout (the timeout is per host, not per fleet)', async () => {
    let t = 0;
    let polls = 0;
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-7' } });
    ssmMock.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: 'c-7', Status: 'InProgress' }] });
    // One host finishes every 4 polls (40 s of the fake clock); the timeout is 60 s; the fleet takes 120 s.
    ssmMock.on(ListCommandInvocationsCommand).callsFake(() => {
      const done = Math.floor(++polls / 4);
      return {
        CommandInvocations: ['i-1', 'i-2', 'i-3'].map((InstanceId, i) => ({
          InstanceId,
          Status: i < done ? 'Success' : i === done ? 'InProgress' : 'Pending',
        })),
      };
    });
    ssmMock.on(GetCommandInvocationCommand).resolves({ StandardOutputContent: OUTPUT });
    const result = await runApplyOnStageHosts({
      ssm,
      stage: 'p',
      timeoutMs: 60_000,
      pollMs: 1,
      sleep: noSleep,
      now: () => (t += 5_000),
      rate: { maxConcurrency: '1', maxErrors: '0' },
    });
    expect(result.problem).toBeUndefined();
    expect(result.hosts.map((h) => [h.host, h.ok])).toEqual([
      ['i-1', true],
      ['i-2', true],
      ['i-3', true],
    ]);
    expect(t).toBeGreaterThan(60_000);
  });
});

describe('the release phase on AWS (AwsReleaseBackend.prePromote)', () => {
  const ssm = new SSMClient({ region: 'us-east-1' });
  const command = `psql -c "ALTER TABLE t ADD c int"; echo '$HOME' && rm -rf / #`;

  test('the command travels as one base64 argument of bluegreen-apply, to one host, and its output comes back from the output line', async () => {
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-pp' } });
    ssmMock
      .on(ListCommandInvocationsCommand)
      .resolves({ CommandInvocations: [{ InstanceId: 'i-2', Status: 'Failed' }] });
    const output = `${'x\n'.repeat(30)}ERROR: column "c" already exists\n`;
    ssmMock.on(GetCommandInvocationCommand).resolves({
      StandardOutputContent: [
        'step=pre-promote pool=green ok=false detail=exit 3 in 4 s',
        `pre-promote-output=${Buffer.from(output).toString('base64')}`,
        // What a command printed can never pass for a step: it is inside the base64.
      ].join('\n'),
      StandardErrorContent: '',
    });
    const backend = new AwsReleaseBackend({
      ssm,
      ddb: new DynamoDBClient({ region: 'us-east-1' }),
      stage: 'p',
      pollMs: 1,
      sleep: noSleep,
    });
    const result = await backend.prePromote('green', {
      command,
      release: 'v2',
      timeoutMs: 600_000,
      requestId: 'r:pre-promote',
      hosts: ['i-2', 'i-1'],
    });
    expect(result).toMatchObject({ ok: false, exitCode: 3, seconds: 4, host: 'i-2', command });
    // The last 20 lines, marked as cut.
    expect(result.output.split('\n')).toHaveLength(21);
    expect(result.output.startsWith('…\n')).toBe(true);
    expect(result.output.endsWith('ERROR: column "c" already exists')).toBe(true);
    const input = ssmMock.commandCalls(SendCommandCommand)[0].args[0].input;
    expect(input.InstanceIds).toEqual(['i-2']);
    expect(input.Targets).toBeUndefined();
    const b64 = Buffer.from(command).toString('base64');
    expect(input.Parameters?.commands).toEqual([
      hostApplyCommand(['--pre-promote', b64, '--pre-promote-timeout', '600']),
    ]);
    expect(input.Parameters?.commands?.[0]).not.toContain('psql');
    // Run Command's own timeout leaves room for the host's lock on top of the command's.
    expect(Number(input.Parameters?.executionTimeout?.[0])).toBe(900);
    expect(input.Comment).toMatch(/--pre-promote <\d+ chars>/);
  });

  test('a timeout, and a host that printed no step, fail it', async () => {
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c-pp2' } });
    ssmMock
      .on(ListCommandInvocationsCommand)
      .resolves({ CommandInvocations: [{ InstanceId: 'i-1', Status: 'Failed' }] });
    ssmMock.on(GetCommandInvocationCommand).resolvesOnce({
      StandardOutputContent: 'step=pre-promote pool=green ok=false detail=timed out after 60 s\npre-promote-output=\n',
      StandardErrorContent: '',
    });
    const backend = new AwsReleaseBackend({
      ssm,
      ddb: new DynamoDBClient({ region: 'us-east-1' }),
      stage: 'p',
      pollMs: 1,
      sleep: noSleep,
    });
    const options = { command: 'sleep 99', release: 'v2', timeoutMs: 60_000, requestId: 'r', hosts: ['i-1'] };
    expect(await backend.prePromote('green', options)).toMatchObject({ ok: false, timedOut: true, exitCode: 124 });
    ssmMock.on(GetCommandInvocationCommand).resolves({ StandardOutputContent: '', StandardErrorContent: 'boom' });
    const none = await backend.prePromote('green', options);
    expect(none.ok).toBe(false);
    expect(none.reason).toMatch(/no pre-promote step/);
  });
});

test('hostApplyCommand takes a flag value only as one plain word (base64, digits) after a flag', () => {
  expect(hostApplyCommand(['--pre-promote', 'ZWNobyBoaQ==', '--pre-promote-timeout', '600'])).toContain(
    'bluegreen-apply --pre-promote ZWNobyBoaQ== --pre-promote-timeout 600; fi',
  );
  for (const bad of [['echo'], ['--pre-promote', 'echo hi'], ['--pre-promote', '$(reboot)'], ['--pre-promote', 'a;b']])
    expect(() => hostApplyCommand(bad)).toThrow(/unexpected argument/);
});
