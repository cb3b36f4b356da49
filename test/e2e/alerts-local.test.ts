// Local mode end to end: npm start (nginx, pools, the alert watcher) posts to a real local HTTP
// "Slack"; chaos on the active pool must give exactly one failover alert and one error-rate alert,
// then a recovery once chaos stops, and nothing while maintenance is on.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../local/defaults';
import { npmStart, Started } from '../helpers/npm-start';
import { startLoad } from '../helpers/load';
import { startSlackReceiver, SlackReceiver } from '../helpers/slack-receiver';
import { waitFor } from '../helpers/stack';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');

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

test('chaos → one failover + one error-rate alert → recovery; maintenance → nothing posted', async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-alerts-'));
  slack = await startSlackReceiver();
  started = await npmStart(stateDir, {
    SLACK_WEBHOOK_URL: slack.url,
    // A small window so a few seconds of test traffic can cross the threshold: with nginx taking a
    // failed pool out for 5 s, chaos costs about one 5xx attempt per 5 s.
    ALERT_WINDOW: '20',
    ALERT_MIN_WINDOW: '5',
    ALERT_COOLDOWN_SECONDS: '300',
  });
  const { env, ports, output } = started;
  await waitFor(() => output().includes('ready:'), 'the ready line', 30_000);
  expect(output()).toContain('alerts: posted to SLACK_WEBHOOK_URL');
  const cli = (...args: string[]) => run(process.execPath, [BIN, ...args], { env, cwd: REPO_ROOT });

  const load = startLoad({ url: `http://127.0.0.1:${ports.nginx}/version`, connections: 1, ratePerSec: 4, durationMs: 120_000 });
  await load.after(8, 'of healthy traffic');
  expect(slack.received).toEqual([]);

  await cli('chaos', 'blue', 'error');
  await waitFor(() => kinds().includes('failover') && kinds().includes('error_rate'), 'the failover and error-rate alerts', 20_000);
  await load.after(12, 'more while blue is failing');
  await cli('chaos', 'blue', 'stop');
  await waitFor(() => kinds().includes('failover_recovered'), 'the recovery', 30_000);
  expect(kinds().filter((k) => k === 'failover')).toHaveLength(1);
  expect(kinds().filter((k) => k === 'error_rate')).toHaveLength(1);
  expect(kinds().filter((k) => k.startsWith('other') || k === 'users_see_errors')).toEqual([]);
  const failover = slack.received.find((r) => /Failover on/.test(r.body.text ?? ''))!;
  expect(failover.body.attachments![0].color).toBe('#f9a825');
  expect(JSON.stringify(failover.body)).toContain('*Served by*\\ngreen');

  // Maintenance: the same break is evaluated and printed, not posted.
  await cli('maintenance', 'on');
  const before = slack.received.length;
  await cli('chaos', 'blue', 'error');
  await waitFor(() => /not posted \(maintenance\): WARNING failover/.test(output()), 'the failover decision logged under maintenance', 20_000);
  await cli('chaos', 'blue', 'stop');
  await load.after(4, 'after maintenance chaos');
  await load.finish();
  expect(slack.received.length).toBe(before);
  await cli('maintenance', 'off');
});
