// Runs nginx/switch-pool.sh for a local stack: the one switch script, as the host runs it.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { NGINX_DIR, Pool } from './defaults';

/** What the switch script needs to know about a running local nginx (also what `state.json` holds). */
export interface NginxTarget {
  nginxBin: string;
  /** nginx -p: where logs/, run/ and tmp/ live. */
  prefix: string;
  /** Holds nginx.conf (a link to nginx/nginx.conf) and the rendered upstream.conf. */
  confDir: string;
  /** Renderer inputs other than ACTIVE_POOL: BLUE_UPSTREAM, GREEN_UPSTREAM, MAX_FAILS, ... */
  upstreamEnv: Record<string, string>;
}

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runScript(file: string, args: string[], env: Record<string, string>): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', [file, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export function switchEnv(target: NginxTarget): Record<string, string> {
  return {
    ...target.upstreamEnv,
    BLUEGREEN_CONF_DIR: target.confDir,
    NGINX_BIN: target.nginxBin,
    NGINX_PREFIX: target.prefix,
  };
}

/** Switches the active pool; a pool that is not blue|green is passed through so the script rejects it. */
export function switchPool(target: NginxTarget, pool: Pool | string): Promise<ScriptResult> {
  return runScript(path.join(NGINX_DIR, 'switch-pool.sh'), [pool], switchEnv(target));
}

/** Renders upstream.conf content for a pool (the initial render, before nginx starts). */
export async function renderUpstream(target: NginxTarget, pool: Pool): Promise<string> {
  const result = await runScript(path.join(NGINX_DIR, 'render-upstream.sh'), [], { ...target.upstreamEnv, ACTIVE_POOL: pool });
  if (result.code !== 0) throw new Error(result.stderr.trim());
  return result.stdout;
}
