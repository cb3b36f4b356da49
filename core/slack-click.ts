// A click on a release button, end to end, over ports: the Lambda function URL (lambda/slack-actions)
// and local mode's loopback server (local/slack-actions-server.ts) are shells over these two steps.
// receive: within Slack's 3 s — verify the signature, read the click, refuse a replay (remembered by
// its trigger id), check the allowlist, and hand the work on; act: later — decide (operator-decision),
// carry it out through the one actuator (conditional on the version decided on), and update the
// message in place, or tell the person privately why not.
import { carryOut, GuardPorts } from './guard-actuator';
import { decideOperatorAction, OPERATOR_ACTION_LABELS, operatorDoneLine } from './operator-decision';
import type { Pool } from './pools';
import type { ReleaseRecord } from './release-record';
import { mayAct, parseSlackAction, parseSlackAllowlist, SlackAction } from './slack-actions';
import { verifySlackRequest } from './slack-signature';

/** What receive hands on to act (serializable: on AWS it travels as an asynchronous invocation's payload). */
export type SlackWork = { kind: 'refuse'; responseUrl?: string; text: string } | { kind: 'act'; action: SlackAction };

export interface SlackReceivePorts {
  /** The app's signing secret (a SecureString on AWS); undefined when not configured. */
  signingSecret(): Promise<string | undefined>;
  /** The allowlist's text (Slack user ids); undefined when the parameter does not exist. */
  allowlist(): Promise<string | undefined>;
  /** Remembers the click; false when it was remembered before (a replay: nothing is done). */
  claimClick(clickId: string, nowMs: number): Promise<boolean>;
  /** Hands the work on without waiting for it (an asynchronous invocation; locally the next tick). */
  defer(work: SlackWork): Promise<void>;
  log?(entry: Record<string, unknown>): void;
}

export interface SlackHttpAnswer {
  status: number;
  body: string;
}

/** Slack's own response URLs: nothing else is ever posted to (a test's loopback "Slack" is configured apart). */
export const SLACK_RESPONSE_URL_PREFIX = 'https://hooks.slack.com/';

/** How long a click is remembered: past Slack's 5-minute window a replay fails its signature anyway. */
export const CLICK_MEMORY_MS = 3_600_000;

/** The answer to Slack's request (HTTP), within its 3 s: the work itself happens after. */
export async function receiveSlackClick(
  request: { headers: Record<string, string | undefined>; rawBody: string },
  nowMs: number,
  ports: SlackReceivePorts,
): Promise<SlackHttpAnswer> {
  const log = ports.log ?? (() => undefined);
  const verdict = verifySlackRequest({
    headers: request.headers,
    rawBody: request.rawBody,
    signingSecret: (await ports.signingSecret()) ?? '',
    nowSeconds: Math.floor(nowMs / 1000),
  });
  if (!verdict.ok) {
    log({ level: 'WARN', msg: 'slack request refused', reason: verdict.reason });
    return { status: 401, body: 'not a verified Slack request' };
  }
  const parsed = parseSlackAction(request.rawBody);
  if (!parsed.ok) {
    // Signed by Slack, not ours to act on (another app's button, a modal): acknowledged, ignored.
    log({ level: 'INFO', msg: 'slack request ignored', reason: parsed.reason });
    return { status: 200, body: '' };
  }
  const { action } = parsed;
  if (!(await ports.claimClick(action.clickId, nowMs))) {
    log({ level: 'WARN', msg: 'slack click replayed: ignored', clickId: action.clickId, user: action.user.id });
    return { status: 200, body: '' };
  }
  const allowlist = parseSlackAllowlist((await ports.allowlist()) ?? '');
  if (!mayAct(action.user.id, allowlist.users)) {
    log({ level: 'WARN', msg: 'slack user not allowed', user: action.user.id, problems: allowlist.problems });
    await ports.defer({
      kind: 'refuse',
      ...(action.responseUrl ? { responseUrl: action.responseUrl } : {}),
      text: `You (${action.user.id}) are not on this stage's list of people who may act on releases from Slack; nothing was changed.`,
    });
    return { status: 200, body: '' };
  }
  log({
    level: 'INFO',
    msg: 'slack action accepted',
    kind: action.kind,
    release: action.releaseId,
    user: action.user.id,
  });
  await ports.defer({ kind: 'act', action });
  return { status: 200, body: '' };
}

