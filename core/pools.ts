// The two pools, which one is the other, and the chaos modes a pool app can be put in.
import { ConfigError } from './config-error';

export const POOLS = ['blue', 'green'] as const;
export type Pool = (typeof POOLS)[number];

export const CHAOS_MODES = ['error', 'timeout'] as const;
export type ChaosMode = (typeof CHAOS_MODES)[number];

export const DEFAULT_ACTIVE_POOL: Pool = 'blue';

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
