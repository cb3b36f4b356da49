// Finding the nginx binary, with the install hint when it is missing.
import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';

export const NGINX_INSTALL_HINT =
  'install it with `sudo apt-get install nginx` (Debian/Ubuntu) or `brew install nginx` (macOS), or set NGINX_BIN to its path';

export class NginxMissingError extends Error {}

// Debian installs nginx in /usr/sbin, often missing from a normal user's PATH.
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/opt/homebrew/bin', '/usr/local/bin'];

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findNginx(env: NodeJS.ProcessEnv = process.env, extraDirs: readonly string[] = EXTRA_DIRS): string {
  if (env.NGINX_BIN) {
    if (executable(env.NGINX_BIN)) return env.NGINX_BIN;
    throw new NginxMissingError(`nginx not found at NGINX_BIN=${env.NGINX_BIN}: ${NGINX_INSTALL_HINT}`);
  }
  const dirs = [...(env.PATH ?? '').split(path.delimiter).filter(Boolean), ...extraDirs];
  for (const dir of dirs) {
    const candidate = path.join(dir, 'nginx');
    if (executable(candidate)) return candidate;
  }
  throw new NginxMissingError(`nginx not found: ${NGINX_INSTALL_HINT}`);
}
