// bench/throughput: one host's requests/s through nginx vs straight to a pool, at a few
// concurrency levels, on this machine. The per-host figure DECISIONS.md ("Fleet mode: scale, limits
// and cost") scales to a fleet. Not a test: it prints a table and writes
// bench/results/throughput.{json,md}. Traffic goes to 127.0.0.1 only, bounded in time.
//
//   npm run bench:throughput [-- --seconds 10 --runs 3 --connections 8,32,128 --clients node,wrk]
//
// On a small machine the load generator, nginx and the pool app share the CPU: the figures are what
// this machine does with all three on it, not what nginx alone could do. To make that visible the
// bench also records the CPU time nginx and the pool used per request (from /proc), which is the
// part that moves to the host in production (the client is elsewhere).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../local/paths';
import { percentile, runLoad, summarize } from '../local/load';
import { LocalStack } from '../local/stack';
import { table } from './table';

export type Target = 'direct' | 'nginx';
export type Client = 'node' | 'wrk';

export interface RunResult {
  requests: number;
  failed: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds nginx (every process of its group) and the blue pool used during the run. */
  nginxCpuS: number;
  poolCpuS: number;
}

export interface Row {
  client: Client;
  target: Target;
  connections: number;
  runs: RunResult[];
  /** Medians of the runs (failed and requests: sums). */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  failed: number;
  /** CPU ms per 1000 requests, median of the runs: nginx (all its processes), the pool, both. */
  nginxCpuMsPer1k: number;
  poolCpuMsPer1k: number;
  serverCpuMsPer1k: number;
}

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

const per1k = (cpuSeconds: number, requests: number) => (requests ? (cpuSeconds * 1e6) / requests : 0);

/**
 * What one host could serve through nginx if the client were elsewhere, from CPU time alone: the
 * pool app is one Node process (one core at most), nginx and the pool together share `cores`.
 * An upper bound: it ignores the kernel's share outside these processes (loopback, softirq).
 */
export function cpuBoundCeiling(row: Pick<Row, 'poolCpuMsPer1k' | 'serverCpuMsPer1k'>, cores: number): number {
  if (row.poolCpuMsPer1k <= 0 || row.serverCpuMsPer1k <= 0) return 0;
  return Math.min(1e6 / row.poolCpuMsPer1k, (cores * 1e6) / row.serverCpuMsPer1k);
}

