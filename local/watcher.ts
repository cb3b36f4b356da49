// Local mode's alert watcher: tails the local JSON access log, feeds the same rule engine as the
// Lambda, and posts to Slack (SLACK_WEBHOOK_URL) or prints each alert readably. With `release`
// options it is also local mode's server-side release guard: on every poll (traffic or not) it
// reads release.json, runs the same guardRelease as the alert Lambda, and acts on it (flip back,
// canary to 0, record promoted / rolled-back / failed), posting the release events.
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { processLines } from '../core/line-batch';
import { announced, releaseAnnouncements } from '../core/release-events';
import { guardRelease, ReleaseGate } from '../core/release-guard';
import { actOnGuard, GuardPorts } from '../core/guard-actuator';
import { isFinal, ReleaseRecord } from '../core/release-record';
import { Decision, emptyState, EngineState, RuleConfig } from '../core/rules';
import { deliver, DeliveryOptions } from '../support/slack-webhook';
import { slackMessage } from '../core/slack-message';
import { readLocalRecord, writeLocalRecord } from './release-store';
import type { Pool } from '../core/pools';
import { LogTail } from './log-tail';
import type { ScriptResult } from './switch';

/** What the release guard acts with (the supervisor's LocalStack: switch-pool.sh). */
export interface ReleaseGuardOptions {
  gate: ReleaseGate;
  flip(pool: Pool): Promise<ScriptResult>;
  canary(percent: number): Promise<ScriptResult>;
}

export const MAINTENANCE_FILE = 'maintenance';

/**
 * Local mode's side of a decision (the guard's, a Slack button's): switch-pool.sh for the switches,
 * release.json for the record, written conditionally.
 */
export function localGuardPorts(stateDir: string, switches: Pick<ReleaseGuardOptions, 'flip' | 'canary'>): GuardPorts {
  const switched = (result: ScriptResult) => ({
    ok: result.code === 0,
    detail: result.code === 0 ? result.stdout.trim() : result.stderr.trim() || `exit ${result.code}`,
  });
  return {
    flip: async (pool) => switched(await switches.flip(pool)),
    setCanary: async (percent) => switched(await switches.canary(percent)),
    writeRecord: async (next, basis) => writeLocalRecord(stateDir, next, basis),
  };
}

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
  /** Guard releases (release.json in stateDir); omitted: alerts only. */
  release?: ReleaseGuardOptions;
  /** Local mode answers Slack's buttons (local/slack-actions-server.ts): messages carry them. */
  slackActions?: boolean;
  now?: () => number;
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

const LABELS: Record<Decision['severity'], string> = {
  critical: 'CRITICAL',
  warning: 'WARNING',
  info: 'INFO',
  ok: 'OK',
};

export function describeDecision(d: Decision): string {
  const extras = [d.release ? `release ${d.release}` : '', ...Object.entries(d.details).map(([k, v]) => `${k}=${v}`)]
    .filter(Boolean)
    .join(', ');
  return `${LABELS[d.severity]} ${d.kind}: ${d.summary}${extras ? ` (${extras})` : ''}`;
}

export class AlertWatcher {
  private state: EngineState = emptyState();
  private readonly tail: LogTail;
  private timer: NodeJS.Timeout | undefined;
  private busy = Promise.resolve();
  /** The last guard action that could not be carried out (said once, retried every poll). */
  private lastActFailure: string | undefined;
  readonly counts: WatcherCounts = { evaluated: 0, malformed: 0, posted: 0, suppressed: 0, undelivered: 0 };

  constructor(private readonly options: WatcherOptions) {
    this.tail = new LogTail(options.accessLog);
  }

  start(): void {
    this.tail.read(); // position at the end: history is not news
    if (this.options.release) this.adoptRecord();
    this.timer = setInterval(() => {
      this.busy = this.busy
        .then(() => this.poll())
        .catch((err) => this.options.out(`[alerts] watcher error: ${(err as Error).message}`));
    }, this.options.pollMs ?? 100);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.busy;
    this.tail.close();
  }

  /** Reads what nginx wrote since the last poll and acts on it; then guards the release, if any. */
  async poll(): Promise<void> {
    await this.evaluateLog();
    if (this.options.release) await this.guard();
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private async evaluateLog(): Promise<void> {
    const lines = this.tail.read();
    if (lines.length === 0) return;
    const { out } = this.options;
    const host = this.options.host ?? os.hostname();
    const now = this.now();
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

  /**
   * At start: the record left by an earlier run is not news (its events were announced then). One
   * still in progress cannot go on: this `npm start` restarted the pools with their configured
   * releases and the configured active pool, so it is marked failed (and announced as such).
   */
  private adoptRecord(): void {
    const record = readLocalRecord(this.options.stateDir);
    if (!record) return;
    this.state = { ...this.state, releaseAnnounced: announced(record) };
    if (isFinal(record.state)) return;
    const at = new Date(this.now()).toISOString();
    const reason = `npm start restarted while the release was ${record.state}: the local stack was reset to its configured releases and active pool`;
    // At start nobody else writes the record: a conflict here is a second npm start, and it may win.
    writeLocalRecord(
      this.options.stateDir,
      {
        ...record,
        state: 'failed',
        reason,
        decidedBy: 'npm start (restart)',
        updatedAt: at,
        finishedAt: at,
        steps: [...record.steps, { at, step: 'abandoned', ok: false, detail: reason, host: 'guard' }],
      },
      record,
    );
    this.options.out(`[release] ${record.id} was ${record.state} when the stack stopped: marked failed`);
  }

  /** Guard in progress: announce what changed, judge the release, act, announce the outcome. */
  private async guard(): Promise<void> {
    const { release, stateDir, out } = this.options;
    if (!release) return;
    const record = readLocalRecord(stateDir);
    await this.announce(record);
    if (!record || isFinal(record.state)) return;
    const now = this.now();
    const action = guardRelease(record, this.state.samples, now, release.gate);
    const outcome = await actOnGuard(
      record,
      action,
      now,
      'local-watcher',
      localGuardPorts(this.options.stateDir, release),
    );
    if (outcome.kind === 'nothing') return;
    if (outcome.kind === 'switch-failed') {
      const key = `${record.id}:${outcome.action}`;
      if (this.lastActFailure !== key)
        out(`[release] ${outcome.action} of ${record.id} failed, retrying: ${outcome.detail}`);
      this.lastActFailure = key;
      return;
    }
    if (outcome.detail !== undefined) out(`[release] ${outcome.action} ${record.id}: ${outcome.detail}`);
    if (outcome.kind === 'record-changed') {
      out(`[release] ${record.id} changed while the guard acted (${outcome.action}); not overwriting it`);
      return;
    }
    out(
      `[release] ${outcome.record.id}: ${outcome.record.state}${outcome.record.reason ? ` (${outcome.record.reason})` : ''}`,
    );
    await this.announce(outcome.record);
  }

  private async announce(record: ReleaseRecord | undefined): Promise<void> {
    if (!record) return;
    const decisions = releaseAnnouncements(this.state.releaseAnnounced, record, maintenanceOn(this.options.stateDir));
    this.state = { ...this.state, releaseAnnounced: announced(record) };
    for (const d of decisions) {
      if (d.suppressed) {
        this.counts.suppressed++;
        this.options.out(`[alerts] not posted (${d.suppressed}): ${describeDecision(d)}`);
      } else await this.post(d);
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
      ...(this.options.slackActions ? { releaseActions: { current: readLocalRecord(this.options.stateDir) } } : {}),
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
