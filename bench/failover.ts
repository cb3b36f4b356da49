// bench/failover: what our failover settings buy, measured against two published blue/green
// settings, side by side in one run on this machine. Not a test: it prints a table and writes
// bench/results/failover.{json,md}. Traffic goes to 127.0.0.1 only, bounded in time.
//
//   npm run bench:failover [-- --seconds 10 --connections 32 --rate 500 --repeat 1 --only ours --flips 12]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { NGINX_DIR, REPO_ROOT } from '../local/paths';
import { otherPool, Pool } from '../core/pools';
import { LoadSummary, percentile, runLoad, summarize } from '../local/load';
import { LocalStack } from '../local/stack';
import { applyUpstream } from '../local/switch';
import { table } from './table';

// ---- the settings compared -------------------------------------------------------------------

interface Setting {
  name: string;
  source: string;
  /** nginx directives to override (in routes.conf or proxy-failover.conf); null removes the directive (nginx default). */
  proxy: Record<string, string | null>;
  /** Renderer inputs: the primary's max_fails / fail_timeout. */
  upstream: Record<string, string>;
}

const SETTINGS: Setting[] = [
  {
    name: 'ours',
    source: 'nginx/proxy-failover.conf + render-upstream.sh defaults (no slow paths)',
    proxy: {},
    upstream: {},
  },
  {
    name: 'ref-A',
    source: 'published setting A',
    proxy: {
      proxy_connect_timeout: '1s',
      proxy_send_timeout: '6s',
      proxy_read_timeout: '6s',
      proxy_next_upstream_timeout: '6s',
      proxy_next_upstream_tries: '2',
    },
    upstream: { MAX_FAILS: '1', FAIL_TIMEOUT: '2s' },
  },
  {
    name: 'ref-B',
    source: 'published setting B',
    proxy: {
      proxy_connect_timeout: '2s',
      proxy_send_timeout: '2s',
      proxy_read_timeout: '2s',
      proxy_next_upstream_tries: '2',
      proxy_next_upstream_timeout: null,
    },
    upstream: { MAX_FAILS: '2', FAIL_TIMEOUT: '5s' },
  },
];

const directivePattern = (directive: string) => new RegExp(`^([ \\t]*)${directive}\\s+[^;]+;`, 'gm');

/**
 * Our config with some directives changed, everything else identical: the timeouts live in the
 * rendered routes.conf (every location), the retry policy in proxy-failover.conf. The references
 * are written into the rendered text because the renderer refuses some of them on purpose (ref-A's
 * retry window is no longer than one attempt).
 */
export function applyProxySettings(
  files: { routes: string; failover: string },
  overrides: Record<string, string | null>,
): { routes: string; failover: string } {
  const out = { ...files };
  for (const [directive, value] of Object.entries(overrides)) {
    const file = directivePattern(directive).test(out.routes)
      ? 'routes'
      : directivePattern(directive).test(out.failover)
        ? 'failover'
        : undefined;
    if (!file) throw new Error(`${directive} not found in routes.conf or proxy-failover.conf`);
    out[file] = out[file].replace(directivePattern(directive), (_, indent: string) =>
      value === null ? `${indent}# ${directive}: nginx default` : `${indent}${directive} ${value};`,
    );
  }
  return out;
}

// ---- scenarios --------------------------------------------------------------------------------

type Mode = 'error' | 'timeout' | 'kill';
type Profile = 'moderate' | 'full';

interface Options {
  seconds: number;
  warmupSeconds: number;
  connections: number;
  rate: number;
  repeat: number;
  only?: string;
  flips: number;
}

interface ChaosRow extends Pick<LoadSummary, 'requests' | 'failed' | 'failures' | 'p50Ms' | 'p99Ms' | 'maxMs'> {
  setting: string;
  profile: Profile;
  mode: Mode;
  backupShare: number;
  firstBackupMs: number | null;
  rps: number;
  staleSocketRetries: number;
}

/** Directives the renderer writes into routes.conf (the timeouts); the rest are in proxy-failover.conf. */
const ROUTES_DIRECTIVES = [
  'proxy_connect_timeout',
  'proxy_send_timeout',
  'proxy_read_timeout',
  'proxy_next_upstream_timeout',
];
const pickRoutes = (o: Setting['proxy']) =>
  Object.fromEntries(Object.entries(o).filter(([k]) => ROUTES_DIRECTIVES.includes(k)));
