// nginx's configuration for a local stack, in its state dir: the repo's nginx files linked, the
// listen address, the switch dir written through switch-pool.sh, upstream.conf and routes.conf
// rendered by the repo's renderer.
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../core/pools';
import { NGINX_DIR } from './paths';
import { StackState } from './stack-state';
import { renderUpstream, setCanary, switchPool } from './switch';

export interface NginxConfigOptions {
  /** Written to the switch dir; omitted, the switch dir's pool stays (blue when none). */
  activePool?: Pool;
  /** Canary share written (default 0: a canary left by an earlier run is not resumed). */
  canaryPercent?: number;
  /** A proxy-failover.conf other than the repo's (bench reference settings). */
  failoverConf?: string;
  /** Rewrites the rendered routes.conf (bench reference settings the renderer refuses). */
  routesOverride?: (routesConf: string) => string;
}

/** Creates conf/, logs/, run/, tmp/ and switch/ under the state dir and writes what nginx starts with. */
export async function writeNginxConfig(state: StackState, options: NginxConfigOptions): Promise<void> {
  const { confDir, host, ports } = state;
  for (const dir of ['conf', 'logs', 'run', 'tmp', 'switch'])
    mkdirSync(path.join(state.prefix, dir), { recursive: true });
  chmodSync(state.switchDir, 0o755);
  // Links, not copies: local mode runs the very files the host runs.
  const link = (name: string, target: string) => {
    const file = path.join(confDir, name);
    rmSync(file, { force: true });
    symlinkSync(target, file);
  };
  link('nginx.conf', path.join(NGINX_DIR, 'nginx.conf'));
  link('proxy-failover.conf', options.failoverConf ?? path.join(NGINX_DIR, 'proxy-failover.conf'));
  link('canary-buckets.conf', path.join(NGINX_DIR, 'canary-buckets.conf'));
  writeFileSync(path.join(confDir, 'listen.conf'), `# Written by local mode.\nlisten ${host}:${ports.nginx};\n`);

  // Through switch-pool.sh, so local mode writes the switch dir exactly as the host does.
  for (const result of [
    options.activePool ? await switchPool(state, options.activePool) : undefined,
    await setCanary(state, options.canaryPercent ?? 0),
  ]) {
    if (result && result.code !== 0) throw new Error(result.stderr.trim());
  }
  writeFileSync(path.join(confDir, 'upstream.conf'), await renderUpstream(state));
  const routes = await renderUpstream(state, 'routes');
  writeFileSync(path.join(confDir, 'routes.conf'), options.routesOverride ? options.routesOverride(routes) : routes);
}
