// Runs the host agent (bluegreen-apply) on every host of a stage through SSM Run Command and reads
// back what each host reported, step by step: the per-host, per-step result of a release's deploy.
import { GetCommandInvocationCommand, ListCommandInvocationsCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { STAGE_TAG_KEY } from '../../lib/pool-host';

export const APPLY_COMMAND = '/usr/local/bin/bluegreen-apply';

export interface HostStep {
  host: string;
  step: string;
  pool: string;
  ok: boolean;
  detail?: string;
}

export interface HostResult {
  host: string;
  /** Run Command's status for this host: Success, Failed, TimedOut, Cancelled, ... */
  status: string;
  ok: boolean;
  steps: HostStep[];
  /** The last lines of stderr when the host failed. */
  error?: string;
}

const STEP_LINE = /^step=(\S+) pool=(\S+) ok=(true|false)(?: detail=(.*))?$/;

/** The `step=… pool=… ok=… detail=…` lines bluegreen-apply prints, in order; other lines are ignored. */
export function parseStepLines(output: string, host: string): HostStep[] {
  const steps: HostStep[] = [];
  for (const raw of output.split('\n')) {
    const m = raw.trim().match(STEP_LINE);
    if (!m) continue;
    steps.push({ host, step: m[1], pool: m[2], ok: m[3] === 'true', ...(m[4] ? { detail: m[4].trim() } : {}) });
  }
  return steps;
}

const FINAL = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled', 'Undeliverable', 'Terminated', 'DeliveryTimedOut', 'ExecutionTimedOut', 'Rejected']);

export interface RunOnHostsOptions {
  ssm: SSMClient;
  stage: string;
  /** Arguments after bluegreen-apply, e.g. ['--retry']. */
  args?: string[];
  timeoutMs: number;
  pollMs: number;
  /** How long to wait for Run Command to list at least one target before giving up. */
  noHostsAfterMs?: number;
  out?: (line: string) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface RunOnHostsResult {
  commandId: string;
  hosts: HostResult[];
  /** Set when the command did not finish on every host in time, or reached none. */
  problem?: string;
}

export async function runApplyOnStageHosts(o: RunOnHostsOptions): Promise<RunOnHostsResult> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const command = [APPLY_COMMAND, ...(o.args ?? [])].join(' ');
  const sent = await o.ssm.send(
    new SendCommandCommand({
      DocumentName: 'AWS-RunShellScript',
      Targets: [{ Key: `tag:${STAGE_TAG_KEY}`, Values: [o.stage] }],
      Parameters: { commands: [command], executionTimeout: [String(Math.ceil(o.timeoutMs / 1000))] },
      Comment: `bluegreen ${o.stage}: release deploy (${command})`.slice(0, 100),
      TimeoutSeconds: Math.max(30, Math.ceil(o.timeoutMs / 1000)),
    }),
  );
  const commandId = sent.Command?.CommandId;
  if (!commandId) throw new Error('SendCommand returned no command id');
  o.out?.(`Run Command ${commandId}: ${command} on the hosts tagged ${STAGE_TAG_KEY}=${o.stage}`);

  const started = now();
  let statuses = new Map<string, string>();
  let lastShown = '';
  for (;;) {
    const listed = await o.ssm.send(new ListCommandInvocationsCommand({ CommandId: commandId }));
    statuses = new Map((listed.CommandInvocations ?? []).filter((i) => i.InstanceId).map((i) => [i.InstanceId!, String(i.Status ?? 'Pending')]));
    const done = statuses.size > 0 && [...statuses.values()].every((s) => FINAL.has(s));
    if (done) break;
    const waited = now() - started;
    if (statuses.size === 0 && waited >= (o.noHostsAfterMs ?? 60_000)) {
      return { commandId, hosts: [], problem: `no host tagged ${STAGE_TAG_KEY}=${o.stage} picked the command up in ${Math.round(waited / 1000)} s (is the SSM agent online?)` };
    }
    if (waited >= o.timeoutMs) {
      return { commandId, hosts: await collect(o.ssm, commandId, statuses), problem: `the hosts did not finish within ${Math.round(o.timeoutMs / 1000)} s` };
    }
    const line = `  hosts: ${statuses.size ? [...statuses].map(([h, s]) => `${h} ${s}`).join(', ') : 'none listed yet'}`;
    if (line !== lastShown) o.out?.(line);
    lastShown = line;
    await sleep(o.pollMs);
  }
  return { commandId, hosts: await collect(o.ssm, commandId, statuses) };
}

async function collect(ssm: SSMClient, commandId: string, statuses: Map<string, string>): Promise<HostResult[]> {
  const results: HostResult[] = [];
  for (const [host, status] of statuses) {
    let stdout = '';
    let stderr = '';
    try {
      const inv = await ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: host }));
      stdout = inv.StandardOutputContent ?? '';
      stderr = inv.StandardErrorContent ?? '';
    } catch (err) {
      stderr = `could not read the output: ${(err as Error).message}`;
    }
    const steps = parseStepLines(stdout, host);
    const ok = status === 'Success' && steps.every((s) => s.ok);
    const error = ok ? undefined : stderr.trim().split('\n').slice(-3).join(' | ') || undefined;
    results.push({ host, status, ok, steps, ...(error ? { error } : {}) });
  }
  return results;
}
