// The host's Compose set on the local Docker Engine (prepared by test/docker/harness.sh): the real
// userdata/docker-compose.yml and bluegreen-apply, from a temporary BLUEGREEN_HOME, on its own
// project name, subnet and loopback ports, with the pool state in moto_server.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { logGroupNames, parameterNames } from '../../core/names';
import { REPO_ROOT } from '../../local/paths';
import { freePort } from '../../local/ports';
import { runScript, ScriptResult } from '../../local/switch';
import { baseImages, withoutDigest } from '../helpers/base-images';
import { createLogGroup, Moto, putParameters, startMoto } from '../helpers/moto';

const run = promisify(execFile);
export type Pool = 'blue' | 'green';

export const HARNESS = path.join(REPO_ROOT, 'test', 'docker', 'harness.sh');
const STATUS_FILE = path.join(process.env.BLUEGREEN_HARNESS_CACHE ?? '/var/cache/bluegreen-harness', 'status');

export type EngineStatus = { ready: true; line: string } | { ready: false; reason: string; mustRun: boolean };

/**
 * Whether the docker tests can run here. They skip only where the harness found that no engine can
 * start (its status file says why); anything else (harness not run, engine gone) is a failure in
 * CI (BLUEGREEN_DOCKER_TESTS=required, set by .ci/run) and a one-line skip elsewhere.
 */
/**
 * A test file's `describe` for what needs the Docker Engine: skipped with one line on stderr where
 * no engine can run, and a failure instead where the run requires one (CI: see dockerEngine).
 */
export function describeWithDocker(testFile: string): jest.Describe {
  const engine = dockerEngine();
  if (!engine.ready) {
    if (engine.mustRun) throw new Error(`test/docker: ${engine.reason}`);
    process.stderr.write(`${path.relative(REPO_ROOT, testFile)}: skipped: ${engine.reason}\n`);
  }
  return engine.ready ? describe : describe.skip;
}

export function dockerEngine(): EngineStatus {
  const required = process.env.BLUEGREEN_DOCKER_TESTS === 'required';
  const status = existsSync(STATUS_FILE) ? readFileSync(STATUS_FILE, 'utf8').trim() : '';
  if (status.startsWith('unavailable:'))
    return { ready: false, reason: `no Docker Engine here (${status.slice(13)})`, mustRun: false };
  if (!status.startsWith('ready')) {
    return {
      ready: false,
      reason: `the Docker Engine harness has not run: sudo bash test/docker/harness.sh (${STATUS_FILE} missing)`,
      mustRun: required,
    };
  }
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8' });
  const compose = spawnSync('docker', ['compose', 'version', '--short'], { encoding: 'utf8' });
  if (info.status !== 0 || compose.status !== 0) {
    const why =
      (info.status !== 0 ? info.stderr || info.error?.message : compose.stderr || compose.error?.message) ?? 'unknown';
    return {
      ready: false,
      reason: `the harness prepared an engine, but it does not answer now (${why.trim().split('\n')[0]}): run test/docker/harness.sh again`,
      mustRun: required,
    };
  }
  return { ready: true, line: status };
}

export interface ComposeSet {
  project: string;
  home: string;
  stateDir: string;
  logDir: string;
  moto: Moto;
  stage: string;
  /** http://127.0.0.1:<published nginx port> */
  url: string;
  poolUrl(pool: Pool): string;
  addresses: Record<Pool, string>;
  subnet: string;
  /** The environment bluegreen-apply and Compose run with (what /etc/bluegreen/env gives the host). */
  env: Record<string, string>;
  put(values: Record<string, string>): Promise<void>;
  setPool(pool: Pool, state: { image?: string; release?: string; env?: Record<string, string> }): Promise<void>;
  apply(...args: string[]): Promise<ScriptResult>;
  /** bluegreen-apply with extra environment on top of the host's (e.g. a parameter name override). */
  applyWith(extraEnv: Record<string, string>, ...args: string[]): Promise<ScriptResult>;
  compose(...args: string[]): Promise<string>;
  containerId(pool: Pool | 'nginx'): string;
  containerAddress(pool: Pool): string;
  upstreamConf(): string;
  down(): Promise<void>;
}

/** bluegreen-apply inside BLUEGREEN_HOME (bootstrap.sh installs it from there as /usr/local/bin/bluegreen-apply). */
export const APPLY = 'userdata/bluegreen-apply.sh';

