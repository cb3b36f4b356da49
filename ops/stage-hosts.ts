// The stage's hosts as Run Command sees them: one host (single-host mode) or many (fleet mode), found
// by the stage tag alone, never by the mode. The CLI's flip, release and status read them here:
// which commands reached which host and how each ended, and which hosts the SSM agent reports.
import {
  Command,
  DescribeInstanceInformationCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { limit } from '../core/aws-limits';
import { JOINING_STEP } from '../core/host-command';
import { STAGE_TAG_KEY } from '../core/names';

/** The Run Command target that means "every host of the stage" (the pool-switch rule uses the same tag). */
export function stageTarget(stage: string): { Key: string; Values: string[] } {
  return { Key: `tag:${STAGE_TAG_KEY}`, Values: [stage] };
}

/** The comment on the Run Commands this CLI sends itself (the pool-switch rule's carry none). */
export function cliCommandComment(stage: string, what: string): string {
  return `${cliCommentPrefix(stage)}${what}`.slice(0, limit('sendCommandComment'));
}
const cliCommentPrefix = (stage: string) => `bluegreen ${stage}: `;

/** Invocation statuses that will not change any more. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set([
  'Success',
  'Failed',
  'TimedOut',
  'Cancelled',
  'Undeliverable',
  'Terminated',
  'DeliveryTimedOut',
  'ExecutionTimedOut',
  'Rejected',
]);

/** Command statuses after which no invocation of it starts any more (e.g. MaxErrors reached: Failed). */
const FINAL_COMMAND_STATUSES: ReadonlySet<string> = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);

/**
 * The status this CLI gives a host Run Command never started because the command ended first
 * (MaxErrors reached): not a failure of that host, which still runs what it ran.
 */
export const NOT_RUN = 'NotRun';

/** The detail of a release's per-host `host` step: "Run Command <status>[: <error>]". */
export function hostStepDetail(status: string, error?: string): string {
  return `Run Command ${status}${error ? `: ${error}` : ''}`;
}

export function isFailedStatus(status: string): boolean {
  return FINAL_STATUSES.has(status) && status !== 'Success';
}

export interface HostInvocation {
  host: string;
  status: string;
}

/** Every host a command reached (or is waiting to reach), with its status; paginated. */
export async function commandInvocations(ssm: SSMClient, commandId: string): Promise<HostInvocation[]> {
  const hosts: HostInvocation[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ssm.send(new ListCommandInvocationsCommand({ CommandId: commandId, NextToken }));
    for (const i of page?.CommandInvocations ?? [])
      if (i.InstanceId) hosts.push({ host: i.InstanceId, status: String(i.Status ?? 'Pending') });
    NextToken = page?.NextToken;
  } while (NextToken);
  return hosts.sort((a, b) => a.host.localeCompare(b.host));
}

/** The command's own status when it is final (no more invocations will start), else undefined. */
export async function finalCommandStatus(ssm: SSMClient, commandId: string): Promise<string | undefined> {
  const res = await ssm.send(new ListCommandsCommand({ CommandId: commandId }));
  const status = res?.Commands?.[0]?.Status;
  return status && FINAL_COMMAND_STATUSES.has(status) ? status : undefined;
}

/** At most this many pages (50 commands each) are read looking for the stage's newest command. */
const MAX_COMMAND_PAGES = 20;

function targetsStage(command: Command, stage: string): boolean {
  const want = stageTarget(stage);
  return (command.Targets ?? []).some((t) => t.Key === want.Key && (t.Values ?? []).includes(stage));
}

/**
 * The newest bluegreen-apply command sent to the stage's hosts (by the stage tag) at or after
 * `since`: after a flip, the one the pool-switch rule sent for it. Undefined when none is seen yet.
 * `ruleOnly`: skip the commands this CLI sent itself (a release's deploy or canary share), which
 * can fall inside the clock-skew margin of a promotion's flip.
 */
export async function latestStageCommand(
  ssm: SSMClient,
  stage: string,
  since: Date,
  ruleOnly = false,
): Promise<{ commandId: string; requestedAt?: Date } | undefined> {
  let latest: Command | undefined;
  let NextToken: string | undefined;
  // ListCommands lists the whole account's commands: a busy account's day can hold thousands.
  let pages = 0;
  do {
    const page = await ssm.send(
      new ListCommandsCommand({
        Filters: [
          { key: 'InvokedAfter', value: since.toISOString() },
          { key: 'DocumentName', value: 'AWS-RunShellScript' },
        ],
        NextToken,
      }),
    );
    for (const c of page?.Commands ?? []) {
      if (!c.CommandId || !targetsStage(c, stage)) continue;
      if (ruleOnly && (c.Comment ?? '').startsWith(cliCommentPrefix(stage))) continue;
      if (!latest || (c.RequestedDateTime?.getTime() ?? 0) > (latest.RequestedDateTime?.getTime() ?? 0)) latest = c;
    }
    NextToken = page?.NextToken;
  } while (NextToken && ++pages < MAX_COMMAND_PAGES);
  return latest ? { commandId: latest.CommandId!, requestedAt: latest.RequestedDateTime } : undefined;
}

