// Supervision of a local stack's child processes (nginx, the pool apps): who runs under which name,
// which exits are on purpose, and which are crashes to report; SIGKILL for all of them if the
// supervisor itself exits.
import { ChildProcess } from 'node:child_process';
import { signalGroup } from './process-groups';

/** Calls `fn` with every line a child prints on `stream`. */
export function onLines(stream: NodeJS.ReadableStream, fn: (line: string) => void) {
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      fn(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  });
}

/** Resolves when the child has exited; SIGKILLs it after `timeoutMs`. */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export class ChildSupervisor<Name extends string> {
  private readonly children = new Map<Name, ChildProcess>();
  /** Children that lead their own process group (nginx): the group is killed, workers included. */
  private readonly groupLeaders = new WeakSet<ChildProcess>();
  private readonly killOnExit = () => {
    for (const child of this.children.values()) {
      if (this.groupLeaders.has(child) && child.pid) signalGroup(child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    }
  };
  private stoppingAll = false;
  /** Children stopped on purpose, so their exit is not reported as a crash. */
  private readonly expectedExits = new Set<ChildProcess>();

  constructor() {
    process.on('exit', this.killOnExit);
  }

  /** Set by stopAll(): every exit from then on is on purpose. */
  get stopping(): boolean {
    return this.stoppingAll;
  }

  /**
   * Runs `child` under `name`. `onCrash` hears of an exit that was not on purpose (not through
   * kill(), expect() or after stopAll()).
   */
  watch(name: Name, child: ChildProcess, onCrash: (reason: string) => void, options: { groupLeader?: boolean } = {}) {
    this.children.set(name, child);
    if (options.groupLeader) this.groupLeaders.add(child);
    child.once('exit', (code, signal) => {
      if (this.stoppingAll || this.expectedExits.has(child)) return;
      onCrash(signal ? `killed by ${signal}` : `exit code ${code}`);
    });
  }

  /** The child's exit, whenever it comes, is on purpose. */
  expect(child: ChildProcess): void {
    this.expectedExits.add(child);
  }

  kill(child: ChildProcess, signal: NodeJS.Signals): void {
    this.expect(child);
    child.kill(signal);
  }

  get(name: Name): ChildProcess | undefined {
    return this.children.get(name);
  }

  /** Stops the child running under `name`, if any (SIGKILL after `timeoutMs`), and forgets it. */
  async stop(name: Name, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const child = this.children.get(name);
    if (!child) return;
    this.kill(child, signal);
    await waitExit(child, timeoutMs);
    this.children.delete(name);
  }

  /** From now on every exit is on purpose. False when a stop was already under way. */
  beginStopAll(): boolean {
    if (this.stoppingAll) return false;
    this.stoppingAll = true;
    return true;
  }

  /** After the children were stopped: forgets them, and no longer kills them when this process exits. */
  release(): void {
    this.children.clear();
    process.off('exit', this.killOnExit);
  }
}
