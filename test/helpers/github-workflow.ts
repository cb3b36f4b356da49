// The GitHub Actions example's workflow as the runner reads and runs it: the YAML as GitHub reads it,
// and a `npx bluegreen …` line expanded by bash as the runner's `bash -e` would. Used by the
// example's own checks (test/infra) and to run its release step against the Docker harness.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  if?: string;
  shell?: string;
  'continue-on-error'?: unknown;
}
export interface Job {
  'runs-on': string;
  environment?: string | { name: string };
  permissions?: unknown;
  env?: Record<string, string>;
  steps: Step[];
  'continue-on-error'?: unknown;
}
export interface Workflow {
  on: Record<string, unknown>;
  permissions: Record<string, string>;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

/** YAML as GitHub reads it (PyYAML, like the other infra tests). YAML 1.1 reads the key `on` as true. */
export function readWorkflow(file: string): Workflow {
  const json = execFileSync('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], {
    input: readFileSync(file, 'utf8'),
    encoding: 'utf8',
  });
  const doc = JSON.parse(json) as Omit<Workflow, 'on'> & { on?: Workflow['on']; true?: Workflow['on'] };
  return { ...doc, on: doc.on ?? doc.true! };
}

/**
 * The arguments a `npx bluegreen …` line hands the CLI: bash expands the line as the runner's
 * `bash -e` would (with `set -u`: a variable the job does not set fails), `npx` stubbed to print them.
 */
export function cliArgs(line: string, env: Record<string, string>): string[] {
  const script = `set -euo pipefail\nnpx() { [ "$1" = bluegreen ] || exit 90; shift; printf '%s\\0' "$@"; }\n${line}\n`;
  const run = spawnSync('bash', ['-c', script], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`bash could not expand "${line}": ${run.stderr}`);
  return run.stdout.split('\0').slice(0, -1);
}

/** Every `npx bluegreen` line of a step's script (continuation lines joined). */
export const bluegreenLines = (script: string) =>
  script
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^npx bluegreen\b/.test(l));
