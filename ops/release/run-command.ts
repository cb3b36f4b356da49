// Runs the host agent (bluegreen-apply) on every host of a stage through SSM Run Command and reads
// back what each host reported, step by step: the per-host, per-step result of a release's deploy.
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { limit } from '../../core/aws-limits';
import { APPLY_PATH, hostApplyCommand } from '../../core/host-command';
import { STAGE_TAG_KEY } from '../../core/names';
import { DEPLOY_RATE, RunRate } from '../../core/run-rate';
import { HostStep, parseStepLines } from '../../core/step-line';
import { parsePrePromoteOutput } from '../../core/pre-promote';
import {
  cliCommandComment,
  commandInvocations,
  describeInvocations,
  FINAL_STATUSES,
  finalCommandStatus,
  NOT_RUN,
  stageTarget,
} from '../stage-hosts';

export { DEPLOY_RATE, EVERY_HOST_RATE } from '../../core/run-rate';

export interface HostResult {
  host: string;
  /** Run Command's status for this host: Success, Failed, TimedOut, Cancelled, ... */
  status: string;
  ok: boolean;
  steps: HostStep[];
  /** The last lines of stderr when the host failed. */
  error?: string;
  /** A release phase's last lines of output (its `pre-promote-output=` line), when it printed one. */
  prePromoteOutput?: string;
}

/** How many rounds Run Command needs at this concurrency (a percentage; unknown for a host count). */
function rounds(rate: RunRate): number | undefined {
  const m = /^(\d+)%$/.exec(rate.maxConcurrency);
  return m ? Math.ceil(100 / Number(m[1])) : undefined;
}

/** SendCommand's TimeoutSeconds upper bound (two days). */
const MAX_DELIVERY_SECONDS = limit('sendCommandTimeout');

export interface RunOnHostsOptions {
  ssm: SSMClient;
  stage: string;
  /** Arguments after bluegreen-apply, e.g. ['--retry']. */
  args?: string[];
  /**
   * How long one host may take (its execution timeout), and how long the CLI waits without any host
   * finishing before it gives up (hosts run in rounds at a concurrency below 100%).
   */
  timeoutMs: number;
  pollMs: number;
  /** @default DEPLOY_RATE */
  rate?: RunRate;
  /** These hosts only (a release phase runs on one); default: every host tagged with the stage. */
  instanceIds?: string[];
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
  const rate = o.rate ?? DEPLOY_RATE;
  // What the operator reads; the hosts get it wrapped (a bootstrapping host answers `step=join`).
  // A long value (a release phase's base64 command) is shown by its size, not spelled out.
  const command = [APPLY_PATH, ...(o.args ?? []).map((a) => (a.length > 24 ? `<${a.length} chars>` : a))].join(' ');
  const executionSeconds = Math.ceil(o.timeoutMs / 1000);
  // Hosts of a later round start only when a slot frees up: the delivery timeout (counted from the
  // send) must cover the rounds before them.
  const n = rounds(rate);
  const deliverySeconds =
    n === undefined ? MAX_DELIVERY_SECONDS : Math.min(MAX_DELIVERY_SECONDS, Math.max(30, executionSeconds * n));
  const sent = await o.ssm.send(
    new SendCommandCommand({
      DocumentName: 'AWS-RunShellScript',
      ...(o.instanceIds ? { InstanceIds: o.instanceIds } : { Targets: [stageTarget(o.stage)] }),
      Parameters: { commands: [hostApplyCommand(o.args)], executionTimeout: [String(executionSeconds)] },
      Comment: cliCommandComment(o.stage, `release deploy (${command})`),
      TimeoutSeconds: deliverySeconds,
      MaxConcurrency: rate.maxConcurrency,
      MaxErrors: rate.maxErrors,
    }),
  );
  const commandId = sent.Command?.CommandId;
  if (!commandId) throw new Error('SendCommand returned no command id');
  o.out?.(
    `Run Command ${commandId}: ${command} on ${o.instanceIds ? o.instanceIds.join(', ') : `the hosts tagged ${STAGE_TAG_KEY}=${o.stage}`} (${rate.maxConcurrency} at a time, stop after ${rate.maxErrors} errors)`,
  );

  const started = now();
  let lastProgress = started;
  let finished = 0;
  let statuses = new Map<string, string>();
  let lastShown = '';
  for (;;) {
    const listed = await commandInvocations(o.ssm, commandId);
    statuses = new Map(listed.map((i) => [i.host, i.status]));
    const finals = [...statuses.values()].filter((s) => FINAL_STATUSES.has(s)).length;
    if (statuses.size > 0 && finals === statuses.size) break;
    // MaxErrors reached: the command is final and hosts not started yet never will be.
    if (statuses.size > 0 && finals > 0 && (await finalCommandStatus(o.ssm, commandId))) {
      return { commandId, hosts: await collect(o.ssm, commandId, statuses, true) };
    }
    if (finals > finished) {
      finished = finals;
      lastProgress = now();
    }
    const waited = now() - started;
    if (statuses.size === 0 && waited >= (o.noHostsAfterMs ?? 60_000)) {
      return {
        commandId,
        hosts: [],
        problem: `no host tagged ${STAGE_TAG_KEY}=${o.stage} picked the command up in ${Math.round(waited / 1000)} s (is the SSM agent online?)`,
      };
    }
    if (now() - lastProgress >= o.timeoutMs) {
      return {
        commandId,
        hosts: await collect(o.ssm, commandId, statuses),
        problem: `the hosts did not finish within ${Math.round(o.timeoutMs / 1000)} s (${describeInvocations(listed)})`,
      };
    }
    const line = `  hosts: ${describeInvocations(listed)}`;
    if (line !== lastShown) o.out?.(line);
    lastShown = line;
    await sleep(o.pollMs);
  }
  return { commandId, hosts: await collect(o.ssm, commandId, statuses) };
}

/** Statuses of a host the command has not started on (yet). */
const NOT_STARTED = new Set(['Pending', 'Delayed']);

async function collect(
  ssm: SSMClient,
  commandId: string,
  statuses: Map<string, string>,
  commandEnded = false,
): Promise<HostResult[]> {
  const results: HostResult[] = [];
  for (const [host, status] of statuses) {
    if (NOT_STARTED.has(status)) {
      const why = commandEnded
        ? 'not run: Run Command stopped after the failure elsewhere (MaxErrors)'
        : `not started (${status})`;
      results.push({ host, status: commandEnded ? NOT_RUN : status, ok: false, steps: [], error: why });
      continue;
    }
    let stdout = '';
    let stderr = '';
    try {
      const inv = await ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: host }));
      stdout = inv?.StandardOutputContent ?? '';
      stderr = inv?.StandardErrorContent ?? '';
    } catch (err) {
      stderr = `could not read the output: ${(err as Error).message}`;
    }
    results.push(hostResult(host, status, stdout, stderr));
  }
  return results;
}

/**
 * One host's result from what its command printed: ok when Run Command says Success and every
 * `step=` line is ok; when not, the last lines of stderr say why.
 */
export function hostResult(host: string, status: string, stdout: string, stderr: string): HostResult {
  const steps = parseStepLines(stdout, host);
  const ok = status === 'Success' && steps.every((s) => s.ok);
  const error = ok ? undefined : stderr.trim().split('\n').slice(-3).join(' | ') || undefined;
  const prePromoteOutput = parsePrePromoteOutput(stdout);
  return {
    host,
    status,
    ok,
    steps,
    ...(error ? { error } : {}),
    ...(prePromoteOutput !== undefined ? { prePromoteOutput } : {}),
  };
}
