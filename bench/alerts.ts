// bench/alerts: the alert path's figures. Not a test: prints a table, writes bench/results/alerts.{json,md}.
//   - log events per second through decode + parse + rules, in one process
//   - the Lambda bundle's size (esbuild, the construct's options) and module init time
//   - local alert latency: chaos start → the local Slack receiver has the failover alert and the
//     error-rate alert (default rule settings), at ~20 req/s and at full speed
// Traffic goes to 127.0.0.1 only, bounded in count and time.
//
//   npm run bench:alerts [-- --events 200000 --runs 5 --latency-runs 5]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { ALERT_ENTRY } from '../lib/alerting';
import { decodeSubscription, encodeSubscription, LogEvent } from '../lambda/alert/decode';
import { processLines } from '../core/line-batch';
import { DEFAULT_RULE_CONFIG, emptyState } from '../core/rules';
import { REPO_ROOT } from '../local/paths';
import { startLoad } from '../test/helpers/load';
import { startSlackReceiver } from '../test/helpers/slack-receiver';
import { waitFor } from '../test/helpers/stack';
import { percentile } from '../local/load';
import { LocalStack } from '../local/stack';
import { AlertWatcher } from '../local/watcher';

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

/** Real nginx lines (the e2e fixture), re-stamped so every event is distinct. */
function payloads(total: number, perBatch: number): unknown[] {
  const lines = readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'nginx-access.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean);
  const out: unknown[] = [];
  let n = 0;
  const t0 = Date.now();
  while (n < total) {
    const logEvents: LogEvent[] = [];
    for (let i = 0; i < perBatch && n < total; i++, n++) {
      logEvents.push({
        id: String(n),
        timestamp: t0 + n,
        message: lines[n % lines.length].replace(/"msec":[\d.]+/, `"msec":${((t0 + n) / 1000).toFixed(3)}`),
      });
    }
    out.push(
      encodeSubscription({
        messageType: 'DATA_MESSAGE',
        logGroup: '/bluegreen/bench/nginx/access',
        logStream: 'i-bench',
        logEvents,
      }),
    );
  }
  return out;
}