const pickFailover = (o: Setting['proxy']) =>
  Object.fromEntries(Object.entries(o).filter(([k]) => !ROUTES_DIRECTIVES.includes(k)));

async function withStack<T>(setting: Setting, fn: (stack: LocalStack) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-bench-'));
  const failoverConf = path.join(dir, 'proxy-failover.conf');
  const failover = readFileSync(path.join(NGINX_DIR, 'proxy-failover.conf'), 'utf8');
  writeFileSync(failoverConf, applyProxySettings({ routes: '', failover }, pickFailover(setting.proxy)).failover);
  let stack: LocalStack | undefined;
  try {
    stack = await LocalStack.start({
      stateDir: path.join(dir, 'stack'),
      activePool: 'blue',
      failoverConf,
      routesOverride: (routes) => applyProxySettings({ routes, failover: '' }, pickRoutes(setting.proxy)).routes,
      upstreamEnv: setting.upstream,
    });
    return await fn(stack);
  } finally {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function chaosScenario(setting: Setting, mode: Mode, profile: Profile, o: Options): Promise<ChaosRow> {
  return withStack(setting, async (stack) => {
    const active: Pool = 'blue';
    const backup = otherPool(active);
    const warmupMs = o.warmupSeconds * 1000;
    let brokeAt = 0;
    let breakError: unknown;
    // The timer's promise is handled here: a failed break is reported after the load, not as an unhandled rejection.
    const breakIt = setTimeout(() => {
      const broken = mode === 'kill' ? stack.killPool(active, 'SIGKILL') : stack.chaos(active, mode);
      broken.then(
        () => (brokeAt = Date.now()), // counted from when the break has taken effect
        (err: unknown) => (breakError = err),
      );
    }, warmupMs);
    const result = await runLoad({
      url: `${stack.url}/version`,
      connections: o.connections,
      durationMs: warmupMs + o.seconds * 1000,
      ratePerSec: profile === 'moderate' ? o.rate : undefined,
    });
    clearTimeout(breakIt);
    if (!brokeAt) throw new Error(`${setting.name} ${mode}: the break never took effect`, { cause: breakError });
    const chaosAt = brokeAt - result.startedAt;
    const summary = summarize(result.samples, result.durationMs);
    const afterBreak = result.samples.filter((s) => s.sentAt >= chaosAt);
    const firstBackup = result.samples
      .filter((s) => s.pool === backup && s.status === 200 && s.sentAt + s.latencyMs >= chaosAt)
      .map((s) => s.sentAt + s.latencyMs - chaosAt)
      .sort((a, b) => a - b)[0];
    return {
      setting: setting.name,
      profile,
      mode,
      requests: summary.requests,
      failed: summary.failed,
      failures: summary.failures,
      p50Ms: summary.p50Ms,
      p99Ms: summary.p99Ms,
      maxMs: summary.maxMs,
      backupShare: afterBreak.length ? afterBreak.filter((s) => s.pool === backup).length / afterBreak.length : 0,
      firstBackupMs: firstBackup ?? null,
      rps: summary.requestsPerSec,
      staleSocketRetries: result.staleSocketRetries,
    };
  });
}

interface FlipRow {
  /** How the pool changed: switch-pool.sh (flag file) or a reload per change (the old way). */
  method: 'switch-pool' | 'reload';
  flips: number;
  requests: number;
  failed: number;
  failures: Record<string, number>;
  p99Ms: number;
  maxMs: number;
  staleSocketRetries: number;
}

/**
 * Flips blue → green → blue … under full-speed keep-alive load with our settings, measured with a
 * client that never re-sends a request on a kept-alive connection the server closed (Node's
 * default agent, a load balancer in front of nginx): a closed connection is a failed request.
 * `reload` is the reference: the same load with an nginx reload per change (apply-upstream.sh with
 * a setting toggled), which is what every flip was before the switch dir.
 */
async function flipScenario(o: Options, method: FlipRow['method']): Promise<FlipRow> {
  return withStack(SETTINGS[0], async (stack) => {
    const load = runLoad({
      url: `${stack.url}/version`,
      connections: o.connections,
      durationMs: o.seconds * 1000,
      retryStaleSockets: false,
    });
    const gap = (o.seconds * 1000) / (o.flips + 1);
    for (let i = 0; i < o.flips; i++) {
      await new Promise((r) => setTimeout(r, gap));
      const pool: Pool = i % 2 === 0 ? 'green' : 'blue';
      const res =
        method === 'switch-pool'
          ? await stack.flip(pool)
          : await applyUpstream(stack.state, { UPSTREAM_KEEPALIVE: i % 2 === 0 ? '65' : '64' });
      if (res.code !== 0) throw new Error(`${method} ${i + 1} failed: ${res.stderr}`);
    }
    const result = await load;
    const s = summarize(result.samples, result.durationMs);
    return {
      method,
      flips: o.flips,
      requests: s.requests,
      failed: s.failed,
      failures: s.failures,
      p99Ms: s.p99Ms,
      maxMs: s.maxMs,
      staleSocketRetries: result.staleSocketRetries,
    };
  });
}

interface OverheadRow {
  client: string;
  target: 'nginx' | 'direct';
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

function wrkAvailable(): boolean {
  return spawnSync('wrk', ['--version']).error === undefined;
}

/** wrk prints "Requests/sec: N" and, with --latency, the 50%/99% lines. */
function runWrk(url: string, o: Options): { rps: number; p50Ms: number; p99Ms: number } {
  const out = execFileSync('wrk', ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', url], {
    encoding: 'utf8',
  });
  const ms = (label: string) => {
    const m = out.match(new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)`, 'm'));
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
  };
  return { rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1]), p50Ms: ms('50%'), p99Ms: ms('99%') };
}

async function overheadScenario(o: Options): Promise<OverheadRow[]> {
  return withStack(SETTINGS[0], async (stack) => {
    const rows: OverheadRow[] = [];
    const targets = { nginx: `${stack.url}/version`, direct: `${stack.poolUrl('blue')}/version` } as const;
    for (const target of ['direct', 'nginx'] as const) {
      const r = await runLoad({ url: targets[target], connections: o.connections, durationMs: o.seconds * 1000 });
      const s = summarize(r.samples, r.durationMs);
      rows.push({ client: 'node', target, rps: s.requestsPerSec, p50Ms: s.p50Ms, p99Ms: s.p99Ms });
    }
    if (wrkAvailable()) {
      for (const target of ['direct', 'nginx'] as const)
        rows.push({ client: 'wrk', target, ...runWrk(targets[target], o) });
    }
    return rows;
  });
}

// ---- aggregation and output --------------------------------------------------------------------

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

/** Repeats are merged: counts summed, latencies and shares as the median of the runs. */
function mergeRuns(rows: ChaosRow[]): ChaosRow {
  const failures: Record<string, number> = {};
  for (const r of rows) for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
  const firsts = rows.map((r) => r.firstBackupMs).filter((x): x is number => x !== null);
  return {
    ...rows[0],
    requests: rows.reduce((a, r) => a + r.requests, 0),
    failed: rows.reduce((a, r) => a + r.failed, 0),
    failures,
    p50Ms: median(rows.map((r) => r.p50Ms)),
    p99Ms: median(rows.map((r) => r.p99Ms)),
    maxMs: Math.max(...rows.map((r) => r.maxMs)),
    backupShare: median(rows.map((r) => r.backupShare)),
    firstBackupMs: firsts.length ? median(firsts) : null,
    rps: median(rows.map((r) => r.rps)),
    staleSocketRetries: rows.reduce((a, r) => a + r.staleSocketRetries, 0),
  };
}

function failureText(row: { failed: number; failures: Record<string, number> }): string {
  if (row.failed === 0) return '0';
  return `**${row.failed}** (${Object.entries(row.failures)
    .map(([k, v]) => `${k}×${v}`)
    .join(', ')})`;
}

async function main() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      connections: { type: 'string', default: '32' },
      rate: { type: 'string', default: '500' },
      repeat: { type: 'string', default: '1' },
      only: { type: 'string' },
      flips: { type: 'string', default: '12' },
    },
  });
  const o: Options = {
    seconds: Number(values.seconds),
    warmupSeconds: Number(values.warmup),
    connections: Number(values.connections),
    rate: Number(values.rate),
    repeat: Number(values.repeat),
    only: values.only,
    flips: Number(values.flips),
  };
  const settings = SETTINGS.filter((s) => !o.only || s.name === o.only);
  const started = new Date();
  // Other work on the machine moves every figure here: recorded so a run can be judged.
  const loadBefore = os.loadavg()[0];
  const chaosRows: ChaosRow[] = [];
  for (const profile of ['moderate', 'full'] as const) {
    for (const mode of ['error', 'timeout', 'kill'] as const) {
      for (const setting of settings) {
        const runs: ChaosRow[] = [];
        for (let i = 0; i < o.repeat; i++) runs.push(await chaosScenario(setting, mode, profile, o));
        const row = mergeRuns(runs);
        chaosRows.push(row);
        process.stderr.write(
          `${profile} ${mode} ${setting.name}: ${row.requests} req, ${row.failed} failed, max ${row.maxMs} ms\n`,
        );
      }
    }
  }
  const flips: FlipRow[] = [];
  for (const method of ['switch-pool', 'reload'] as const) {
    const row = await flipScenario(o, method);
    flips.push(row);
    process.stderr.write(`flip (${method}): ${row.flips} flips, ${row.requests} req, ${row.failed} failed\n`);
  }
  const overhead = await overheadScenario(o);

  const nginxVersion = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '');
  const machine =
    `${os.cpus().length} cores, ${os.platform()} ${os.arch()}, node ${process.version}, ${nginxVersion}; ` +
    `1-min load average ${loadBefore.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end`;
  const rate = (p: Profile) => (p === 'moderate' ? `${o.rate} req/s` : 'full speed');
  const md = [
    `# bench/failover — ${started.toISOString()}`,
    '',
    `Machine: ${machine}. Each scenario: a fresh local stack (real nginx, two pool processes), ${o.connections} keep-alive`,
    `connections, ${o.warmupSeconds} s of traffic, then the break on the active pool (blue), then ${o.seconds} s more. Runs per`,
    `scenario: ${o.repeat} (counts summed, latencies the median of runs, max the max). "backup share" is over requests sent after the break;`,
    `"first backup" is the time from the break to the first answer served by green. Failed = any answer other than 200.`,
    '',
    '## Chaos on the active pool',
    '',
    table(
      [
        'load',
        'mode',
        'setting',
        'requests',
        'failed',
        'p50 ms',
        'p99 ms',
        'max ms',
        'backup share',
        'first backup ms',
      ],
      chaosRows.map((r) => [
        rate(r.profile),
        r.mode,
        r.setting,
        r.requests,
        failureText(r),
        r.p50Ms,
        r.p99Ms,
        r.maxMs,
        `${(r.backupShare * 100).toFixed(1)}%`,
        r.firstBackupMs ?? '—',
      ]),
    ),
    '',
    '## Pool flips under full-speed load (ours)',
    '',
    `${o.connections} keep-alive connections at full speed for ${o.seconds} s, ${o.flips} changes evenly spread, with a client`,
    'that never re-sends a request on a kept-alive connection the server closed (such a request counts as failed,',
    'as it would behind a load balancer). "switch-pool" is how the pool flips now (a flag file nginx checks per',
    'request); "reload" is the same load with an nginx reload per change, which is what every flip used to be.',
    '',
    table(
      ['method', 'flips', 'requests', 'failed', 'p99 ms', 'max ms'],
      flips.map((f) => [f.method, f.flips, f.requests, failureText(f), f.p99Ms, f.maxMs]),
    ),
    '',
    '## Proxy overhead (no chaos, full speed)',
    '',
    table(
      ['client', 'target', 'req/s', 'p50 ms', 'p99 ms'],
      overhead.map((r) => [r.client, r.target, r.rps.toFixed(0), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2)]),
    ),
    '',
    ...['node', 'wrk'].flatMap((client) => {
      const direct = overhead.find((r) => r.client === client && r.target === 'direct');
      const proxied = overhead.find((r) => r.client === client && r.target === 'nginx');
      return direct && proxied
        ? [
            `- ${client}: through nginx = ${((proxied.rps / direct.rps) * 100).toFixed(0)}% of direct req/s, p99 ×${(proxied.p99Ms / direct.p99Ms).toFixed(2)}`,
          ]
        : [];
    }),
    '',
    '## Settings',
    '',
    ...SETTINGS.map(
      (s) =>
        `- **${s.name}** (${s.source}): ${
          JSON.stringify({ ...s.proxy, ...s.upstream }) === '{}'
            ? 'as in the repo'
            : Object.entries({ ...s.proxy, ...s.upstream })
                .map(([k, v]) => `${k}=${v ?? 'unset'}`)
                .join(', ')
        }`,
    ),
    '',
  ].join('\n');

  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'failover.md'), md);
  writeFileSync(
    path.join(dir, 'failover.json'),
    JSON.stringify({ started, machine, options: o, settings: SETTINGS, chaos: chaosRows, flips, overhead }, null, 2),
  );
  process.stdout.write(`${md}\nwritten: bench/results/failover.md, bench/results/failover.json\n`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
