// What both release benches (local mode, Docker Engine harness) measure from a finished release:
// its timings from the record's steps, the access-log lines since it started, and the results files.
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AccessLogEntry, parseAccessLogLine } from '../core/access-log';
import type { ReleaseRecord } from '../core/release-record';
import { REPO_ROOT } from '../local/paths';

export interface ReleaseTimings {
  /** Command start → the flip (promotion); null when never promoted. */
  secondsToFlip: number | null;
  /** Command start → record promoted. */
  secondsToPromoted: number | null;
  /** Promotion → rollback (bad release). */
  secondsPromotionToRollback: number | null;
  /** Requests with an attempt on the release's pool since the release started (a rolled-back or failed release only). */
  badPoolTouched: number | null;
}

const secs = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms / 10) / 100);

/** When `step` was first written to the record (epoch ms). */
export function stepAt(record: ReleaseRecord, step: string): number | undefined {
  const s = record.steps.find((x) => x.step === step);
  return s ? Date.parse(s.at) : undefined;
}

/**
 * The access-log entries nginx wrote since the release started, read from byte `fromByte` on (the
 * log's size before the scenario): a full-speed run writes hundreds of MB, more than one string holds.
 */
export function entriesSince(accessLog: string, record: ReleaseRecord, fromByte = 0): AccessLogEntry[] {
  const since = Date.parse(record.startedAt);
  const fd = openSync(accessLog, 'r');
  let text: string;
  try {
    const size = fstatSync(fd).size - fromByte;
    const buffer = Buffer.alloc(Math.max(0, size));
    readSync(fd, buffer, 0, buffer.length, fromByte);
    text = buffer.toString('utf8');
  } finally {
    closeSync(fd);
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => parseAccessLogLine(l))
    .flatMap((p) => (p.ok && (p.entry.msec ?? 0) * 1000 >= since ? [p.entry] : []));
}

/** @param poolAddr the release pool's upstream address as nginx logs it (host:port) */
export function releaseTimings(
  record: ReleaseRecord,
  commandAt: number,
  entries: readonly AccessLogEntry[],
  poolAddr: string,
): ReleaseTimings {
  const promoteAt = stepAt(record, 'promote');
  const finishedAt = record.finishedAt ? Date.parse(record.finishedAt) : undefined;
  return {
    secondsToFlip: secs(promoteAt !== undefined ? promoteAt - commandAt : undefined),
    secondsToPromoted: secs(record.state === 'promoted' && finishedAt ? finishedAt - commandAt : undefined),
    secondsPromotionToRollback: secs(
      record.state === 'rolled-back' && promoteAt && finishedAt ? finishedAt - promoteAt : undefined,
    ),
    badPoolTouched:
      record.state === 'rolled-back' || record.state === 'failed'
        ? entries.filter((e) => e.upstream_addr.includes(poolAddr)).length
        : null,
  };
}

/** One entry of a release's time line: a step (or steps written together) and how long it took to reach it. */
export interface StepTime {
  /** The step's name; steps written in the same millisecond (one agent report) are joined with +. */
  step: string;
  /** From the previous entry (the first: from the command's start) to this one being written. */
  seconds: number;
}

/**
 * The time a release spent in each step: a step is written when it is done, so the time it took is
 * from the step before it (the first, `start`, from the command: the process and the checks). The
 * last entry runs to the record's finish (a bake, a rollback).
 */
export function stepTimes(record: ReleaseRecord, commandAt: number): StepTime[] {
  const out: StepTime[] = [];
  let last = commandAt;
  let group: { at: number; names: string[] } | undefined;
  const flush = () => {
    if (!group) return;
    out.push({ step: [...new Set(group.names)].join('+'), seconds: (group.at - last) / 1000 });
    last = group.at;
    group = undefined;
  };
  for (const s of record.steps) {
    const at = Date.parse(s.at);
    if (group && at !== group.at) flush();
    group ??= { at, names: [] };
    group.names.push(s.step);
  }
  flush();
  // The finish, when no step marks it already (a bake's end is its `promoted` step).
  if (record.finishedAt && Date.parse(record.finishedAt) > last)
    out.push({ step: record.state, seconds: (Date.parse(record.finishedAt) - last) / 1000 });
  return out;
}

/** `start 0.41 · gate 1.20 · ...` (seconds). */
export const stepTimesCell = (times: readonly StepTime[]) =>
  times.map((t) => `${t.step} ${t.seconds.toFixed(2)}`).join(' · ');

export function machine(): string {
  const cpu = os.cpus();
  return `${cpu.length} × ${cpu[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`;
}

/** A figure for a table cell ('–' when there is none). */
export const cell = (x: number | null, digits = 2) => (x === null ? '–' : x.toFixed(digits));

/** Writes bench/results/<name>.{json,md} and prints the markdown. */
export function writeResults(name: string, json: unknown, md: string): void {
  mkdirSync(path.join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(REPO_ROOT, 'bench', 'results', `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(path.join(REPO_ROOT, 'bench', 'results', `${name}.md`), md);
  console.log(`\n${md}`);
}
