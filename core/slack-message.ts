// Slack: the Block Kit message for a decision or an alarm change (delivery is support/slack-webhook.ts).
import {
  ALARM_SEVERITY,
  AlarmStateChange,
  alarmConsoleUrl,
  describeTrigger,
  PIPELINE_ALARMS,
  pipelineAlarmOf,
  runbookLink,
} from './alarm-notification';
import { appLogInsightsUrl } from './insights-queries';
import { isPool, Pool } from './pools';
import { AlertKind, Decision, Severity } from './rules';
import type { ReleaseRecord } from './release-record';
import { OPERATOR_ACTION_LABELS } from './operator-decision';
import { SlackActionKind, slackActionId } from './slack-actions';

export const SEVERITY_COLOURS: Record<Severity, string> = {
  critical: '#d32f2f',
  warning: '#f9a825',
  info: '#1e88e5',
  ok: '#2e7d32',
};

const TITLES: Record<AlertKind, string> = {
  failover: ':warning: Failover: the backup pool is answering',
  failover_recovered: ':white_check_mark: Recovered: the active pool is answering again',
  planned_switch: ':arrows_counterclockwise: Planned switch of the active pool',
  error_rate: ':warning: Error rate above threshold',
  error_rate_recovered: ':white_check_mark: Error rate back to normal',
  users_see_errors: ':rotating_light: Users see errors: no pool could answer',
  release_started: ':rocket: Release started',
  release_deployed: ':package: Release deployed to the idle pool (not promoted)',
  release_promoted: ':white_check_mark: Release promoted',
  release_failed: ':no_entry: Release failed its gate: not promoted',
  release_canary_aborted: ':no_entry: Canary aborted: release not promoted',
  release_rolled_back: ':rewind: Release rolled back automatically',
  release_held: ':rotating_light: Release held: no verdict without evidence, a person decides',
  release_frozen:
    ':rotating_light: Irreversible release FROZEN: it failed its gate and is not flipped back; fix forward',
};

/** RUNBOOK.md anchor per kind, so the message links straight to what to do. */
export const RUNBOOK_ANCHORS: Record<AlertKind, string> = {
  failover: 'failover',
  failover_recovered: 'recovered',
  planned_switch: 'planned-switch',
  error_rate: 'error-rate',
  error_rate_recovered: 'error-rate',
  users_see_errors: 'users-see-errors',
  release_started: 'release-started',
  release_deployed: 'release-promoted',
  release_promoted: 'release-promoted',
  release_failed: 'release-failed',
  release_canary_aborted: 'release-failed',
  release_rolled_back: 'release-rolled-back',
  release_held: 'release-held',
  release_frozen: 'release-frozen',
};

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
/** Failing hosts a message lists (the summary says how many there are in all). */
const SLACK_HOSTS_LISTED = 10;

function isReleaseKind(kind: AlertKind): boolean {
  return kind.startsWith('release_');
}

export interface MessageContext {
  stage: string;
  /** Link to the minutes around the event (Logs Insights on AWS); omitted when there is none. */
  logsUrl?: string;
  /** Where the log is when there is no console (local mode). */
  logsHint?: string;
  runbookUrl?: string;
  /** The stage's app log group (AWS): a failing pool's alert links to its app log around that minute. */
  appLog?: { region: string; logGroup: string };
  /**
   * The stage answers Slack's buttons (the Slack actions function, or local mode's server): release
   * messages and pool alerts carry Roll back now / Promote now / Extend bake / Abort. `current` is
   * the release the stage is on (the ledger's head), for a pool alert's button.
   */
  releaseActions?: { current?: Pick<ReleaseRecord, 'id' | 'state'> };
}

/** The buttons each release message carries: what a person may still decide at that point. */
const RELEASE_MESSAGE_ACTIONS: Partial<Record<AlertKind, readonly SlackActionKind[]>> = {
  release_started: ['rollback', 'promote', 'extend-bake', 'abort'],
  release_promoted: ['rollback'],
  release_held: ['rollback', 'promote'],
  release_frozen: ['promote'],
};
/** A pool alert during these states of the current release offers to roll it back. */
const ROLLBACK_FROM_ALERT_STATES: ReadonlySet<ReleaseRecord['state']> = new Set([
  'deploying',
  'verifying',
  'baking',
  'held',
  'promoted',
]);

