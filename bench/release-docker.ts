// bench/release-docker: `bluegreen release --stage` on the Docker Engine harness (test/docker/
// harness.sh must have run): the host's real Compose set and bluegreen-apply, the release CLI's own
// code over the AWS backend (SSM in moto_server) and the alert function's own code as the guard
// (test/docker/release-stage.ts), under full-speed keep-alive load from a client that never
// re-sends. Scenarios (a) good release all-at-once and (c) FAULT_RATE=0.2 of bench/release.
// Not a test: prints a table and writes bench/results/release-docker.{json,md}. Loopback only.
//
//   npm run bench:release-docker [-- --connections 16 --bake 10]
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad, summarize } from '../local/load';
import { dockerEngine, startComposeSet } from '../test/docker/compose-set';
import { startDockerStage } from '../test/docker/release-stage';
import { cell, entriesSince, machine, ReleaseTimings, releaseTimings, writeResults } from './release-figures';

interface Row extends ReleaseTimings {
  scenario: string;
  exitCode: number;
  outcome: string;
  requests: number;
  failed: number;
  reason: string;
}

async function main() {
  const { values } = parseArgs({
    options: { connections: { type: 'string', default: '16' }, bake: { type: 'string', default: '10' } },
  });
  const engine = dockerEngine();
  if (!engine.ready) throw new Error(`bench/release-docker: ${engine.reason}`);
  const connections = Number(values.connections);
  const bake = Number(values.bake);
  const set = await startComposeSet({ active: 'blue', releases: { blue: 'v1', green: 'v0' } });
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
      };
      console.log(
        `${name}: exit ${code}, ${row.outcome}, ${row.requests} requests, ${row.failed} failed${summary.failed ? ` ${JSON.stringify(summary.failures)}` : ''}`,
      );
      if (summary.failed || code !== (record.state === 'promoted' ? 0 : 1)) console.log(lines.join('\n'));
      return row;
    };
    rows.push(await scenario('a) good, all-at-once', 'v2', {}, bake));
    rows.push(await scenario('c) bad, FAULT_RATE=0.2', 'v3-bad', { FAULT_RATE: '0.2' }, 60));
  } finally {
    await stage.stop();
    await set.down();
  }

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
    '| scenario | exit | outcome | requests | failed | s to flip | s to promoted | s promotion→rollback | requests on the bad pool |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.exitCode} | ${r.outcome} | ${r.requests} | ${r.failed} | ${cell(r.secondsToFlip)} | ${cell(r.secondsToPromoted)} | ${cell(r.secondsPromotionToRollback)} | ${r.badPoolTouched ?? '–'} |`,
    ),
    '',
    's to flip: from the release start to the promotion (includes the container recreation, its health check and the smoke test).',
    '',
  ].join('\n');
  writeResults('release-docker', { meta, rows }, md);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
