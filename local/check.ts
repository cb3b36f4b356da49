// The failover check (the seed grader's): baseline from the active pool, chaos on it, ~10 s of
// requests through nginx, then a verdict. Works on local mode and on a deployed host alike.
import { ChaosMode, isPool, otherPool, Pool } from '../core/pools';
import { header, httpRequest } from '../support/http';
import { runLoad, summarize, LoadSummary } from './load';

export interface CheckOptions {
  /** The public entry, e.g. http://127.0.0.1:8080. */
  url: string;
  poolUrls: Record<Pool, string>;
  mode: ChaosMode;
  durationMs: number;
  concurrency: number;
  /** Share of answers that must come from the other pool while the active one is in chaos. */
  minBackupShare: number;
  baselineRequests: number;
  log: (line: string) => void;
}

export interface CheckResult {
  ok: boolean;
  verdict: string;
  active?: Pool;
  summary?: LoadSummary;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

async function postChaos(poolUrl: string, path: string): Promise<void> {
  const res = await httpRequest(`${poolUrl}${path}`, { method: 'POST', timeoutMs: 5000, agent: false });
  if (res.status !== 200) throw new Error(`POST ${poolUrl}${path} answered ${res.status}: ${res.body.trim()}`);
}

async function baseline(options: CheckOptions): Promise<{ active?: Pool; problem?: string }> {
  const pools = new Set<string>();
  for (let i = 0; i < options.baselineRequests; i++) {
    let res;
    try {
      res = await httpRequest(`${options.url}/version`, { timeoutMs: 5000, agent: false });
    } catch (err) {
      return { problem: `baseline: ${(err as Error).message}` };
    }
    if (res.status !== 200) return { problem: `baseline: GET /version answered ${res.status}` };
    pools.add(header(res, 'x-app-pool') ?? '(no X-App-Pool header)');
  }
  const [only] = [...pools];
  if (pools.size !== 1 || !isPool(only)) {
    return {
      problem: `baseline: answers came from ${[...pools].join(', ')}; expected one pool (is a pool already failing?)`,
    };
  }
  return { active: only };
}

export async function runCheck(options: CheckOptions): Promise<CheckResult> {
  const { log } = options;
  const base = await baseline(options);
  if (!base.active) return { ok: false, verdict: `FAIL ${base.problem}` };
  const active = base.active;
  const backup = otherPool(active);
  log(`baseline: ${options.baselineRequests}/${options.baselineRequests} answered 200 by ${active}`);

  try {
    await postChaos(options.poolUrls[active], `/chaos/start?mode=${options.mode}`);
  } catch (err) {
    return { ok: false, active, verdict: `FAIL could not start chaos on ${active}: ${(err as Error).message}` };
  }
  log(`chaos ${options.mode} on ${active}; sending requests through ${options.url} for ${options.durationMs / 1000} s`);
  let summary: LoadSummary;
  try {
    const load = await runLoad({
      url: `${options.url}/version`,
      connections: options.concurrency,
      durationMs: options.durationMs,
    });
    summary = summarize(load.samples, load.durationMs);
  } finally {
    try {
      await postChaos(options.poolUrls[active], '/chaos/stop');
      log(`chaos stopped on ${active}`);
    } catch (err) {
      log(`WARNING: could not stop chaos on ${active}: ${(err as Error).message}; run: bluegreen chaos ${active} stop`);
    }
  }
  const share = summary.requests ? (summary.byPool[backup] ?? 0) / summary.requests : 0;
  const facts =
    `${summary.requests} requests in ${(options.durationMs / 1000).toFixed(0)} s with ${active} in chaos (${options.mode}), ` +
    `${summary.failed} failed, ${pct(share)} served by ${backup}, p99 ${summary.p99Ms} ms, max ${summary.maxMs} ms`;
  const problems: string[] = [];
  if (summary.requests === 0) problems.push('no request completed');
  if (summary.failed > 0) problems.push(`${summary.failed} non-200 (${JSON.stringify(summary.failures)})`);
  if (share < options.minBackupShare)
    problems.push(`only ${pct(share)} served by ${backup}, need ${pct(options.minBackupShare)}`);
  return {
    ok: problems.length === 0,
    active,
    summary,
    verdict: problems.length === 0 ? `PASS failover: ${facts}` : `FAIL failover: ${problems.join('; ')} — ${facts}`,
  };
}
