// The tools outside npm that `npm test` needs, each with one install line: the one list README's
// "Tools the tests need" table shows and the run checks once, at its start (test/global-setup.ts).
import { accessSync, constants } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export interface Tool {
  /** The command the tests run. */
  command: string;
  /** What needs it. */
  for: string;
  /** One install line for Debian/Ubuntu and one for macOS (Homebrew). */
  debian: string;
  macos: string;
  /** A check beyond the command being there (a Python module, say); true when usable. */
  usable?: () => boolean;
}

const PIP = 'pip install -r requirements-dev.txt';

export const TEST_TOOLS: readonly Tool[] = [
  {
    command: 'nginx',
    for: 'the data plane in every e2e test',
    debian: 'sudo apt-get install nginx',
    macos: 'brew install nginx',
  },
  {
    command: 'jq',
    for: 'the host agent and join scripts',
    debian: 'sudo apt-get install jq',
    macos: 'brew install jq',
  },
  {
    command: 'flock',
    for: "the host agent's lock",
    debian: 'sudo apt-get install util-linux',
    macos: 'brew install flock',
  },
  {
    command: 'shellcheck',
    for: 'the shell scripts',
    debian: 'sudo apt-get install shellcheck',
    macos: 'brew install shellcheck',
  },
  {
    command: 'logrotate',
    for: "the host's log rotation",
    debian: 'sudo apt-get install logrotate',
    macos: 'brew install logrotate',
  },
  {
    command: 'docker-compose',
    for: "validating the host's Compose file offline",
    debian: 'sudo apt-get install docker-compose',
    macos: 'brew install docker-compose',
  },
  {
    command: 'python3',
    for: 'reading YAML in the infra tests (PyYAML)',
    debian: PIP,
    macos: PIP,
    usable: () => spawnSync('python3', ['-c', 'import yaml'], { stdio: 'ignore' }).status === 0,
  },
  {
    command: 'moto_server',
    for: 'the AWS calls (SSM, CloudWatch Logs, SQS) against a local emulator',
    debian: PIP,
    macos: PIP,
  },
  { command: 'aws', for: 'the host scripts (AWS CLI v1, as on the host)', debian: PIP, macos: PIP },
  { command: 'cfn-lint', for: 'the synthesized templates', debian: PIP, macos: PIP },
];

// Debian installs nginx and logrotate in /usr/sbin, often missing from a normal user's PATH.
const EXTRA_DIRS = [
  '/usr/sbin',
  '/sbin',
  '/usr/local/sbin',
  '/opt/homebrew/bin',
  '/opt/homebrew/sbin',
  '/usr/local/bin',
];

function onPath(command: string, env: NodeJS.ProcessEnv): boolean {
  const dirs = [...(env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_DIRS];
  return dirs.some((dir) => {
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The tools missing here (not found, or found but not usable). */
export function missingTools(tools: readonly Tool[] = TEST_TOOLS, env: NodeJS.ProcessEnv = process.env): Tool[] {
  return tools.filter((t) => !onPath(t.command, env) || (t.usable !== undefined && !t.usable()));
}

/** The message a run without them starts with: each missing tool, what needs it, how to get it. */
export function missingToolsMessage(missing: readonly Tool[], platform: NodeJS.Platform = process.platform): string {
  const how = (t: Tool) => (platform === 'darwin' ? t.macos : t.debian);
  return [
    `npm test needs ${missing.length === 1 ? 'a tool' : `${missing.length} tools`} this machine does not have (README: "Tools the tests need"):`,
    ...missing.map((t) => `  ${t.command} (${t.for}): ${how(t)}`),
  ].join('\n');
}

/** README's table rows for these tools (test/unit/tools.test.ts holds README to them). */
export function readmeToolRows(tools: readonly Tool[] = TEST_TOOLS): string {
  return tools.map((t) => `| \`${t.command}\` | ${t.for} | \`${t.debian}\` | \`${t.macos}\` |`).join('\n');
}
