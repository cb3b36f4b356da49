// A fleet on the local Docker Engine (prepared by test/docker/harness.sh): N hosts, each the host's
// real Compose set (compose-set.ts: userdata/docker-compose.yml and bluegreen-apply from a temporary
// BLUEGREEN_HOME, its own project, subnet and ports), one stage in one moto_server, behind an nginx
// container playing the Application Load Balancer. Two pieces of AWS plumbing are stood in for,
// with the hosts' own agent doing the work in both:
//   - Run Command (the release CLI's deploy and canary share): runs the real bluegreen-apply on every
//     host, in rounds of MaxConcurrency, stops starting hosts once more than MaxErrors failed, and
//     reports per-host invocations the way ops/release/run-command.ts reads them;
//   - the pool-switch rule (EventBridge "Parameter Store Change" → Run Command): a loop runs
//     bluegreen-apply on every host when the active pool or the canary share changes.
//
// What the balancer stands for, and what it does not (DECISIONS.md "Fleet: the harness's load
// balancer"): an upstream of the hosts' published nginx ports, round robin, keep-alive to the
// targets, and proxy_next_upstream error timeout: a request whose target refuses, resets or times
// out is sent to the next target inside the same client request, and that target is left alone for
// fail_timeout (passive health, like an ALB routing around a target it cannot connect to). Unlike an
// ALB: no active health check (open-source nginx has none: a target is only found dead by a request
// that fails on it, and tried again by one every fail_timeout), no registration / deregistration
// delay (connection draining), no zones, HTTP only.
import { GetParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parameterNames } from '../../lib/config';
import { freePort } from '../../local/ports';
import { ScriptResult } from '../../local/switch';
import { NOT_RUN } from '../../ops/fleet';
import { HostResult, parseStepLines, RunOnHostsResult, RunRate } from '../../ops/release/run-command';
import { baseImages, withoutDigest } from '../helpers/base-images';
import { Moto, startMoto } from '../helpers/moto';
import { waitFor } from '../helpers/stack';
import { ComposeSet, FLEET_PROJECT, Pool, startComposeSet } from './compose-set';

const run = promisify(execFile);

/** The balancer container's name; the stale cleanup finds a killed run's by it. */
const LB_NAME = /^bgfleet(\d+)-lb$/;

/**
 * How long the balancer leaves a target alone after a failed attempt on it (then one request tries
 * it again). An ALB's health check would take it out after its unhealthy threshold instead.
 */
export const LB_FAIL_TIMEOUT_S = 2;

export interface FleetHost {
  /** An instance id, as Run Command and the release record name hosts. */
  id: string;
  set: ComposeSet;
  /** The published nginx port: the balancer's target. */
  port: number;
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
  names: ReturnType<typeof parameterNames>;
  hosts: FleetHost[];
  /** The balancer: http://127.0.0.1:<port> (also the stage's public-url parameter). */
  url: string;
  /** Set to make one host fail a given release (undefined: no fault). */
  fault: HostFault | undefined;
  /** The stand-in for Run Command (AwsBackendOptions.runApply): bluegreen-apply on every host, with rate control. */
  runApply(args: string[], timeoutMs: number, rate: RunRate): Promise<RunOnHostsResult>;
  /** bluegreen-apply on one host (serialized per host, like the host's own lock). */
  applyOn(host: FleetHost, args?: string[]): Promise<ScriptResult>;
  /** The balancer's access log from a byte offset: which target answered each request. */
  lbLog(from?: number): { end: number; entries: LbEntry[] };
  /** Requests per host (by the target that answered) and how many were retried on another target. */
  servedBy(entries: readonly LbEntry[]): { byHost: Record<string, number>; retriedOnAnother: number; lbFailed: number };
  down(): Promise<void>;
}

