// A fleet on the local Docker Engine (prepared by test/docker/harness.sh): N hosts, each the host's
// real Compose set (compose-set.ts: userdata/docker-compose.yml and bluegreen-apply from a temporary
// BLUEGREEN_HOME, its own project, subnet and ports), one stage in one moto_server, behind an nginx
// container playing the Application Load Balancer. Two pieces of AWS plumbing are stood in for,
// with the hosts' own agent doing the work in both:
//   - Run Command (the release CLI's deploy and canary share): runs the real bluegreen-apply on every
//     host, in rounds of MaxConcurrency, stops starting hosts once more than MaxErrors failed, and
//     reports per-host invocations the way ops/release/run-command.ts reads them;
//   - the pool-switch rule (EventBridge "Parameter Store Change" → Run Command): a loop runs the
//     fleet rule's command on every host when the active pool or the canary share changes.
// Both run on each host what Run Command runs there: the real hostApplyCommand string
// (core/host-command.ts) through `sh -c`, its two paths moved under the host's own root
// directory (its bootstrapping marker, and a launcher for its bluegreen-apply). So a host still
// bootstrapping answers `step=join` exactly as on AWS.
// And the host's own systemd timer: every host in service runs the command of
// userdata/bluegreen-apply.service (ExecStart, read from the unit) on the schedule of
// userdata/bluegreen-apply.timer (a fixed offset per host within its randomized delay, as
// FixedRandomDelay gives), a run skipped while the previous one is still going; a test may speed
// the schedule up (the same shape, shorter), since a release on this machine lasts about a minute.
// A host launched into the running fleet (launchHost: the Auto Scaling group's scale-out or
// replacement) carries the stage tag from its launch (both stand-ins reach it), boots its Compose
// set from the stage's state with its marker set, removes the marker, runs the real
// fleet/bluegreen-join.sh against moto (it reads the release record, the head of the stage's ledger
// table, as the release CLI leaves it; an `aws` shim records its lifecycle heartbeats: moto has
// no lifecycle actions), then bluegreen-apply, and only then is registered with the balancer (the
// user data's complete-lifecycle-action → InService → registered).
//
// What the balancer stands for, and what it does not (DECISIONS.md "Fleet: the harness's load
// balancer"): an upstream of the hosts' published nginx ports, round robin, keep-alive to the
// targets, and proxy_next_upstream error timeout: a request whose target refuses, resets or times
// out is sent to the next target inside the same client request, and that target is left alone for
// fail_timeout (passive health, like an ALB routing around a target it cannot connect to). Unlike an
// ALB: no active health check (open-source nginx has none: a target is only found dead by a request
// that fails on it, and tried again by one every fail_timeout), no registration / deregistration
// delay (connection draining), no zones, HTTP only. Registering a launched host changes no
// connection: its target port is reserved when the fleet starts (a spare slot), and the balancer
// picks, per request, the upstream that includes it once a flag file says it is registered (a
// reload would reset idle keep-alive client connections, which an ALB's registration does not).
import { GetParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parameterNames } from '../../core/names';
import { BOOTSTRAP_HOOK_NAME, FLEET_HEALTH_CHECK_PATH, fleetGroupName } from '../../lib/fleet-hosts';
import { APPLY_PATH, BOOT_FINISHED, BOOTSTRAPPING_MARKER, NO_DEPLOY } from '../../core/host-command';
import { hostCommandUnder } from '../helpers/host-command';
import { REPO_ROOT } from '../../local/paths';
import { freePort } from '../../local/ports';
import { runScript, ScriptResult } from '../../local/switch';
import { NOT_RUN } from '../../ops/stage-hosts';
import { HostResult, hostResult, RunOnHostsResult } from '../../ops/release/run-command';
import { RunRate } from '../../core/run-rate';
import { baseImages, withoutDigest } from '../helpers/base-images';
import { createLedgerTable, Moto, motoClientConfig, startMoto } from '../helpers/moto';
import { ledgerHostEnv } from '../helpers/ledger';
import { waitFor } from '../helpers/stack';
import { APPLY, ComposeSet, FLEET_PROJECT, Pool, startComposeSet } from './compose-set';

const run = promisify(execFile);

/** The balancer container's name; the stale cleanup finds a killed run's by it. */
const LB_NAME = /^bgfleet(\d+)-lb$/;

/**
 * How long the balancer leaves a target alone after a failed attempt on it (then one request tries
 * it again). An ALB's health check would take it out after its unhealthy threshold instead.
 */
export const LB_FAIL_TIMEOUT_S = 2;

/** A host as Run Command finds it: by the stage tag, from its launch on (bootstrapped or not). */
export interface TaggedHost {
  /** An instance id, as Run Command and the release record name hosts. */
  id: string;
  /**
   * The host's own root: hostApplyCommand's marker and bluegreen-apply live under it at their
   * paths on a real host (<root>/var/lib/bluegreen/bootstrapping, <root>/usr/local/bin/bluegreen-apply).
   */
  root: string;
}

