// The operator CLI: `npx bluegreen <command>` (also `npm start` = `bluegreen start`). One CLI for
// local mode and deployed stages: flip, status and maintenance act on AWS when a stage is named
// (--stage or $BLUEGREEN_STAGE), on the local stack otherwise.
import {
  chaosCommand,
  checkCommand,
  loadCommand,
  LOAD_USAGE,
  CHECK_USAGE,
  flipCommand,
  maintenanceCommand,
  statusCommand,
} from '../local/local-commands';
import { ConfigError } from '../core/config-error';
import { NginxMissingError } from '../local/nginx-binary';
import { PortInUseError } from '../local/ports';
import { startCommand } from '../local/start';
import {
  awsFlipCommand,
  awsMaintenanceCommand,
  awsStatusCommand,
  AWS_HELP,
  FLIP_AWS_USAGE,
  insightsCommand,
  INSIGHTS_USAGE,
  MAINTENANCE_AWS_USAGE,
  STATUS_USAGE,
} from '../ops/stage-commands';
import { namesStage } from '../ops/aws-target';
import { APP_LOGS_USAGE } from '../core/app-log';
import { awsLogsCommand } from '../ops/app-logs';
import { localLogsCommand } from '../local/app-logs';
import { HISTORY_USAGE, RELEASE_USAGE } from '../ops/release/args';
import { historyCommand, releaseCommand } from '../ops/release/release-commands';
import { localReleaseBackend } from '../local/release-backend';
import { readProcessStdin, secretCommand, SECRET_USAGE } from '../ops/secrets/commands';
import { LocalSecretStore } from '../local/secret-store';
import { LOCAL_STATE_DIR } from '../local/paths';
import type { Out } from '../support/output';
import { VERIFY_IMAGE_USAGE } from '../core/image-contract';
import { DockerUnavailableError, verifyImageCommand } from '../local/verify-image';

type Run = (args: string[], env: NodeJS.ProcessEnv, out: Out) => Promise<number>;
interface Command {
  summary: string;
  usage: string;
  run: Run;
}

const localOrAws =
  (local: Run, aws: Run): Run =>
  (args, env, out) =>
    namesStage(args, env) ? aws(args, env, out) : local(args, env, out);

/** The CLI's own stdout printer: release draws its progress line in place only on this one. */
const consoleOut: Out = (l) => console.log(l);

