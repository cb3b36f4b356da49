// Release bench on the Docker Engine harness (issue 8, item 10 (a) and (c) "on the Docker Engine
// harness"): the host's real Compose set, bluegreen-apply and nginx in its container, under
// full-speed keep-alive load from a client that never re-sends (127.0.0.1 only, bounded in time).
// The release steps are the ones `bluegreen release --stage` drives on AWS: write the idle pool's
// desired state in SSM (moto) -> bluegreen-apply (deploy + health gate + smoke) -> promote = write
// active-pool, bluegreen-apply (flip, no reload) -> bake, judged by the real guard
// (lambda/alert/release-guard.ts guardRelease, the alert's rule config) over nginx's access log
// from the host directory, as the alert Lambda judges the shipped log -> rollback = flip back.
// Not a test: prints a table and writes JSON to the path given (default: stdout only).
//
//   node --import tsx test/docker/bench-release.ts [--connections 16] [--bake 10] [--out FILE]
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseAccessLogLine, AccessLogEntry } from '../../lambda/alert/access-log';
import { releaseGateFromEnv, ruleConfigFromEnv } from '../../lambda/alert/config';
import { guardRelease } from '../../lambda/alert/release-guard';
import type { ReleaseRecord } from '../../lambda/alert/release-record';
import { entryTime, WindowItem, windowItem } from '../../lambda/alert/rules';
import { runLoad, Sample, summarize } from '../../local/load';
import { ComposeSet, dockerEngine, Pool, startComposeSet, stepLines } from './compose-set';

interface Row {
  scenario: string;
  outcome: string;
  requests: number;
  failed: number;
  staleSocketRetries: number;
  deploySeconds: number;
  /** Start (desired state written) -> traffic on the new pool. */
  secondsToFlip: number | null;
  /** Start -> guard says promote. */
  secondsToPromoted: number | null;
  /** Promotion (flip) -> traffic back on the previous pool. */
  secondsPromotionToRollback: number | null;
  /** Requests with an attempt on the release's pool after the flip (log). */
  badPoolTouched: number | null;
  reason: string;
}

const other = (p: Pool): Pool => (p === 'blue' ? 'green' : 'blue');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const { values } = parseArgs({ options: { connections: { type: 'string', default: '16' }, bake: { type: 'string', default: '10' }, out: { type: 'string' } } });
  const engine = dockerEngine();
  if (!engine.ready) throw new Error(`bench-release: ${engine.reason}`);
  const connections = Number(values.connections);
  const bakeMs = Number(values.bake) * 1000;
  const rules = ruleConfigFromEnv(process.env);
  const gate = releaseGateFromEnv(process.env, rules);

  const set = await startComposeSet({ active: 'blue', releases: { blue: 'v1', green: 'v0' } });
  const rows: Row[] = [];
  try {
    rows.push(await scenario(set, 'good release, all-at-once (v2)', 'v2', {}, connections, bakeMs, rules.windowSize, gate));
    rows.push(await scenario(set, 'bad release FAULT_RATE=0.2 (v3)', 'v3', { FAULT_RATE: '0.2' }, connections, bakeMs, rules.windowSize, gate));
  } finally {
    await set.down();
  }
  const table = [
    '| scenario | outcome | requests | failed | deploy s | to flip s | to promoted s | promotion→rollback s | bad pool touched |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.scenario} | ${r.outcome} | ${r.requests} | ${r.failed} | ${r.deploySeconds.toFixed(1)} | ${r.secondsToFlip?.toFixed(1) ?? '-'} | ${r.secondsToPromoted?.toFixed(1) ?? '-'} | ${r.secondsPromotionToRollback?.toFixed(1) ?? '-'} | ${r.badPoolTouched ?? '-'} |`),
  ].join('\n');
  process.stdout.write(`${table}\n\ngate: ${JSON.stringify(gate)}, window ${rules.windowSize}, ${connections} connections, bake ${bakeMs / 1000} s, engine: ${engine.line}\n`);
  for (const r of rows) process.stdout.write(`${r.scenario}: ${r.reason}\n`);
  if (values.out) writeFileSync(values.out, JSON.stringify({ at: new Date().toISOString(), engine: engine.line, gate, connections, bakeSeconds: bakeMs / 1000, rows }, null, 2));
}

function logEntries(set: ComposeSet): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  for (const line of readFileSync(path.join(set.logDir, 'access.log'), 'utf8').split('\n')) {
    if (!line) continue;
    const parsed = parseAccessLogLine(line);
    if (parsed.ok) out.push(parsed.entry);
  }
  return out;
}

