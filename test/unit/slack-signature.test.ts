// Slack's request signing (core/slack-signature.ts), held to Slack's own published example byte for
// byte, then to what must never pass: a forged signature, a changed body, a stale or future
// timestamp, missing headers.
import { slackSignature, verifySlackRequest } from '../../core/slack-signature';

// Slack's documentation, "Verifying requests from Slack": the example secret, timestamp, body and
// the signature it gives for them.
const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const TIMESTAMP = '1531420618';
const BODY =
  'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
const SIGNATURE = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';

const request = (o: { body?: string; signature?: string; timestamp?: string; now?: number } = {}) =>
  verifySlackRequest({
    headers: {
      'x-slack-request-timestamp': o.timestamp ?? TIMESTAMP,
      'x-slack-signature': o.signature ?? SIGNATURE,
    },
    rawBody: o.body ?? BODY,
    signingSecret: SECRET,
    nowSeconds: o.now ?? Number(TIMESTAMP) + 10,
  });

test("Slack's published example: the same signature, and accepted", () => {
  expect(slackSignature(SECRET, TIMESTAMP, BODY)).toBe(SIGNATURE);
  expect(request()).toEqual({ ok: true, timestamp: Number(TIMESTAMP) });
});

test('a forged signature, another secret or a body changed by one byte: refused', () => {
  expect(request({ signature: `v0=${'0'.repeat(64)}` })).toEqual({
    ok: false,
    reason: 'the signature does not match',
  });
  expect(request({ signature: slackSignature('another-secret', TIMESTAMP, BODY) }).ok).toBe(false);
  expect(request({ body: BODY.replace('text=', 'text=x') }).ok).toBe(false);
  expect(request({ signature: SIGNATURE.slice(0, -1) }).ok).toBe(false);
  expect(request({ signature: SIGNATURE.replace('v0=', 'v1=') }).ok).toBe(false);
});

test('the timestamp: within 300 s either way, not 301; a new signature does not make an old timestamp fresh', () => {
  expect(request({ now: Number(TIMESTAMP) + 300 }).ok).toBe(true);
  expect(request({ now: Number(TIMESTAMP) - 300 }).ok).toBe(true);
  expect(request({ now: Number(TIMESTAMP) + 301 })).toEqual({
    ok: false,
    reason: 'stale: the timestamp is 301 s from this clock (at most 300)',
  });
  expect(request({ now: Number(TIMESTAMP) - 301 }).ok).toBe(false);
});

test('missing or malformed headers, or no secret configured: refused, never thrown', () => {
  expect(verifySlackRequest({ headers: {}, rawBody: BODY, signingSecret: SECRET, nowSeconds: 1 })).toEqual({
    ok: false,
    reason: 'no valid x-slack-request-timestamp',
  });
  expect(request({ timestamp: '15314206.18' }).ok).toBe(false);
  expect(
    verifySlackRequest({
      headers: { 'x-slack-request-timestamp': TIMESTAMP },
      rawBody: BODY,
      signingSecret: SECRET,
      nowSeconds: Number(TIMESTAMP),
    }),
  ).toEqual({ ok: false, reason: 'no x-slack-signature' });
  expect(
    verifySlackRequest({
      headers: { 'x-slack-request-timestamp': TIMESTAMP, 'x-slack-signature': SIGNATURE },
      rawBody: BODY,
      signingSecret: '',
      nowSeconds: Number(TIMESTAMP),
    }),
  ).toEqual({ ok: false, reason: 'no signing secret configured' });
});
