// The AWS-side operator commands of the one CLI: flip / maintenance / status (with --stage), insights.
import { GetCommandInvocationCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { ReleaseRecord } from '../core/release-record';
import { ledgerTableName } from '../core/release-ledger';
import { DynamoReleaseLedger } from '../support/release-ledger';
import { STAGE_TAG_KEY } from '../core/names';
import { commandInvocations, hostGates, latestStageCommand, StageHost, stageHosts } from './stage-hosts';
import { parseStepLines } from '../core/step-line';
import { parseArgs } from 'node:util';
import { INSIGHTS_QUERIES, INSIGHTS_QUERY_QUESTIONS, QueryName } from '../core/insights-queries';
import { ConfigError } from '../core/config-error';
import { isPool, otherPool, parsePool } from '../core/pools';
import { describeCanaryShare, parseCanaryValue, stickyKeyText } from '../core/canary';
import { describePreviewState, previewFromRecord } from '../core/preview';
import { describeEndpoint } from '../support/endpoint';
import { printRows, type Out } from '../support/output';
import { DEFAULT_CONFIRM_ANSWERS, flipOnAws, MAX_CONFIRM_ANSWERS } from './aws-flip';
import { AWS_FLAGS, awsTarget, getParameter } from './aws-target';
import { formatTable, parseSince, QueryError, runQuery } from './insights-query';

export const AWS_HELP =
  "  --stage S      the deployed stage (default: $BLUEGREEN_STAGE, else dev)\n  --region R     AWS region (default: the SDK's: $AWS_REGION, the profile)\n  --profile P    AWS profile (default: $AWS_PROFILE)";

function parse<T extends Record<string, { type: 'string' | 'boolean' }>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options: { ...AWS_FLAGS, ...options }, allowPositionals: true });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

export const FLIP_AWS_USAGE = `usage: bluegreen flip <blue|green> --stage S [--no-wait] [--timeout SECONDS] [--answers N]
  Writes /bluegreen/<stage>/active-pool, then waits until every host of the stage applied it (the
  pool-switch rule's Run Command ended Success on each) and the public URL answers from the new pool
  N times in a row (--answers, default ${DEFAULT_CONFIRM_ANSWERS}, at most ${MAX_CONFIRM_ANSWERS}; through a load balancer each answer
  may come from another host). Exit 0 confirmed, 1 not confirmed (the hosts and answers say why),
  2 bad input.
  Without --stage (and $BLUEGREEN_STAGE), flips the local stack instead.
${AWS_HELP}`;

export async function awsFlipCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const { values, positionals } = parse(args, {
    'no-wait': { type: 'boolean' },
    timeout: { type: 'string' },
    answers: { type: 'string' },
  });
  const pool = parsePool(positionals[0], 'pool');
  const timeoutS = Number(values.timeout ?? 120);
  if (!(timeoutS > 0 && timeoutS <= 900))
    throw new ConfigError(`--timeout must be 1-900 seconds, got "${values.timeout}"`);
  const answers = Number(values.answers ?? DEFAULT_CONFIRM_ANSWERS);
  if (!(Number.isInteger(answers) && answers >= 1 && answers <= MAX_CONFIRM_ANSWERS))
    throw new ConfigError(`--answers must be a whole number 1-${MAX_CONFIRM_ANSWERS}, got "${values.answers}"`);
  const target = awsTarget(values, env);
  const outcome = await flipOnAws({
    ssm: target.ssm,
    stage: target.stage,
    params: target.params,
    pool,
    wait: !values['no-wait'],
    timeoutMs: timeoutS * 1000,
    pollMs: 2000,
    answers,
    out,
  });
  if (!outcome.ok) out(`flip not confirmed: ${outcome.reason}`);
  return outcome.ok ? 0 : 1;
}

export const MAINTENANCE_AWS_USAGE = `usage: bluegreen maintenance <on|off> [--stage S]
  on: alerts are evaluated and logged but not posted. With --stage (or $BLUEGREEN_STAGE) it sets
  /bluegreen/<stage>/maintenance; without, the local stack's.
${AWS_HELP}`;

export async function awsMaintenanceCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const { values, positionals } = parse(args, {});
  const value = positionals[0];
  if (value !== 'on' && value !== 'off') throw new ConfigError('usage: bluegreen maintenance <on|off> --stage S');
  const target = awsTarget(values, env);
  await target.ssm.send(
    new PutParameterCommand({ Name: target.params.maintenance, Value: value, Type: 'String', Overwrite: true }),
  );
  out(
    `${target.params.maintenance} = ${value}${value === 'on' ? ': alerts are evaluated and logged, not posted' : ': alerts are posted'}`,
  );
  return 0;
}