async function scenario(
  set: ComposeSet,
  name: string,
  release: string,
  env: Record<string, string>,
  connections: number,
  bakeMs: number,
  windowSize: number,
  gate: { errorRate: number; minRequests: number },
): Promise<Row> {
  const active = (await set.apply()).stdout.match(/^step=active pool=(\w+)/m)![1] as Pool;
  const pool = other(active);
  const samples: Sample[] = [];
  const controller = new AbortController();
  const loadDone = runLoad({
    url: `${set.url}/version`,
    connections,
    durationMs: 180_000,
    maxRequests: 2_000_000,
    retryStaleSockets: false,
    requestTimeoutMs: 5_000,
    signal: controller.signal,
    onSample: (s) => samples.push(s),
  });
  const waitSamples = async (pred: () => boolean, what: string, ms = 30_000) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
      await sleep(20);
    }
  };
  await waitSamples(() => samples.length > 2_000, 'load to start');

  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  await set.setPool(pool, { release, env });
  const deploy = await set.apply();
  const deploySeconds = (Date.now() - t0) / 1000;
  let outcome: string;
  let reason = stepLines(deploy.stdout)
    .filter((s) => s.pool === pool && s.step !== 'canary')
    .map((s) => `${s.step}:${s.ok}`)
    .join(' ');
  let secondsToFlip: number | null = null;
  let secondsToPromoted: number | null = null;
  let secondsPromotionToRollback: number | null = null;
  let flippedAt = 0;
  if (deploy.code !== 0) {
    outcome = 'failed gate';
  } else {
    // Promote: the existing flip path (the parameter, then the agent).
    await set.put({ [`/bluegreen/${set.stage}/active-pool`]: pool });
    const flip = await set.apply();
    if (flip.code !== 0) throw new Error(`flip failed: ${flip.stdout}${flip.stderr}`);
    // The switch is a file nginx reads per request: promoted when the agent returns. (Not "answers
    // from the new pool": a faulty release is marked down after its first failure and its requests
    // go to the backup, i.e. the previous pool, for fail_timeout.)
    flippedAt = Date.now();
    secondsToFlip = (flippedAt - t0) / 1000;
    const record = {
      id: `bench-${release}`,
      pool,
      release,
      env,
      previousPool: active,
      previousRelease: 'previous',
      replacedRelease: 'replaced',
      strategy: 'all-at-once',
      canaryPercent: 0,
      bakeSeconds: bakeMs / 1000,
      state: 'baking',
      startedAt,
      updatedAt: startedAt,
      bakeUntil: new Date(flippedAt + bakeMs).toISOString(),
      steps: [],
    } as ReleaseRecord;
    // The guard, as the alert Lambda runs it on each batch (here: twice a second).
    outcome = 'baking';
    while (outcome === 'baking') {
      await sleep(500);
      const window: WindowItem[] = logEntries(set)
        .slice(-windowSize)
        .map((e) => windowItem(e, entryTime(e, Date.now())));
      const action = guardRelease(record, window, Date.now(), gate);
      if (action.action === 'promote') {
        outcome = 'promoted';
        secondsToPromoted = (Date.now() - t0) / 1000;
      } else if (action.action === 'rollback') {
        await set.put({ [`/bluegreen/${set.stage}/active-pool`]: active });
        const back = await set.apply();
        if (back.code !== 0) throw new Error(`rollback flip failed: ${back.stdout}${back.stderr}`);
        await waitSamples(() => samples.slice(-50).every((s) => s.pool === active), `traffic back on ${active}`);
        secondsPromotionToRollback = (Date.now() - flippedAt) / 1000;
        outcome = 'rolled back';
        reason = action.reason;
      }
    }
  }
  await sleep(1_000);
  controller.abort();
  const result = await loadDone;
  const summary = summarize(result.samples, result.durationMs);
  const touched = flippedAt
    ? logEntries(set).filter((e) => entryTime(e, 0) >= t0 && (e.pool === pool || (e as { primary_pool?: string }).primary_pool === pool)).length
    : null;
  return {
    scenario: name,
    outcome,
    requests: summary.requests,
    failed: summary.failed,
    staleSocketRetries: result.staleSocketRetries,
    deploySeconds,
    secondsToFlip,
    secondsToPromoted,
    secondsPromotionToRollback,
    badPoolTouched: env.FAULT_RATE ? touched : null,
    reason,
  };
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
