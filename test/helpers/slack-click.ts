// A Slack button click as Slack sends it: a block_actions payload, url-encoded as `payload=`, signed
// with the app's signing secret (core/slack-signature.ts, the scheme Slack documents).
import { SLACK_SIGNATURE_HEADER, SLACK_TIMESTAMP_HEADER, slackSignature } from '../../core/slack-signature';
import { SlackActionKind, slackActionId } from '../../core/slack-actions';

export const SIGNING_SECRET = 'a-test-signing-secret-0123456789ab';

let clicks = 0;

export interface ClickOptions {
  kind: SlackActionKind;
  releaseId: string;
  user?: { id: string; username: string };
  responseUrl: string;
  /** Unix seconds the request is signed at (default now). */
  timestamp?: number;
  secret?: string;
  triggerId?: string;
}

/** The request's headers (lower-case, as function URLs and Node give them) and its raw body. */
export function signedClick(o: ClickOptions): { headers: Record<string, string>; rawBody: string } {
  const actionId = slackActionId(o.kind);
  const user = o.user ?? { id: 'U012AB3CD', username: 'alice' };
  const payload = {
    type: 'block_actions',
    user: { id: user.id, username: user.username, name: user.username },
    trigger_id: o.triggerId ?? `1337.42.click${++clicks}`,
    response_url: o.responseUrl,
    container: { type: 'message', channel_id: 'C0123', message_ts: '1700000000.000100' },
    actions: [{ action_id: actionId, value: o.releaseId, type: 'button', action_ts: '1700000001.000200' }],
  };
  const rawBody = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const timestamp = String(o.timestamp ?? Math.floor(Date.now() / 1000));
  return {
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      [SLACK_TIMESTAMP_HEADER]: timestamp,
      [SLACK_SIGNATURE_HEADER]: slackSignature(o.secret ?? SIGNING_SECRET, timestamp, rawBody),
    },
    rawBody,
  };
}
