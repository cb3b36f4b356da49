// The release phase (`bluegreen release --pre-promote CMD`): pure. A command run once per release in
// the new release's container (locally: a process with the new pool's env in app/), on one host,
// after the gate and before any traffic, under the host agent's lock. Its exit status and last lines
// of output go into the release record. The host gets the command base64-encoded as one argument of
// bluegreen-apply (never spliced into Run Command's shell line) and answers with one step line and
// one output line, also base64: what the command prints can never pass for a step line.
import { limit } from './aws-limits';

/** The record keeps this many last lines of the command's output (stdout and stderr together)... */
export const PRE_PROMOTE_OUTPUT_LINES = 20;
/**
 * ...and at most this many bytes of them: the record is one Parameter Store value of at most 8 KB
 * that a fleet's steps share, and a migration's error is in its last lines. Base64 on the host's
 * stdout it is 2,668 characters, far inside what GetCommandInvocation returns (24,000).
 */
export const PRE_PROMOTE_OUTPUT_BYTES = 2000;
/** The longest command taken (bytes of UTF-8): a command line, not a script; ship a script in the image. */
export const PRE_PROMOTE_COMMAND_MAX_BYTES = 2048;
/** What the record keeps of the command (the whole one is in the CLI's own output). */
export const PRE_PROMOTE_RECORD_COMMAND_BYTES = 512;
/** A migration that runs longer than this holds the one-release lock too long for a release phase. */
export const DEFAULT_PRE_PROMOTE_TIMEOUT_SECONDS = 600;
export const MAX_PRE_PROMOTE_TIMEOUT_SECONDS = 3600;
/** The record's step and the host's step line name. */
export const PRE_PROMOTE_STEP = 'pre-promote';
/** bluegreen-apply's arguments: `--pre-promote <base64> --pre-promote-timeout <seconds>`. */
export const PRE_PROMOTE_FLAG = '--pre-promote';
export const PRE_PROMOTE_TIMEOUT_FLAG = '--pre-promote-timeout';
/** The host's output line: `pre-promote-output=<base64 of the last lines>`. */
export const PRE_PROMOTE_OUTPUT_PREFIX = 'pre-promote-output=';
/** The exit status `timeout` gives a command it killed (the host agent reports it as timed out). */
export const TIMEOUT_EXIT = 124;

/** Base64 of at most PRE_PROMOTE_COMMAND_MAX_BYTES (the host checks the same pattern: userdata/facts.sh). */
export const PRE_PROMOTE_B64_PATTERN = `^[A-Za-z0-9+/]{4,${Math.ceil(PRE_PROMOTE_COMMAND_MAX_BYTES / 3) * 4}}={0,2}$`;

// The output line must fit in what Run Command returns of stdout, with the step lines before it.
if (Math.ceil(PRE_PROMOTE_OUTPUT_BYTES / 3) * 4 + 4000 > limit('commandStdout'))
  throw new Error('pre-promote output does not fit in GetCommandInvocation stdout');

/**
 * The host's step detail (printf formats, in userdata/facts.sh): `exit 3 in 12 s`, `timed out after
 * 600 s`; anything else (a refusal) is a reason. parsePrePromoteDetail reads them back.
 */
export const PRE_PROMOTE_EXIT_PRINTF = 'exit %s in %s s';
export const PRE_PROMOTE_TIMED_OUT_PRINTF = 'timed out after %s s';

export function parsePrePromoteDetail(detail: string | undefined): {
  exitCode?: number;
  seconds?: number;
  timedOut?: boolean;
  reason?: string;
} {
  const text = (detail ?? '').trim();
  let m = /^exit (\d+) in (\d+) s$/.exec(text);
  if (m) return { exitCode: Number(m[1]), seconds: Number(m[2]) };
  m = /^timed out after (\d+) s$/.exec(text);
  if (m) return { timedOut: true, exitCode: TIMEOUT_EXIT, seconds: Number(m[1]) };
  return { reason: text || 'no detail' };
}

/** Why `command` cannot be a pre-promote command, or undefined. */
export function prePromoteCommandProblem(command: string): string | undefined {
  if (command.trim() === '') return 'is empty';
  if (command.includes('\0')) return 'contains a NUL character';
  const bytes = Buffer.byteLength(command, 'utf8');
  if (bytes > PRE_PROMOTE_COMMAND_MAX_BYTES)
    return `is ${bytes} bytes; at most ${PRE_PROMOTE_COMMAND_MAX_BYTES} (put a longer script in the image and run that)`;
  return undefined;
}

export function encodePrePromote(command: string): string {
  return Buffer.from(command, 'utf8').toString('base64');
}

/**
 * The last PRE_PROMOTE_OUTPUT_LINES lines, then at most PRE_PROMOTE_OUTPUT_BYTES of their end (cut on
 * a character boundary); a cut start says `…` so nobody reads it as the whole output.
 */
export function tailOutput(text: string): string {
  const trimmed = text.replace(/\s+$/, '');
  const lines = trimmed.split('\n');
  let tail = lines.slice(-PRE_PROMOTE_OUTPUT_LINES).join('\n');
  let cut = lines.length > PRE_PROMOTE_OUTPUT_LINES;
  const bytes = Buffer.from(tail, 'utf8');
  // Room for the marker (`…` and a line feed: 4 bytes).
  const room = PRE_PROMOTE_OUTPUT_BYTES - 4;
  if (bytes.length > room) {
    let start = bytes.length - room;
    // Never start inside a character: skip UTF-8 continuation bytes.
    while (start < bytes.length && (bytes[start] & 0xc0) === 0x80) start++;
    tail = bytes.subarray(start).toString('utf8');
    cut = true;
  }
  return cut ? `…\n${tail}` : tail;
}

/** The command's last lines from a host's stdout (the output line), or undefined when it printed none. */
export function parsePrePromoteOutput(stdout: string): string | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith(PRE_PROMOTE_OUTPUT_PREFIX));
  if (line === undefined) return undefined;
  const b64 = line.slice(PRE_PROMOTE_OUTPUT_PREFIX.length).trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return undefined;
  return tailOutput(Buffer.from(b64, 'base64').toString('utf8'));
}

/** One line for the CLI and the record's step: how the command ended. */
export function describePrePromote(r: {
  ok: boolean;
  exitCode?: number;
  timedOut?: boolean;
  seconds?: number;
  reason?: string;
  host?: string;
}): string {
  const how = r.timedOut ? 'timed out' : r.exitCode !== undefined ? `exit ${r.exitCode}` : (r.reason ?? 'no report');
  const took = r.seconds !== undefined ? ` after ${r.seconds} s` : '';
  return `${how}${took}${r.host ? ` on ${r.host}` : ''}${r.reason && r.exitCode !== undefined ? ` (${r.reason})` : ''}`;
}
