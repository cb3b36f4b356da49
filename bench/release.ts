// bench/release: `bluegreen release` in local mode under full-speed keep-alive load from a client
// that never re-sends (local/load.ts retryStaleSockets:false). `npm start` and the release CLI run
// as the processes an operator runs. Not a test: it prints a table and writes
// bench/results/release.{json,md}. Traffic goes to 127.0.0.1 only, bounded in time.
//
//   npm run bench:release [-- --connections 16 --bake 10 --canary-seconds 10]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../local/paths';
import { runLoad, summarize } from '../local/load';
import { readStackState } from '../local/stack';
import { readLocalRecord } from '../local/release-store';
import { npmStart } from '../test/helpers/npm-start';
import {
  cell,
  entriesSince,
  machine,
  ReleaseTimings,
  releaseTimings,
  stepAt,
  StepTime,
  stepTimes,
  stepTimesCell,
  writeResults,
} from './release-figures';

interface Row extends ReleaseTimings {
  scenario: string;
  command: string;
  exitCode: number | null;
  outcome: string;
  requests: number;
  failed: number;
  /** Share of requests first sent to the canary pool during the canary (log). */
  canaryShare: number | null;
  /** The gate's figures: requests it judged, the release's p99 and the previous release's (ms). */
  judged: number | null;
  p99Ms: number | null;
  baselineP99Ms: number | null;
  reason: string;
  /** The time the release spent in each step (bench/release-figures.ts stepTimes). */
  steps: StepTime[];
}

