// A button click's body read into the action bluegreen acts on (core/slack-actions.ts), the
// allowlist's grammar, and what is refused: another app's button, two actions, no user, no click id.
import { mayAct, parseSlackAction, parseSlackAllowlist } from '../../core/slack-actions';

/** A block_actions payload in the shape Slack sends it (fields bluegreen does not read included). */
function click(over: Record<string, unknown> = {}, action: Record<string, unknown> = {}): string {
  const payload = {
    type: 'block_actions',
    user: { id: 'U2CERLKJA', username: 'alice', name: 'alice', team_id: 'T1DC2JH3J' },
    api_app_id: 'A0123456789',
    token: 'ignored-verification-token',
    container: { type: 'message', message_ts: '1765090000.000100', channel_id: 'C0123456789', is_ephemeral: false },
    trigger_id: '398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
    team: { id: 'T1DC2JH3J', domain: 'example' },
    channel: { id: 'C0123456789', name: 'releases' },
    response_url: 'https://hooks.slack.com/actions/T1DC2JH3J/1234567890/abcdefABCDEF',
    actions: [
      {
        action_id: 'bluegreen-rollback',
        block_id: 'release-actions',
        text: { type: 'plain_text', text: 'Roll back now' },
        value: '20261207-140000-green-v2',
        type: 'button',
        action_ts: '1765090012.345678',
        ...action,
      },
    ],
    ...over,
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

test('a Roll back now click: the action, the release, who, and the id that tells it from a replay', () => {
  expect(parseSlackAction(click())).toEqual({
    ok: true,
    action: {
      kind: 'rollback',
      releaseId: '20261207-140000-green-v2',
      user: { id: 'U2CERLKJA', name: 'alice' },
      clickId: '398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
      responseUrl: 'https://hooks.slack.com/actions/T1DC2JH3J/1234567890/abcdefABCDEF',
      channelId: 'C0123456789',
      messageTs: '1765090000.000100',
    },
  });
  for (const [id, kind] of [
    ['bluegreen-promote', 'promote'],
    ['bluegreen-extend-bake', 'extend-bake'],
    ['bluegreen-abort', 'abort'],
  ])
    expect(parseSlackAction(click({}, { action_id: id }))).toMatchObject({ ok: true, action: { kind } });
});

test('what is not a bluegreen click is refused with a reason, never thrown', () => {
  const reason = (body: string) => {
    const parsed = parseSlackAction(body);
    return parsed.ok ? 'accepted' : parsed.reason;
  };
  expect(reason('token=x&command=%2Fdeploy')).toBe('no payload in the body');
  expect(reason('payload=%7Bnot-json')).toBe('the payload is not JSON');
  expect(reason(click({ type: 'view_submission' }))).toBe('not a button click (type view_submission)');
  expect(reason(click({}, { action_id: 'toString' }))).toBe('not a bluegreen button (action_id toString)');
  expect(reason(click({}, { action_id: 'other-app-approve' }))).toMatch(/^not a bluegreen button/);
  expect(reason(click({}, { value: '' }))).toBe('the button names no release');
  expect(reason(click({ user: { id: 'alice' } }))).toBe('no Slack user id');
  expect(reason(click({ actions: [] }))).toBe('expected one action, got 0');
  expect(reason(click({ trigger_id: undefined }, { action_ts: undefined }))).toMatch(/no trigger_id or action_ts/);
});

test('the allowlist: Slack user ids only; anything else is named, not taken; empty lets nobody act', () => {
  expect(parseSlackAllowlist('U2CERLKJA, W012ABCDEF\nU2CERLKJA')).toEqual({
    users: ['U2CERLKJA', 'W012ABCDEF'],
    problems: [],
  });
  expect(parseSlackAllowlist('U2CERLKJA,@alice,u123')).toEqual({
    users: ['U2CERLKJA'],
    problems: ['"@alice" is not a Slack user id (U… or W…)', '"u123" is not a Slack user id (U… or W…)'],
  });
  expect(mayAct('U2CERLKJA', ['U2CERLKJA'])).toBe(true);
  expect(mayAct('U9OTHER99', ['U2CERLKJA'])).toBe(false);
  expect(mayAct('U2CERLKJA', [])).toBe(false);
});