export interface FleetHost extends TaggedHost {
  set: ComposeSet;
  /** The published nginx port: the balancer's target. */
  port: number;
}

/** When each phase of a launched host's way in happened (ms since the epoch). */
export interface LaunchPhases {
  /** Launched: tagged (Run Command reaches it), its bootstrapping marker set. */
  launched: number;
  /** Its Compose set is up from the stage's state and bluegreen-apply is installed (bootstrap.sh's work). */
  bootstrapped?: number;
  /** bootstrap.sh's last act: from here Run Command's command runs bluegreen-apply on it. */
  markerRemoved?: number;
  joinStarted?: number;
  /** bluegreen-join said a release is in progress and that it waits for it (not set if none was). */
  joinWaiting?: number;
  joinExited?: number;
  /** The user data's bluegreen-apply after the join (the stage's state as it is then). */
  applied?: number;
  /** InService: the balancer sends it requests from here on. */
  registered?: number;
}

export interface LaunchedHost {
  id: string;
  /** Its target port, reserved when the fleet started (a spare slot of the balancer). */
  port: number;
  phases: LaunchPhases;
  /** bluegreen-join's output so far (and its exit code once it exited). */
  join: { stdout: string; stderr: string; code?: number };
  /** The user data's bluegreen-apply after the join, once it ran. */
  apply?: ScriptResult;
  /** The lifecycle calls bluegreen-join made (the shim's record): when, and the arguments. */
  heartbeats(): Array<{ at: number; call: string }>;
  /** Resolves once the host is registered with the balancer; rejects if its launch failed. */
  ready: Promise<FleetHost>;
}

/**
 * A host-specific fault: while the desired release of a pool is `release`, this host runs that pool
 * with `env` added to the release's own env (e.g. FAIL_HEALTHZ=1): one host failing its gate where
 * the others pass, as a host with a bad disk, a missing secret or a different kernel would. The
 * stand-in points that host's bluegreen-apply at a parameter of its own for the pool's env
 * (<POOL>_ENV_PARAM, the agent's own override); every other input is the stage's.
 */
export interface HostFault {
  host: string;
  release: string;
  env: Record<string, string>;
}

export interface Fleet {
  stage: string;
  moto: Moto;
  ssm: SSMClient;
  /** The stage's release ledger (the release record) is read and written with it (AwsBackendOptions.ddb). */
  ddb: DynamoDBClient;
  names: ReturnType<typeof parameterNames>;
  hosts: FleetHost[];
  /** The balancer: http://127.0.0.1:<port> (also the stage's public-url parameter). */
  url: string;
  /** Set to make one host fail a given release (undefined: no fault). */
  fault: HostFault | undefined;
  /** The stand-in for Run Command (AwsBackendOptions.runApply): its command on every tagged host, with rate control. */
  runApply(args: string[], timeoutMs: number, rate: RunRate): Promise<RunOnHostsResult>;
  /** Run Command's command on one host (serialized per host, like bluegreen-apply's own lock). */
  applyOn(host: TaggedHost, args?: string[]): Promise<ScriptResult>;
  /** Every host carrying the stage tag: those in `hosts` and those launched and still on their way in. */
  tagged(): TaggedHost[];
  /**
   * Launches a host into the running fleet, as the Auto Scaling group does (a spare slot of the
   * balancer: startFleet's `spares`): see the header comment. Returns at once; `ready` follows it in.
   */
  launchHost(): LaunchedHost;
  /**
   * The hosts' timers (see the header): every run so far, and the schedule they follow (the unit's;
   * `speedUp` for a test: the same shape, shorter; `reset` back to the unit's).
   */
  timer: { runs(): TimerRun[]; speedUp(schedule: TimerSchedule): void; reset(): void };
  /** Scale-in of a launched host: deregistered from the balancer, untagged, its Compose set removed. */
  terminate(host: LaunchedHost): Promise<void>;
  /** The balancer's access log from a byte offset: which target answered each request. */
  lbLog(from?: number): { end: number; entries: LbEntry[] };
  /** Requests per host (by the target that answered) and how many were retried on another target. */
  servedBy(entries: readonly LbEntry[]): { byHost: Record<string, number>; retriedOnAnother: number; lbFailed: number };
  /** The instance id of a target (127.0.0.1:port) of the balancer, launched hosts included. */
  hostOf(target: string): string | undefined;
  down(): Promise<void>;
}

