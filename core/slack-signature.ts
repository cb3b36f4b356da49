// Slack's request signing (interactivity: a button clicked in a release or alert message). Slack
// sends X-Slack-Request-Timestamp and X-Slack-Signature: `v0=` + hex HMAC-SHA256, keyed with the
// app's signing secret, of `v0:<timestamp>:<raw body>`. A request is taken only when the signature
// matches (compared in constant time) and the timestamp is within 5 minutes of this clock; the raw
// body is signed, so it is checked before anything parses it. A valid request can still be replayed
// inside those 5 minutes: the action handler remembers what it acted on (core/slack-actions.ts).
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Slack's version prefix, of the base string and of the signature. */
export const SLACK_SIGNATURE_VERSION = 'v0';
/** How far a request's timestamp may be from this clock, either way (Slack's recommendation). */
export const SLACK_MAX_SKEW_SECONDS = 300;
export const SLACK_TIMESTAMP_HEADER = 'x-slack-request-timestamp';
export const SLACK_SIGNATURE_HEADER = 'x-slack-signature';

/** The signature Slack would send for this body at this timestamp. */
export function slackSignature(signingSecret: string, timestamp: string, rawBody: string): string {
  const mac = createHmac('sha256', signingSecret).update(`${SLACK_SIGNATURE_VERSION}:${timestamp}:${rawBody}`, 'utf8');
  return `${SLACK_SIGNATURE_VERSION}=${mac.digest('hex')}`;
}

export type SlackVerdict = { ok: true; timestamp: number } | { ok: false; reason: string };

/**
 * Whether a request is Slack's: `headers` with lower-case names (as Lambda function URLs and Node
 * give them), the body exactly as received, the clock in seconds.
 */
export function verifySlackRequest(o: {
  headers: Record<string, string | undefined>;
  rawBody: string;
  signingSecret: string;
  nowSeconds: number;
  maxSkewSeconds?: number;
}): SlackVerdict {
  const stamp = o.headers[SLACK_TIMESTAMP_HEADER];
  const given = o.headers[SLACK_SIGNATURE_HEADER];
  if (!stamp || !/^\d{1,12}$/.test(stamp)) return { ok: false, reason: `no valid ${SLACK_TIMESTAMP_HEADER}` };
  if (!given) return { ok: false, reason: `no ${SLACK_SIGNATURE_HEADER}` };
  if (!o.signingSecret) return { ok: false, reason: 'no signing secret configured' };
  const timestamp = Number(stamp);
  const skew = Math.abs(o.nowSeconds - timestamp);
  if (skew > (o.maxSkewSeconds ?? SLACK_MAX_SKEW_SECONDS))
    return {
      ok: false,
      reason: `stale: the timestamp is ${skew} s from this clock (at most ${SLACK_MAX_SKEW_SECONDS})`,
    };
  const expected = Buffer.from(slackSignature(o.signingSecret, stamp, o.rawBody), 'utf8');
  const actual = Buffer.from(given, 'utf8');
  // timingSafeEqual needs equal lengths; a length difference says nothing about the secret.
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected))
    return { ok: false, reason: 'the signature does not match' };
  return { ok: true, timestamp };
}
