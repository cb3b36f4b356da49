// A deployed stage, as far as this machine can have one: the host's real Compose set on the Docker
// Engine (compose-set.ts), its pool state and release record in moto_server, `bluegreen release
// --stage`'s own code (ops/release: the orchestrator over the AWS backend), and the alert function's
// own code (lambda/alert/runtime.ts) as the server-side guard, fed nginx's access log from the host
// directory the way the log subscription feeds it, and told of record changes as the ledger's
// stream tells it. Two things stand in for AWS plumbing that cannot
// run here: Run Command (the backend's deploy runs the real bluegreen-apply directly) and the
// EventBridge → Run Command path (a loop runs bluegreen-apply when the pool state changes, as the
// rule does; the timer would too, within a minute).
import { CloudWatchLogsClient, CreateLogGroupCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createLedgerTable } from '../helpers/moto';
import { ledgerTableName } from '../../core/release-ledger';
import { DynamoReleaseLedger } from '../../support/release-ledger';
import * as path from 'node:path';
import { encodeSubscription } from '../../lambda/alert/decode';
import { releaseGateFromEnv, ruleConfigFromEnv } from '../../core/rule-config';
import { AlertRuntime, HandleResult } from '../../lambda/alert/runtime';
import { parameterNames } from '../../core/names';
import { LogTail } from '../../local/log-tail';
import { ReleaseOptions } from '../../ops/release/args';
import { AwsReleaseBackend } from '../../ops/release/aws-backend';
import { runRelease } from '../../ops/release/orchestrator';
import { hostResult, RunOnHostsResult } from '../../ops/release/run-command';
import { startSlackReceiver, SlackReceiver } from '../helpers/slack-receiver';
import { ComposeSet, startComposeSet } from './compose-set';

const HOST = 'i-0harness0000000001';

export interface DockerStage {
  set: ComposeSet;
  ssm: SSMClient;
  backend: AwsReleaseBackend;
  /** Everything bluegreen-apply printed (stdout, then stderr) for the backend: what Run Command would return. */
  applyOutputs: string[];
  /** Every guard decision the alert function's code took (rollback / promote / abort-canary). */
  guardActions: Array<{ at: number; action: string }>;
  /** `bluegreen release --stage` against the Compose set: the exit code and what it printed. */
  release(options: Partial<ReleaseOptions> & { release: string }): Promise<{ code: number; lines: string[] }>;
  stop(): Promise<void>;
}

