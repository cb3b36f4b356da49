// `bluegreen flip <pool> --stage S`: write the active-pool parameter, then wait until the switch is
// confirmed on every host and end to end. Per host: the command the pool-switch rule sent to the
// stage's hosts (by the stage tag) ended Success on each of them. End to end: the public URL (one
// host's nginx, or the load balancer in front of a fleet) answers N times in a row from the new
// pool, so a host the balancer still sends traffic to cannot be missed by one lucky answer.
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { getParameter } from './aws-target';
import {
  commandInvocations,
  describeInvocations,
  HostInvocation,
  isFailedStatus,
  latestStageCommand,
} from './stage-hosts';
import { Pool } from '../core/pools';
import { header, httpRequest } from '../support/http';

/** Answers in a row from the new pool that confirm a flip through the public URL. */
export const DEFAULT_CONFIRM_ANSWERS = 10;
/** Bounded traffic: a confirmation never sends more than this many requests in one round. */
export const MAX_CONFIRM_ANSWERS = 100;
/**
 * The pool-switch command is looked for from this long before the write: ListCommands compares
 * with AWS's clock, not this machine's.
 */
const CLOCK_SKEW_MS = 5_000;

export interface FlipOptions {
  ssm: SSMClient;
  /** The stage: its hosts are the instances tagged with it (one in single-host mode, N in a fleet). */
  stage: string;
  /** canaryPercent: a share left set is ended by a flip (see flipOnAws). */
  params: { activePool: string; publicUrl: string; canaryPercent?: string };
  pool: Pool;
  wait: boolean;
  timeoutMs: number;
  pollMs: number;
  out: (line: string) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * What confirms the flip: 'answered' (default) = the endpoint answers from the new pool;
   * 'active' = the endpoint says the new pool is active (X-Active-Pool), whoever answered: a
   * release's promotion is confirmed even if the new pool fails, which is for the guard to judge.
   */
  confirm?: 'answered' | 'active';
  /** Answers in a row through the public URL. @default DEFAULT_CONFIRM_ANSWERS */
  answers?: number;
}

export type FlipOutcome = { ok: true; waitedMs?: number } | { ok: false; reason: string };

const RUNBOOK = 'See RUNBOOK.md "When a flip does not land"';

interface HostsView {
  /** The command's invocations, one per host it reached; undefined = no command seen yet. */
  hosts?: HostInvocation[];
  /** Why Run Command cannot be read (no right to list commands): the endpoint alone decides. */
  unreadable?: string;
}

/** What Run Command reports for the newest command sent to the stage's hosts since the write. */
async function hostsView(ssm: SSMClient, stage: string, since: Date): Promise<HostsView> {
  try {
    const command = await latestStageCommand(ssm, stage, since, true);
    if (!command) return {};
    return { hosts: await commandInvocations(ssm, command.commandId) };
  } catch (err) {
    return { unreadable: (err as Error).message };
  }
}

/** Up to `n` requests to `url`, one after the other (a new connection each); stops at the first miss. */
async function answersInARow(
  url: string,
  n: number,
  matches: (pool: string | undefined, active: string | undefined, status: number) => boolean,
): Promise<{ inRow: number; last: string; lastPool?: string; lastStatus?: number }> {
  let inRow = 0;
  let last = 'no answer';
  for (let i = 0; i < n; i++) {
    try {
      const res = await httpRequest(`${url}/version`, { timeoutMs: 3000, agent: false });
      const pool = header(res, 'x-app-pool');
      const active = header(res, 'x-active-pool');
      last = `${res.status} from ${pool ?? 'no pool'}${active ? `, active ${active}` : ''}`;
      if (!matches(pool, active, res.status)) return { inRow, last, lastPool: pool, lastStatus: res.status };
      inRow++;
      if (inRow === n) return { inRow, last, lastPool: pool, lastStatus: res.status };
    } catch (err) {
      return { inRow, last: (err as Error).message };
    }
  }
  return { inRow, last };
}

function describeHosts(view: HostsView): string {
  if (view.unreadable) return `not readable (${view.unreadable})`;
  return view.hosts ? describeInvocations(view.hosts) : 'no command seen yet';
}

