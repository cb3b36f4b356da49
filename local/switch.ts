// Runs the nginx/ scripts for a local stack, as the host runs them: switch-pool.sh (flip, canary,
// a pool's next generation: files in the switch dir, no reload) and apply-upstream.sh (real config changes, with a reload).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import * as path from 'node:path';
import { NGINX_DIR } from './paths';
import { Pool } from '../core/pools';

/** What the scripts need to know about a running local nginx (also what `state.json` holds). */
export interface NginxTarget {
  nginxBin: string;
  /** nginx -p: where logs/, run/ and tmp/ live. */
  prefix: string;
  /** Holds nginx.conf (a link to nginx/nginx.conf) and the rendered upstream.conf and routes.conf. */
  confDir: string;
  /** green-active and canary: what nginx checks per request (local mode: `<stateDir>/switch`). */
  switchDir: string;
  /** Renderer inputs other than SWITCH_DIR: BLUE_UPSTREAM, GREEN_UPSTREAM, MAX_FAILS, PROXY_*_TIMEOUT, SLOW_PATHS, ... */
  upstreamEnv: Record<string, string>;
}

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a script; `input`, when given, is its stdin (a secret: never an argument, which `ps` shows). */
export function runScript(
  file: string,
  args: string[],
  env: Record<string, string>,
  input?: string,
): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', [file, ...args], {
      env: { ...process.env, ...env },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (input !== undefined) child.stdin?.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Everything switch-pool.sh, apply-upstream.sh and render-upstream.sh read, for this target. */
export function switchEnv(target: NginxTarget): Record<string, string> {
  return {
    ...target.upstreamEnv,
    // Local nginx and the scripts see the switch dir at the same path (on the host they differ).
    SWITCH_DIR: target.switchDir,
    BLUEGREEN_CONF_DIR: target.confDir,
    NGINX_BIN: target.nginxBin,
    NGINX_PREFIX: target.prefix,
  };
}

/** Flips the active pool; a pool that is not blue|green is passed through so the script rejects it. */
export function switchPool(target: NginxTarget, pool: Pool | string): Promise<ScriptResult> {
  return runScript(path.join(NGINX_DIR, 'switch-pool.sh'), [pool], switchEnv(target));
}

/**
 * Sets the share (0-99) of requests that try the idle pool first, sticky on `sticky` (`cookie:NAME`
 * or `header:NAME`) when given; bad values reach the script's check (which also refuses a key the
 * stack's STICKY_KEYS did not declare).
 */
export function setCanary(target: NginxTarget, percent: number | string, sticky?: string): Promise<ScriptResult> {
  const args = ['--canary', String(percent), ...(sticky === undefined ? [] : ['--sticky', sticky])];
  return runScript(path.join(NGINX_DIR, 'switch-pool.sh'), args, switchEnv(target));
}

/**
 * Moves a pool to its next generation of upstream blocks (switch-pool.sh --fresh): a flag file, no
 * reload. Called once a new process serves the pool, so nginx stops applying what it marked failed
 * on the old one.
 */
export function freshPool(target: NginxTarget, pool: Pool | string): Promise<ScriptResult> {
  return runScript(path.join(NGINX_DIR, 'switch-pool.sh'), ['--fresh', pool], switchEnv(target));
}

/**
 * Opens the preview of `pool` (switch-pool.sh --preview, the token on stdin): a request carrying
 * `token` goes to that pool alone, no fallback. `undefined` ends the preview (of `onlyOf` when given).
 */
export function setPreview(
  target: NginxTarget,
  preview: { pool: Pool | string; token: string } | undefined,
  onlyOf?: Pool,
): Promise<ScriptResult> {
  const script = path.join(NGINX_DIR, 'switch-pool.sh');
  if (!preview) return runScript(script, ['--preview', 'off', ...(onlyOf ? [onlyOf] : [])], switchEnv(target));
  return runScript(script, ['--preview', preview.pool], switchEnv(target), `${preview.token}\n`);
}

/** The pool the switch dir's preview file names (preview.<pool>.<token>), undefined when none. */
export function readPreviewPool(target: Pick<NginxTarget, 'switchDir'>): Pool | undefined {
  let names: string[];
  try {
    names = readdirSync(target.switchDir);
  } catch {
    return undefined;
  }
  const file = names.find((n) => /^preview\.(blue|green)\./.test(n));
  return file ? (file.split('.')[1] as Pool) : undefined;
}

/** Re-renders upstream.conf and routes.conf and reloads nginx only if one changed (pool addresses, settings). */
export function applyUpstream(target: NginxTarget, extraEnv: Record<string, string> = {}): Promise<ScriptResult> {
  return runScript(path.join(NGINX_DIR, 'apply-upstream.sh'), [], { ...switchEnv(target), ...extraEnv });
}

/** The active pool as nginx sees it on the next request: the flag file, nothing else. */
export function readActivePool(target: Pick<NginxTarget, 'switchDir'>): Pool {
  return existsSync(path.join(target.switchDir, 'green-active')) ? 'green' : 'blue';
}

/** The canary share the switch dir holds (0 when there is none). */
export function readCanaryPercent(target: Pick<NginxTarget, 'switchDir'>): number {
  let link: string;
  try {
    link = readlinkSync(path.join(target.switchDir, 'canary'));
  } catch {
    return 0;
  }
  const match = CANARY_LINK.exec(link);
  return match ? Number(match[1]) : 0;
}

/** What canary points at: `.canary-<share>`, or `.canary-<share>.<kind>.<name>` for a sticky canary. */
const CANARY_LINK = /^\.canary-(\d{1,2})(?:\.(cookie|header)\.([A-Za-z0-9_-]+))?$/;

/** The key the switch dir's canary sticks on (`cookie:NAME` / `header:name`), undefined when none. */
export function readCanarySticky(target: Pick<NginxTarget, 'switchDir'>): string | undefined {
  let link: string;
  try {
    link = readlinkSync(path.join(target.switchDir, 'canary'));
  } catch {
    return undefined;
  }
  const match = CANARY_LINK.exec(link);
  return match?.[2] ? `${match[2]}:${match[3]}` : undefined;
}

/** The files render-upstream.sh renders: upstream.conf (pools) and routes.conf (locations and timeouts). */
export type RenderedFile = 'upstream' | 'routes';

/** Renders upstream.conf or routes.conf content (the initial render, before nginx starts). */
export async function renderUpstream(target: NginxTarget, file: RenderedFile = 'upstream'): Promise<string> {
  const result = await runScript(path.join(NGINX_DIR, 'render-upstream.sh'), [file], switchEnv(target));
  if (result.code !== 0) throw new Error(result.stderr.trim());
  return result.stdout;
}
