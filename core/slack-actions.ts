// A button clicked in a release or alert message (Slack "interactivity"): the request's body, once
// its signature was verified (core/slack-signature.ts), read into the one thing bluegreen acts on:
// which action, on which release, by whom. Pure: no I/O. Who may act (the allowlist) and whether
// this click was seen before (a signed request can be replayed for 5 minutes) are decided here too,
// from what the caller read.

/** The buttons, by Slack action_id. Each button's `value` is the release id it acts on. */
export const SLACK_ACTIONS = {
  'bluegreen-rollback': 'rollback',
  'bluegreen-promote': 'promote',
  'bluegreen-extend-bake': 'extend-bake',
  'bluegreen-abort': 'abort',
} as const;
export type SlackActionKind = (typeof SLACK_ACTIONS)[keyof typeof SLACK_ACTIONS];

/** A button's action_id for `kind` (the messages' buttons and the parser agree through SLACK_ACTIONS). */
export function slackActionId(kind: SlackActionKind): string {
  return Object.entries(SLACK_ACTIONS).find(([, k]) => k === kind)![0];
}

/** A Slack user id (U…, W… for Enterprise Grid): what the allowlist holds. */
export const SLACK_USER_ID_PATTERN = '^[UW][A-Z0-9]{2,20}$';
const USER_ID = new RegExp(SLACK_USER_ID_PATTERN);

export interface SlackAction {
  kind: SlackActionKind;
  releaseId: string;
  user: { id: string; name: string };
  /** Unique per click (Slack's trigger_id): a replayed request carries the same one. */
  clickId: string;
  /** Where Slack takes the message's update (valid 30 minutes, 5 uses). */
  responseUrl?: string;
  channelId?: string;
  messageTs?: string;
}

export type ParsedSlackAction = { ok: true; action: SlackAction } | { ok: false; reason: string };

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** An interactivity request's body (`payload=<url-encoded JSON>`) → the action, or why not. */
export function parseSlackAction(rawBody: string): ParsedSlackAction {
  const encoded = new URLSearchParams(rawBody).get('payload');
  if (encoded === null) return { ok: false, reason: 'no payload in the body' };
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(encoded) as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'the payload is not JSON' };
  }
  if (payload.type !== 'block_actions')
    return { ok: false, reason: `not a button click (type ${String(payload.type)})` };
  const actions = Array.isArray(payload.actions) ? (payload.actions as Array<Record<string, unknown>>) : [];
  if (actions.length !== 1) return { ok: false, reason: `expected one action, got ${actions.length}` };
  const [clicked] = actions;
  const actionId = str(clicked.action_id);
  const kind =
    actionId && Object.hasOwn(SLACK_ACTIONS, actionId)
      ? SLACK_ACTIONS[actionId as keyof typeof SLACK_ACTIONS]
      : undefined;
  if (!kind) return { ok: false, reason: `not a bluegreen button (action_id ${actionId ?? 'missing'})` };
  const releaseId = str(clicked.value);
  if (!releaseId || releaseId.length > 200) return { ok: false, reason: 'the button names no release' };
  const user = (payload.user ?? {}) as Record<string, unknown>;
  const userId = str(user.id);
  if (!userId || !USER_ID.test(userId)) return { ok: false, reason: 'no Slack user id' };
  const clickId = str(payload.trigger_id) ?? str(clicked.action_ts);
  if (!clickId) return { ok: false, reason: 'no trigger_id or action_ts to tell this click from a replay' };
  const container = (payload.container ?? {}) as Record<string, unknown>;
  const channel = (payload.channel ?? {}) as Record<string, unknown>;
  const responseUrl = str(payload.response_url);
  const channelId = str(container.channel_id) ?? str(channel.id);
  const messageTs = str(container.message_ts);
  return {
    ok: true,
    action: {
      kind,
      releaseId,
      user: { id: userId, name: str(user.username) ?? str(user.name) ?? userId },
      clickId,
      ...(responseUrl ? { responseUrl } : {}),
      ...(channelId ? { channelId } : {}),
      ...(messageTs ? { messageTs } : {}),
    },
  };
}

/**
 * The allowlist parameter's value: Slack user ids separated by commas, spaces or lines. Anything
 * else in it is reported, never taken as an id (a name would match nobody and hide a typo).
 */
export function parseSlackAllowlist(text: string): { users: string[]; problems: string[] } {
  const users: string[] = [];
  const problems: string[] = [];
  for (const item of text.split(/[\s,]+/).filter(Boolean)) {
    if (USER_ID.test(item)) users.push(item);
    else problems.push(`"${item}" is not a Slack user id (U… or W…)`);
  }
  return { users: [...new Set(users)], problems };
}

/** Whether this user may act: listed. An empty list lets nobody act (the safe default). */
export function mayAct(userId: string, allowlist: readonly string[]): boolean {
  return allowlist.includes(userId);
}
