// The release backend for a deployed stage: the pool state in SSM (created once by the stack, never
// rewritten by CloudFormation), the release record in the stage's ledger (DynamoDB, every write
// conditional), the deploy through Run Command on the stage's hosts (bluegreen-apply reports each
// step), the flip through the existing flip path.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { GetParameterHistoryCommand, GetParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { Pool } from '../../core/pools';
import { limit } from '../../core/aws-limits';
import { CLI_RECORD_POLL_MS } from '../../core/ssm-budget';
import { DesiredPool, parseRecord, PrePromoteResult, ReleaseRecord } from '../../core/release-record';
import { DEFAULT_APP_IMAGE } from '../../core/patterns';
import { formatCanaryValue, parseCanaryValue, parseStickyKey } from '../../core/canary';
import { parameterNames } from '../../core/names';
import { PREVIEW_APPLY_ARGS, previewParameterValue } from '../../core/preview';
import { isEmptyPoolOptions, parsePoolOptions, serializePoolOptions } from '../../core/pool-options';
import { flipOnAws } from '../aws-flip';
import { hostStepDetail, NOT_RUN } from '../stage-hosts';
import { getParameter } from '../aws-target';
import {
  DeployOptions,
  DeployReport,
  FlipResult,
  PrePromoteOptions,
  RecordChanged,
  ReleaseBackend,
} from '../../core/release-backend';
import {
  encodePrePromote,
  parsePrePromoteDetail,
  PRE_PROMOTE_FLAG,
  PRE_PROMOTE_STEP,
  PRE_PROMOTE_TIMEOUT_FLAG,
} from '../../core/pre-promote';
import { stageHosts } from '../stage-hosts';
import { DEPLOY_RATE, EVERY_HOST_RATE, HostResult, runApplyOnStageHosts, RunOnHostsResult } from './run-command';
import { RunRate } from '../../core/run-rate';
import type { SecretStore } from '../../core/secrets';
import { AwsSecretStore } from '../secrets/aws-store';
import { DynamoReleaseLedger } from '../../support/release-ledger';
import { ledgerTableName } from '../../core/release-ledger';
import { LedgerHistory } from './ledger-history';

export interface AwsBackendOptions {
  ssm: SSMClient;
  /** The stage's release ledger (core/release-ledger.ts) is read and written with it. */
  ddb: DynamoDBClient;
  /** Who runs the command (`startedBy`): STS GetCallerIdentity, which needs no permission. Unset: not asked. */
  sts?: STSClient;
  stage: string;
  /** Poll interval for Run Command and the flip's confirmation. */
  pollMs?: number;
  /** How long a flip may take to be confirmed by the public endpoint. */
  flipTimeoutMs?: number;
  out?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /**
   * How bluegreen-apply is run on the stage's hosts. Default: Run Command. The Docker Engine harness
   * runs the real script against the real Compose set instead (Run Command cannot reach it).
   */
  runApply?: (args: string[], timeoutMs: number, rate: RunRate, hosts?: string[]) => Promise<RunOnHostsResult>;
  /** Answers in a row from the new pool through the public URL that confirm a promotion's flip. */
  confirmAnswers?: number;
}

/** On top of the command's own timeout: the wait for the host's lock (a deploy of up to two recreations) and the container check. */
const PRE_PROMOTE_HOST_MARGIN_MS = 300_000;

/** One host's gate result in a line: the failed step and its detail, or Run Command's status. */
function hostFailure(h: HostResult): string {
  const failedStep = h.steps.find((s) => !s.ok);
  if (failedStep)
    return `${h.host}: step ${failedStep.step} failed${failedStep.detail ? ` (${failedStep.detail})` : ''}`;
  return `${h.host}: ${h.status === NOT_RUN ? 'not run' : `Run Command ${h.status}`}${h.error ? ` (${h.error})` : ''}`;
}

/**
 * Why a deploy on the stage's hosts failed, naming every host that did not pass (undefined: all
 * passed). A host that never ran it (Run Command stopped after the first failure) is named apart:
 * it still runs what it ran before.
 */
