// The local stack's nginx as a supervised child: started in its own process group, checked to
// serve end to end, restarted once when it exits on its own, stopped with its workers.
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../core/pools';
import { httpRequest } from '../support/http';
import { ChildSupervisor, onLines, waitExit } from './child-supervisor';
import { groupAlive, signalGroup, waitUntil } from './process-groups';
import { StackState } from './stack-state';

/** How many times the stack restarts an nginx that exited on its own before it reports the exit (Compose's unless-stopped, bounded). */
export const NGINX_RESTARTS = 1;

/**
 * Ends every process of an nginx started in its own group (master, workers, cache processes):
 * SIGTERM (nginx's fast shutdown), SIGKILL to whatever is left after `graceMs`. Signalling the
 * group, not the master, is what reaches workers whose master is gone (killed with SIGKILL, the
 * workers go on serving on the port). The group id is the master's pid; Linux does not hand that
 * number to a new process while any member of the group lives, so the signal cannot hit a stranger.
 */
async function stopNginxGroup(pgid: number, graceMs: number): Promise<void> {
  if (!groupAlive(pgid)) return;
  signalGroup(pgid, 'SIGTERM');
  if (await waitUntil(() => !groupAlive(pgid), graceMs)) return;
  signalGroup(pgid, 'SIGKILL');
  await waitUntil(() => !groupAlive(pgid), 2000);
}

/** Resolves when GET /version at `url` answers 200: the stack serves end to end. */
export async function waitServing(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await httpRequest(`${url}/version`, { timeoutMs: 1000, agent: false });
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url}/version did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

export interface NginxProcessOptions {
  readyTimeoutMs?: number;
  output: (source: string, line: string) => void;
  /** nginx exited on its own and could not be brought back (see StackOptions.onUnexpectedExit). */
  onUnexpectedExit?: (name: 'nginx', reason: string) => void;
}

export class NginxProcess {
  /** nginx restarts done after it exited on its own (at most NGINX_RESTARTS). */
  private restarts = 0;
  /** Stopping the workers of an nginx that exited on its own, and restarting it; never rejects. */
  private recovery: Promise<void> = Promise.resolve();

  constructor(
    private readonly state: StackState,
    private readonly supervisor: ChildSupervisor<Pool | 'nginx'>,
    private readonly options: NginxProcessOptions,
  ) {}

  /** Resolves once nginx serves GET /version end to end; rejects (its workers stopped) when it does not. */
  async start(): Promise<void> {
    const { nginxBin, prefix, confDir } = this.state;
    // nginx workers stat the switch dir on every request. Started as root, nginx runs them as
    // nobody, who cannot see into a 0700 state dir (mkdtemp, a root home): they would take every
    // request for blue. Local mode is one user's processes, so root's workers stay root; nginx
    // keeps -g settings across reloads.
    const globals = process.getuid?.() === 0 ? 'daemon off; user root;' : 'daemon off;';
    if (this.supervisor.stopping) throw new Error('the stack is stopping');
    // Its own process group (still our child: not unref'd), so stopping it can signal the group and
    // reach workers whose master is gone; Ctrl-C in the terminal reaches the supervisor, which stops it.
    const child = spawn(nginxBin, ['-p', prefix, '-c', path.join(confDir, 'nginx.conf'), '-g', globals], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let ready = false;
    // Registered before watch(): an nginx that never came up is this call's rejection, not a crash report.
    child.once('exit', () => {
      if (!ready) this.supervisor.expect(child);
    });
    this.supervisor.watch(
      'nginx',
      child,
      (reason) => (this.recovery = this.recovery.then(() => this.recover(child, reason))),
      { groupLeader: true },
    );
    let stderr = '';
    onLines(child.stderr!, (line) => {
      stderr += `${line}\n`;
      this.options.output('nginx', line);
    });
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code, signal) => {
        const log = existsSync(this.state.errorLog)
          ? readFileSync(this.state.errorLog, 'utf8').trim().split('\n').slice(-3).join('\n')
          : '';
        reject(new Error(`nginx exited during start-up (${signal ?? code}): ${(stderr.trim() || log).trim()}`));
      });
      child.once('error', reject);
    });
    exited.catch(() => undefined);
    try {
      await Promise.race([exited, waitServing(this.state.url, this.options.readyTimeoutMs ?? 15_000)]);
      this.assertSwitchDirVisible();
    } catch (err) {
      // Workers an nginx that failed its start left behind must not keep the port.
      this.supervisor.expect(child);
      if (child.pid) await stopNginxGroup(child.pid, 2000);
      throw err;
    }
    ready = true;
  }

  /**
   * nginx exited on its own. Its workers may not have (a master killed with SIGKILL leaves them
   * serving on the port): stop its process group, then restart it once, as Compose's
   * `restart: unless-stopped` would; a second exit (or a restart that fails) goes to the caller.
   */
  private async recover(child: ChildProcess, reason: string): Promise<void> {
    if (child.pid) await stopNginxGroup(child.pid, 2000);
    if (this.supervisor.stopping) return;
    if (this.restarts >= NGINX_RESTARTS) {
      const times = `${this.restarts} restart${this.restarts === 1 ? '' : 's'}`;
      this.options.onUnexpectedExit?.('nginx', `${reason} again after ${times}; its workers were stopped`);
      return;
    }
    this.restarts += 1;
    try {
      await this.start();
    } catch (err) {
      if (this.supervisor.stopping) return;
      this.options.onUnexpectedExit?.(
        'nginx',
        `${reason}; its workers were stopped; the restart failed: ${(err as Error).message}`,
      );
      return;
    }
    this.options.output(
      'supervisor',
      `nginx exited (${reason}); its workers were stopped; restarted nginx (${this.restarts} of ${NGINX_RESTARTS})`,
    );
  }

  /** Stops the current nginx and every process of its group (workers included). */
  async stop(graceMs: number): Promise<void> {
    const nginx = this.supervisor.get('nginx');
    if (!nginx?.pid) return;
    this.supervisor.expect(nginx);
    await stopNginxGroup(nginx.pid, graceMs);
    await waitExit(nginx, 1000);
  }

  /** Once the supervisor is stopping: a restart under way sees that before it spawns, or its nginx is stopped after this. */
  async settled(): Promise<void> {
    await this.recovery;
  }

  /**
   * nginx treats a flag it cannot stat as absent (blue, no canary) and only logs it, so a
   * permission problem would be a silent flip: refuse to run instead.
   */
  private assertSwitchDirVisible(): void {
    const log = existsSync(this.state.errorLog) ? readFileSync(this.state.errorLog, 'utf8') : '';
    for (const line of log.split('\n')) {
      const denied = line.includes(`stat() "${this.state.switchDir}/`) && /failed \(((?:13|20): [^)]*)\)/.exec(line);
      if (denied) {
        throw new Error(
          `nginx workers cannot look into the switch dir ${this.state.switchDir} (${denied[1]}): ` +
            'make it and every directory above it searchable by the nginx worker user (chmod o+x)',
        );
      }
    }
  }
}