/** Merges repeated runs of one scenario: rates and latencies as medians, counts summed. */
export function mergeRuns(client: Client, target: Target, connections: number, runs: RunResult[]): Row {
  if (runs.length === 0) throw new Error(`no runs for ${client} ${target} ${connections}`);
  return {
    client,
    target,
    connections,
    runs,
    rps: median(runs.map((r) => r.rps)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    requests: runs.reduce((a, r) => a + r.requests, 0),
    failed: runs.reduce((a, r) => a + r.failed, 0),
    nginxCpuMsPer1k: median(runs.map((r) => per1k(r.nginxCpuS, r.requests))),
    poolCpuMsPer1k: median(runs.map((r) => per1k(r.poolCpuS, r.requests))),
    serverCpuMsPer1k: median(runs.map((r) => per1k(r.nginxCpuS + r.poolCpuS, r.requests))),
  };
}

/**
 * Reads wrk's report (`--latency`): total requests, Requests/sec, the 50%/99% latency lines and
 * every kind of failure it prints (non-2xx/3xx answers, socket errors). A report without the
 * figures is an error naming what is missing, not a NaN in the table.
 */
export function parseWrk(out: string): { requests: number; rps: number; p50Ms: number; p99Ms: number; failed: number } {
  const ms = (label: string) => {
    const m = out.match(new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)\\b`, 'm'));
    if (!m) throw new Error(`wrk report has no ${label} latency line:\n${out}`);
    return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
  };
  const requests = out.match(/^\s*(\d+) requests in /m);
  const rps = out.match(/^Requests\/sec:\s+([\d.]+)/m);
  if (!requests || !rps) throw new Error(`wrk report has no request count or Requests/sec:\n${out}`);
  const non2xx = Number(out.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
  const sock = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const socketErrors = sock ? sock.slice(1).reduce((a, n) => a + Number(n), 0) : 0;
  return {
    requests: Number(requests[1]),
    rps: Number(rps[1]),
    p50Ms: ms('50%'),
    p99Ms: ms('99%'),
    failed: non2xx + socketErrors,
  };
}

// ---- CPU accounting (Linux /proc) ---------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of every live process whose process group is `pgid` (nginx runs in its own group). */
function groupCpuSeconds(pgid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const rest = fields.slice(fields.lastIndexOf(')') + 2).split(' ');
      // rest[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
      if (Number(rest[2]) === pgid) ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks / CLK_TCK;
}

function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = fields.slice(fields.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

// ---- one run ---------------------------------------------------------------------------------------

async function measure(
  stack: LocalStack,
  client: Client,
  target: Target,
  connections: number,
  seconds: number,
): Promise<RunResult> {
  const url = target === 'nginx' ? `${stack.url}/version` : `${stack.poolUrl('blue')}/version`;
  const nginxPid = stack.pid('nginx');
  const poolPid = stack.pid('blue');
  if (!nginxPid || !poolPid) throw new Error('the stack has no nginx or blue pool process');
  const cpu0 = { nginx: groupCpuSeconds(nginxPid), pool: processCpuSeconds(poolPid) };
  let r: Omit<RunResult, 'nginxCpuS' | 'poolCpuS'>;
  if (client === 'node') {
    const res = await runLoad({ url, connections, durationMs: seconds * 1000 });
    const s = summarize(res.samples, res.durationMs);
    r = { requests: s.requests, failed: s.failed, rps: s.requestsPerSec, p50Ms: s.p50Ms, p99Ms: s.p99Ms };
  } else {
    // One wrk thread: the client takes at most one of the machine's cores.
    r = parseWrk(
      execFileSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url], { encoding: 'utf8' }),
    );
  }
  return { ...r, nginxCpuS: groupCpuSeconds(nginxPid) - cpu0.nginx, poolCpuS: processCpuSeconds(poolPid) - cpu0.pool };
}

// ---- output ----------------------------------------------------------------------------------------

const wrkAvailable = () => spawnSync('wrk', ['--version']).error === undefined;

async function main() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      runs: { type: 'string', default: '3' },
      connections: { type: 'string', default: '8,32,128' },
      clients: { type: 'string', default: 'node,wrk' },
    },
  });
  const seconds = Number(values.seconds);
  const runs = Number(values.runs);
  const levels = values.connections.split(',').map(Number);
  if (!(seconds > 0) || !(runs >= 1) || levels.some((c) => !Number.isInteger(c) || c < 1)) {
    throw new Error(
      `--seconds must be > 0, --runs >= 1, --connections a list of whole numbers >= 1; got ${seconds}, ${runs}, ${values.connections}`,
    );
  }
  const wanted = values.clients.split(',') as Client[];
  const bad = wanted.filter((c) => c !== 'node' && c !== 'wrk');
  if (bad.length) throw new Error(`--clients takes node and/or wrk, got ${bad.join(', ')}`);
  const clients = wanted.filter((c) => c === 'node' || wrkAvailable());
  const skipped = wanted.filter((c) => !clients.includes(c));

  const started = new Date();
  const loadBefore = os.loadavg();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-bench-throughput-'));
  const stack = await LocalStack.start({ stateDir: dir, activePool: 'blue' });
  const rows: Row[] = [];
  try {
    // Warm-up: JIT, nginx's upstream keep-alive cache, the kernel's socket buffers.
    await runLoad({ url: `${stack.url}/version`, connections: 32, durationMs: 2000 });
    for (const client of clients) {
      for (const connections of levels) {
        const results: Record<Target, RunResult[]> = { direct: [], nginx: [] };
        // Interleaved, so a change in the machine's other load touches both targets alike.
        for (let i = 0; i < runs; i++) {
          for (const target of ['direct', 'nginx'] as const) {
            const r = await measure(stack, client, target, connections, seconds);
            results[target].push(r);
            process.stderr.write(
              `${client} ${target} c=${connections} run ${i + 1}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99Ms} ms, ${r.failed} failed\n`,
            );
          }
        }
        for (const target of ['direct', 'nginx'] as const)
          rows.push(mergeRuns(client, target, connections, results[target]));
      }
    }
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = os.loadavg();

  const nginxVersion = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '');
  const wrkVersion = clients.includes('wrk')
    ? (spawnSync('wrk', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0].split(' [')[0] ?? 'wrk')
    : undefined;
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const machine =
    `${os.cpus().length} cores (${cpu}), ${os.platform()} ${os.arch()}, node ${process.version}, ${nginxVersion}${wrkVersion ? `, ${wrkVersion}` : ''}; ` +
    `load average (1/5/15 min) ${loadBefore.map((l) => l.toFixed(2)).join(' / ')} at start, ${loadAfter.map((l) => l.toFixed(2)).join(' / ')} at end`;
  const ratio = (client: Client, c: number) => {
    const d = rows.find((r) => r.client === client && r.target === 'direct' && r.connections === c);
    const n = rows.find((r) => r.client === client && r.target === 'nginx' && r.connections === c);
    return d && n && d.rps ? `${((n.rps / d.rps) * 100).toFixed(0)}%` : '—';
  };
  const best = rows.filter((r) => r.target === 'nginx').sort((a, b) => b.rps - a.rps)[0];
  const md = [
    `# bench/throughput — ${started.toISOString()}`,
    '',
    `Machine: ${machine}.`,
    '',
    `One local stack (real nginx with the repo's config, \`worker_processes auto\`; the demo pool app as one Node process per pool),`,
    `\`GET /version\` at full speed over N keep-alive connections for ${seconds} s, ${runs} runs per cell, direct and nginx interleaved;`,
    'req/s, p50 and p99 are the medians of the runs, requests and failed their sums. "direct" goes straight to the blue pool\'s port,',
    '"nginx" through the public port to the same pool. Failed = any answer other than 200 (node) or any non-2xx/3xx answer or socket',
    'error (wrk). "CPU ms / 1k req" is the CPU time nginx (all its processes) and the pool used per 1000 requests (/proc), median of the runs.',
    'The node client times in whole milliseconds (p50 0–1 ms means "under the clock\'s resolution"); wrk in microseconds.',
    ...(skipped.length ? ['', `Skipped: ${skipped.join(', ')} (not installed; \`apt-get install wrk\`).`] : []),
    '',
    table(
      [
        'client',
        'connections',
        'target',
        'req/s',
        'p50 ms',
        'p99 ms',
        'requests',
        'failed',
        'CPU ms / 1k req: nginx + pool',
        'nginx vs direct',
      ],
      rows.map((r) => [
        r.client,
        r.connections,
        r.target,
        r.rps.toFixed(0),
        r.p50Ms.toFixed(2),
        r.p99Ms.toFixed(2),
        r.requests,
        r.failed === 0 ? '0' : `**${r.failed}**`,
        `${r.nginxCpuMsPer1k.toFixed(0)} + ${r.poolCpuMsPer1k.toFixed(0)} = ${r.serverCpuMsPer1k.toFixed(0)}`,
        r.target === 'nginx' ? ratio(r.client, r.connections) : '',
      ]),
    ),
    '',
    `Best through nginx: **${best.rps.toFixed(0)} req/s** (${best.client}, ${best.connections} connections, p99 ${best.p99Ms.toFixed(2)} ms),`,
    `using ${best.nginxCpuMsPer1k.toFixed(0)} ms (nginx) + ${best.poolCpuMsPer1k.toFixed(0)} ms (pool) of CPU per 1000 requests. The client ran on the same`,
    `${os.cpus().length} cores. With the client elsewhere (an EC2 host behind its load balancer) nginx and the pool get the whole machine:`,
    `from CPU time alone this host would top out near **${Math.round(cpuBoundCeiling(best, os.cpus().length))} req/s** through nginx (the pool, one Node process,`,
    'can use one core at most; nginx and the pool share the rest; kernel time outside them not counted, so an upper bound).',
    'DECISIONS.md ("Fleet mode: scale, limits and cost") turns this into per-host and fleet figures and says which instance',
    'limits (burstable CPU credits) apply.',
    '',
  ].join('\n');

  const out = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'throughput.md'), md);
  writeFileSync(
    path.join(out, 'throughput.json'),
    JSON.stringify({ started, machine, options: { seconds, runs, connections: levels, clients }, rows }, null, 2),
  );
  process.stdout.write(`${md}\nwritten: bench/results/throughput.md, bench/results/throughput.json\n`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
