// The operator CLI: `npx bluegreen <command>` (also `npm start` = `bluegreen start`).
import { chaosCommand, checkCommand, flipCommand, maintenanceCommand } from '../local/commands';
import { ConfigError } from '../local/defaults';
import { NginxMissingError } from '../local/nginx-binary';
import { PortInUseError } from '../local/ports';
import { startCommand } from '../local/start';

type Out = (line: string) => void;
type Command = { summary: string; run: (args: string[], env: NodeJS.ProcessEnv, out: Out) => Promise<number> };

const COMMANDS: Record<string, Command> = {
  start: {
    summary: 'run the local stack (nginx :8080, blue :8081, green :8082) in the foreground',
    run: (_args, env, out) => startCommand(env, out),
  },
  flip: { summary: 'flip <blue|green>: switch the local stack\'s active pool (render, nginx -t, reload)', run: flipCommand },
  chaos: { summary: 'chaos <blue|green> <error|timeout|stop>: break or heal a pool', run: chaosCommand },
  check: { summary: 'check [--url URL]: the failover check against local mode or a deployed host', run: checkCommand },
  maintenance: { summary: 'maintenance <on|off>: alerts are evaluated and logged but not posted while on', run: maintenanceCommand },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(7)} ${c.summary}`);
  return ['usage: bluegreen <command> [args]', '', 'commands:', ...lines, '', 'bluegreen <command> --help for details'].join('\n');
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
  if (name !== 'check' && (args.includes('--help') || args.includes('-h'))) {
    out(`bluegreen ${name}: ${command.summary}`);
    return 0;
  }
  try {
    return await command.run(args, env, out);
  } catch (e) {
    // Expected problems get one clear line; anything else keeps its stack for a bug report.
    if (e instanceof ConfigError || e instanceof NginxMissingError || e instanceof PortInUseError) {
      err(`bluegreen ${name}: ${e.message}`);
      return 2;
    }
    err(`bluegreen ${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return 1;
  }
}

/** Runs the CLI as a process: the bin shim and `tsx bin/bluegreen.ts` both end here. */
export function cli(): void {
  main(process.argv.slice(2), process.env, (l) => console.log(l), (l) => console.error(l)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}

if (require.main === module) cli();
