// Local mode's Slack actions: the same two steps as the Slack actions function (core/slack-click.ts)
// behind an HTTP server on loopback inside `npm start`. Clicks are remembered in memory (one process),
// the work runs right after the answer, and decisions act through local mode's guard ports (the
// switch scripts, release.json written conditionally). A Slack app reaches it only through a tunnel
// the developer sets up; tests post to it directly.
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import type { Pool } from '../core/pools';
import { actOnSlackClick, CLICK_MEMORY_MS, receiveSlackClick, SlackWork } from '../core/slack-click';
import { deliver } from '../support/slack-webhook';
import { readLocalRecord } from './release-store';
import type { ScriptResult } from './switch';
import { localGuardPorts } from './watcher';

export interface LocalSlackActionsOptions {
  stateDir: string;
  host: string;
  /** 0 = a free port. */
  port: number;
  signingSecret: string;
  /** Slack user ids who may act (SLACK_ALLOWED_USERS); empty = nobody. */
  allowedUsers: string;
  /** Only response URLs under this prefix are posted to (Slack's own by default). */
  responseUrlPrefix: string;
  flip(pool: Pool): Promise<ScriptResult>;
  canary(percent: number): Promise<ScriptResult>;
  activePool(): Pool;
  out(line: string): void;
  now?: () => number;
}

/** The largest body read: Slack's interactivity payloads are a few KB. */
const MAX_BODY_BYTES = 64 * 1024;

export class LocalSlackActions {
  private server: http.Server | undefined;
  private readonly clicks = new Map<string, number>();
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly o: LocalSlackActionsOptions) {}

  /** Listens; resolves with the URL Slack's requests go to. */
  async start(): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.o.port, this.o.host, resolve);
    });
    return `http://${this.o.host}:${(this.server.address() as AddressInfo).port}/slack/actions`;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    this.server?.closeAllConnections();
    await new Promise((r) => (this.server ? this.server.close(r) : r(undefined)));
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const answer = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body);
    };
    if (req.method !== 'POST') return answer(405, 'POST only');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) return answer(413, 'too large');
      chunks.push(chunk);
    }
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v[0] : v]),
    );
    try {
      const result = await receiveSlackClick({ headers, rawBody: Buffer.concat(chunks).toString('utf8') }, this.now(), {
        signingSecret: async () => this.o.signingSecret,
        allowlist: async () => this.o.allowedUsers,
        claimClick: async (clickId, nowMs) => this.claim(clickId, nowMs),
        defer: async (work) => this.defer(work),
        log: (entry) => {
          if (entry.level !== 'INFO')
            this.o.out(`[slack] ${String(entry.msg)}${entry.reason ? `: ${String(entry.reason)}` : ''}`);
        },
      });
      answer(result.status, result.body);
    } catch (err) {
      this.o.out(`[slack] request failed: ${(err as Error).message}`);
      answer(500, 'failed');
    }
  }

  /** The replay check: a click id seen in the last hour is not acted on again. */
  private claim(clickId: string, nowMs: number): boolean {
    for (const [id, at] of this.clicks) if (nowMs - at > CLICK_MEMORY_MS) this.clicks.delete(id);
    if (this.clicks.has(clickId)) return false;
    this.clicks.set(clickId, nowMs);
    return true;
  }

  /** The work after the answer: in this process, right after the response is sent. */
  private defer(work: SlackWork): void {
    const run = new Promise((r) => setImmediate(r))
      .then(() =>
        actOnSlackClick(work, this.now(), 'local', {
          ...localGuardPorts(this.o.stateDir, this.o),
          readRecord: async () => readLocalRecord(this.o.stateDir),
          activePool: async () => this.o.activePool(),
          respond: async (url, message) => {
            if (!url.startsWith(this.o.responseUrlPrefix)) {
              this.o.out(`[slack] response_url outside ${this.o.responseUrlPrefix}: not posted`);
              return;
            }
            const result = await deliver(url, message);
            if (!result.delivered) this.o.out(`[slack] the message update was not delivered (${result.last})`);
          },
        }),
      )
      .then((outcome) =>
        this.o.out(
          outcome.kind === 'written'
            ? `[slack] ${outcome.record.id}: ${outcome.line}`
            : `[slack] ${outcome.kind}${'reason' in outcome ? `: ${outcome.reason}` : ''}`,
        ),
      )
      .catch((err: Error) => this.o.out(`[slack] the action failed: ${err.message}`))
      .finally(() => this.pending.delete(run));
    this.pending.add(run);
  }
}
