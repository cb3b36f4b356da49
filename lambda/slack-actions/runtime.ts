// The Slack actions function's logic with its dependencies passed in (handler.ts is the shell).
// Two kinds of invocation: Slack's request through the function URL (verified, answered at once,
// the work handed on as an asynchronous invocation of this same function) and that work.
import { ConditionalCheckFailedException, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { SSMClient } from '@aws-sdk/client-ssm';
import {
  actOnSlackClick,
  CLICK_MEMORY_MS,
  receiveSlackClick,
  SlackActOutcome,
  SlackWork,
} from '../../core/slack-click';
import {
  LEDGER_CLICK_SORT_KEY,
  LEDGER_PARTITION_KEY,
  LEDGER_SORT_KEY,
  LEDGER_TTL_ATTRIBUTE,
  ledgerClickPartition,
} from '../../core/release-ledger';
import { DynamoReleaseLedger } from '../../support/release-ledger';
import { deliver } from '../../support/slack-webhook';
import { ParameterCache } from '../alert/aws';
import { stageGuardPorts } from '../stage-ports';

export interface SlackActionsEnv {
  stage: string;
  ledgerTable: string;
  signingSecretParam: string;
  allowlistParam: string;
  activePoolParam: string;
  canaryParam: string;
  /** Only response URLs under this prefix are posted to (Slack's own: https://hooks.slack.com/). */
  responseUrlPrefix: string;
}

export interface SlackActionsDeps {
  ssm: SSMClient;
  ddb: DynamoDBClient;
  /** Invokes this function asynchronously with `work` (Lambda InvocationType Event). */
  invokeSelf(work: SlackWork): Promise<void>;
  now?: () => number;
  log?: (entry: Record<string, unknown>) => void;
  /** Delivery options for response_url posts (tests: no sleeps). */
  post?: (url: string, body: unknown) => Promise<{ delivered: boolean; last: string }>;
}

/** A Lambda function URL request (payload format 2.0), as far as this function reads it. */
export interface FunctionUrlEvent {
  headers?: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
  requestContext?: { http?: { method?: string } };
}

/** This function's own asynchronous invocation. */
export interface WorkEvent {
  bluegreenSlackWork: SlackWork;
}

export function isWorkEvent(event: unknown): event is WorkEvent {
  return typeof event === 'object' && event !== null && 'bluegreenSlackWork' in event;
}

/** Secrets and the allowlist are read at most this often (the allowlist's change applies within it). */
const PARAMETER_MAX_AGE_MS = 30_000;

export class SlackActionsRuntime {
  private readonly params: ParameterCache;
  /** The active pool a decision is checked against: read at the moment of the decision, never cached. */
  private readonly fresh: ParameterCache;
  private readonly ledger: DynamoReleaseLedger;
  private readonly now: () => number;
  private readonly log: (entry: Record<string, unknown>) => void;

  constructor(
    private readonly env: SlackActionsEnv,
    private readonly deps: SlackActionsDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.params = new ParameterCache(deps.ssm, PARAMETER_MAX_AGE_MS, this.now);
    this.fresh = new ParameterCache(deps.ssm, 0, this.now);
    this.ledger = new DynamoReleaseLedger({ ddb: deps.ddb, table: env.ledgerTable });
    this.log = deps.log ?? ((e) => console.log(JSON.stringify(e)));
  }

  /** Slack's request: the HTTP answer (status and body) for the function URL. */
  async receive(
    event: FunctionUrlEvent,
  ): Promise<{ statusCode: number; body: string; headers: Record<string, string> }> {
    const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const rawBody = event.isBase64Encoded
      ? Buffer.from(event.body ?? '', 'base64').toString('utf8')
      : (event.body ?? '');
    const answer =
      event.requestContext?.http?.method && event.requestContext.http.method !== 'POST'
        ? { status: 405, body: 'POST only' }
        : await receiveSlackClick({ headers, rawBody }, this.now(), {
            signingSecret: () => this.params.get(this.env.signingSecretParam, true),
            allowlist: () => this.params.get(this.env.allowlistParam),
            claimClick: (clickId, nowMs) => this.claimClick(clickId, nowMs),
            defer: (work) => this.deps.invokeSelf(work),
            log: this.log,
          });
    return { statusCode: answer.status, body: answer.body, headers: { 'content-type': 'text/plain' } };
  }

  /** The work handed on by receive: decide, act, answer in Slack. */
  async act(work: SlackWork): Promise<SlackActOutcome> {
    const ports = stageGuardPorts(this.deps.ssm, this.ledger, this.env);
    return actOnSlackClick(work, this.now(), this.env.stage, {
      ...ports,
      readRecord: () => this.ledger.head(),
      activePool: async () => {
        const pool = await this.fresh.get(this.env.activePoolParam);
        if (pool !== 'blue' && pool !== 'green') throw new Error(`${this.env.activePoolParam} is ${pool}`);
        return pool;
      },
      respond: (url, message) => this.respond(url, message),
      log: this.log,
    });
  }

  /** The replay check: a conditional put of the click in the ledger; it expires after CLICK_MEMORY_MS. */
  private async claimClick(clickId: string, nowMs: number): Promise<boolean> {
    try {
      await this.deps.ddb.send(
        new PutItemCommand({
          TableName: this.env.ledgerTable,
          Item: {
            [LEDGER_PARTITION_KEY]: { S: ledgerClickPartition(clickId) },
            [LEDGER_SORT_KEY]: { S: LEDGER_CLICK_SORT_KEY },
            [LEDGER_TTL_ATTRIBUTE]: { N: String(Math.floor((nowMs + CLICK_MEMORY_MS) / 1000)) },
          },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': LEDGER_PARTITION_KEY },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  private async respond(url: string, message: Record<string, unknown>): Promise<void> {
    // The URL came in a signed request, but only Slack's own hooks are ever posted to.
    if (!url.startsWith(this.env.responseUrlPrefix)) {
      this.log({ level: 'WARN', msg: 'response_url outside Slack: not posted', url });
      return;
    }
    const result = this.deps.post ? await this.deps.post(url, message) : await deliver(url, message);
    if (!result.delivered) this.log({ level: 'WARN', msg: 'response_url post failed', last: result.last });
  }
}
