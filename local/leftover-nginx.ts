// An nginx an earlier run left behind in a state dir (its supervisor was killed, or its master was):
// found and stopped before a new stack takes the ports.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { commandOf, hasProc, processRuns, procStat, readlinkOr, waitUntil } from './process-groups';
import { readStackState } from './stack-state';

/**
 * nginx processes of this state dir on this machine (Linux): nginx rewrites its workers' command
 * line to "nginx: worker process" (the -p prefix is gone) and its environment area with it, but
 * every nginx process holds the state dir's logs open. That is what ties a worker to this state dir,
 * whether its master lives or not. Empty where /proc is missing (macOS) or unreadable.
 */
function nginxProcessesOf(stateDir: string): number[] {
  if (!hasProc()) return [];
  const logsDir = path.join(path.resolve(stateDir), 'logs') + path.sep;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').startsWith('nginx')) continue;
      if (procStat(Number(entry))?.state === 'Z') continue;
      const fdDir = `/proc/${entry}/fd`;
      if (readdirSync(fdDir).some((fd) => readlinkOr(path.join(fdDir, fd)).startsWith(logsDir)))
        found.push(Number(entry));
    } catch {
      // Gone meanwhile, or another user's process: not ours to stop.
    }
  }
  return found;
}

/**
 * Kills an nginx left behind in this state dir: its master (the pid file) when a supervisor was
 * killed itself, and workers whose master was killed (reparented, still holding the port and
 * answering 502 once the pools are gone). Returns how many processes it stopped.
 */
export async function stopLeftoverNginx(stateDir: string): Promise<number> {
  // A supervisor still running in this state dir (a second `npm start`) owns its nginx: not leftover.
  let owner: number | undefined;
  try {
    owner = readStackState(stateDir)?.supervisorPid;
  } catch {
    // An unreadable state file names no supervisor.
  }
  if (owner && owner !== process.pid && processRuns(owner) && commandOf(owner).includes('node')) return 0;
  const pids = new Set(nginxProcessesOf(stateDir));
  const pidFile = path.join(stateDir, 'run', 'nginx.pid');
  const master = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
  if (Number.isInteger(master) && master > 1) {
    try {
      // Only an nginx: a pid can be reused by anything once its process is gone.
      if (readFileSync(`/proc/${master}/cmdline`, 'utf8').includes('nginx')) pids.add(master);
    } catch {
      // Gone (or no /proc): its workers, if any, were found above.
    }
  }
  if (pids.size === 0) return 0;
  const alive = () => [...pids].filter((pid) => (procStat(pid)?.state ?? 'Z') !== 'Z');
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      pids.delete(pid);
    }
  }
  if (!(await waitUntil(() => alive().length === 0, 3000))) {
    for (const pid of alive()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    await waitUntil(() => alive().length === 0, 2000);
  }
  return pids.size;
}
