// The AWS-side operator commands of the one CLI: flip / maintenance / status (with --stage), insights.
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { parseArgs } from 'node:util';
import { INSIGHTS_QUERIES, INSIGHTS_QUERY_QUESTIONS, QueryName } from '../lambda/alert/insights';
import { ConfigError, parsePool } from '../local/defaults';
import { describeEndpoint, printRows } from '../local/commands';
import { DEFAULT_CONFIRM_ANSWERS, flipOnAws, MAX_CONFIRM_ANSWERS } from './aws-flip';
import { AWS_FLAGS, awsTarget, getParameter } from './aws-target';
import { formatTable, parseSince, QueryError, runQuery } from './insights';

type Out = (line: string) => void;

export const AWS_HELP = '  --stage S      the deployed stage (default: $BLUEGREEN_STAGE, else dev)\n  --region R     AWS region (default: the SDK\'s: $AWS_REGION, the profile)\n  --profile P    AWS profile (default: $AWS_PROFILE)';

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
  const { values, positionals } = parse(args, { 'no-wait': { type: 'boolean' }, timeout: { type: 'string' }, answers: { type: 'string' } });
  const pool = parsePool(positionals[0], 'pool');
  const timeoutS = Number(values.timeout ?? 120);
  if (!(timeoutS > 0 && timeoutS <= 900)) throw new ConfigError(`--timeout must be 1-900 seconds, got "${values.timeout}"`);
  const answers = Number(values.answers ?? DEFAULT_CONFIRM_ANSWERS);
  if (!(Number.isInteger(answers) && answers >= 1 && answers <= MAX_CONFIRM_ANSWERS)) throw new ConfigError(`--answers must be a whole number 1-${MAX_CONFIRM_ANSWERS}, got "${values.answers}"`);
  const target = awsTarget(values, env);
  const outcome = await flipOnAws({ ssm: target.ssm, stage: target.stage, params: target.params, pool, wait: !values['no-wait'], timeoutMs: timeoutS * 1000, pollMs: 2000, answers, out });
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
  await target.ssm.send(new PutParameterCommand({ Name: target.params.maintenance, Value: value, Type: 'String', Overwrite: true }));
  out(`${target.params.maintenance} = ${value}${value === 'on' ? ': alerts are evaluated and logged, not posted' : ': alerts are posted'}`);
  return 0;
}

export const STATUS_USAGE = `usage: bluegreen status [--stage S]
  With --stage (or $BLUEGREEN_STAGE): the active pool, maintenance, the host, what the public
  endpoint answers now, the last alerts.
  Without: the local stack (npm start, found through $BLUEGREEN_STATE_DIR or .bluegreen/local): the
  active pool, the canary share, each pool's release and health on its own port, maintenance, the
  last release, the log paths, what the public entry answers now.
  Exit 0 when the endpoint answers 200, 1 otherwise, 2 bad input (no local stack, no AWS region).
${AWS_HELP}`;

export async function awsStatusCommand(args: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const { values } = parse(args, {});
  const target = awsTarget(values, env);
  const { params, ssm } = target;
  const [active, maintenance, url, instance, stateText] = await Promise.all(
    [params.activePool, params.maintenance, params.publicUrl, params.instanceId, params.alertState].map((n) => getParameter(ssm, n)),
  );
  if (active === undefined) {
    out(`stage ${target.stage}: ${params.activePool} does not exist; is the stack deployed in this account and region?`);
    return 1;
  }
  const endpoint = url ? await describeEndpoint(url) : { healthy: false, text: 'not checked (no public-url parameter)' };
  const rows: Array<[string, string]> = [
    ['stage', target.stage],
    ['active pool', active],
    ['maintenance', maintenance ?? '(parameter missing)'],
    ['host', instance ?? '?'],
    ['public URL', url ?? '?'],
    ['endpoint now', endpoint.text],
  ];
  let last: Array<[string, number]> = [];
  try {
    last = Object.entries((JSON.parse(stateText ?? '{}') as { lastPosted?: Record<string, number> }).lastPosted ?? {}).sort((a, b) => b[1] - a[1]);
  } catch {
    // a hand-edited state: show none rather than fail
  }
  rows.push(['last alerts', last.length ? last.slice(0, 5).map(([k, at]) => `${k} at ${new Date(at).toISOString()}`).join('; ') : 'none posted']);
  printRows(rows, out);
  return endpoint.healthy ? 0 : 1;
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
    const rows = await runQuery({ logs: target.logs, logGroup: target.logGroups.access, query: INSIGHTS_QUERIES[name], startMs: end - sinceMs, endMs: end, pollMs: 1000, timeoutMs: 120_000 });
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