/** Slack's interactive buttons (core/slack-actions.ts reads their action_id and value) for this message. */
export function releaseActionButtons(
  d: Decision,
  actions: NonNullable<MessageContext['releaseActions']>,
): Array<Record<string, unknown>> {
  let releaseId: string | undefined;
  let kinds: readonly SlackActionKind[] = [];
  if (isReleaseKind(d.kind)) {
    releaseId = d.releaseId;
    kinds = RELEASE_MESSAGE_ACTIONS[d.kind] ?? [];
  } else if (
    POOL_FAILURE_KINDS.has(d.kind) &&
    actions.current &&
    ROLLBACK_FROM_ALERT_STATES.has(actions.current.state)
  ) {
    releaseId = actions.current.id;
    kinds = ['rollback'];
  }
  if (!releaseId) return [];
  const id = releaseId;
  return kinds.map((kind) => ({
    type: 'button',
    action_id: slackActionId(kind),
    text: { type: 'plain_text', text: OPERATOR_ACTION_LABELS[kind] },
    value: id,
    ...(kind === 'rollback' || kind === 'abort'
      ? {
          style: 'danger',
          confirm: {
            title: { type: 'plain_text', text: `${OPERATOR_ACTION_LABELS[kind]}?` },
            text: { type: 'mrkdwn', text: `${OPERATOR_ACTION_LABELS[kind]} on release \`${id}\`` },
            confirm: { type: 'plain_text', text: OPERATOR_ACTION_LABELS[kind] },
            deny: { type: 'plain_text', text: 'Cancel' },
          },
        }
      : kind === 'promote'
        ? { style: 'primary' }
        : {}),
  }));
}

/** Alerts about a pool failing requests: their message links to that pool's app log. */
const POOL_FAILURE_KINDS: ReadonlySet<AlertKind> = new Set<AlertKind>(['failover', 'error_rate', 'users_see_errors']);

/**
 * The pool an alert says is failing: the one that failed the most requests first sent to it,
 * else (a failover without a window) the active pool, which the backup answered for.
 */
export function failingPool(d: Decision): Pool | undefined {
  if (!POOL_FAILURE_KINDS.has(d.kind)) return undefined;
  const top = d.window?.failedPools[0]?.[0];
  if (isPool(top)) return top;
  return d.kind === 'failover' && isPool(d.activePool) ? d.activePool : undefined;
}

export function slackMessage(d: Decision, ctx: MessageContext): Record<string, unknown> {
  const release = isReleaseKind(d.kind);
  const fields: string[] = [`*Stage*\n${ctx.stage}`];
  if (d.host) fields.push(`*Host*\n${d.host}`);
  if (release) {
    if (d.release) fields.push(`*Release*\n${d.release}`);
    if (d.pool) fields.push(`*Pool*\n${d.pool}`);
    if (d.previousRelease !== undefined || d.previousPool)
      fields.push(`*Previous*\n${d.previousRelease ?? '?'} on ${d.previousPool ?? '?'}`);
    if (d.activePool) fields.push(`*Active pool*\n${d.activePool}`);
    if (d.strategy) fields.push(`*Strategy*\n${d.strategy}`);
  } else {
    if (d.activePool) fields.push(`*Active pool*\n${d.activePool}`);
    if (d.pool) fields.push(`*Served by*\n${d.pool}`);
    if (d.previousPool) fields.push(`*Previous pool*\n${d.previousPool}`);
    if (d.release) fields.push(`*Release*\n${d.release}`);
  }
  fields.push(`*When*\n${new Date(d.at).toISOString()}`);
  const blocks: Array<Record<string, unknown>> = [
    { type: 'section', text: { type: 'mrkdwn', text: `*${TITLES[d.kind]}*\n${d.summary}` } },
    { type: 'section', fields: fields.slice(0, 10).map((text) => ({ type: 'mrkdwn', text })) },
  ];
  if (d.window) {
    const w = d.window;
    const lines = [
      `*Window*: ${w.bad} of ${w.requests} requests failed by their primary pool (${pct(w.rate)}: served by the other pool, a 5xx attempt or a 5xx status)`,
      `*Users saw 5xx*: ${w.usersSaw5xx} of ${w.requests} (${pct(w.requests ? w.usersSaw5xx / w.requests : 0)})${w.usersSaw5xx === 0 && w.bad > 0 ? ': failover answered every one' : ''}`,
      w.failedPools.length ? `*Failing pool*: ${w.failedPools.map(([p, n]) => `${p} ×${n}`).join(', ')}` : '',
      // A fleet only (rules.ts sets failedHosts there): which hosts the failed requests came from.
      w.failedHosts?.length
        ? `*Failing hosts*: ${w.failedHosts
            .slice(0, SLACK_HOSTS_LISTED)
            .map(([h, n]) => `\`${h}\` ×${n}`)
            .join(
              ', ',
            )}${w.failedHosts.length > SLACK_HOSTS_LISTED ? `, and ${w.failedHosts.length - SLACK_HOSTS_LISTED} more` : ''}`
        : '',
      w.topUris.length ? `*Top URIs*: ${w.topUris.map(([u, n]) => `\`${u}\` ×${n}`).join(', ')}` : '',
      w.topUpstreams.length ? `*Upstreams*: ${w.topUpstreams.map(([u, n]) => `\`${u}\` ×${n}`).join(', ')}` : '',
    ].filter(Boolean);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n') } });
  }
  if (release && (d.figures || d.reason)) {
    const f = d.figures;
    const lines = [
      f
        ? `*Gate figures*: ${d.pool ?? 'the pool'} failed ${f.failed} of ${f.requests} requests first sent to it (${pct(f.rate)}); users saw 5xx on ${f.usersSaw5xx}`
        : '',
      d.reason ? `*Reason*: ${d.reason}` : '',
    ].filter(Boolean);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n') } });
  }
  const detailText = Object.entries(d.details)
    .map(([k, v]) => `${k}: \`${v}\``)
    .join('  ·  ');
  if (detailText) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: detailText }] });
  const buttons: Array<Record<string, unknown>> = [];
  if (ctx.logsUrl)
    buttons.push({ type: 'button', text: { type: 'plain_text', text: 'Logs around the event' }, url: ctx.logsUrl });
  const failing = failingPool(d);
  if (ctx.appLog && failing)
    buttons.push({
      type: 'button',
      text: { type: 'plain_text', text: `App log of ${failing}` },
      url: appLogInsightsUrl(ctx.appLog.region, ctx.appLog.logGroup, failing, d.at),
    });
  if (ctx.runbookUrl)
    buttons.push({
      type: 'button',
      text: { type: 'plain_text', text: 'Runbook' },
      url: runbookLink(ctx.runbookUrl, RUNBOOK_ANCHORS[d.kind]),
    });
  if (buttons.length) blocks.push({ type: 'actions', elements: buttons });
  const decisions = ctx.releaseActions ? releaseActionButtons(d, ctx.releaseActions) : [];
  if (decisions.length) blocks.push({ type: 'actions', block_id: 'bluegreen-release-actions', elements: decisions });
  if (ctx.logsHint) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: ctx.logsHint }] });
  return {
    text: `[${ctx.stage}] ${d.summary}`,
    attachments: [{ color: SEVERITY_COLOURS[d.severity], blocks }],
  };
}

