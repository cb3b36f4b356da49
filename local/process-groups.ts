// Processes and process groups as /proc (Linux) shows them, and signals to whole groups: what local
// mode needs to stop an nginx whose workers outlived their master.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** pid, process group and state of a live process, from /proc (Linux); undefined when it is gone or unreadable. */
export function procStat(pid: number): { pgrp: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: the fields after the last ')' are fixed.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pgrp: Number(pgrp), state };
  } catch {
    return undefined;
  }
}

export const hasProc = () => existsSync('/proc/self/stat');

/** Whether any process of group `pgid` still runs. A zombie (exited, not yet reaped) holds no port: it counts as gone. */
export function groupAlive(pgid: number): boolean {
  if (hasProc()) {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = procStat(Number(entry));
      if (stat && stat.pgrp === pgid && stat.state !== 'Z') return true;
    }
    return false;
  }
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is empty already.
  }
}

export async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
}

export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return procStat(pid)?.state !== 'Z';
  } catch {
    return false;
  }
}

/** A process's command line; where there is no /proc to read it from (macOS), "node" (trust the pid). */
export function commandOf(pid: number): string {
  if (!hasProc()) return 'node';
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

export function readlinkOr(file: string): string {
  try {
    return readlinkSync(file);
  } catch {
    return '';
  }
}