async function main() {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '16' },
      bake: { type: 'string', default: '10' },
      'canary-seconds': { type: 'string', default: '10' },
      // Normal releases in a row, to see the latency gate's margin against this machine's variance.
      'normal-runs': { type: 'string', default: '20' },
    },
  });
  const connections = Number(values.connections);
  const bake = Number(values.bake);
  const canarySeconds = Number(values['canary-seconds']);
  const normalRuns = Number(values['normal-runs']);
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-bench-release-'));
  process.env.PATH = `/usr/sbin:${process.env.PATH}`;
  const started = await npmStart(stateDir, { RELEASE_ID_BLUE: 'v1', RELEASE_ID_GREEN: 'v0', ACTIVE_POOL: 'blue' });
  const rows: Row[] = [];
  try {
    const deadline = Date.now() + 30_000;
    while (!started.output().includes('ready:')) {
      if (Date.now() > deadline) throw new Error(`npm start not ready:\n${started.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const state = readStackState(stateDir)!;
    const env = { ...started.env };
    delete env.BLUEGREEN_STAGE;

    /** One release under load (or with none: `traffic: false`), expected to exit `expect`. */
    const scenario = async (
      name: string,
      args: string[],
      { expect = 0, traffic = true }: { expect?: number; traffic?: boolean } = {},
    ): Promise<Row> => {
      const controller = new AbortController();
      const logFrom = statSync(state.accessLog).size;
      const load = runLoad({
        url: `${state.url}/`,
        connections,
        durationMs: 180_000,
        retryStaleSockets: false,
        signal: controller.signal,
        maxRequests: traffic ? undefined : 0,
      });
      await new Promise((r) => setTimeout(r, 2000));
      const commandAt = Date.now();
      const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'bluegreen.cjs'), 'release', ...args], {
        env,
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exitCode = await new Promise<number | null>((r) => child.once('exit', r));
      await new Promise((r) => setTimeout(r, 2000));
      controller.abort();
      const result = await load;
      const summary = summarize(result.samples, result.durationMs);
      const record = readLocalRecord(stateDir)!;
      const entries = entriesSince(state.accessLog, record, logFrom);
      let canaryShare: number | null = null;
      const canaryAt = stepAt(record, 'canary');
      const promoteAt = stepAt(record, 'promote');
      if (canaryAt && promoteAt) {
        const during = entries.filter(
          (e) =>
            e.msec! * 1000 > canaryAt + 200 &&
            e.msec! * 1000 < promoteAt - 300 &&
            e.active_pool === record.previousPool,
        );
        canaryShare = during.length
          ? during.filter((e) => e.primary_pool === record.pool).length / during.length
          : null;
      }
      const row: Row = {
        scenario: name,
        command: `bluegreen release ${args.join(' ')}`,
        exitCode,
        outcome: record.state,
        requests: summary.requests,
        failed: summary.failed,
        ...releaseTimings(
          record,
          commandAt,
          entries,
          state.upstreamEnv[record.pool === 'blue' ? 'BLUE_UPSTREAM' : 'GREEN_UPSTREAM'],
        ),
        canaryShare,
        judged: record.figures ? (record.figures.judged ?? record.figures.requests) : null,
        p99Ms: record.figures?.latency?.p99Ms ?? null,
        baselineP99Ms: record.figures?.baseline?.p99Ms ?? null,
        reason: record.reason ?? '',
        steps: stepTimes(record, commandAt),
      };
      console.log(
        `${name}: exit ${exitCode}, ${row.outcome}, ${row.requests} requests, ${row.failed} failed${summary.failed ? ` ${JSON.stringify(summary.failures)}` : ''}`,
      );
      if (exitCode !== expect) console.log(out);
      return row;
    };

    rows.push(await scenario('a) good, all-at-once', ['--release', 'v2', '--bake', `${bake}s`]));
    rows.push(
      await scenario('b) good, canary 10% then full', [
        '--release',
        'v3',
        '--strategy',
        'canary',
        '--canary-percent',
        '10',
        '--canary-duration',
        `${canarySeconds}s`,
        '--bake',
        `${bake}s`,
      ]),
    );
    rows.push(
      await scenario('c) bad, FAULT_RATE=0.2', ['--release', 'v4-bad', '--env', 'FAULT_RATE=0.2', '--bake', '60s'], {
        expect: 1,
      }),
    );
    rows.push(
      await scenario(
        'd) bad, FAIL_HEALTHZ=1',
        ['--release', 'v5-nohealth', '--env', 'FAIL_HEALTHZ=1', '--bake', `${bake}s`],
        { expect: 1 },
      ),
    );
    // The scenario the gate once lost: a bad release to green rolled back, then at once a good one
    // to green, while nginx still holds green failed (fail_timeout 5 s, per worker).
    rows.push(
      await scenario(
        'e) bad, FAULT_RATE=0.3, to green',
        ['--release', 'v6-bad', '--env', 'FAULT_RATE=0.3', '--bake', '60s'],
        {
          expect: 1,
        },
      ),
    );
    rows.push(await scenario('e) then at once good, to green', ['--release', 'v7', '--bake', `${bake}s`]));
    rows.push(
      await scenario('f) slow, DELAY_MS=600', ['--release', 'v8-slow', '--env', 'DELAY_MS=600', '--bake', '60s'], {
        expect: 1,
      }),
    );
    rows.push(
      await scenario('g) good, no traffic at all', ['--release', 'v9-unseen', '--bake', `${bake}s`], {
        expect: 3,
        traffic: false,
      }),
    );
    // A held release's way out: flip back (the previous pool still runs the previous release).
    await new Promise<void>((resolve, reject) => {
      const flip = spawn(
        process.execPath,
        [path.join(REPO_ROOT, 'bin', 'bluegreen.cjs'), 'flip', readLocalRecord(stateDir)!.previousPool],
        { env, cwd: REPO_ROOT, stdio: 'ignore' },
      );
      flip.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`flip back exited ${code}`))));
    });
    for (let i = 1; i <= normalRuns; i++)
      rows.push(await scenario(`h) normal release ${i} of ${normalRuns}`, ['--release', `n${i}`, '--bake', '5s']));
  } finally {
    await started.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }

  const meta = {
    date: new Date().toISOString(),
    machine: machine(),
    load: `${connections} keep-alive connections at full speed, no re-send on a closed connection (retryStaleSockets:false); from 2 s before the command to 2 s after it exits`,
    bakeSeconds: bake,
    canarySeconds,
    gate: 'defaults: > 2.0% of at least 50 requests first sent to the release pool (ALERT_ERROR_RATE, ALERT_MIN_WINDOW)',
  };
  const md = [
    '# bench/release: releases in local mode under full-speed load',
    '',
    `${meta.date} · ${meta.machine}`,
    '',
    `Load: ${meta.load}. Bake ${bake} s (c: 60 s), canary ${canarySeconds} s. Gate: ${meta.gate}.`,
    '',
    '| scenario | exit | outcome | requests | failed | s to flip | s to promoted | s promotion→rollback | requests on the bad pool | canary share | judged | p99 ms (previous) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows
      .filter((r) => !r.scenario.startsWith('h)'))
      .map(
        (r) =>
          `| ${r.scenario} | ${r.exitCode} | ${r.outcome} | ${r.requests} | ${r.failed} | ${cell(r.secondsToFlip)} | ${cell(r.secondsToPromoted)} | ${cell(r.secondsPromotionToRollback)} | ${r.badPoolTouched ?? '–'} | ${r.canaryShare === null ? '–' : `${(r.canaryShare * 100).toFixed(1)}%`} | ${r.judged ?? '–'} | ${latencyCell(r)} |`,
      ),
    '',
    ...normalReleases(rows.filter((r) => r.scenario.startsWith('h)'))),
    '',
    'Time in each step (s): a step is written when it is done, so each figure is from the step before it',
    '(the first, `start`, from the command: the `node` process and the checks); the last runs to the',
    "record's finish (the bake, a rollback). h): the median of each step over the normal releases.",
    '',
    '| scenario | time in each step (s) |',
    '|---|---|',
    ...rows.filter((r) => !r.scenario.startsWith('h)')).map((r) => `| ${r.scenario} | ${stepTimesCell(r.steps)} |`),
    `| h) median of ${rows.filter((r) => r.scenario.startsWith('h)')).length} normal releases | ${stepTimesCell(medianStepTimes(rows.filter((r) => r.scenario.startsWith('h)')).map((r) => r.steps)))} |`,
    '',
    's to flip / s to promoted: from the command (a new `node` process) to the promotion flip / to the record `promoted` (bake included).',
    'requests on the bad pool: requests with an attempt on the release pool from the release start (a failed attempt is retried on the other pool inside the request).',
    '',
  ].join('\n');
  writeResults('release', { meta, rows }, md);
}

/** Per step name, the median over runs of the same shape (the steps of the first run, in its order). */
function medianStepTimes(runs: StepTime[][]): StepTime[] {
  if (runs.length === 0) return [];
  return runs[0].map(({ step }) => {
    const xs = runs
      .map((steps) => steps.find((t) => t.step === step)?.seconds)
      .filter((x): x is number => x !== undefined)
      .sort((a, b) => a - b);
    return { step, seconds: xs[Math.floor(xs.length / 2)] };
  });
}

function latencyCell(r: Row): string {
  if (r.p99Ms === null) return '–';
  return `${r.p99Ms.toFixed(1)}${r.baselineP99Ms === null ? '' : ` (${r.baselineP99Ms.toFixed(1)})`}`;
}

/** The normal releases in a row: how close their p99 came to the latency gate (3× and 100 ms above the previous). */
function normalReleases(runs: Row[]): string[] {
  if (runs.length === 0) return [];
  const ratios = runs.flatMap((r) => (r.p99Ms !== null && r.baselineP99Ms ? [r.p99Ms / r.baselineP99Ms] : []));
  const above = runs.flatMap((r) => (r.p99Ms !== null && r.baselineP99Ms !== null ? [r.p99Ms - r.baselineP99Ms] : []));
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)] ?? NaN;
  const promoted = runs.filter((r) => r.outcome === 'promoted').length;
  const failed = runs.reduce((n, r) => n + r.failed, 0);
  return [
    `h) ${runs.length} normal releases in a row under the same load (bake 5 s): ${promoted} promoted, ${runs.length - promoted} not (${runs.filter((r) => /p99/.test(r.reason)).length} for latency), ${failed} failed requests.`,
    `p99 of the release ÷ p99 of the previous release: median ${median(ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)} (gate 3); p99 above the previous: median ${median(above).toFixed(1)} ms, max ${Math.max(...above).toFixed(1)} ms (gate 100 ms). Every run: ${runs.map(latencyCell).join(', ')}.`,
  ];
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