/**
 * A base image pinned by digest cannot be the harness's offline image (it is tagged name:tag, and no
 * local image has the registry's digest): the set then runs with the tag, through the host's own
 * overrides (NGINX_IMAGE for Compose, BASE_IMAGE for bluegreen-apply's build of app/).
 */
function offlineImageOverrides(): Record<string, string> {
  const { nginx, node } = baseImages();
  return {
    ...(nginx !== withoutDigest(nginx) ? { NGINX_IMAGE: withoutDigest(nginx) } : {}),
    ...(node !== withoutDigest(node) ? { BASE_IMAGE: withoutDigest(node) } : {}),
  };
}

export interface ComposeSetOptions {
  active?: Pool;
  releases?: Record<Pool, string>;
  /** What the stack's user data adds to /etc/bluegreen/env (timeouts, SLOW_PATHS). */
  hostEnv?: Record<string, string>;
  /**
   * One host of a fleet (test/docker/fleet.ts): its number in the fleet gives it a project name
   * (`bgtest<pid>h<i>`) and a subnet of its own, next to the other hosts of the same test.
   */
  fleetIndex?: number;
  /** A moto_server shared by the fleet's hosts (one stage, one SSM); the set then never stops it. */
  moto?: Moto;
  /**
   * A host launched into a running stage (fleet.ts launchHost): the pool state is already in SSM,
   * written by the stage (maybe by a release in progress); the set reads it and never writes it.
   */
  joinStage?: boolean;
  /** The published nginx port, when it must be known before the set exists (a balancer target reserved for it). */
  httpPort?: number;
}

/** The Compose project name of a fleet's host: the stale-set cleanup finds a killed run's by it. */
export const FLEET_PROJECT = /^bgtest(\d+)h\d+$/;