/** Turns a Compose set (booted, pool state in moto) into a stage with the release CLI and the guard. */
export async function startDockerStage(set: ComposeSet, gateEnv: Record<string, string> = {}): Promise<DockerStage> {
  const config = {
    endpoint: set.moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  const ssm = new SSMClient(config);
  const logs = new CloudWatchLogsClient(config);
  const sqs = new SQSClient(config);
  const ddb = new DynamoDBClient(config);
  const names = parameterNames(set.stage);
  const logGroup = `/bluegreen/${set.stage}/nginx/access`;
  const put = (Name: string, Value: string, Type: 'String' | 'SecureString' = 'String') =>
    ssm.send(new PutParameterCommand({ Name, Value, Type, Overwrite: true }));
  // What the stack creates besides the pool state (compose-set.ts put that).
  await createLedgerTable(set.moto, set.stage);
  await put(names.maintenance, 'off');
  await put(names.publicUrl, set.url);
  await put(names.instanceId, HOST);
  await logs.send(new CreateLogGroupCommand({ logGroupName: logGroup })).catch(() => undefined);
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `undelivered-${set.project}` }))).QueueUrl!;

  const applyOutputs: string[] = [];
  // One bluegreen-apply at a time, like the host's lock: the deploy and the "EventBridge" loop share it.
  let chain: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => undefined);
    return next;
  };
  const runApply = async (args: string[]): Promise<RunOnHostsResult> => {
    const r = await serialized(() => set.apply(...args));
    applyOutputs.push(`${r.stdout}\n${r.stderr}`);
    return { commandId: 'harness', hosts: [hostResult(HOST, r.code === 0 ? 'Success' : 'Failed', r.stdout, r.stderr)] };
  };

  // EventBridge "Parameter Store Change" on the active pool / canary share → bluegreen-apply.
  let stopped = false;
  let lastSeen = '';
  const hostLoop = (async () => {
    while (!stopped) {
      const res = await ssm
        .send(new GetParametersCommand({ Names: [names.activePool, names.canaryPercent] }))
        .catch(() => undefined);
      const seen = (res?.Parameters ?? [])
        .map((p) => `${p.Name}=${p.Value}`)
        .sort()
        .join(' ');
      if (res && seen !== lastSeen) {
        lastSeen = seen;
        const r = await serialized(() => set.apply());
        applyOutputs.push(`${r.stdout}\n${r.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  // The alert function, fed what the CloudWatch agent would ship: new access-log lines, in batches.
  const guardActions: DockerStage['guardActions'] = [];
  const rules = ruleConfigFromEnv(gateEnv);
  const runtime = new AlertRuntime(
    {
      stage: set.stage,
      region: 'us-east-1',
      logGroup,
      maintenanceParam: names.maintenance,
      webhookParam: names.slackWebhookUrl,
      stateParam: names.alertState,
      deadLetterQueueUrl: queueUrl,
      metricsNamespace: 'Harness',
      rules,
      rebuildLookbackMs: 60_000,
      parameterMaxAgeMs: 60_000,
      release: {
        ledgerTable: ledgerTableName(set.stage),
        activePoolParam: names.activePool,
        canaryParam: names.canaryPercent,
        gate: releaseGateFromEnv(gateEnv, rules),
      },
    },
    { ssm, logs, sqs, ddb, log: () => undefined, emit: () => undefined },
  );
  const tail = new LogTail(path.join(set.logDir, 'access.log'));
  tail.read(); // history is not news
  let nextId = 0;
  let lastRevision: number | undefined;
  const ledger = new DynamoReleaseLedger({ ddb, table: ledgerTableName(set.stage) });
  const handle = async (event: unknown) => {
    const result: HandleResult | undefined = await runtime.handle(event).catch(() => undefined);
    if (result?.guard) guardActions.push({ at: Date.now(), action: result.guard });
  };
  const feed = (async () => {
    while (!stopped) {
      // The ledger's stream on its head (→ the function), as on AWS.
      const head = await ledger.head().catch(() => undefined);
      if (head?.revision !== undefined && head.revision !== lastRevision) {
        lastRevision = head.revision;
        await handle({ Records: [{ eventSource: 'aws:dynamodb', eventName: 'MODIFY' }] });
      }
      // The log subscription (new lines), else the one-minute tick (here every 0.5 s).
      const lines = tail.read();
      const now = Date.now();
      await handle(
        lines.length
          ? encodeSubscription({
              messageType: 'DATA_MESSAGE',
              logGroup,
              logStream: HOST,
              logEvents: lines.map((message) => ({ id: String(nextId++), timestamp: now, message })),
            })
          : { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} },
      );
      await new Promise((r) => setTimeout(r, 500));
    }
  })();

  const backend = new AwsReleaseBackend({ ssm, ddb, stage: set.stage, pollMs: 200, flipTimeoutMs: 30_000, runApply });
  return {
    set,
    ssm,
    backend,
    guardActions,
    applyOutputs,
    async release(o) {
      const lines: string[] = [];
      const options: ReleaseOptions = {
        env: {},
        strategy: 'all-at-once',
        canaryPercent: 0,
        canarySeconds: 10,
        bakeSeconds: 10,
        promote: true,
        deployTimeoutSeconds: 180,
        ...o,
      };
      const code = await runRelease(options, backend, { out: (l) => lines.push(l), pollMs: 200, graceMs: 15_000 });
      return { code, lines };
    },
    async stop() {
      stopped = true;
      await Promise.all([hostLoop, feed]);
      tail.close();
      for (const c of [ssm, logs, sqs, ddb]) c.destroy();
    },
  };
}

/** A local Slack stand-in the stage's alert function posts to: the stage's webhook parameter names it. */
export async function slackForStage(stage: DockerStage): Promise<SlackReceiver> {
  const slack = await startSlackReceiver();
  await stage.ssm.send(
    new PutParameterCommand({
      Name: parameterNames(stage.set.stage).slackWebhookUrl,
      Value: slack.url,
      Type: 'SecureString',
      Overwrite: true,
    }),
  );
  return slack;
}

/**
 * One Compose set (blue active on v1, green idle on v0) and its stage for a describe block: started
 * before its tests, stopped after. The getters throw outside a test.
 */
export function dockerStageForSuite(): { readonly set: ComposeSet; readonly stage: DockerStage } {
  let set: ComposeSet | undefined;
  let stage: DockerStage | undefined;
  beforeAll(async () => {
    set = await startComposeSet({ active: 'blue', releases: { blue: 'v1', green: 'v0' } });
    stage = await startDockerStage(set);
  }, 240_000);
  afterAll(async () => {
    await stage?.stop();
    await set?.down();
  }, 60_000);
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the Docker stage is not started (used outside a test?)');
    return value;
  };
  return {
    get set() {
      return ready(set);
    },
    get stage() {
      return ready(stage);
    },
  };
}
