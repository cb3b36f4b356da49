// `bluegreen flip <pool> --stage S`: write the active-pool parameter, then wait until the switch is
// confirmed end to end: the public endpoint answers with X-App-Pool of the new pool.
import { ListCommandsCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { getParameter } from './aws-target';
import { Pool } from '../local/defaults';
import { header, httpRequest } from '../local/http';

export interface FlipOptions {
  ssm: SSMClient;
  params: { activePool: string; publicUrl: string; instanceId: string };
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
}

export type FlipOutcome = { ok: true; waitedMs?: number } | { ok: false; reason: string };


/** What Run Command reports for commands sent since `since` (informational while we wait). */
async function hostCommandStatus(ssm: SSMClient, since: Date, instanceId: string | undefined): Promise<string | undefined> {
  if (!instanceId) return undefined;
  try {
    const res = await ssm.send(
      new ListCommandsCommand({
        InstanceId: instanceId,
        Filters: [
          { key: 'InvokedAfter', value: since.toISOString() },
          { key: 'DocumentName', value: 'AWS-RunShellScript' },
        ],
      }),
    );
    const latest = [...(res.Commands ?? [])].sort((a, b) => (b.RequestedDateTime?.getTime() ?? 0) - (a.RequestedDateTime?.getTime() ?? 0))[0];
    return latest?.Status;
  } catch {
    return undefined; // no right to list commands, or not supported: the endpoint is the truth anyway
  }
}

export async function flipOnAws(o: FlipOptions): Promise<FlipOutcome> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const before = await getParameter(o.ssm, o.params.activePool);
  if (before === undefined) return { ok: false, reason: `${o.params.activePool} does not exist: is the stack deployed in this account and region?` };
  const since = new Date(now());
  await o.ssm.send(new PutParameterCommand({ Name: o.params.activePool, Value: o.pool, Type: 'String', Overwrite: true }));
  o.out(`${o.params.activePool}: ${before} → ${o.pool}`);
  if (!o.wait) {
    o.out('not waiting (--no-wait): the host applies it within seconds, and within a minute at the latest');
    return { ok: true };
  }
  const url = await getParameter(o.ssm, o.params.publicUrl);
  if (!url) return { ok: false, reason: `${o.params.publicUrl} does not exist: cannot confirm the switch (flip with --no-wait, or redeploy the stack)` };
  const instanceId = await getParameter(o.ssm, o.params.instanceId);
  const started = now();
  let lastShown = '';
  while (now() - started < o.timeoutMs) {
    const command = await hostCommandStatus(o.ssm, since, instanceId);
    let answer = 'no answer';
    try {
      const res = await httpRequest(`${url}/version`, { timeoutMs: 3000, agent: false });
      const pool = header(res, 'x-app-pool');
      const active = header(res, 'x-active-pool');
      const after = `after ${((now() - started) / 1000).toFixed(1)} s${command ? ` (host command: ${command})` : ''}`;
      if (o.confirm === 'active' && active === o.pool) {
        o.out(`confirmed: ${url} has ${o.pool} active ${after}; this answer came from ${pool ?? 'no pool'} (${res.status})`);
        return { ok: true, waitedMs: now() - started };
      }
      if (o.confirm !== 'active' && res.status === 200 && pool === o.pool) {
        o.out(`confirmed: ${url} is answered by ${o.pool} ${after}`);
        return { ok: true, waitedMs: now() - started };
      }
      answer = `${res.status} from ${pool ?? 'no pool'}${active ? `, active ${active}` : ''}`;
    } catch (err) {
      answer = (err as Error).message;
    }
    if (command === 'Failed' || command === 'TimedOut' || command === 'Cancelled') {
      return { ok: false, reason: `the host's bluegreen-apply command ${command}; the endpoint still answers ${answer}. See RUNBOOK.md "On AWS: flip, and when a flip does not land"` };
    }
    const line = `waiting… host command: ${command ?? 'not seen yet'}, endpoint: ${answer}`;
    if (line !== lastShown) o.out(line);
    lastShown = line;
    await sleep(o.pollMs);
  }
  return { ok: false, reason: `not confirmed within ${o.timeoutMs / 1000} s: ${url} does not answer from ${o.pool}. See RUNBOOK.md "On AWS: flip, and when a flip does not land"` };
}
