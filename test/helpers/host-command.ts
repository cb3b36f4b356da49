// Run Command's real command (core/host-command.ts) on a stand-in host: every path it reads moved
// under `root`, so a test (or the Docker harness) runs the very string the hosts get.
import * as path from 'node:path';
import { HOST_PATHS, hostApplyCommand } from '../../core/host-command';

/** hostApplyCommand(args) with each of its HOST_PATHS under `root` (<root>/var/lib/bluegreen/bootstrapping, ...). */
export function hostCommandUnder(root: string, args: readonly string[] = []): string {
  return HOST_PATHS.reduce((command, p) => command.split(p).join(path.join(root, p)), hostApplyCommand(args));
}