export function deployFailure(result: RunOnHostsResult): string | undefined {
  const failed = result.hosts.filter((h) => !h.ok && h.status !== NOT_RUN);
  const notRun = result.hosts.filter((h) => h.status === NOT_RUN);
  const parts = failed.map(hostFailure);
  if (notRun.length)
    parts.push(`not run on ${notRun.map((h) => h.host).join(', ')} (Run Command stopped after the failure)`);
  if (result.problem) parts.unshift(result.problem);
  if (parts.length === 0) return result.hosts.length ? undefined : 'no host reported';
  const count = result.hosts.length > 1 ? ` [${failed.length} of ${result.hosts.length} hosts failed]` : '';
  return `${parts.join('; ')}${count}`;
}

export class AwsReleaseBackend implements ReleaseBackend {
  readonly target: string;
  readonly supportsImages = true;
  readonly recordPollMs = CLI_RECORD_POLL_MS;
  private readonly params: ReturnType<typeof parameterNames>;
  readonly ledger: DynamoReleaseLedger;
  readonly ledgerHistory: LedgerHistory;

  constructor(private readonly o: AwsBackendOptions) {
    this.target = `stage ${o.stage}`;
    this.params = parameterNames(o.stage);
    this.ledger = new DynamoReleaseLedger({ ddb: o.ddb, table: ledgerTableName(o.stage) });
    this.ledgerHistory = new LedgerHistory(o.ddb, ledgerTableName(o.stage));
  }

  /** The caller's IAM principal (an assumed role's session names the person or the CI run). */
  async actor(): Promise<string | undefined> {
    if (!this.o.sts) return undefined;
    return (await this.o.sts.send(new GetCallerIdentityCommand({}))).Arn;
  }

  private async put(name: string, value: string, tier?: 'Intelligent-Tiering'): Promise<void> {
    await this.o.ssm.send(
      new PutParameterCommand({
        Name: name,
        Value: value,
        Type: 'String',
        Overwrite: true,
        ...(tier ? { Tier: tier } : {}),
      }),
    );
  }

  /** The stage's releaseHistoryDays (a parameter the stack writes only when it is set). */
  async historyDays(): Promise<number | undefined> {
    const value = await getParameter(this.o.ssm, this.params.releaseHistoryDays);
    const days = Number(value);
    return value !== undefined && Number.isInteger(days) && days > 0 ? days : undefined;
  }

  /** The ledger's head; on a stage whose ledger is still empty, the SSM record's history is imported first. */
  async readRecord(): Promise<ReleaseRecord | undefined> {
    return (await this.ledger.head()) ?? (await this.importSsmRecord());
  }

  async writeRecord(record: ReleaseRecord, basis: ReleaseRecord | undefined): Promise<ReleaseRecord> {
    return this.ledger.write(record, basis);
  }

  async history(): Promise<ReleaseRecord[]> {
    await this.readRecord();
    return this.ledgerHistory.releases();
  }

  /**
   * The record's versions kept in the SSM parameter that held it before the ledger, written to the
   * ledger in order (each write conditional, the first on an empty head: two CLIs importing at once
   * leave one copy). Returns the head afterwards; undefined when there was nothing to import.
   */
  private async importSsmRecord(): Promise<ReleaseRecord | undefined> {
    let basis: ReleaseRecord | undefined;
    try {
      for (const version of await this.ssmRecordVersions()) basis = await this.ledger.write(version, basis);
    } catch (err) {
      if (!(err instanceof RecordChanged)) throw err;
      return err.current;
    }
    return basis;
  }

  /** Every version SSM keeps of the old record parameter (its last AWS_LIMITS.parameterVersions writes), oldest first. */
  private async ssmRecordVersions(): Promise<ReleaseRecord[]> {
    const records: ReleaseRecord[] = [];
    let NextToken: string | undefined;
    do {
      let page;
      try {
        page = await this.o.ssm.send(
          new GetParameterHistoryCommand({
            Name: this.params.release,
            MaxResults: limit('parameterHistoryPage'),
            NextToken,
          }),
        );
      } catch (err) {
        // A stage created after the ledger may not have the old parameter.
        if ((err as Error).name === 'ParameterNotFound') break;
        throw err;
      }
      for (const p of page?.Parameters ?? []) {
        const r = parseRecord(p.Value);
        if (r) records.push(r);
      }
      NextToken = page?.NextToken;
    } while (NextToken);
    return records;
  }