function throughput(events: number, runs: number) {
  const batches = payloads(events, 1000); // CloudWatch Logs delivers up to ~10k events per invocation; 1000 is typical
  const rates: number[] = [];
  let decisions = 0;
  for (let r = 0; r < runs; r++) {
    let state = emptyState();
    const started = process.hrtime.bigint();
    for (const p of batches) {
      const batch = decodeSubscription(p);
      const res = processLines(
        state,
        batch.logEvents.map((e) => ({ message: e.message, host: batch.logStream, receivedAt: e.timestamp })),
        DEFAULT_RULE_CONFIG,
        false,
      );
      state = res.state;
      decisions += res.decisions.length;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    rates.push(events / seconds);
  }
  return {
    events,
    runs,
    medianPerSec: median(rates),
    minPerSec: Math.min(...rates),
    maxPerSec: Math.max(...rates),
    decisions,
  };
}

async function bundle(runs: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-bundle-'));
  const outfile = path.join(dir, 'index.js');
  // The options the Alerting construct gives NodejsFunction.
  await build({
    entryPoints: [ALERT_ENTRY],
    bundle: true,
    minify: true,
    sourcemap: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    external: ['@aws-sdk/*'],
    outfile,
    logLevel: 'silent',
  });
  const bytes = statSync(outfile).size;
  const gzipBytes = gzipSync(readFileSync(outfile)).length;
  const inits: number[] = [];
  for (let i = 0; i < runs; i++) {
    const ms = execFileSync(
      process.execPath,
      [
        '-e',
        `const t=process.hrtime.bigint();require(${JSON.stringify(outfile)});console.log(Number(process.hrtime.bigint()-t)/1e6)`,
      ],
      {
        encoding: 'utf8',
        // The SDK clients come from the runtime on Lambda; here from the repo's node_modules.
        env: { ...process.env, NODE_PATH: path.join(REPO_ROOT, 'node_modules') },
      },
    );
    inits.push(Number(ms.trim()));
  }
  rmSync(dir, { recursive: true, force: true });
  return { bytes, gzipBytes, initMsMedian: median(inits), initMsMax: Math.max(...inits), runs };
}

const has = (slack: { received: Array<{ body: { text?: string } }> }, re: RegExp) =>
  slack.received.some((r) => re.test(r.body.text ?? ''));

async function localLatency(runs: number, load: { connections: number; ratePerSec?: number }) {
  const latencies: number[] = [];
  const errorRate: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-bench-alerts-'));
    const slack = await startSlackReceiver();
    const stack = await LocalStack.start({ stateDir: dir, activePool: 'blue' });
    const watcher = new AlertWatcher({
      accessLog: stack.state.accessLog,
      stateDir: dir,
      stage: 'bench',
      config: DEFAULT_RULE_CONFIG,
      slackWebhookUrl: slack.url,
      out: () => undefined,
    });
    watcher.start();
    const run = startLoad({ url: `${stack.url}/version`, ...load, durationMs: 30_000 });
    try {
      await run.after(100, 'of warm-up');
      const started = Date.now();
      await stack.chaos('blue', 'error');
      await waitFor(
        () => has(slack, /Failover on/) && has(slack, /Error rate/),
        'the failover and error-rate alerts',
        20_000,
      );
      const got = slack.received.find((r) => /Failover on/.test(r.body.text ?? ''))!;
      latencies.push(got.at - started);
      errorRate.push(slack.received.find((r) => /Error rate/.test(r.body.text ?? ''))!.at - started);
    } finally {
      await run.finish();
      await watcher.stop();
      await stack.stop();
      await slack.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return {
    runs,
    load: load.ratePerSec ? `${load.ratePerSec} req/s` : `full speed, ${load.connections} connections`,
    medianMs: median(latencies),
    maxMs: Math.max(...latencies),
    all: latencies,
    errorRate: { medianMs: median(errorRate), maxMs: Math.max(...errorRate), all: errorRate },
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '200000' },
      runs: { type: 'string', default: '5' },
      'latency-runs': { type: 'string', default: '5' },
    },
  });
  const started = new Date();
  const engine = throughput(Number(values.events), Number(values.runs));
  const size = await bundle(Number(values.runs));
  const latency = await localLatency(Number(values['latency-runs']), { connections: 2, ratePerSec: 20 });
  const fullSpeed = await localLatency(Number(values['latency-runs']), { connections: 8 });
  const machine = `${os.cpus().length} cores, ${os.platform()} ${os.arch()}, node ${process.version}`;
  const md = [
    `# bench/alerts — ${started.toISOString()}`,
    '',
    `Machine: ${machine}.`,
    '',
    '| measure | result | target |',
    '|---|---|---|',
    `| log events/s through decode + parse + rules (one process, 1000-event gzip batches of real nginx lines, median of ${engine.runs} runs of ${engine.events.toLocaleString('en')}) | **${Math.round(engine.medianPerSec).toLocaleString('en')}** (min ${Math.round(engine.minPerSec).toLocaleString('en')}, max ${Math.round(engine.maxPerSec).toLocaleString('en')}) | ≥ 100,000 |`,
    `| Lambda bundle (esbuild, minified, AWS SDK from the runtime) | **${(size.bytes / 1024).toFixed(1)} KiB** (${(size.gzipBytes / 1024).toFixed(1)} KiB gzipped) | < 1 MB |`,
    `| module init (require of the bundle incl. SDK clients, median of ${size.runs}) | **${size.initMsMedian.toFixed(1)} ms** (max ${size.initMsMax.toFixed(1)} ms) | — |`,
    ...[latency, fullSpeed].flatMap((l) => [
      `| local alert latency at ${l.load}: chaos start → Slack receiver has the failover alert (median of ${l.runs}) | **${l.medianMs} ms** (max ${l.maxMs} ms; ${l.all.join(', ')}) | < 2 s |`,
      `| local alert latency at ${l.load}: chaos start → Slack receiver has the error-rate alert (default window 200, threshold 2 %; median of ${l.runs}) | **${l.errorRate.medianMs} ms** (max ${l.errorRate.maxMs} ms; ${l.errorRate.all.join(', ')}) | < 2 s |`,
    ]),
    '',
  ].join('\n');
  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'alerts.md'), md);
  writeFileSync(
    path.join(dir, 'alerts.json'),
    JSON.stringify({ started, machine, engine, bundle: size, latency, fullSpeed }, null, 2),
  );
  process.stdout.write(`${md}\nwritten: bench/results/alerts.md, bench/results/alerts.json\n`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
