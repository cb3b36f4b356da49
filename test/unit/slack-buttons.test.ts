// The buttons release messages and pool alerts carry when the stage answers Slack's clicks: which
// ones at which point of a release, and that a click on each reads back (core/slack-actions.ts) as
// the action and release it shows.
import { releaseAnnouncements } from '../../core/release-events';
import { ReleaseRecord } from '../../core/release-record';
import { Decision } from '../../core/rules';
import { parseSlackAction } from '../../core/slack-actions';
import { slackMessage } from '../../core/slack-message';
import { bakingRecord } from '../helpers/release';

const T0 = Date.parse('2026-11-23T14:00:00Z');

type Block = { type: string; block_id?: string; elements?: Array<Record<string, unknown>> };
const actionButtons = (message: Record<string, unknown>) => {
  const blocks = (message.attachments as Array<{ blocks: Block[] }>)[0].blocks;
  return blocks.find((b) => b.block_id === 'bluegreen-release-actions')?.elements ?? [];
};
const announce = (record: ReleaseRecord): Decision => releaseAnnouncements(undefined, record)[0];
const labels = (buttons: Array<Record<string, unknown>>) => buttons.map((b) => (b.text as { text: string }).text);

test.each([
  ['started (baking)', bakingRecord(T0), ['Roll back now', 'Promote now', 'Extend bake', 'Abort']],
  [
    'promoted',
    { ...bakingRecord(T0), state: 'promoted' as const, finishedAt: new Date(T0).toISOString() },
    ['Roll back now'],
  ],
  ['held', { ...bakingRecord(T0), state: 'held' as const }, ['Roll back now', 'Promote now']],
  ['frozen', { ...bakingRecord(T0), state: 'frozen' as const, irreversible: true }, ['Promote now']],
  ['rolled back', { ...bakingRecord(T0), state: 'rolled-back' as const }, []],
])('a release message (%s) carries the decisions still open', (_what, record, expected) => {
  const message = slackMessage(announce(record), { stage: 'prod', releaseActions: {} });
  const buttons = actionButtons(message);
  expect(labels(buttons)).toEqual(expected);
  for (const button of buttons) {
    // What Slack sends when it is clicked reads back as this release and this action.
    const payload = {
      type: 'block_actions',
      user: { id: 'U012AB3CD', username: 'alice' },
      trigger_id: '1.2.3',
      actions: [{ action_id: button.action_id, value: button.value }],
    };
    const parsed = parseSlackAction(`payload=${encodeURIComponent(JSON.stringify(payload))}`);
    expect(parsed).toMatchObject({ ok: true, action: { releaseId: record.id } });
  }
  // Roll back now asks first.
  expect(buttons.find((b) => b.action_id === 'bluegreen-rollback')?.confirm ?? undefined).toEqual(
    expected.includes('Roll back now') ? expect.objectContaining({ confirm: expect.anything() }) : undefined,
  );
});

test("a pool alert during a release offers to roll the stage's current release back; none without Slack actions", () => {
  const failover: Decision = {
    kind: 'failover',
    severity: 'warning',
    at: T0,
    pool: 'blue',
    activePool: 'green',
    summary: 'Failover: blue answered for green',
    suppressed: null,
    details: {},
  };
  const current = bakingRecord(T0);
  expect(labels(actionButtons(slackMessage(failover, { stage: 'prod', releaseActions: { current } })))).toEqual([
    'Roll back now',
  ]);
  expect(actionButtons(slackMessage(failover, { stage: 'prod', releaseActions: { current } }))[0].value).toBe(
    current.id,
  );
  // A finished, rolled-back release: nothing to roll back.
  expect(
    actionButtons(
      slackMessage(failover, { stage: 'prod', releaseActions: { current: { ...current, state: 'rolled-back' } } }),
    ),
  ).toEqual([]);
  // A stage without Slack actions: no buttons that would go nowhere.
  expect(actionButtons(slackMessage(announce(current), { stage: 'prod' }))).toEqual([]);
});
