// The ports: nginx's public entry and each pool's direct port. Fixed on a host (the security groups,
// the Compose set and the host agent use them); local mode's defaults, which env may override.
import { ConfigError } from './config-error';

export const PORTS = { nginx: 8080, blue: 8081, green: 8082 } as const;

/** Local mode's Slack actions server (SLACK_ACTIONS_PORT): loopback only, never on a host. */
export const LOCAL_SLACK_ACTIONS_PORT = 8090;

/** Parses a TCP port (0 means "pick a free one") or throws naming the source. */
export function parsePort(value: string | undefined, source: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${source} must be a port number 0-65535, got "${value}"`);
  }
  return port;
}
