// The host's log rotation run for real in a test: userdata/logrotate.conf with its host paths swapped
// for the test's (never a copy of the file), run by the real logrotate binary.
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { httpRequest } from '../../support/http';

/** The host's log dir, as logrotate.conf, docker-compose.yml and the CloudWatch agent name it. */
export const HOST_LOG_DIR = '/var/log/bluegreen';

/**
 * bootstrap.sh's `install -m 0755 "$home/userdata/X" /usr/local/bin/Y` lines done into `binDir`
 * (the repo's files are not executable): installed path → the copy. The names logrotate.conf calls
 * are then the ones the bootstrap installs, with the content it installs.
 */
export function installCommands(binDir: string): Record<string, string> {
  const bootstrap = readFileSync(path.join(REPO_ROOT, 'userdata', 'bootstrap.sh'), 'utf8');
  const map: Record<string, string> = {};
  mkdirSync(binDir, { recursive: true });
  for (const m of bootstrap.matchAll(/^install -m 0755 "\$home\/(userdata\/[^"]+)" (\/usr\/local\/bin\/(\S+))$/gm)) {
    const copy = path.join(binDir, m[3]);
    copyFileSync(path.join(REPO_ROOT, m[1]), copy);
    chmodSync(copy, 0o755);
    map[m[2]] = copy;
  }
  return map;
}

/**
 * userdata/logrotate.conf for a test: the log dir and each /usr/local/bin command replaced
 * (`commands`: installed path → the test's, e.g. from installCommands). Throws when a host path is
 * left over, so a test can never rotate or run anything of the machine's own.
 */
export function testLogrotateConf(logDir: string, commands: Record<string, string>): string {
  let conf = readFileSync(path.join(REPO_ROOT, 'userdata', 'logrotate.conf'), 'utf8');
  const map: Record<string, string> = { ...commands, [HOST_LOG_DIR]: logDir };
  // Longest first: no path is replaced inside a longer one.
  for (const from of Object.keys(map).sort((a, b) => b.length - a.length)) conf = conf.split(from).join(map[from]);
  const left = conf
    .split('\n')
    .filter((l) => !l.trim().startsWith('#') && /\/usr\/local\/bin\/|\/var\/log\/bluegreen/.test(l));
  if (left.length > 0) throw new Error(`logrotate.conf: host paths with no test replacement: ${left.join(' | ')}`);
  return conf;
}

export interface LogrotateRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The host's global /etc/logrotate.conf: the RHEL/Fedora family's (AL2023's logrotate package ships
 * it; Fedora's text): `weekly`, `rotate 4`, `create`, `dateext`, `include /etc/logrotate.d`. On the
 * host logrotate.service runs this file, never the stanza alone, and its defaults apply to every
 * included stanza that does not override them: a test that ran the stanza alone would miss what
 * `create` and `dateext` do to it.
 */
export const HOST_GLOBAL_CONF = path.join(REPO_ROOT, 'test', 'fixtures', 'al2023-logrotate.conf');

/**
 * `logrotate -f -s <state> <global conf>` as logrotate.service runs it: the stanza (`conf`, from
 * testLogrotateConf) as `<workDir>/logrotate.d/bluegreen`, included by HOST_GLOBAL_CONF with its
 * include line pointed there. Forced: "daily" has not passed. Does not block the event loop.
 */
export function runLogrotate(conf: string, workDir: string, env: Record<string, string> = {}): Promise<LogrotateRun> {
  const bin = ['/usr/sbin/logrotate', '/sbin/logrotate', '/usr/bin/logrotate'].find((p) => existsSync(p));
  if (!bin) throw new Error('logrotate is not installed (apt-get install logrotate / dnf install logrotate)');
  const includeDir = path.join(workDir, 'logrotate.d');
  mkdirSync(includeDir, { recursive: true });
  const global = readFileSync(HOST_GLOBAL_CONF, 'utf8');
  if (!/^include \/etc\/logrotate\.d$/m.test(global))
    throw new Error(`${HOST_GLOBAL_CONF}: no "include /etc/logrotate.d" line to point at the test's stanza`);
  const globalFile = path.join(workDir, 'logrotate.conf');
  // logrotate ignores a configuration writable by others.
  writeFileSync(globalFile, global.replace(/^include \/etc\/logrotate\.d$/m, `include ${includeDir}`), { mode: 0o644 });
  writeFileSync(path.join(includeDir, 'bluegreen'), conf, { mode: 0o644 });
  return new Promise((resolve) => {
    execFile(
      bin,
      ['-f', '-s', path.join(workDir, 'logrotate.state'), globalFile],
      { env: { ...process.env, ...env }, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export interface TaggedTraffic {
  /** Requests answered so far (any status), by tag. */
  readonly answered: Set<string>;
  /** Requests that got no answer (connection errors): each one is a line nginx may not have written. */
  readonly errors: string[];
  /** Resolves once `count` more requests have been answered. */
  after(count: number): Promise<void>;
  /** Stops sending; resolves when every request in flight has its answer. */
  stop(): Promise<void>;
}

/**
 * Keep-alive GETs of `${url}/version?rot=<prefix>-<n>`, `concurrency` at a time, until stop(): each
 * answered request must be one access-log line with its tag, whatever the rotation did meanwhile.
 */
export function startTaggedTraffic(url: string, prefix: string, concurrency = 4): TaggedTraffic {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const answered = new Set<string>();
  const errors: string[] = [];
  const waiters: Array<{ target: number; resolve: () => void }> = [];
  let stopping = false;
  let n = 0;
  const worker = async () => {
    while (!stopping && errors.length < 10) {
      const tag = `${prefix}-${n++}`;
      try {
        await httpRequest(`${url}/version?rot=${tag}`, { agent, timeoutMs: 10_000 });
        answered.add(tag);
      } catch (e) {
        errors.push(`${tag}: ${(e as Error).message}`);
      }
      for (const w of waiters.filter((w) => answered.size >= w.target)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    answered,
    errors,
    after(count) {
      return new Promise((resolve) => waiters.push({ target: answered.size + count, resolve }));
    },
    async stop() {
      stopping = true;
      await Promise.all(workers);
      agent.destroy();
    },
  };
}

/** The tags (from startTaggedTraffic) in the access log and its first rotated file, each line once. */
export function loggedTags(logDir: string, prefix: string): { current: string[]; rotated: string[] } {
  const tags = (file: string) =>
    existsSync(file)
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter((line) => line.includes(`rot=${prefix}-`))
          .map((line) => (JSON.parse(line) as { uri: string }).uri.match(new RegExp(`[?&]rot=(${prefix}-\\d+)`))?.[1])
          .filter((t): t is string => t !== undefined)
      : [];
  return { current: tags(path.join(logDir, 'access.log')), rotated: tags(path.join(logDir, 'access.log.1')) };
}
