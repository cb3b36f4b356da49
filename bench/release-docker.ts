// bench/release-docker: `bluegreen release --stage` on the Docker Engine harness (test/docker/
// harness.sh must have run): the host's real Compose set and bluegreen-apply, the release CLI's own
// code over the AWS backend (SSM in moto_server) and the alert function's own code as the guard
// (test/docker/release-stage.ts), under full-speed keep-alive load from a client that never
// re-sends. Scenarios (a) good release all-at-once and (c) FAULT_RATE=0.2 of bench/release.
// Not a test: prints a table and writes bench/results/release-docker.{json,md}. Loopback only.
//
//   npm run bench:release-docker [-- --connections 16 --bake 10]
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad, summarize } from '../local/load';
import { APPLY, dockerEngine, startComposeSet } from '../test/docker/compose-set';
import { startDockerStage } from '../test/docker/release-stage';
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
  exitCode: number;
  outcome: string;
  requests: number;
  failed: number;
  reason: string;
  /** The image on the host (bluegreen-apply's pull step printed) → the promotion; null when never promoted. */
  secondsImageToFlip: number | null;
  /**
   * The image on the host → the promotion decided: the gate passed and the CLI writes the flip (the
   * record's `promoting` step); the flip's own propagation to the host comes after it.
   */
  secondsImageToDecision: number | null;
  /** The time the release spent in each step (bench/release-figures.ts stepTimes). */
  steps: StepTime[];
}

/**
 * The real bluegreen-apply, as set.apply runs it, with its output read as it comes: when a run
 * prints its successful pull step, the release's image is on the host (the deploy's own start).
 */
