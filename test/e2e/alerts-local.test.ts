// Local mode end to end: npm start (nginx, pools, the alert watcher) posts to a real local HTTP
// "Slack", with the DEFAULT rule settings (window 200, minimum 50, threshold 2 %, recovery at 1 %).
// - chaos `error` on the active pool, ~20 req/s for 15 s through real nginx: exactly one failover
//   alert and one error-rate alert (nginx's max_fails=1 sends most requests straight to the backup:
//   the active-pool failure measure counts those), no recovery reported while chaos is on, both
//   recoveries once it stops; then nothing posted while maintenance is on.
// - a planned flip under the same load: a planned-switch message, never an error-rate alert.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../local/paths';
import { npmStart, Started } from '../helpers/npm-start';
import { startLoad } from '../helpers/load';
import { startSlackReceiver, SlackReceiver } from '../helpers/slack-receiver';
import { waitFor } from '../helpers/stack';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');

/** The rule settings come from their defaults: none of these may leak in from the environment. */
const DEFAULT_RULES = {
  ALERT_WINDOW: '',
  ALERT_MIN_WINDOW: '',
  ALERT_ERROR_RATE: '',
  ALERT_RECOVERY_RATIO: '',
  ALERT_RECOVERY_CONSECUTIVE: '',
  ALERT_COOLDOWN_SECONDS: '',
};
/** ~20 req/s, the rate of the alert test; a client that never re-sends. */
const LOAD = { connections: 2, ratePerSec: 20, retryStaleSockets: false } as const;

let stateDir: string;
let started: Started | undefined;
let slack: SlackReceiver;
afterEach(async () => {
  await started?.stop();
  await slack?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

const kinds = () =>
  slack.received.map((r) => {
    const t = r.body.text ?? '';
    if (/Failover on/.test(t)) return 'failover';
    if (/Recovered on/.test(t)) return 'failover_recovered';
    if (/Error rate back/.test(t)) return 'error_rate_recovered';
    if (/Error rate/.test(t)) return 'error_rate';
    if (/Users see errors/.test(t)) return 'users_see_errors';
    if (/Planned switch/.test(t)) return 'planned_switch';
    return `other: ${t}`;
  });

async function startStack() {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-alerts-'));
  slack = await startSlackReceiver();
  started = await npmStart(stateDir, { SLACK_WEBHOOK_URL: slack.url, ...DEFAULT_RULES });
  const { env, ports, output } = started;
  await waitFor(() => output().includes('ready:'), 'the ready line', 30_000);
  expect(output()).toContain('alerts: posted to SLACK_WEBHOOK_URL');
  const cli = (...args: string[]) => run(process.execPath, [BIN, ...args], { env, cwd: REPO_ROOT });
  return { cli, url: `http://127.0.0.1:${ports.nginx}/version`, output };
}

test('chaos on the active pool at ~20 req/s for 15 s → one failover + one error-rate alert, no recovery while it fails; recovery after; maintenance → nothing posted', async () => {
  const { cli, url, output } = await startStack();
  const load = startLoad({ url, ...LOAD, durationMs: 180_000 });
  await load.after(100, 'of healthy traffic');
  expect(slack.received).toEqual([]);

  await cli('chaos', 'blue', 'error');
  const chaosAt = Date.now();
  const chaosFrom = load.samples.length;
  await waitFor(
    () => kinds().includes('failover') && kinds().includes('error_rate'),
    'the failover and error-rate alerts',
    20_000,
  );
  const alertAfterMs = slack.received.find((r) => /Error rate/.test(r.body.text ?? ''))!.at - chaosAt;
  // The rest of 15 s at ~20 req/s (300 requests) with blue failing every request: nothing recovers.
  await load.after(Math.max(0, chaosFrom + 300 - load.samples.length), 'more while blue is failing');
  const chaosSamples = load.samples.slice(chaosFrom);
  expect(kinds()).toEqual(['failover', 'error_rate']);
  const errorRate = slack.received.find((r) => /Error rate/.test(r.body.text ?? ''))!;
  expect(errorRate.body.text).toMatch(
    /^\[local\] Error rate \d+\.\d% over the last \d+ requests \(threshold 2\.0%\): \d+ failed by their primary pool \(blue \d+\), users saw 5xx on 0 \(0\.0%\)$/,
  );
  expect(JSON.stringify(errorRate.body)).toContain('*Users saw 5xx*: 0 of');
  // Failover hid it from the client: every request answered 200 (by green).
  expect(chaosSamples.filter((s) => s.status !== 200)).toEqual([]);
  expect(new Set(chaosSamples.map((s) => s.pool))).toEqual(new Set(['green']));

  await cli('chaos', 'blue', 'stop');
  // Recovery at ≤ 1 % of the last 200 requests: about 200 healthy requests, ~10 s at 20 req/s.
  await waitFor(
    () => kinds().includes('failover_recovered') && kinds().includes('error_rate_recovered'),
    'both recoveries',
    40_000,
  );
  expect(kinds().filter((k) => k === 'failover')).toHaveLength(1);
  expect(kinds().filter((k) => k === 'error_rate')).toHaveLength(1);
  expect(kinds().filter((k) => k.startsWith('other') || k === 'users_see_errors')).toEqual([]);
  const failover = slack.received.find((r) => /Failover on/.test(r.body.text ?? ''))!;
  expect(failover.body.attachments![0].color).toBe('#f9a825');
  expect(JSON.stringify(failover.body)).toContain('*Served by*\\ngreen');
  process.stdout.write(
    `alerts-local: error-rate alert ${alertAfterMs} ms after chaos; ${chaosSamples.length} requests while blue failed, ${chaosSamples.filter((s) => s.status !== 200).length} not 200; ${errorRate.body.text}\n`,
  );

  // Maintenance: the same break is evaluated and printed, not posted.
  await cli('maintenance', 'on');
  const before = slack.received.length;
  await cli('chaos', 'blue', 'error');
  await waitFor(
    () => /not posted \(maintenance\): WARNING failover/.test(output()),
    'the failover decision logged under maintenance',
    20_000,
  );
  await cli('chaos', 'blue', 'stop');
  await load.after(40, 'after maintenance chaos');
  await load.finish();
  expect(slack.received.length).toBe(before);
  await cli('maintenance', 'off');
}, 150_000);

test('a planned flip under the same load → a planned-switch message, no error-rate alert, nothing failed', async () => {
  const { cli, url } = await startStack();
  const load = startLoad({ url, ...LOAD, durationMs: 120_000 });
  await load.after(100, 'before the flip');
  await cli('flip', 'green');
  await load.after(200, 'after the flip to green');
  await cli('flip', 'blue');
  await load.after(200, 'after the flip back');
  const result = await load.finish();
  // Give the watcher a poll or two to read the last lines.
  await new Promise((r) => setTimeout(r, 500));
  expect(kinds()).toEqual(['planned_switch', 'planned_switch']);
  expect(result.samples.filter((s) => s.status !== 200)).toEqual([]);
  const pools = result.samples.map((s) => s.pool);
  expect(pools).toContain('green');
  expect(pools.at(-1)).toBe('blue');
}, 90_000);