export interface SlackActPorts extends GuardPorts {
  /** The stored record (the ledger's head), read now. */
  readRecord(): Promise<ReleaseRecord | undefined>;
  activePool(): Promise<Pool>;
  /** Posts to the click's response_url (Slack: 30 minutes, 5 uses). */
  respond(responseUrl: string, message: Record<string, unknown>): Promise<void>;
  log?(entry: Record<string, unknown>): void;
}

/** A message only the person who clicked sees; the original stays. */
export function ephemeral(text: string): Record<string, unknown> {
  return { response_type: 'ephemeral', replace_original: false, text };
}

/** The outcome, for the caller's log and tests. */
export type SlackActOutcome =
  | { kind: 'refused'; reason: string }
  | { kind: 'switch-failed' | 'record-changed'; detail?: string }
  | { kind: 'written'; record: ReleaseRecord; line: string };

/** Carries the work out and answers in Slack. `stage` names the stage in the message. */
export async function actOnSlackClick(
  work: SlackWork,
  nowMs: number,
  stage: string,
  ports: SlackActPorts,
): Promise<SlackActOutcome> {
  const respond = async (message: Record<string, unknown>, url?: string) => {
    if (url) await ports.respond(url, message);
  };
  if (work.kind === 'refuse') {
    await respond(ephemeral(work.text), work.responseUrl);
    return { kind: 'refused', reason: work.text };
  }
  const { action } = work;
  const who = `@${action.user.name}`;
  const record = await ports.readRecord();
  const decision = decideOperatorAction(record, await ports.activePool(), {
    kind: action.kind,
    releaseId: action.releaseId,
    by: `${who} (${action.user.id}) in Slack`,
    via: 'slack',
    now: nowMs,
  });
  const label = OPERATOR_ACTION_LABELS[action.kind];
  if (!decision.ok || !record) {
    const reason = decision.ok ? 'no release record' : decision.reason;
    await respond(ephemeral(`${label}: refused. ${reason}`), action.responseUrl);
    return { kind: 'refused', reason };
  }
  // Conditional on the version decided on: a guard or CLI write in between wins, and is reported.
  const outcome = await carryOut(record, decision, ports);
  if (outcome.kind !== 'written') {
    const text =
      outcome.kind === 'switch-failed'
        ? `${label}: the switch failed (${outcome.detail}); nothing was written. Try again, or use the CLI.`
        : `${label}: the release changed while this was done${outcome.current ? ` (now ${outcome.current.state})` : ''}; the record was not overwritten.`;
    await respond(ephemeral(text), action.responseUrl);
    return { kind: outcome.kind, detail: outcome.detail };
  }
  const line = operatorDoneLine(decision.done, who, nowMs);
  const r = outcome.record;
  await respond(
    {
      replace_original: true,
      text: `[${stage}] ${r.release} on ${r.pool}: ${line}`,
      blocks: [
        {
          type: 'section',
          text: { type: 'mrkdwn', text: `*Release ${r.release} on ${r.pool}* (${stage})\n${line}` },
        },
        {
          type: 'context',
          elements: [{ type: 'mrkdwn', text: `record: \`${r.id}\`  ·  state: \`${r.state}\`` }],
        },
      ],
    },
    action.responseUrl,
  );
  ports.log?.({
    level: 'INFO',
    msg: 'slack action done',
    kind: action.kind,
    release: r.id,
    state: r.state,
    user: action.user.id,
  });
  return { kind: 'written', record: r, line };
}