export async function flipOnAws(o: FlipOptions): Promise<FlipOutcome> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const n = Math.min(MAX_CONFIRM_ANSWERS, Math.max(1, o.answers ?? DEFAULT_CONFIRM_ANSWERS));
  const before = await getParameter(o.ssm, o.params.activePool);
  if (before === undefined)
    return {
      ok: false,
      reason: `${o.params.activePool} does not exist: is the stack deployed in this account and region?`,
    };
  const since = new Date(now() - CLOCK_SKEW_MS);
  await o.ssm.send(
    new PutParameterCommand({ Name: o.params.activePool, Value: o.pool, Type: 'String', Overwrite: true }),
  );
  o.out(`${o.params.activePool}: ${before} → ${o.pool}`);
  // A canary share is "of the idle pool": after a flip it would send that share of requests to the
  // pool just left (for a frozen canary, its clients back to the previous release). Written after
  // the active pool, so the hosts' run that applies both (one GetParameters) never sends the share
  // back in between.
  const canary = o.params.canaryPercent && before !== o.pool ? await getParameter(o.ssm, o.params.canaryPercent) : '0';
  if (canary !== undefined && canary !== '0') {
    await o.ssm.send(
      new PutParameterCommand({ Name: o.params.canaryPercent, Value: '0', Type: 'String', Overwrite: true }),
    );
    o.out(`${o.params.canaryPercent}: ${canary} → 0 (after a flip the share would go to ${before})`);
  }
  if (!o.wait) {
    o.out('not waiting (--no-wait): the hosts apply it within seconds, and within a minute at the latest');
    return { ok: true };
  }
  const url = await getParameter(o.ssm, o.params.publicUrl);
  if (!url)
    return {
      ok: false,
      reason: `${o.params.publicUrl} does not exist: cannot confirm the switch (flip with --no-wait, or redeploy the stack)`,
    };
  const matches =
    o.confirm === 'active'
      ? (_pool: string | undefined, active: string | undefined) => active === o.pool
      : (pool: string | undefined, _active: string | undefined, status: number) => status === 200 && pool === o.pool;
  const started = now();
  let lastShown = '';
  let answer = 'no answer';
  let view: HostsView = {};
  let warnedUnreadable = false;
  while (now() - started < o.timeoutMs) {
    view = await hostsView(o.ssm, o.stage, since);
    if (view.unreadable && !warnedUnreadable) {
      warnedUnreadable = true;
      o.out(`Run Command cannot be read (${view.unreadable}): confirming through ${url} alone`);
    }
    const endpoint = await answersInARow(url, n, matches);
    answer = endpoint.last;
    const failed = (view.hosts ?? []).filter((h) => isFailedStatus(h.status));
    if (failed.length) {
      return {
        ok: false,
        reason: `bluegreen-apply ended ${failed.map((h) => `${h.status} on ${h.host}`).join(', ')} (of ${view.hosts!.length} hosts; those keep the old pool until their one-minute timer applies it); the endpoint answers ${answer}. ${RUNBOOK}`,
      };
    }
    // Every host the command reached applied it; no command seen (the hosts' timer applied it, or
    // no right to read Run Command) leaves the endpoint to decide alone.
    const hostsDone =
      view.hosts === undefined || (view.hosts.length > 0 && view.hosts.every((h) => h.status === 'Success'));
    if (endpoint.inRow >= n && hostsDone) {
      const after = `after ${((now() - started) / 1000).toFixed(1)} s (${n} answer${n === 1 ? '' : 's'} in a row; hosts: ${describeHosts(view)})`;
      o.out(
        o.confirm === 'active'
          ? `confirmed: ${url} has ${o.pool} active ${after}; the last answer came from ${endpoint.lastPool ?? 'no pool'} (${endpoint.lastStatus})`
          : `confirmed: ${url} is answered by ${o.pool} ${after}`,
      );
      return { ok: true, waitedMs: now() - started };
    }
    const line = `waiting… hosts: ${describeHosts(view)}; endpoint: ${endpoint.inRow} of ${n} in a row from ${o.pool} (last: ${answer})`;
    if (line !== lastShown) o.out(line);
    lastShown = line;
    await sleep(o.pollMs);
  }
  return {
    ok: false,
    reason: `not confirmed within ${o.timeoutMs / 1000} s: ${url} does not answer from ${o.pool} ${n} times in a row (last: ${answer}; hosts: ${describeHosts(view)}). ${RUNBOOK}`,
  };
}