/** Boots the set the way the host does: `bluegreen-apply --no-reload`, then `docker compose up --wait`. */
export async function startComposeSet(options: ComposeSetOptions = {}): Promise<ComposeSet> {
  const base = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-docker-'));
  const home = path.join(base, 'home');
  // The asset layout of /opt/bluegreen: copies, since nginx sees BLUEGREEN_HOME through a bind
  // mount (a link out of it would not resolve in the container).
  for (const sub of ['nginx', 'app', 'userdata'])
    cpSync(path.join(REPO_ROOT, sub), path.join(home, sub), { recursive: true });
  const stateDir = path.join(base, 'state');
  const logDir = path.join(base, 'logs');
  mkdirSync(logDir, { recursive: true });
  const fleet = options.fleetIndex;
  const project = fleet === undefined ? `bgtest${process.pid}` : `bgtest${process.pid}h${fleet}`;
  // A subnet of its own (a test set next to a real one, or a leftover, never collides on addresses);
  // a fleet's hosts take theirs from another range (100-189), one each.
  const octet = fleet === undefined ? 200 + (process.pid % 50) : 100 + ((process.pid + fleet) % 90);
  const subnet = `192.168.${octet}.0/24`;
  const addresses = { blue: `192.168.${octet}.11`, green: `192.168.${octet}.12` };
  const [httpPort, bluePort, greenPort] = [options.httpPort ?? (await freePort()), await freePort(), await freePort()];
  const ownMoto = options.moto === undefined;
  const moto = options.moto ?? (await startMoto());
  const stage = 'dock';
  const env: Record<string, string> = {
    ...moto.env,
    STAGE: stage,
    BLUEGREEN_ENV_FILE: '/nonexistent/env',
    BLUEGREEN_HOME: home,
    BLUEGREEN_STATE_DIR: stateDir,
    BLUEGREEN_LOG_DIR: logDir,
    BLUEGREEN_PROJECT: project,
    BLUEGREEN_SUBNET: subnet,
    BLUEGREEN_PUBLISH_ADDR: '127.0.0.1',
    BLUEGREEN_HTTP_PORT: String(httpPort),
    BLUE_PORT: String(bluePort),
    GREEN_PORT: String(greenPort),
    // The pools' secrets: a tmpfs, as /run is on a host (bluegreen-apply refuses any other).
    BLUEGREEN_SECRETS_DIR: path.join('/dev/shm', `bluegreen-secrets-${project}`),
    // The pools' app log: the awslogs driver of the harness's dockerd ships it to this set's
    // moto_server (harness.sh gives the engine credentials), a stream per pool, release and host.
    APP_LOG_GROUP: logGroupNames(stage).app,
    APP_LOG_ENDPOINT: moto.endpoint,
    BLUEGREEN_HOST_ID: project,
    ...offlineImageOverrides(),
    // What the stack's user data adds to /etc/bluegreen/env (e.g. the timeouts, SLOW_PATHS).
    ...options.hostEnv,
  };
  const names = parameterNames(stage);
  const releases = options.releases ?? { blue: 'blue-1', green: 'green-1' };
  const put = (values: Record<string, string>) => putParameters(moto, values);
  // The stack creates the group (the awslogs driver never does: awslogs-create-group stays false).
  await createLogGroup(moto, logGroupNames(stage).app);
  if (!options.joinStage)
    await put({
      [names.activePool]: options.active ?? 'blue',
      [names.canaryPercent]: '0',
      ...Object.fromEntries(
        (['blue', 'green'] as const).flatMap((p) => [
          [names.pools[p].image, 'bluegreen-app:local'],
          [names.pools[p].release, releases[p]],
          [names.pools[p].env, '{}'],
        ]),
      ),
    });

  const composeEnv = { ...process.env, ...env };
  const compose = async (...args: string[]) =>
    (
      await run('docker', ['compose', ...args], {
        cwd: path.join(home, 'userdata'),
        env: composeEnv,
        maxBuffer: 16 << 20,
      })
    ).stdout;
  const set: ComposeSet = {
    project,
    home,
    stateDir,
    logDir,
    moto,
    stage,
    url: `http://127.0.0.1:${httpPort}`,
    poolUrl: (pool) => `http://127.0.0.1:${pool === 'blue' ? bluePort : greenPort}`,
    addresses,
    subnet,
    env,
    put,
    async setPool(pool, state) {
      const n = names.pools[pool];
      await put({
        ...(state.image ? { [n.image]: state.image } : {}),
        ...(state.release ? { [n.release]: state.release } : {}),
        ...(state.env ? { [n.env]: JSON.stringify(state.env) } : {}),
      });
    },
    apply: (...args) => runScript(path.join(home, APPLY), args, env),
    applyWith: (extraEnv, ...args) => runScript(path.join(home, APPLY), args, { ...env, ...extraEnv }),
    compose,
    containerId(pool) {
      const service = pool === 'nginx' ? 'nginx' : `app_${pool}`;
      return execFileSync(
        'docker',
        [
          'ps',
          '-q',
          '--no-trunc',
          '--filter',
          `label=com.docker.compose.project=${project}`,
          '--filter',
          `label=com.docker.compose.service=${service}`,
        ],
        { encoding: 'utf8' },
      ).trim();
    },
    containerAddress(pool) {
      return execFileSync(
        'docker',
        ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', set.containerId(pool)],
        { encoding: 'utf8' },
      ).trim();
    },
    upstreamConf: () => readFileSync(path.join(home, 'conf', 'upstream.conf'), 'utf8'),
    async down() {
      try {
        if (existsSync(path.join(home, 'userdata', '.env')))
          await compose('down', '--remove-orphans', '--timeout', '5');
      } finally {
        if (ownMoto) await moto.stop();
        rmSync(base, { recursive: true, force: true });
        rmSync(env.BLUEGREEN_SECRETS_DIR, { recursive: true, force: true });
      }
    },
  };

  try {
    const boot = await set.apply('--no-reload');
    if (boot.code !== 0)
      throw new Error(`bluegreen-apply --no-reload exited ${boot.code}: ${boot.stdout}${boot.stderr}`);
    await compose('up', '-d', '--wait', '--wait-timeout', '120');
  } catch (err) {
    const logs = await compose('logs', '--no-color', '--tail', '30').catch(() => '');
    await set.down().catch(() => undefined);
    throw new Error(`the Compose set did not come up: ${(err as Error).message}\n${logs}`, { cause: err });
  }
  return set;
}

/** The `step=... pool=... ok=...` lines bluegreen-apply printed (the contract the release CLI parses). */
export function stepLines(stdout: string): Array<{ step: string; pool: string; ok: boolean; detail: string }> {
  return stdout
    .split('\n')
    .map((l) => l.match(/^step=(\S+) pool=(\S+) ok=(true|false) detail=(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => ({ step: m[1], pool: m[2], ok: m[3] === 'true', detail: m[4] }));
}