/**
 * A CloudWatch alarm state change (from the stage's alarm topic) as a Slack message in the same
 * style as the alerts: title and what happened, the fields, a button to the alarm and one to its
 * RUNBOOK.md section (the pipeline's alarms; another alarm on the topic gets the console button only).
 */
export function alarmSlackMessage(
  change: AlarmStateChange,
  ctx: Pick<MessageContext, 'stage' | 'runbookUrl'>,
): Record<string, unknown> {
  const known = pipelineAlarmOf(ctx.stage, change.alarmName);
  const titles = known ? PIPELINE_ALARMS[known] : undefined;
  const title =
    change.state === 'OK'
      ? (titles?.ok ?? `:white_check_mark: OK: ${change.alarmName}`)
      : change.state === 'ALARM'
        ? (titles?.alarm ?? `:rotating_light: Alarm: ${change.alarmName}`)
        : `:grey_question: Insufficient data: ${change.alarmName}`;
  // The pipeline's own alarms have a title that says what their description says; another alarm's description is news.
  const summary = [known ? undefined : change.description, change.reason].filter(Boolean).join('\n');
  const fields = [
    `*Stage*\n${ctx.stage}`,
    `*Alarm*\n${change.alarmName}`,
    `*State*\n${change.previousState ? `${change.previousState} → ` : ''}${change.state}`,
    `*When*\n${change.at ? new Date(change.at).toISOString() : '?'}`,
  ];
  const trigger = describeTrigger(change.trigger);
  if (trigger) fields.push(`*Condition*\n${trigger}`);
  const blocks: Array<Record<string, unknown>> = [
    { type: 'section', text: { type: 'mrkdwn', text: `*${title}*${summary ? `\n${summary}` : ''}` } },
    { type: 'section', fields: fields.map((text) => ({ type: 'mrkdwn', text })) },
  ];
  const buttons: Array<Record<string, unknown>> = [];
  const consoleUrl = alarmConsoleUrl(change);
  if (consoleUrl)
    buttons.push({ type: 'button', text: { type: 'plain_text', text: 'Alarm in the console' }, url: consoleUrl });
  if (ctx.runbookUrl && known)
    buttons.push({
      type: 'button',
      text: { type: 'plain_text', text: 'Runbook' },
      url: runbookLink(ctx.runbookUrl, PIPELINE_ALARMS[known].anchor),
    });
  if (buttons.length) blocks.push({ type: 'actions', elements: buttons });
  return {
    text: `[${ctx.stage}] ${change.state}: ${change.alarmName}${change.reason ? ` (${change.reason})` : ''}`,
    attachments: [{ color: SEVERITY_COLOURS[ALARM_SEVERITY[change.state]], blocks }],
  };
}
