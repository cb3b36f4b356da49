// Slack's buttons in local mode: `npm start` with a signing secret answers them on loopback with the
// Slack actions function's own code (core/slack-click.ts). A signed Roll back now clicked while a
// release bakes under load flips back with 0 failed requests, the release command reports who
// rolled it back, and the record names the person; an unsigned click changes nothing.
import { readLocalRecord } from '../../local/release-store';
import { localStackForFile } from '../helpers/npm-start';
import { SIGNING_SECRET, signedClick } from '../helpers/slack-click';
import { startSlackReceiver } from '../helpers/slack-receiver';
import { STRICT_CLIENT, startLoad } from '../helpers/load';
import { waitFor } from '../helpers/stack';

const stack = localStackForFile('slack-local', {
  SLACK_SIGNING_SECRET: SIGNING_SECRET,
  SLACK_ALLOWED_USERS: 'U012AB3CD',
  SLACK_ACTIONS_PORT: '0',
  SLACK_RESPONSE_URL_PREFIX: 'http://127.0.0.1:',
});

const actionsUrl = () => /slack actions: (http:\/\/127\.0\.0\.1:\d+\/slack\/actions)/.exec(stack.started.output())![1];

const post = (req: { headers: Record<string, string>; rawBody: string }) =>
  fetch(actionsUrl(), { method: 'POST', headers: req.headers, body: req.rawBody, signal: AbortSignal.timeout(5_000) });

test('a signed Roll back now under load: flipped back, 0 failed, the record and the release command name the person', async () => {
  const slack = await startSlackReceiver();
  try {
    const release = stack.cli('release', '--release', 'v2', '--bake', '5m');
    await waitFor(() => readLocalRecord(stack.stateDir)?.state === 'baking', 'the release to bake', 60_000);
    const record = readLocalRecord(stack.stateDir)!;
    const load = startLoad({
      url: `http://127.0.0.1:${stack.started.ports.nginx}/`,
      connections: 4,
      ratePerSec: 200,
      durationMs: 30_000,
      ...STRICT_CLIENT,
    });
    await load.after(200, 'before the click');
    // Forged first: nothing happens.
    const forged = await post(
      signedClick({ kind: 'rollback', releaseId: record.id, responseUrl: slack.url, secret: 'x'.repeat(32) }),
    );
    expect(forged.status).toBe(401);
    const answer = await post(signedClick({ kind: 'rollback', releaseId: record.id, responseUrl: slack.url }));
    expect(answer.status).toBe(200);
    await waitFor(() => readLocalRecord(stack.stateDir)?.state === 'rolled-back', 'the rollback', 15_000);
    await load.after(400, 'after the rollback');
    const result = await load.finish();
    const failed = result.samples.filter((s) => s.status !== 200);
    expect(failed).toEqual([]);
    // Requests after the rollback are answered by blue again.
    expect(result.samples.at(-1)?.pool).toBe('blue');
    expect(readLocalRecord(stack.stateDir)).toMatchObject({
      state: 'rolled-back',
      decidedBy: '@alice (U012AB3CD) in Slack',
    });
    // The release command stops with who decided; the message was updated in place.
    expect(await release.exited).toBe(1);
    expect(release.output()).toMatch(/ROLLED BACK by @alice \(U012AB3CD\) in Slack: rolled back by @alice/);
    await waitFor(() => slack.received.length === 1, 'the message update', 10_000);
    expect(String(slack.received[0].body.text)).toMatch(/Rolled back by @alice at \d\d:\d\d UTC/);
  } finally {
    slack.close();
  }
}, 120_000);