export const STATUS_USAGE = `usage: bluegreen status [--stage S]
  With --stage (or $BLUEGREEN_STAGE): the active pool, the canary share, a release's preview (from
  its record: on while it waits, never the token), maintenance, what the public endpoint (the
  host, or the load balancer of a fleet) answers now, the last alerts, the last release, and each
  host of the stage (tagged ${STAGE_TAG_KEY}=<stage>): its SSM agent, how the last bluegreen-apply Run
  Command ended there and the active pool it reported, its gate in the last release.
  Without: the local stack (npm start, found through $BLUEGREEN_STATE_DIR or .bluegreen/local): the
  active pool, the canary share, the preview, each pool's release and health on its own port, maintenance, the
  last release, the log paths, what the public entry answers now.
  Exit 0 when the endpoint answers 200, 1 otherwise, 2 bad input (no local stack, no AWS region).
${AWS_HELP}`;

export async function awsStatusCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: Out,
  now: () => number = Date.now,
): Promise<number> {
  const { values } = parse(args, {});
  const target = awsTarget(values, env);
  const { params, ssm } = target;
  const ledger = new DynamoReleaseLedger({ ddb: target.ddb, table: ledgerTableName(target.stage) });
  const [[active, maintenance, url, instance, stateText, canaryText], record] = await Promise.all([
    Promise.all(
      [
        params.activePool,
        params.maintenance,
        params.publicUrl,
        params.instanceId,
        params.alertState,
        params.canaryPercent,
      ].map((n) => getParameter(ssm, n)),
    ),
    // The last release is the ledger's head; a stage without the table (not deployed) has none.
    ledger.head().catch((err: Error) => {
      if (err.name === 'ResourceNotFoundException') return undefined;
      throw err;
    }),
  ]);
  if (active === undefined) {
    out(
      `stage ${target.stage}: ${params.activePool} does not exist; is the stack deployed in this account and region?`,
    );
    return 1;
  }
  const endpoint = url
    ? await describeEndpoint(url)
    : { healthy: false, text: 'not checked (no public-url parameter)' };
  const canary = parseCanaryValue(canaryText ?? '0');
  const preview = previewFromRecord(record);
  const rows: Array<[string, string]> = [
    ['stage', target.stage],
    ['active pool', active],
    [
      'canary',
      canary
        ? describeCanaryShare(
            canary.percent,
            isPool(active) ? otherPool(active) : 'the idle pool',
            canary.sticky && stickyKeyText(canary.sticky),
          )
        : `'${canaryText}' (not a value the hosts accept: they keep their share)`,
    ],
    ['preview', describePreviewState(preview?.pool, preview?.release)],
    ['maintenance', maintenance ?? '(parameter missing)'],
    // Single-host mode names its host; a fleet has none (its hosts are listed below).
    ['host', instance ?? 'none named (a fleet: see hosts)'],
    ['public URL', url ?? '?'],
    ['endpoint now', endpoint.text],
  ];
  let last: Array<[string, number]> = [];
  try {
    last = Object.entries(
      (JSON.parse(stateText ?? '{}') as { lastPosted?: Record<string, number> }).lastPosted ?? {},
    ).sort((a, b) => b[1] - a[1]);
  } catch {
    // a hand-edited state: show none rather than fail
  }
  rows.push([
    'last alerts',
    last.length
      ? last
          .slice(0, 5)
          .map(([k, at]) => `${k} at ${new Date(at).toISOString()}`)
          .join('; ')
      : 'none posted',
  ]);
  rows.push([
    'last release',
    record ? `${record.id}: ${record.state}${record.reason ? ` (${record.reason})` : ''}` : 'none',
  ]);
  rows.push(...(await hostRows(ssm, target.stage, record, now())));
  printRows(rows, out);
  return endpoint.healthy ? 0 : 1;
}

/** An SDK error in one line (a deserialization error carries a second one). */
const firstLine = (err: Error) => err.message.split('\n')[0];

/** How far back status looks for the last bluegreen-apply Run Command on the stage's hosts. */
const LAST_COMMAND_LOOKBACK_MS = 24 * 3600_000;