const COMMANDS: Record<string, Command> = {
  start: {
    summary: 'run the local stack (nginx :8080, blue :8081, green :8082, the alert watcher) in the foreground',
    usage:
      'usage: bluegreen start   (env: NGINX_PORT, BLUE_PORT, GREEN_PORT, ACTIVE_POOL, RELEASE_ID_BLUE, RELEASE_ID_GREEN, SLACK_WEBHOOK_URL, ALERT_*)',
    run: (_args, env, out) => startCommand(env, out),
  },
  flip: {
    summary: 'flip <blue|green> [--stage S]: switch the active pool and confirm it end to end',
    usage: FLIP_AWS_USAGE,
    run: localOrAws(flipCommand, awsFlipCommand),
  },
  status: {
    summary: "status [--stage S]: active pool, each pool's release and health, maintenance, what the endpoint answers",
    usage: STATUS_USAGE,
    run: localOrAws(statusCommand, awsStatusCommand),
  },
  maintenance: {
    summary: 'maintenance <on|off> [--stage S]: alerts are evaluated and logged but not posted while on',
    usage: MAINTENANCE_AWS_USAGE,
    run: localOrAws(maintenanceCommand, awsMaintenanceCommand),
  },
  insights: {
    summary: 'insights <query> [--since 1h] [--stage S]: run a saved Logs Insights query, print a table',
    usage: INSIGHTS_USAGE,
    run: insightsCommand,
  },
  release: {
    summary:
      'release --release ID [--strategy canary] [--bake 2m] [--stage S]: ship to the idle pool, gate, promote, bake (auto rollback)',
    usage: RELEASE_USAGE,
    run: (args, env, out) =>
      releaseCommand(
        args,
        env,
        out,
        localReleaseBackend,
        out === consoleOut && process.stdout.isTTY ? process.stdout : undefined,
      ),
  },
  history: {
    summary: 'history [--stage S]: the releases, newest first, with outcome, duration and reason',
    usage: HISTORY_USAGE,
    run: (args, env, out) => historyCommand(args, env, out, localReleaseBackend),
  },
  secret: {
    summary: 'secret set NAME (value on stdin) | list | rm NAME [--stage S]: the secrets releases give the pools',
    usage: SECRET_USAGE,
    run: (args, env, out) =>
      secretCommand(args, env, out, (e) => new LocalSecretStore(e.BLUEGREEN_STATE_DIR || LOCAL_STATE_DIR), {
        stdin: readProcessStdin,
        stdinIsTerminal: Boolean(process.stdin.isTTY),
      }),
  },
  logs: {
    summary:
      "logs [--pool P] [--release ID] [--since 10m] [--follow] [--grep TEXT] [--stage S]: the pools' stdout/stderr",
    usage: `${APP_LOGS_USAGE}\n${AWS_HELP}`,
    run: localOrAws(localLogsCommand, awsLogsCommand),
  },
  chaos: {
    summary: 'chaos <blue|green> <error|timeout|stop>: break or heal a local pool',
    usage:
      "usage: bluegreen chaos <blue|green> <error|timeout|stop>\n  POSTs /chaos/start?mode=… or /chaos/stop to the pool's own port (local stack).",
    run: chaosCommand,
  },
  load: {
    summary: 'load [--rps 20] [--duration 2m] [--url URL]: steady keep-alive traffic (no re-sends), then its summary',
    usage: LOAD_USAGE,
    run: loadCommand,
  },
  check: {
    summary: 'check [--url URL]: the failover check against local mode or a deployed host',
    usage: CHECK_USAGE,
    run: checkCommand,
  },
  'verify-image': {
    summary: 'verify-image IMAGE [--timeout 60s]: run an image on local Docker and check the pool contract',
    usage: VERIFY_IMAGE_USAGE,
    run: verifyImageCommand,
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return [
    'usage: bluegreen <command> [args]',
    '',
    'commands:',
    ...lines,
    '',
    'bluegreen <command> --help for details. Exit codes: 0 ok, 1 failed, 2 bad input, 3 release held (no verdict).',
  ].join('\n');
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, out: Out, err: Out): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    err(`bluegreen: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    out(command.usage);
    return 0;
  }
  try {
    return await command.run(args, env, out);
  } catch (e) {
    // Expected problems get one clear line; anything else keeps its stack for a bug report.
    if (
      e instanceof ConfigError ||
      e instanceof NginxMissingError ||
      e instanceof PortInUseError ||
      e instanceof DockerUnavailableError
    ) {
      err(`bluegreen ${name}: ${e.message}`);
      return 2;
    }
    // The SDK found no region or no credentials: the operator's setup, i.e. bad input (exit 2).
    if (e instanceof Error && /^Region is missing/.test(e.message)) {
      err(`bluegreen ${name}: no AWS region: pass --region or set AWS_REGION (or a region in the --profile's config)`);
      return 2;
    }
    if (e instanceof Error && e.name === 'CredentialsProviderError') {
      err(`bluegreen ${name}: no AWS credentials: ${e.message} (pass --profile, or run aws configure / aws sso login)`);
      return 2;
    }
    // AWS refused the credentials it was given: the call failed (exit 1).
    const awsHint =
      e instanceof Error &&
      /credential|Could not load|ExpiredToken|UnrecognizedClient|AccessDenied/i.test(`${e.name} ${e.message}`);
    if (awsHint) {
      err(
        `bluegreen ${name}: AWS refused or found no credentials: ${(e as Error).message} (use --profile/--region, or aws configure / aws sso login)`,
      );
      return 1;
    }
    err(`bluegreen ${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return 1;
  }
}

/** Runs the CLI as a process: the bin shim and `node --import tsx bin/bluegreen.ts` both end here. */
export function cli(): void {
  main(process.argv.slice(2), process.env, consoleOut, (l) => console.error(l)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}

if (require.main === module) cli();