  async activePool(): Promise<Pool> {
    const value = await getParameter(this.o.ssm, this.params.activePool);
    if (value !== 'blue' && value !== 'green') {
      throw new Error(
        `${this.params.activePool} is ${value === undefined ? 'missing (is the stack deployed in this account and region?)' : `"${value}", not blue or green`}`,
      );
    }
    return value;
  }

  async desiredPool(pool: Pool): Promise<DesiredPool | undefined> {
    const names = this.params.pools[pool];
    const res = await this.o.ssm.send(
      new GetParametersCommand({ Names: [names.image, names.release, names.env, names.options] }),
    );
    const value = (name: string) => res.Parameters?.find((p) => p.Name === name)?.Value;
    const release = value(names.release);
    if (release === undefined) return undefined;
    const image = value(names.image);
    let env: Record<string, string> = {};
    try {
      env = JSON.parse(value(names.env) ?? '{}') as Record<string, string>;
    } catch {
      throw new Error(`${names.env} does not hold a JSON object: fix it (e.g. {}) before releasing`);
    }
    // A stack from before pool options has no options parameter: none.
    const parsed = parsePoolOptions(value(names.options) ?? '{}');
    if ('problem' in parsed)
      throw new Error(`${names.options} is not usable (${parsed.problem}): fix it (e.g. {}) before releasing`);
    return {
      release,
      env,
      ...(image && image !== DEFAULT_APP_IMAGE ? { image } : {}),
      ...(isEmptyPoolOptions(parsed.options) ? {} : { options: parsed.options }),
    };
  }

  /** The hosts converge on the desired state (and report each deploy): that is what runs. */
  currentPool(pool: Pool): Promise<DesiredPool | undefined> {
    return this.desiredPool(pool);
  }

  async setDesiredPool(pool: Pool, desired: DesiredPool): Promise<void> {
    const names = this.params.pools[pool];
    // Env, options and image first, the release last. Nothing deploys them in between: the pool-switch rule
    // does not fire on pool parameters and the hosts' timers run --no-deploy; the deploy that
    // follows (this release's Run Command, at its pace) applies the whole state.
    await this.put(names.env, JSON.stringify(desired.env));
    await this.put(names.options, serializePoolOptions(desired.options));
    await this.put(names.image, desired.image ?? DEFAULT_APP_IMAGE);
    await this.put(names.release, desired.release);
  }

  private runApply(args: string[], timeoutMs: number, rate: RunRate, hosts?: string[]): Promise<RunOnHostsResult> {
    if (this.o.runApply) return this.o.runApply(args, timeoutMs, rate, hosts);
    return runApplyOnStageHosts({
      ssm: this.o.ssm,
      stage: this.o.stage,
      args,
      ...(hosts ? { instanceIds: hosts } : {}),
      timeoutMs,
      rate,
      pollMs: this.o.pollMs ?? 2000,
      out: this.o.out,
      sleep: this.o.sleep,
      now: this.o.now,
    });
  }

  async deploy(_pool: Pool, options: DeployOptions): Promise<DeployReport> {
    // --retry: an explicit deploy tries again a desired state that failed before.
    const result = await this.runApply(['--retry'], options.timeoutMs, options.rate ?? DEPLOY_RATE);
    const at = new Date((this.o.now ?? Date.now)()).toISOString();
    const steps = result.hosts.flatMap((h) => [
      ...h.steps.map((s) => ({
        at,
        step: s.step,
        ok: s.ok,
        host: h.host,
        ...(s.detail ? { detail: `${s.pool}: ${s.detail}` } : { detail: s.pool }),
      })),
      { at, step: 'host', ok: h.ok, host: h.host, detail: hostStepDetail(h.status, h.error) },
    ]);
    const reason = deployFailure(result);
    return { ok: !reason, steps, ...(reason ? { reason } : {}) };
  }

  secretStore(): SecretStore {
    return new AwsSecretStore(this.o.ssm, this.o.stage);
  }