/**
 * The stage's hosts, one row each: the SSM agent's ping, how the last bluegreen-apply Run Command
 * ended there (and the active pool it reported), the host's gate in the last release. Hosts come
 * from SSM (managed instances with the stage tag) and from that command's invocations; what SSM
 * refuses to show is said in the row, never fatal.
 */
async function hostRows(
  ssm: SSMClient,
  stage: string,
  record: ReleaseRecord | undefined,
  now: number,
): Promise<Array<[string, string]>> {
  const problems: string[] = [];
  const known = await stageHosts(ssm, stage).catch((err: Error) => {
    problems.push(`agents not readable: ${firstLine(err)}`);
    return [] as StageHost[];
  });
  const command = await latestStageCommand(ssm, stage, new Date(now - LAST_COMMAND_LOOKBACK_MS)).catch((err: Error) => {
    problems.push(`Run Command not readable: ${firstLine(err)}`);
    return undefined;
  });
  const invocations = command ? await commandInvocations(ssm, command.commandId).catch(() => []) : [];
  const gates = new Map((record ? hostGates(record.steps) : []).map((g) => [g.host, g]));
  const ids = [...new Set([...known.map((h) => h.host), ...invocations.map((i) => i.host)])].sort();
  const online = known.filter((h) => h.ping === 'Online').length;
  const rows: Array<[string, string]> = [
    [
      'hosts',
      `${ids.length} tagged ${STAGE_TAG_KEY}=${stage} (${online} online)` +
        (command
          ? `; last bluegreen-apply Run Command ${command.commandId}${command.requestedAt ? ` at ${command.requestedAt.toISOString()}` : ''}`
          : '; no bluegreen-apply Run Command in 24 h') +
        (problems.length ? `; ${problems.join('; ')}` : ''),
    ],
  ];
  for (const id of ids) {
    const agent = known.find((h) => h.host === id);
    const inv = invocations.find((i) => i.host === id);
    const parts = [agent ? `agent ${agent.ping}` : 'agent not listed'];
    if (inv) {
      let active = '';
      if (command && inv.status === 'Success') {
        const res = await ssm
          .send(new GetCommandInvocationCommand({ CommandId: command.commandId, InstanceId: id }))
          .catch(() => undefined);
        const step = parseStepLines(res?.StandardOutputContent ?? '', id).find((s) => s.step === 'active');
        if (step) active = `, active ${step.pool}`;
      }
      parts.push(`last apply ${inv.status}${active}`);
    } else if (command) parts.push('not in the last apply');
    const gate = gates.get(id);
    if (gate && record)
      parts.push(
        `release ${record.release}: ${gate.ok ? 'gate ok' : gate.joining ? 'was bootstrapping (not gated; joins after the release)' : gate.notRun ? 'not run' : `gate FAILED${gate.failure ? ` (${gate.failure})` : ''}`}`,
      );
    rows.push([`  ${id}`, parts.join('; ')]);
  }
  return rows;
}

export const INSIGHTS_USAGE = `usage: bluegreen insights <query> [--since 1h] [--stage S]
  Runs a saved Logs Insights query on /bluegreen/<stage>/nginx/access and prints the rows.
  Queries:
${(Object.keys(INSIGHTS_QUERIES) as QueryName[]).map((q) => `    ${q.padEnd(26)} ${INSIGHTS_QUERY_QUESTIONS[q]}`).join('\n')}
  Exit 0 rows printed, 1 the query failed, 2 bad input.
${AWS_HELP}`;

export async function insightsCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const { values, positionals } = parse(args, { since: { type: 'string' } });
  const name = positionals[0] as QueryName | undefined;
  if (!name || !(name in INSIGHTS_QUERIES)) {
    throw new ConfigError(`unknown query "${name ?? ''}"; one of: ${Object.keys(INSIGHTS_QUERIES).join(', ')}`);
  }
  const sinceMs = parseSince(values.since ?? '1h');
  const target = awsTarget(values, env);
  const end = Date.now();
  try {
    const rows = await runQuery({
      logs: target.logs,
      logGroup: target.logGroups.access,
      query: INSIGHTS_QUERIES[name],
      startMs: end - sinceMs,
      endMs: end,
      pollMs: 1000,
      timeoutMs: 120_000,
    });
    out(formatTable(rows));
    return 0;
  } catch (err) {
    if (err instanceof QueryError) {
      out(`insights ${name}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
