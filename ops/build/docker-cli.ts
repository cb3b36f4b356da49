// The docker CLI as `bluegreen build` runs it: a child process with its output kept (the last lines
// go into the one-line error), stdin for the registry password (never on the command line).
import { spawn } from 'node:child_process';

export interface DockerRun {
  /** null: docker could not be started at all (not installed, not on PATH). */
  code: number | null;
  /** stdout and stderr, interleaved as they came. */
  output: string;
  /** Why the process could not start (ENOENT, EACCES), when code is null. */
  startError?: string;
}

/** Output kept per run: the tail that errors quote, not a whole build log in memory. */
const KEEP_CHARS = 64 * 1024;

export function runDocker(
  docker: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: string; cwd?: string } = {},
): Promise<DockerRun> {
  return new Promise((resolve) => {
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-KEEP_CHARS);
    };
    const child = spawn(docker, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ code: null, output, startError: err.code ?? err.message }),
    );
    child.on('close', (code) => resolve({ code, output }));
    if (options.stdin !== undefined) {
      // A login that fails before reading stdin closes it: that is its exit code's story, not ours.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(options.stdin);
    }
  });
}

/** The last non-empty lines of a run's output, joined with " | " for a one-line error. */
export function lastLines(output: string, n: number): string {
  return output
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}
