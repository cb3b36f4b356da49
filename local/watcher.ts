// Local mode's alert watcher: tails the local JSON access log, feeds the same rule engine as the
// Lambda, and posts to Slack (SLACK_WEBHOOK_URL) or prints each alert readably.
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { processLines } from '../lambda/alert/pipeline';
import { Decision, emptyState, EngineState, RuleConfig } from '../lambda/alert/rules';
import { deliver, DeliveryOptions, slackMessage } from '../lambda/alert/slack';
import { LogTail } from './log-tail';

export const MAINTENANCE_FILE = 'maintenance';

export interface WatcherOptions {
  accessLog: string;
  /** Holds the `maintenance` file (`on` = evaluate and log, do not post). */
  stateDir: string;
  stage: string;
  config: RuleConfig;
  slackWebhookUrl?: string;
  delivery?: Partial<DeliveryOptions>;
  host?: string;
  pollMs?: number;
  out: (line: string) => void;
}

export interface WatcherCounts {
  evaluated: number;
  malformed: number;
  posted: number;
  suppressed: number;
  undelivered: number;
}

export function maintenanceOn(stateDir: string): boolean {
  const file = path.join(stateDir, MAINTENANCE_FILE);
  return existsSync(file) && readFileSync(file, 'utf8').trim() === 'on';
}

const LABELS: Record<Decision['severity'], string> = { critical: 'CRITICAL', warning: 'WARNING', info: 'INFO', ok: 'OK' };

export function describeDecision(d: Decision): string {
  const extras = [d.release ? `release ${d.release}` : '', ...Object.entries(d.details).map(([k, v]) => `${k}=${v}`)].filter(Boolean).join(', ');
  return `${LABELS[d.severity]} ${d.kind}: ${d.summary}${extras ? ` (${extras})` : ''}`;
}

export class AlertWatcher {
  private state: EngineState = emptyState();
  private readonly tail: LogTail;
  private timer: NodeJS.Timeout | undefined;
  private busy = Promise.resolve();
  readonly counts: WatcherCounts = { evaluated: 0, malformed: 0, posted: 0, suppressed: 0, undelivered: 0 };

  constructor(private readonly options: WatcherOptions) {
    this.tail = new LogTail(options.accessLog);
  }

  start(): void {
    this.tail.read(); // position at the end: history is not news
    this.timer = setInterval(() => {
      this.busy = this.busy.then(() => this.poll()).catch((err) => this.options.out(`[alerts] watcher error: ${(err as Error).message}`));
    }, this.options.pollMs ?? 100);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.busy;
    this.tail.close();
  }

  /** Reads what nginx wrote since the last poll and acts on it. */
  async poll(): Promise<void> {
    const lines = this.tail.read();
    if (lines.length === 0) return;
    const { out } = this.options;
    const host = this.options.host ?? os.hostname();
    const now = Date.now();
    const result = processLines(
      this.state,
      lines.map((message) => ({ message, host, receivedAt: now })),
      this.options.config,
      maintenanceOn(this.options.stateDir),
    );
    this.state = result.state;
    this.counts.evaluated += result.evaluated;
    this.counts.malformed += result.malformed.length;
    for (const m of result.malformed) out(`[alerts] malformed log line (${m.reason}): ${m.line.slice(0, 120)}`);
    for (const d of result.decisions) {
      if (d.suppressed) {
        this.counts.suppressed++;
        out(`[alerts] not posted (${d.suppressed}): ${describeDecision(d)}`);
        continue;
      }
      await this.post(d);
    }
  }

  private async post(d: Decision): Promise<void> {
    const { out, slackWebhookUrl } = this.options;
    if (!slackWebhookUrl) {
      this.counts.posted++;
      out(`[alert] ${describeDecision(d)}`);
      return;
    }
    const message = slackMessage(d, {
      stage: this.options.stage,
      logsHint: `Local access log: \`${this.options.accessLog}\``,
    });
    const result = await deliver(slackWebhookUrl, message, this.options.delivery);
    if (result.delivered) {
      this.counts.posted++;
      out(`[alert] posted to Slack: ${describeDecision(d)}`);
    } else {
      this.counts.undelivered++;
      // Never dropped silently: the alert is printed in full when Slack would not take it.
      out(`[alert] UNDELIVERED (${result.last} after ${result.attempts} attempts): ${describeDecision(d)}`);
    }
  }
}
