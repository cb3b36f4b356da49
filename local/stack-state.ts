// The state file of a running local stack (`<stateDir>/state.json`): what another process (the CLI's
// flip/chaos/check, the release backend, bench/) reads to find it.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../core/pools';
import { NginxTarget } from './switch';

export interface StackPorts {
  nginx: number;
  blue: number;
  green: number;
}

/** What another process (the CLI's flip/chaos/check) needs to find a running local stack. */
export interface StackState extends NginxTarget {
  supervisorPid: number;
  host: string;
  ports: StackPorts;
  url: string;
  accessLog: string;
  errorLog: string;
}

export const STATE_FILE = 'state.json';

/** The state of a stack this process supervises, laid out in `stateDir` (an absolute path). */
export function newStackState(
  stateDir: string,
  host: string,
  ports: StackPorts,
  nginxBin: string,
  upstreamEnv: Record<string, string> | undefined,
): StackState {
  return {
    supervisorPid: process.pid,
    host,
    ports,
    url: `http://${host}:${ports.nginx}`,
    nginxBin,
    prefix: stateDir + path.sep,
    confDir: path.join(stateDir, 'conf'),
    switchDir: path.join(stateDir, 'switch'),
    accessLog: path.join(stateDir, 'logs', 'access.log'),
    errorLog: path.join(stateDir, 'logs', 'error.log'),
    upstreamEnv: {
      ...upstreamEnv,
      BLUE_UPSTREAM: `${host}:${ports.blue}`,
      GREEN_UPSTREAM: `${host}:${ports.green}`,
    },
  };
}

export function readStackState(stateDir: string): StackState | undefined {
  const file = path.join(stateDir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as StackState;
}

/** Written once the stack serves: from then on other processes can find it. */
export function writeStackState(state: StackState): void {
  writeFileSync(path.join(state.prefix, STATE_FILE), JSON.stringify(state, null, 2));
}

/** Removed when the stack stops. */
export function removeStackState(state: Pick<StackState, 'prefix'>): void {
  rmSync(path.join(state.prefix, STATE_FILE), { force: true });
}

/** Whether the supervisor (`npm start`) that wrote a state.json still runs (EPERM: it runs as another user). */
export function supervisorRunning(state: Pick<StackState, 'supervisorPid'>): boolean {
  try {
    process.kill(state.supervisorPid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function poolUrl(state: Pick<StackState, 'host' | 'ports'>, pool: Pool): string {
  return `http://${state.host}:${state.ports[pool]}`;
}
