// The facts every part of local mode, the CLI, the tests and the benches share: defined once here.
import * as path from 'node:path';

export const POOLS = ['blue', 'green'] as const;
export type Pool = (typeof POOLS)[number];

export const CHAOS_MODES = ['error', 'timeout'] as const;
export type ChaosMode = (typeof CHAOS_MODES)[number];

/** Ports: nginx is the public entry, each pool has a direct port for operators. */
export const DEFAULT_PORTS = { nginx: 8080, blue: 8081, green: 8082 } as const;
export const DEFAULT_ACTIVE_POOL: Pool = 'blue';

export const REPO_ROOT = path.resolve(__dirname, '..');
export const NGINX_DIR = path.join(REPO_ROOT, 'nginx');
export const APP_ENTRY = path.join(REPO_ROOT, 'app', 'server.js');
/** Where `npm start` keeps its rendered config, logs and pid files (gitignored). */
export const LOCAL_STATE_DIR = path.join(REPO_ROOT, '.bluegreen', 'local');

/** A bad value from the user (env, flag, argument): reported as one line, never a stack trace. */
export class ConfigError extends Error {}

export function isPool(value: unknown): value is Pool {
  return value === 'blue' || value === 'green';
}

export function otherPool(pool: Pool): Pool {
  return pool === 'blue' ? 'green' : 'blue';
}

/** Parses a pool name or throws a message naming where the bad value came from. */
export function parsePool(value: string | undefined, source: string): Pool {
  if (isPool(value)) return value;
  throw new ConfigError(`${source} must be one of ${POOLS.join('|')}, got "${value ?? ''}"`);
}

export function parseChaosMode(value: string | undefined, source: string): ChaosMode {
  if (value === 'error' || value === 'timeout') return value;
  throw new ConfigError(`${source} must be one of ${CHAOS_MODES.join('|')}, got "${value ?? ''}"`);
}

/** Parses a TCP port (0 means "pick a free one") or throws naming the source. */
export function parsePort(value: string | undefined, source: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${source} must be a port number 0-65535, got "${value}"`);
  }
  return port;
}