export interface LbEntry {
  msec: number;
  status: number;
  /** One target per attempt, in order ("127.0.0.1:P1, 127.0.0.1:P2": the first failed). */
  targets: string[];
  upstreamStatus: string;
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
  const ps = spawnSync('docker', ['ps', '-a', '--format', '{{.ID}} {{.Names}} {{.Label "com.docker.compose.project"}}'], { encoding: 'utf8' });
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

/** The balancer's nginx.conf: the hosts' published ports as one upstream (see the header comment). */
export function lbConfig(listenPort: number, targets: readonly number[]): string {
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
    log_format lb '$msec $status "$upstream_addr" "$upstream_status"';
    access_log logs/access.log lb;
    keepalive_timeout 60s;
    keepalive_requests 100000;
    upstream fleet {
${targets.map((p) => `        server 127.0.0.1:${p} max_fails=1 fail_timeout=${LB_FAIL_TIMEOUT_S}s;`).join('\n')}
        keepalive 32;
    }
    server {
        listen 127.0.0.1:${listenPort};
        location / {
            proxy_pass http://fleet;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            # A target that refuses, resets or does not answer: the next one, inside the request.
            # Not on 5xx: each host's nginx already retries its own pools; an ALB does not retry either.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries ${targets.length};
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

export async function startFleet(options: { hosts?: number; active?: Pool; releases?: Record<Pool, string> } = {}): Promise<Fleet> {
  const count = options.hosts ?? 2;
  const removed = cleanStaleFleets();
  if (removed.length) process.stdout.write(`fleet: removed what a killed run left: ${removed.join(', ')}\n`);
  const moto = await startMoto();
  const ssm = new SSMClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const hosts: FleetHost[] = [];
  let lbDir: string | undefined;
  const lbName = `bgfleet${process.pid}-lb`;

  const down = async () => {
    spawnSync('docker', ['rm', '-f', lbName], { stdio: 'ignore' });
    await Promise.all(hosts.map((h) => h.set.down().catch(() => undefined)));
    ssm.destroy();
    await moto.stop();
    if (lbDir) rmSync(lbDir, { recursive: true, force: true });
  };

  try {
    // The hosts boot in parallel, as an Auto Scaling group launches them; the same stage state.
    const sets = await Promise.all(
      Array.from({ length: count }, (_, i) => startComposeSet({ fleetIndex: i, moto, active: options.active, releases: options.releases })),
    );
    sets.forEach((set, i) => hosts.push({ id: `i-0fleet${String(i + 1).padStart(10, '0')}`, set, port: Number(new URL(set.url).port) }));
  } catch (err) {
    await down();
    throw err;
  }
  const stage = hosts[0].set.stage;
  const names = parameterNames(stage);

  // The balancer: the nginx image the harness tags, on the host network (its targets are the
  // hosts' loopback ports), its own prefix for config, logs and temp files.
  const lbPort = await freePort();
  lbDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-lb-'));
  chmodSync(lbDir, 0o755); // nginx's workers run unprivileged
  for (const sub of ['logs', 'run', 'tmp']) mkdirSync(path.join(lbDir, sub));
  writeFileSync(path.join(lbDir, 'lb.conf'), lbConfig(lbPort, hosts.map((h) => h.port)));
  writeFileSync(path.join(lbDir, 'logs', 'access.log'), '');
  const url = `http://127.0.0.1:${lbPort}`;
  try {
    await run('docker', ['run', '-d', '--name', lbName, '--network', 'host', '-v', `${lbDir}:/lb`, withoutDigest(baseImages().nginx), 'nginx', '-p', '/lb/', '-c', '/lb/lb.conf', '-g', 'daemon off;']);
    await waitFor(async () => {
      const r = await fetch(`${url}/version`).catch(() => undefined);
      return r?.status === 200;
    }, 'the balancer to answer', 30_000);
  } catch (err) {
    const logs = spawnSync('docker', ['logs', '--tail', '20', lbName], { encoding: 'utf8' });
    await down();
    throw new Error(`the balancer did not come up: ${(err as Error).message}\n${logs.stdout}${logs.stderr}`);
  }
  // What the stack creates besides the pool state: the record, maintenance, the public URL (the ALB's).
  const put = (Name: string, Value: string) => ssm.send(new PutParameterCommand({ Name, Value, Type: 'String', Overwrite: true }));
  await put(names.release, '{}');
  await put(names.maintenance, 'off');
  await put(names.publicUrl, url);

  // One bluegreen-apply at a time per host, like the host's lock.
  const chains = new Map<string, Promise<unknown>>();
  const serialized = <T>(host: FleetHost, fn: () => Promise<T>): Promise<T> => {
    const prev = chains.get(host.id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    chains.set(host.id, next.catch(() => undefined));
    return next;
  };

  const fleet: Fleet = {
    stage,
    moto,
    ssm,
    names,
    hosts,
    url,
    fault: undefined,
    async applyOn(host, args = []) {
      return serialized(host, async () => {
        const fault = fleet.fault?.host === host.id ? fleet.fault : undefined;
        if (!fault) return host.set.apply(...args);
        // The faulty host reads the pool's env from a parameter of its own while the release is the
        // faulty one: the stage's env plus the fault's.
        const overrides: Record<string, string> = {};
        for (const pool of ['blue', 'green'] as const) {
          const n = names.pools[pool];
          const res = await ssm.send(new GetParametersCommand({ Names: [n.release, n.env] }));
          const value = (name: string) => res.Parameters?.find((p) => p.Name === name)?.Value;
          if (value(n.release) !== fault.release) continue;
          const own = `/bluegreen/${stage}/harness/${host.id}/pools/${pool}/env`;
          await put(own, JSON.stringify({ ...(JSON.parse(value(n.env) ?? '{}') as Record<string, string>), ...fault.env }));
          overrides[`${pool.toUpperCase()}_ENV_PARAM`] = own;
        }
        return host.set.applyWith(overrides, ...args);
      });
    },
    async runApply(args, _timeoutMs, rate) {
      const slots = concurrency(rate, hosts.length);
      const budget = errorBudget(rate, hosts.length);
      const results = new Map<string, HostResult>();
      let errors = 0;
      const queue = [...hosts];
      // Rounds of `slots` hosts; once more than `budget` failed, no further host is started.
      while (queue.length) {
        if (errors > budget) {
          for (const h of queue.splice(0)) results.set(h.id, { host: h.id, status: NOT_RUN, ok: false, steps: [], error: 'not run: Run Command stopped after the failure elsewhere (MaxErrors)' });
          break;
        }
        const round = queue.splice(0, slots);
        const done = await Promise.all(round.map(async (h) => ({ h, r: await fleet.applyOn(h, args) })));
        for (const { h, r } of done) {
          const status = r.code === 0 ? 'Success' : 'Failed';
          const steps = parseStepLines(r.stdout, h.id);
          const ok = status === 'Success' && steps.every((s) => s.ok);
          if (!ok) errors++;
          const error = ok ? undefined : r.stderr.trim().split('\n').slice(-3).join(' | ') || undefined;
          results.set(h.id, { host: h.id, status, ok, steps, ...(error ? { error } : {}) });
        }
      }
      return { commandId: `harness-${Date.now()}`, hosts: hosts.map((h) => results.get(h.id)!) };
    },
    lbLog(from = 0) {
      const file = path.join(lbDir!, 'logs', 'access.log');
      const end = existsSync(file) ? statSync(file).size : 0;
      const text = end > from ? readFileSync(file).subarray(from, end).toString('utf8') : '';
      const entries: LbEntry[] = [];
      for (const line of text.split('\n')) {
        const m = /^(\S+) (\d+) "([^"]*)" "([^"]*)"$/.exec(line);
        if (m) entries.push({ msec: Number(m[1]) * 1000, status: Number(m[2]), targets: m[3].split(/\s*,\s*/).filter(Boolean), upstreamStatus: m[4] });
      }
      return { end, entries };
    },
    servedBy(entries) {
      const byPort = new Map(hosts.map((h) => [`127.0.0.1:${h.port}`, h.id]));
      const byHost: Record<string, number> = Object.fromEntries(hosts.map((h) => [h.id, 0]));
      let retriedOnAnother = 0;
      let lbFailed = 0;
      for (const e of entries) {
        if (e.targets.length > 1) retriedOnAnother++;
        if (e.status !== 200) lbFailed++;
        const last = byPort.get(e.targets[e.targets.length - 1] ?? '');
        if (last && e.status === 200) byHost[last]++;
      }
      return { byHost, retriedOnAnother, lbFailed };
    },
    async down() {
      stopped = true;
      await loop;
      await down();
    },
  };

  // The pool-switch rule: a change of the active pool (or canary share) → bluegreen-apply on every host.
  let stopped = false;
  let lastSeen = '';
  const loop = (async () => {
    while (!stopped) {
      const res = await ssm.send(new GetParametersCommand({ Names: [names.activePool, names.canaryPercent] })).catch(() => undefined);
      const seen = (res?.Parameters ?? []).map((p) => `${p.Name}=${p.Value}`).sort().join(' ');
      if (res && seen !== lastSeen) {
        const first = lastSeen === '';
        lastSeen = seen;
        if (!first) await Promise.all(hosts.map((h) => fleet.applyOn(h).catch(() => undefined)));
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return fleet;
}

/**
 * Kills every container of one host at once (SIGKILL: no graceful stop, no connection closed
 * politely), as a host that dies. Their restart policy is lifted first: a dead instance does not
 * come back (the Auto Scaling group would launch a new one, which joins as a new target).
 */
export function killHost(host: FleetHost): void {
  const ids = execFileSync('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${host.set.project}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  if (ids.length === 0) throw new Error(`host ${host.id} (${host.set.project}) has no running container to kill`);
  execFileSync('docker', ['update', '--restart', 'no', ...ids], { stdio: 'ignore' });
  execFileSync('docker', ['kill', ...ids], { stdio: 'ignore' });
}