export interface LbEntry {
  /** When the balancer finished the request (ms since the epoch, ms resolution). */
  msec: number;
  /** When it started: msec less nginx's $request_time (ms resolution both). */
  startMsec: number;
  status: number;
  /** One target per attempt, in order ("127.0.0.1:P1, 127.0.0.1:P2": the first failed). */
  targets: string[];
  upstreamStatus: string;
  /** X-App-Pool and X-Release-Id of the target's answer ('' when none). */
  pool: string;
  release: string;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Removes what a killed earlier run left (its hosts' containers and networks, its balancer): only
 * fleet names whose test process is gone, never a set another test (or the lead's CI) is running.
 */
export function cleanStaleFleets(): string[] {
  const removed: string[] = [];
  const ps = spawnSync(
    'docker',
    ['ps', '-a', '--format', '{{.ID}} {{.Names}} {{.Label "com.docker.compose.project"}}'],
    { encoding: 'utf8' },
  );
  if (ps.status !== 0) return removed;
  const staleProjects = new Set<string>();
  for (const line of ps.stdout.trim().split('\n').filter(Boolean)) {
    const [id, name, project = ''] = line.split(' ');
    const pid = Number(FLEET_PROJECT.exec(project)?.[1] ?? LB_NAME.exec(name)?.[1] ?? NaN);
    if (!Number.isFinite(pid) || alive(pid)) continue;
    spawnSync('docker', ['rm', '-f', id], { stdio: 'ignore' });
    removed.push(name);
    if (project) staleProjects.add(project);
  }
  for (const project of staleProjects) spawnSync('docker', ['network', 'rm', `${project}_pools`], { stdio: 'ignore' });
  return removed;
}

/** Inside the balancer's container: its prefix (lbDir mounted), and the registration flags under it. */
const LB_PREFIX = '/lb';
const LB_REGISTERED = `${LB_PREFIX}/registered`;

/**
 * The balancer's nginx.conf: the hosts' published ports as one upstream (see the header comment).
 * `spares`: target ports reserved for hosts launched later; upstream fleet_<k> is the hosts plus the
 * first k spares, chosen per request once <LB_REGISTERED>/<k> exists (hosts are launched in order).
 */
export function lbConfig(listenPort: number, targets: readonly number[], spares: readonly number[] = []): string {
  const server = (p: number) => `        server 127.0.0.1:${p} max_fails=1 fail_timeout=${LB_FAIL_TIMEOUT_S}s;`;
  const upstream = (name: string, ports: readonly number[]) =>
    `    upstream ${name} {\n${ports.map(server).join('\n')}\n        keepalive 32;\n    }`;
  const upstreams = [
    upstream('fleet', targets),
    ...spares.map((_, k) => upstream(`fleet_${k + 1}`, [...targets, ...spares.slice(0, k + 1)])),
  ];
  return `# The harness's load balancer (test/docker/fleet.ts): what an ALB does for the fleet, as far as
# open-source nginx can (no active health checks, no deregistration delay).
worker_processes 1;
pid run/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    log_format lb '$msec $status "$upstream_addr" "$upstream_status" $request_time "$upstream_http_x_app_pool" "$upstream_http_x_release_id"';
    access_log logs/access.log lb;
    keepalive_timeout 60s;
    keepalive_requests 100000;
${upstreams.join('\n')}
    server {
        listen 127.0.0.1:${listenPort};
        # The registered targets, per request: a launched host is registered by a flag file, with
        # no reload (a reload closes idle keep-alive client connections; an ALB's registration does not).
        set $lb_targets fleet;
${spares.map((_, k) => `        if (-f ${LB_REGISTERED}/${k + 1}) { set $lb_targets fleet_${k + 1}; }`).join('\n')}
        location / {
            proxy_pass http://$lb_targets;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            # A target that refuses, resets or does not answer: the next one, inside the request.
            # Not on 5xx: each host's nginx already retries its own pools; an ALB does not retry either.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries ${targets.length + spares.length};
            proxy_next_upstream_timeout 10s;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
        }
    }
}
`;
}

/** How many hosts one Run Command round reaches: a count, or a percentage of the hosts (at least one). */
export function concurrency(rate: RunRate, hosts: number): number {
  const pct = /^(\d+)%$/.exec(rate.maxConcurrency);
  return Math.max(1, Math.min(hosts, pct ? Math.floor((Number(pct[1]) * hosts) / 100) : Number(rate.maxConcurrency)));
}

/** How many failed hosts Run Command tolerates before it starts no more (it stops past this). */
export function errorBudget(rate: RunRate, hosts: number): number {
  const pct = /^(\d+)%$/.exec(rate.maxErrors);
  return pct ? Math.floor((Number(pct[1]) * hosts) / 100) : Number(rate.maxErrors);
}

const JOIN_SCRIPT = path.join(REPO_ROOT, 'fleet', 'bluegreen-join.sh');
/** A joining host re-reads the release record every JOIN_POLL_S and heartbeats every JOIN_HEARTBEAT_S: short, for a test. */
const JOIN_POLL_S = 1;
const JOIN_HEARTBEAT_S = 5;
/** What bluegreen-join says when it finds a release in progress (once per release). */
const JOIN_WAITING = /release \S+ is in progress \(\S+\): waiting for it to finish/;

const instanceId = (n: number) => `i-0fleet${String(n).padStart(10, '0')}`;

/** A host's own root (TaggedHost.root), with its bootstrapping marker when it is still booting. */
function hostRoot(parent: string, id: string, bootstrapping: boolean): string {
  const root = path.join(parent, id);
  mkdirSync(path.join(root, path.dirname(BOOTSTRAPPING_MARKER)), { recursive: true });
  if (bootstrapping) writeFileSync(path.join(root, BOOTSTRAPPING_MARKER), '');
  // A host in service has finished its first boot (cloud-init's mark); a launched one has not yet.
  mkdirSync(path.join(root, path.dirname(BOOT_FINISHED)), { recursive: true });
  if (!bootstrapping) writeFileSync(path.join(root, BOOT_FINISHED), '');
  return root;
}

/**
 * bootstrap.sh's `install ... /usr/local/bin/bluegreen-apply`, for a harness host: a launcher that
 * sets the host's environment (what /etc/bluegreen/env gives it) and runs the set's bluegreen-apply.
 * Variables it does not set (a HostFault's <POOL>_ENV_PARAM) pass through from the caller.
 */
function installApply(root: string, set: ComposeSet): string {
  const file = path.join(root, APPLY_PATH);
  mkdirSync(path.dirname(file), { recursive: true });
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const lines = [
    '#!/bin/sh',
    `# bluegreen-apply of ${set.project} (test/docker/fleet.ts)`,
    ...Object.entries(set.env).map(([k, v]) => `export ${k}=${q(v)}`),
    `exec sh ${q(path.join(set.home, APPLY))} "$@"`,
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  chmodSync(file, 0o755);
  return file;
}

/** The host timer's schedule: every `periodMs`, each host at its own fixed offset within `spreadMs`. */
export interface TimerSchedule {
  periodMs: number;
  spreadMs: number;
}

/** A systemd time span as these units write it (`5s`, `1min`, `55s`): ms. */
function timeSpanMs(value: string): number {
  const m = /^(\d+)\s*(ms|s|sec|min|m)?$/.exec(value.trim());
  if (!m) throw new Error(`unreadable systemd time span: ${value}`);
  const unit = m[2] ?? 's';
  return Number(m[1]) * (unit === 'ms' ? 1 : unit === 'min' || unit === 'm' ? 60_000 : 1000);
}

/** A key of a systemd unit file (the last one wins, as systemd reads it). */
function unitKey(file: string, key: string): string | undefined {
  const values = [
    ...readFileSync(path.join(REPO_ROOT, 'userdata', file), 'utf8').matchAll(new RegExp(`^${key}=(.*)$`, 'gm')),
  ].map((m) => m[1].trim());
  return values.at(-1);
}

/** The schedule of userdata/bluegreen-apply.timer: wall-clock minutes, spread by its randomized delay and accuracy. */
export function hostTimerSchedule(): TimerSchedule {
  const calendar = unitKey('bluegreen-apply.timer', 'OnCalendar');
  if (calendar !== 'minutely')
    throw new Error(`the harness's timer knows OnCalendar=minutely, the unit says ${calendar}`);
  // systemd's default accuracy is one minute; the unit narrows it.
  const spreadMs =
    timeSpanMs(unitKey('bluegreen-apply.timer', 'RandomizedDelaySec') ?? '0') +
    timeSpanMs(unitKey('bluegreen-apply.timer', 'AccuracySec') ?? '1min');
  return { periodMs: 60_000, spreadMs: Math.min(spreadMs, 60_000) };
}

/** What the timer runs on a host: userdata/bluegreen-apply.service's ExecStart, as the unit says it. */
export function hostTimerCommand(): string {
  const command = unitKey('bluegreen-apply.service', 'ExecStart');
  if (!command?.startsWith(APPLY_PATH))
    throw new Error(`bluegreen-apply.service's ExecStart is not ${APPLY_PATH}: ${command}`);
  return command;
}

/** One run of a host's timer, as the harness saw it. */
export interface TimerRun {
  host: string;
  startedAt: number;
  endedAt: number;
  result: ScriptResult;
}

/** `sh -c command`, as AWS-RunShellScript runs it (the caller's environment plus `env`). */
function runShell(command: string, env: Record<string, string> = {}): Promise<ScriptResult> {
  // runScript spawns `sh <file> <args>`: with `-c` as the file that is `sh -c command`.
  return runScript('-c', [command], env);
}

/**
 * An `aws` first on PATH for bluegreen-join: moto 5 has no lifecycle-action API, so `autoscaling`
 * calls are recorded (ms since the epoch, arguments) and answered with success; everything else
 * (the release record: the ledger's head, from DynamoDB) goes to the real CLI, against moto.
 */
function awsShim(dir: string): { path: string; calls: () => Array<{ at: number; call: string }> } {
  const which = spawnSync('sh', ['-c', 'command -v aws'], { encoding: 'utf8' });
  const real = which.stdout.trim();
  if (which.status !== 0 || !real)
    throw new Error('launchHost: bluegreen-join needs the aws CLI on PATH (it reads the release record from moto)');
  const bin = path.join(dir, 'bin');
  const log = path.join(dir, 'autoscaling-calls');
  mkdirSync(bin, { recursive: true });
  writeFileSync(log, '');
  writeFileSync(
    path.join(bin, 'aws'),
    `#!/bin/sh\nif [ "$1" = autoscaling ]; then echo "$(date +%s%3N) $*" >> '${log}'; exit 0; fi\nexec '${real}' "$@"\n`,
  );
  chmodSync(path.join(bin, 'aws'), 0o755);
  return {
    path: `${bin}:${process.env.PATH ?? ''}`,
    calls: () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => ({ at: Number(l.slice(0, l.indexOf(' '))), call: l.slice(l.indexOf(' ') + 1) })),
  };
}

export interface FleetOptions {
  hosts?: number;
  active?: Pool;
  releases?: Record<Pool, string>;
  /** Balancer slots (target ports) reserved for hosts launched later with launchHost(); default 0. */
  spares?: number;
}

export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const count = options.hosts ?? 2;
  const removed = cleanStaleFleets();
  if (removed.length) process.stdout.write(`fleet: removed what a killed run left: ${removed.join(', ')}\n`);
  const moto = await startMoto();
  const ssm = new SSMClient({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const ddb = new DynamoDBClient(motoClientConfig(moto));
  /** In service (bootstrapped; the first `count`, and launched hosts once registered). */
  const hosts: FleetHost[] = [];
  /** Launched, tagged, not yet registered (Run Command reaches them). */
  const launching: Array<TaggedHost & { port: number }> = [];
  interface Launch {
    host: LaunchedHost;
    slot: number;
    root: string;
    child?: ChildProcess;
    set?: ComposeSet;
    terminated: boolean;
  }
  const launches: Launch[] = [];
  /** Every Compose set up now (torn down by down()). */
  const sets = new Set<ComposeSet>();
  const roots = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-fleet-hosts-'));
  let lbDir: string | undefined;
  const lbName = `bgfleet${process.pid}-lb`;
  let tornDown = false;

  const down = async () => {
    tornDown = true;
    spawnSync('docker', ['rm', '-f', lbName], { stdio: 'ignore' });
    for (const l of launches) l.child?.kill('SIGTERM');
    await Promise.all(launches.map((l) => l.host.ready.catch(() => undefined)));
    await Promise.all([...sets].map((set) => set.down().catch(() => undefined)));
    ssm.destroy();
    ddb.destroy();
    await moto.stop();
    if (lbDir) rmSync(lbDir, { recursive: true, force: true });
    rmSync(roots, { recursive: true, force: true });
  };

  try {
    // The hosts boot in parallel, as an Auto Scaling group launches them; the same stage state.
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        startComposeSet({ fleetIndex: i, moto, active: options.active, releases: options.releases }),
      ),
    );
    for (const r of started) if (r.status === 'fulfilled') sets.add(r.value);
    const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    [...sets].forEach((set, i) => {
      const id = instanceId(i + 1);
      const root = hostRoot(roots, id, false);
      installApply(root, set);
      hosts.push({ id, root, set, port: Number(new URL(set.url).port) });
    });
  } catch (err) {
    await down();
    throw err;
  }
  const stage = hosts[0].set.stage;
  const names = parameterNames(stage);
  const spares: number[] = [];
  for (let i = 0; i < (options.spares ?? 0); i++) spares.push(await freePort());

  // The balancer: the nginx image the harness tags, on the host network (its targets are the
  // hosts' loopback ports), its own prefix for config, logs, temp files and registration flags.
  const lbPort = await freePort();
  lbDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-lb-'));
  chmodSync(lbDir, 0o755); // nginx's workers run unprivileged
  for (const sub of ['logs', 'run', 'tmp', path.basename(LB_REGISTERED)])
    mkdirSync(path.join(lbDir, sub), { mode: 0o755 });
  writeFileSync(
    path.join(lbDir, 'lb.conf'),
    lbConfig(
      lbPort,
      hosts.map((h) => h.port),
      spares,
    ),
  );
  writeFileSync(path.join(lbDir, 'logs', 'access.log'), '');
  const url = `http://127.0.0.1:${lbPort}`;
  try {
    await run('docker', [
      'run',
      '-d',
      '--name',
      lbName,
      '--network',
      'host',
      '-v',
      `${lbDir}:${LB_PREFIX}`,
      withoutDigest(baseImages().nginx),
      'nginx',
      '-p',
      `${LB_PREFIX}/`,
      '-c',
      `${LB_PREFIX}/lb.conf`,
      '-g',
      'daemon off;',
    ]);
    await waitFor(
      async () => {
        const r = await fetch(`${url}/version`).catch(() => undefined);
        return r?.status === 200;
      },
      'the balancer to answer',
      30_000,
    );
  } catch (err) {
    const logs = spawnSync('docker', ['logs', '--tail', '20', lbName], { encoding: 'utf8' });
    await down();
    throw new Error(`the balancer did not come up: ${(err as Error).message}\n${logs.stdout}${logs.stderr}`, {
      cause: err,
    });
  }
  /** Registration of spare slot `slot` (0-based): the flag appears at once (rename), or goes. */
  const flag = (slot: number) => path.join(lbDir!, path.basename(LB_REGISTERED), String(slot + 1));
  const register = (slot: number) => {
    writeFileSync(`${flag(slot)}.tmp`, '');
    renameSync(`${flag(slot)}.tmp`, flag(slot));
  };
  const deregister = (slot: number) => rmSync(flag(slot), { force: true });

  // What the stack creates besides the pool state: the release ledger (empty: no release yet),
  // maintenance, the public URL (the ALB's).
  const put = (Name: string, Value: string) =>
    ssm.send(new PutParameterCommand({ Name, Value, Type: 'String', Overwrite: true }));
  await createLedgerTable(moto, stage);
  await put(names.maintenance, 'off');
  await put(names.publicUrl, url);

  const timerRuns: TimerRun[] = [];
  let timerSchedule = hostTimerSchedule();

  // One command at a time per host, like bluegreen-apply's own lock.
  const chains = new Map<string, Promise<unknown>>();
  const serialized = <T>(host: TaggedHost, fn: () => Promise<T>): Promise<T> => {
    const prev = chains.get(host.id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    chains.set(
      host.id,
      next.catch(() => undefined),
    );
    return next;
  };
  const members = () => [...hosts, ...launching];

  const fleet: Fleet = {
    stage,
    moto,
    ssm,
    ddb,
    names,
    hosts,
    url,
    fault: undefined,
    async applyOn(host, args = []) {
      return serialized(host, async () => {
        const fault = fleet.fault?.host === host.id ? fleet.fault : undefined;
        // The faulty host reads the pool's env from a parameter of its own while the release is the
        // faulty one: the stage's env plus the fault's.
        const overrides: Record<string, string> = {};
        for (const pool of fault ? (['blue', 'green'] as const) : []) {
          const n = names.pools[pool];
          const res = await ssm.send(new GetParametersCommand({ Names: [n.release, n.env] }));
          const value = (name: string) => res.Parameters?.find((p) => p.Name === name)?.Value;
          if (value(n.release) !== fault!.release) continue;
          const own = `/bluegreen/${stage}/harness/${host.id}/pools/${pool}/env`;
          await put(
            own,
            JSON.stringify({ ...(JSON.parse(value(n.env) ?? '{}') as Record<string, string>), ...fault!.env }),
          );
          overrides[`${pool.toUpperCase()}_ENV_PARAM`] = own;
        }
        return runShell(hostCommandUnder(host.root, args), overrides);
      });
    },
    tagged: () => members().map(({ id, root }) => ({ id, root })),
    timer: {
      runs: () => [...timerRuns],
      speedUp: (schedule) => (timerSchedule = schedule),
      reset: () => (timerSchedule = hostTimerSchedule()),
    },
    async runApply(args, _timeoutMs, rate) {
      const targets = fleet.tagged();
      const slots = concurrency(rate, targets.length);
      const budget = errorBudget(rate, targets.length);
      const results = new Map<string, HostResult>();
      let errors = 0;
      const queue = [...targets];
      // Rounds of `slots` hosts; once more than `budget` failed, no further host is started.
      while (queue.length) {
        if (errors > budget) {
          for (const h of queue.splice(0))
            results.set(h.id, {
              host: h.id,
              status: NOT_RUN,
              ok: false,
              steps: [],
              error: 'not run: Run Command stopped after the failure elsewhere (MaxErrors)',
            });
          break;
        }
        const round = queue.splice(0, slots);
        const done = await Promise.all(round.map(async (h) => ({ h, r: await fleet.applyOn(h, args) })));
        for (const { h, r } of done) {
          const result = hostResult(h.id, r.code === 0 ? 'Success' : 'Failed', r.stdout, r.stderr);
          if (!result.ok) errors++;
          results.set(h.id, result);
        }
      }
      return { commandId: `harness-${Date.now()}`, hosts: targets.map((h) => results.get(h.id)!) };
    },
    launchHost() {
      const slot = launches.length;
      if (slot >= spares.length)
        throw new Error(`launchHost: no spare balancer slot left (startFleet was given spares: ${spares.length})`);
      const id = instanceId(count + slot + 1);
      const root = hostRoot(roots, id, true); // bootstrap.sh's first act: the marker
      const port = spares[slot];
      const shim = awsShim(path.join(root, 'shim'));
      const tagged = { id, root, port };
      launching.push(tagged); // tagged from its launch: Run Command (both stand-ins) reaches it now
      const phases: LaunchPhases = { launched: Date.now() };
      const join: LaunchedHost['join'] = { stdout: '', stderr: '' };
      const launch: Launch = { slot, root, terminated: false, host: undefined as unknown as LaunchedHost };
      const gone = () => tornDown || launch.terminated;
      const ready = (async (): Promise<FleetHost> => {
        // bootstrap.sh: the stage's state as SSM holds it now (a release may be writing it), the set
        // up and answering; bluegreen-apply installed; then the marker goes.
        const set = await startComposeSet({ fleetIndex: count + slot, moto, joinStage: true, httpPort: port });
        sets.add(set);
        launch.set = set;
        if (gone()) throw new Error(`${id}: the fleet let go of it during its bootstrap`);
        const apply = installApply(root, set);
        phases.bootstrapped = Date.now();
        rmSync(path.join(root, BOOTSTRAPPING_MARKER));
        phases.markerRemoved = Date.now();
        // The user data: bluegreen-join <group> <hook> <instance>, with what /etc/bluegreen/env gives it.
        join.code = await new Promise<number>((resolve, reject) => {
          const child = spawn('sh', [JOIN_SCRIPT, fleetGroupName(stage), BOOTSTRAP_HOOK_NAME, id], {
            env: {
              ...process.env,
              ...moto.env,
              PATH: shim.path,
              BLUEGREEN_ENV_FILE: '/nonexistent/env',
              ...ledgerHostEnv(stage),
              JOIN_POLL_SECONDS: String(JOIN_POLL_S),
              JOIN_HEARTBEAT_SECONDS: String(JOIN_HEARTBEAT_S),
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          launch.child = child;
          phases.joinStarted = Date.now();
          child.stdout.on('data', (d: Buffer) => {
            join.stdout += d.toString();
            if (phases.joinWaiting === undefined && JOIN_WAITING.test(join.stdout)) phases.joinWaiting = Date.now();
          });
          child.stderr.on('data', (d: Buffer) => (join.stderr += d.toString()));
          child.on('error', reject);
          child.on('close', (code) => resolve(code ?? 1));
        });
        phases.joinExited = Date.now();
        if (join.code !== 0)
          throw new Error(
            `${id}: bluegreen-join exited ${join.code} (the user data abandons the launch): ${join.stderr.trim()}`,
          );
        if (gone()) throw new Error(`${id}: the fleet let go of it while it waited to join`);
        // ...then bluegreen-apply, the stage's state as it is now; a failure is reported, not fatal
        // (the user data joins anyway: the timer retries).
        launch.host.apply = await serialized(tagged, () => runShell(apply));
        phases.applied = Date.now();
        // complete-lifecycle-action → InService; the target group's health check, then registered.
        await waitFor(
          async () => (await fetch(`${set.url}${FLEET_HEALTH_CHECK_PATH}`).catch(() => undefined))?.status === 200,
          `${id} to pass the health check`,
          30_000,
        );
        if (gone()) throw new Error(`${id}: the fleet let go of it before it was registered`);
        const host: FleetHost = { id, root, set, port };
        // Stamped before the flag appears: every request the balancer sends it started after this.
        phases.registered = Date.now();
        register(slot);
        // The user data ends once its target is healthy: cloud-init marks the first boot finished.
        writeFileSync(path.join(root, BOOT_FINISHED), '');
        hosts.push(host);
        launching.splice(launching.indexOf(tagged), 1);
        return host;
      })();
      ready.catch(() => undefined); // the caller awaits it; an unawaited failure is not a crash
      const launched: LaunchedHost = { id, port, phases, join, heartbeats: shim.calls, ready };
      launch.host = launched;
      launches.push(launch);
      return launched;
    },
    async terminate(host) {
      const launch = launches.find((l) => l.host === host);
      if (!launch) throw new Error(`terminate: ${host.id} was not launched by launchHost()`);
      launch.terminated = true;
      deregister(launch.slot);
      for (const list of [hosts, launching] as Array<Array<{ id: string }>>) {
        const i = list.findIndex((h) => h.id === host.id);
        if (i >= 0) list.splice(i, 1);
      }
      launch.child?.kill('SIGTERM');
      await host.ready.catch(() => undefined);
      const set = launch.set;
      if (set) {
        sets.delete(set);
        await set.down();
      }
    },
    lbLog(from = 0) {
      const file = path.join(lbDir!, 'logs', 'access.log');
      const end = existsSync(file) ? statSync(file).size : 0;
      const text = end > from ? readFileSync(file).subarray(from, end).toString('utf8') : '';
      const entries: LbEntry[] = [];
      const value = (v: string) => (v === '-' ? '' : v);
      for (const line of text.split('\n')) {
        const m = /^(\S+) (\d+) "([^"]*)" "([^"]*)" (\S+) "([^"]*)" "([^"]*)"$/.exec(line);
        if (!m) continue;
        const msec = Math.round(Number(m[1]) * 1000);
        entries.push({
          msec,
          startMsec: msec - Math.round(Number(m[5]) * 1000),
          status: Number(m[2]),
          targets: m[3].split(/\s*,\s*/).filter(Boolean),
          upstreamStatus: m[4],
          pool: value(m[6]),
          release: value(m[7]),
        });
      }
      return { end, entries };
    },
    servedBy(entries) {
      const byHost: Record<string, number> = Object.fromEntries(members().map((h) => [h.id, 0]));
      let retriedOnAnother = 0;
      let lbFailed = 0;
      for (const e of entries) {
        if (e.targets.length > 1) retriedOnAnother++;
        if (e.status !== 200) lbFailed++;
        const last = fleet.hostOf(e.targets[e.targets.length - 1] ?? '');
        if (last && last in byHost && e.status === 200) byHost[last]++;
      }
      return { byHost, retriedOnAnother, lbFailed };
    },
    hostOf(target) {
      const all = [
        ...hosts.map((h) => ({ id: h.id, port: h.port })),
        ...launches.map((l) => ({ id: l.host.id, port: l.host.port })),
      ];
      return all.find((h) => target === `127.0.0.1:${h.port}`)?.id;
    },
    async down() {
      stopped = true;
      await loop;
      await timers;
      await down();
    },
  };

  // The pool-switch rule: a change of the active pool (or canary share) → Run Command's command on every tagged host.
  let stopped = false;
  let lastSeen = '';
  const loop = (async () => {
    while (!stopped) {
      const res = await ssm
        .send(new GetParametersCommand({ Names: [names.activePool, names.canaryPercent] }))
        .catch(() => undefined);
      const seen = (res?.Parameters ?? [])
        .map((p) => `${p.Name}=${p.Value}`)
        .sort()
        .join(' ');
      if (res && seen !== lastSeen) {
        const first = lastSeen === '';
        lastSeen = seen;
        if (!first) await Promise.all(fleet.tagged().map((h) => fleet.applyOn(h, [NO_DEPLOY]).catch(() => undefined)));
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  // The hosts' timers: each host in service at its fixed offset in the spread (FixedRandomDelay: drawn
  // once per host), every period; a run still going (bluegreen-apply waits for the host's lock behind a
  // Run Command) makes systemd skip the elapse, so it is skipped here too.
  const timerCommand = hostTimerCommand();
  const offsets = new Map<string, number>();
  const busy = new Set<string>();
  const timers = (async () => {
    const lastRun = new Map<string, number>();
    while (!stopped) {
      const now = Date.now();
      for (const host of [...hosts]) {
        if (!offsets.has(host.id)) offsets.set(host.id, Math.random());
        const { periodMs, spreadMs } = timerSchedule;
        const due = Math.floor(now / periodMs) * periodMs + offsets.get(host.id)! * spreadMs;
        if (now < due || (lastRun.get(host.id) ?? 0) >= due || busy.has(host.id)) continue;
        lastRun.set(host.id, now);
        busy.add(host.id);
        const startedAt = Date.now();
        void serialized(host, () => runShell(timerCommand.split(APPLY_PATH).join(path.join(host.root, APPLY_PATH))))
          .then((result) => timerRuns.push({ host: host.id, startedAt, endedAt: Date.now(), result }))
          .catch(() => undefined)
          .finally(() => busy.delete(host.id));
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    while (busy.size) await new Promise((r) => setTimeout(r, 100));
  })();
  return fleet;
}

/**
 * Kills every container of one host at once (SIGKILL: no graceful stop, no connection closed
 * politely), as a host that dies. Their restart policy is lifted first: a dead instance does not
 * come back (the Auto Scaling group would launch a new one, which joins as a new target).
 */
export function killHost(host: FleetHost): void {
  const ids = execFileSync('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${host.set.project}`], {
    encoding: 'utf8',
  })
    .trim()
    .split('\n')
    .filter(Boolean);
  if (ids.length === 0) throw new Error(`host ${host.id} (${host.set.project}) has no running container to kill`);
  execFileSync('docker', ['update', '--restart', 'no', ...ids], { stdio: 'ignore' });
  execFileSync('docker', ['kill', ...ids], { stdio: 'ignore' });
}