function streamingApply(file: string, env: Record<string, string>, onPulled: (at: number) => void) {
  return (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('sh', [file, ...args], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let pulled = false;
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (!pulled && /^step=pull pool=\S+ ok=true /m.test(stdout)) {
          pulled = true;
          onPulled(Date.now());
        }
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
}

async function main() {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '16' },
      bake: { type: 'string', default: '10' },
      runs: { type: 'string', default: '3' },
    },
  });
  const engine = dockerEngine();
  if (!engine.ready) throw new Error(`bench/release-docker: ${engine.reason}`);
  const connections = Number(values.connections);
  const bake = Number(values.bake);
  const runs = Number(values.runs);
  const set = await startComposeSet({ active: 'blue', releases: { blue: 'v1', green: 'v0' } });
  let pulledAt: number | undefined;
  set.apply = streamingApply(path.join(set.home, APPLY), set.env, (at) => (pulledAt ??= at));
  const stage = await startDockerStage(set);
  const rows: Row[] = [];
  try {
    const scenario = async (
      name: string,
      release: string,
      env: Record<string, string>,
      bakeSeconds: number,
    ): Promise<Row> => {
      const controller = new AbortController();
      const load = runLoad({
        url: `${set.url}/version`,
        connections,
        durationMs: 300_000,
        retryStaleSockets: false,
        requestTimeoutMs: 5_000,
        signal: controller.signal,
      });
      await new Promise((r) => setTimeout(r, 2000));
      pulledAt = undefined;
      const commandAt = Date.now();
      const { code, lines } = await stage.release({ release, env, bakeSeconds });
      await new Promise((r) => setTimeout(r, 2000));
      controller.abort();
      const result = await load;
      const summary = summarize(result.samples, result.durationMs);
      const record = (await stage.backend.readRecord())!;
      const row: Row = {
        scenario: name,
        exitCode: code,
        outcome: record.state,
        requests: summary.requests,
        failed: summary.failed,
        ...releaseTimings(
          record,
          commandAt,
          entriesSince(path.join(set.logDir, 'access.log'), record),
          `${set.addresses[record.pool]}:`,
        ),
        reason: record.reason ?? '',
        secondsImageToFlip: ((promoteAt) =>
          promoteAt !== undefined && pulledAt !== undefined ? Math.round((promoteAt - pulledAt) / 10) / 100 : null)(
          stepAt(record, 'promote'),
        ),
        secondsImageToDecision: ((at) =>
          at !== undefined && pulledAt !== undefined ? Math.round((at - pulledAt) / 10) / 100 : null)(
          stepAt(record, 'promoting'),
        ),
        steps: stepTimes(record, commandAt),
      };
      console.log(
        `${name}: exit ${code}, ${row.outcome}, ${row.requests} requests, ${row.failed} failed${summary.failed ? ` ${JSON.stringify(summary.failures)}` : ''}`,
      );
      if (summary.failed || code !== (record.state === 'promoted' ? 0 : 1)) console.log(lines.join('\n'));
      return row;
    };
    // (a) several times (each to the pool the previous one left idle): the figures are medians.
    for (let i = 1; i <= runs; i++) rows.push(await scenario(`a) good, all-at-once #${i}`, `v2-${i}`, {}, bake));
    rows.push(await scenario('c) bad, FAULT_RATE=0.2', 'v3-bad', { FAULT_RATE: '0.2' }, 60));
  } finally {
    await stage.stop();
    await set.down();
  }

  const good = rows.filter((r) => r.scenario.startsWith('a)'));
  const median = (xs: Array<number | null>) => {
    const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
    return v.length ? v[Math.floor((v.length - 1) / 2)] : null;
  };
  const medians = {
    runs: good.length,
    secondsToFlip: median(good.map((r) => r.secondsToFlip)),
    secondsImageToFlip: median(good.map((r) => r.secondsImageToFlip)),
    secondsImageToDecision: median(good.map((r) => r.secondsImageToDecision)),
    secondsToPromoted: median(good.map((r) => r.secondsToPromoted)),
    failed: good.reduce((n, r) => n + r.failed, 0),
  };
  const meta = {
    date: new Date().toISOString(),
    machine: machine(),
    engine: engine.line,
    load: `${connections} keep-alive connections at full speed to the published nginx port, no re-send on a closed connection; from 2 s before the release to 2 s after it ends`,
    bakeSeconds: bake,
    gate: 'defaults: > 2.0% of at least 50 requests first sent to the release pool (ALERT_ERROR_RATE, ALERT_MIN_WINDOW)',
  };
  const md = [
    '# bench/release-docker: releases on the host Compose set (Docker Engine harness) under full-speed load',
    '',
    `${meta.date} · ${meta.machine} · ${meta.engine}`,
    '',
    `Load: ${meta.load}. Bake ${bake} s (c: 60 s). Gate: ${meta.gate}. Deploy = the real bluegreen-apply recreating the idle pool's container; guard = the alert function's code over nginx's access log, fed every 0.5 s.`,
    '',
    '| scenario | exit | outcome | requests | failed | s to flip | s image on host→promotion decided | s image on host→flip confirmed | s to promoted | s promotion→rollback | requests on the bad pool |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.exitCode} | ${r.outcome} | ${r.requests} | ${r.failed} | ${cell(r.secondsToFlip)} | ${cell(r.secondsImageToDecision)} | ${cell(r.secondsImageToFlip)} | ${cell(r.secondsToPromoted)} | ${cell(r.secondsPromotionToRollback)} | ${r.badPoolTouched ?? '–'} |`,
    ),
    '',
    `(a) over ${medians.runs} runs: median s to flip ${cell(medians.secondsToFlip)}, image on host→promotion decided ${cell(medians.secondsImageToDecision)}, image on host→flip confirmed ${cell(medians.secondsImageToFlip)}, to promoted ${cell(medians.secondsToPromoted)}; ${medians.failed} failed in all. Median: the lower middle value.`,
    '',
    'Time in each step (s): a step is written when it is done, so each figure is from the step before it (the first, `start`, from the release start); the host steps of one deploy run arrive together (Run Command returns them at its end), joined with +.',
    '',
    '| scenario | time in each step (s) |',
    '|---|---|',
    ...rows.map((r) => `| ${r.scenario} | ${stepTimesCell(r.steps)} |`),
    '',
    "s to flip: from the release start to the promotion (includes the container recreation, its health check and the smoke test). s image on host→promotion decided: from the deploy run printing its pull step (the image is on the host) to the CLI writing the flip (the record's `promoting` step): the recreation, the health gate (bluegreen-apply probes /healthz every 200 ms), the smoke test, the end of the deploy run. s image on host→flip confirmed: the same, plus the flip's own run on the host (the harness's stand-in for EventBridge → Run Command runs bluegreen-apply, which reads SSM with the aws CLI before it switches the flag) and its confirmation through the public port.",
    '',
  ].join('\n');
  writeResults('release-docker', { meta, medians, rows }, md);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