  /**
   * The release phase on one host (the first that passed the gate): bluegreen-apply --pre-promote
   * runs the command in the idle pool's container under the host's lock; its step line says how it
   * ended, its output line carries the last lines (base64). Run Command's own execution timeout
   * leaves room for the lock and the container check on top of the command's timeout.
   */
  async prePromote(_pool: Pool, options: PrePromoteOptions): Promise<PrePromoteResult> {
    const base = { command: options.command, output: '' };
    const host =
      options.hosts?.[0] ?? (await stageHosts(this.o.ssm, this.o.stage)).find((h) => h.ping === 'Online')?.host;
    if (!host) return { ...base, ok: false, reason: `no host of ${this.target} is online to run it on` };
    const seconds = Math.ceil(options.timeoutMs / 1000);
    const args = [PRE_PROMOTE_FLAG, encodePrePromote(options.command), PRE_PROMOTE_TIMEOUT_FLAG, String(seconds)];
    const result = await this.runApply(args, options.timeoutMs + PRE_PROMOTE_HOST_MARGIN_MS, EVERY_HOST_RATE, [host]);
    const h = result.hosts.find((x) => x.host === host);
    const step = h?.steps.find((s) => s.step === PRE_PROMOTE_STEP);
    if (!h || !step)
      return {
        ...base,
        host,
        ok: false,
        reason: h ? `no ${PRE_PROMOTE_STEP} step: ${hostFailure(h)}` : (result.problem ?? `${host} did not report`),
        ...(h?.prePromoteOutput !== undefined ? { output: h.prePromoteOutput } : {}),
      };
    const how = parsePrePromoteDetail(step.detail);
    return {
      ...base,
      host,
      ok: step.ok && h.ok,
      ...how,
      ...(step.ok && !h.ok ? { reason: hostFailure(h) } : {}),
      output: h.prePromoteOutput ?? '',
    };
  }

  async canaryPercent(): Promise<number> {
    // `10` or, for a sticky canary, `10 cookie:session` (core/canary.ts).
    return parseCanaryValue((await getParameter(this.o.ssm, this.params.canaryPercent)) ?? '0')?.percent ?? 0;
  }

  async setCanary(percent: number, sticky?: string): Promise<void> {
    // Share and sticky key in one value, so the hosts never apply one without the other.
    const value = formatCanaryValue(percent, sticky === undefined ? undefined : parseStickyKey(sticky, '--sticky'));
    await this.put(this.params.canaryPercent, value);
    // Applied by the hosts at once (not left to the event or the timer), so the share is in force
    // before the CLI starts counting the canary's time. A key the stage did not declare (its
    // stickyKeys context) is refused by every host (step canary, exit 2): that fails here.
    const result = await this.runApply([], 120_000, EVERY_HOST_RATE);
    const failed = deployFailure(result);
    if (failed)
      throw new Error(`canary ${percent}%${sticky ? ` sticky on ${sticky}` : ''} not applied on every host: ${failed}`);
  }

  /**
   * The preview parameter (a SecureString: it holds the token), then every host applies it at once
   * (bluegreen-apply --preview reads it; the per-minute run never does).
   */
  async setPreview(preview: { pool: Pool; token: string } | undefined): Promise<{ url?: string }> {
    await this.o.ssm.send(
      new PutParameterCommand({
        Name: this.params.preview,
        Value: previewParameterValue(preview),
        Type: 'SecureString',
        Overwrite: true,
      }),
    );
    const result = await this.runApply([...PREVIEW_APPLY_ARGS], 120_000, EVERY_HOST_RATE);
    const failed = deployFailure(result);
    if (failed)
      throw new Error(`preview ${preview ? `of ${preview.pool}` : 'off'} not applied on every host: ${failed}`);
    return { url: await getParameter(this.o.ssm, this.params.publicUrl) };
  }

  async flip(pool: Pool): Promise<FlipResult> {
    const lines: string[] = [];
    const outcome = await flipOnAws({
      ssm: this.o.ssm,
      stage: this.o.stage,
      params: this.params,
      ...(this.o.confirmAnswers ? { answers: this.o.confirmAnswers } : {}),
      pool,
      wait: true,
      timeoutMs: this.o.flipTimeoutMs ?? 120_000,
      pollMs: this.o.pollMs ?? 2000,
      out: (l) => lines.push(l),
      // Active, not answered-by: a failing new release is still promoted, and judged by the guard.
      confirm: 'active',
      now: this.o.now,
      sleep: this.o.sleep,
    });
    return outcome.ok
      ? { ok: true, detail: lines[lines.length - 1] ?? `${pool} is active` }
      : { ok: false, detail: outcome.reason };
  }
}