export interface StageHost {
  host: string;
  /** What the SSM agent last reported: Online, ConnectionLost, Inactive. */
  ping: string;
  lastPingAt?: Date;
  address?: string;
}

/** The stage's hosts as SSM knows them (managed instances carrying the stage tag); paginated. */
export async function stageHosts(ssm: SSMClient, stage: string): Promise<StageHost[]> {
  const hosts: StageHost[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ssm.send(
      new DescribeInstanceInformationCommand({
        Filters: [{ Key: `tag:${STAGE_TAG_KEY}`, Values: [stage] }],
        NextToken,
      }),
    );
    for (const i of page?.InstanceInformationList ?? []) {
      if (!i.InstanceId) continue;
      hosts.push({
        host: i.InstanceId,
        ping: String(i.PingStatus ?? '?'),
        ...(i.LastPingDateTime ? { lastPingAt: i.LastPingDateTime } : {}),
        ...(i.IPAddress ? { address: i.IPAddress } : {}),
      });
    }
    NextToken = page?.NextToken;
  } while (NextToken);
  return hosts.sort((a, b) => a.host.localeCompare(b.host));
}

/** "i-1 Success, i-2 InProgress" (or "none yet"). */
export function describeInvocations(hosts: readonly HostInvocation[]): string {
  return hosts.length ? hosts.map((h) => `${h.host} ${h.status}`).join(', ') : 'none listed yet';
}

/** One host's part in a release, from the record's steps: its first `host` step (the deploy, not the restore). */
export interface HostGate {
  host: string;
  ok: boolean;
  notRun: boolean;
  /** Still bootstrapping when the command came (step `join`): not in service, not gated; it joins after the release. */
  joining: boolean;
  /** The first failed step of that host, e.g. "step health (green: unhealthy after 60 s)". */
  failure?: string;
}

/** Failed its gate: not passed, and neither never started (not run) nor still bootstrapping (joining). */
function gateFailed(g: HostGate): boolean {
  return !g.ok && !g.notRun && !g.joining;
}

export function hostGates(steps: readonly { step: string; ok: boolean; host?: string; detail?: string }[]): HostGate[] {
  const gates = new Map<string, HostGate>();
  for (const [i, s] of steps.entries()) {
    if (s.step !== 'host' || !s.host || gates.has(s.host)) continue;
    const notRun = !s.ok && (s.detail ?? '').startsWith(hostStepDetail(NOT_RUN));
    // The host's own steps come right before its `host` step.
    let failed: (typeof steps)[number] | undefined;
    let joining = false;
    for (let j = i - 1; j >= 0 && steps[j].host === s.host && steps[j].step !== 'host'; j--) {
      if (!steps[j].ok) failed = steps[j];
      if (steps[j].step === JOINING_STEP) joining = true;
    }
    const failure =
      s.ok || notRun
        ? undefined
        : failed
          ? `step ${failed.step}${failed.detail ? ` (${failed.detail})` : ''}`
          : s.detail;
    gates.set(s.host, {
      host: s.host,
      ok: s.ok && !joining,
      notRun,
      joining: s.ok && joining,
      ...(failure ? { failure } : {}),
    });
  }
  return [...gates.values()];
}

/** The hosts of a deploy by outcome: passed its gate, failed it, never started (not run), still bootstrapping (joining). */
export interface HostGateGroups {
  total: number;
  passed: string[];
  failed: string[];
  notRun: string[];
  joining: string[];
}

export function groupHostGates(gates: readonly HostGate[]): HostGateGroups {
  const hosts = (keep: (g: HostGate) => boolean) => gates.filter(keep).map((g) => g.host);
  return {
    total: gates.length,
    passed: hosts((g) => g.ok),
    failed: hosts(gateFailed),
    notRun: hosts((g) => g.notRun),
    joining: hosts((g) => g.joining),
  };
}

/** "3/3 ok" or "1/3 ok; failed i-2; not run i-3"; '' when the record names no hosts (local mode). */
export function summarizeHostGates(gates: readonly HostGate[]): string {
  if (gates.length === 0) return '';
  const { total, passed, failed, notRun, joining } = groupHostGates(gates);
  return [
    `${passed.length}/${total} ok`,
    ...(failed.length ? [`failed ${failed.join(', ')}`] : []),
    ...(notRun.length ? [`not run ${notRun.join(', ')}`] : []),
    ...(joining.length ? [`joining ${joining.join(', ')}`] : []),
  ].join('; ');
}
