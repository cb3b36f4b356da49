// `bluegreen verify-image IMAGE`: runs the image on the local Docker Engine the way a host runs a
// pool (APP_POOL, RELEASE_ID, PORT; SIGTERM then the stop grace) and gathers what core/image-contract.ts
// judges. The container is published on 127.0.0.1 only, has a name of its own, and is removed at the
// end whatever happens, Ctrl-C included.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../core/config-error';
import {
  DEFAULT_POOL_HEALTHCHECK,
  healthcheckForPort,
  judgeImage,
  parseVerifyImageArgs,
  POOL_CONTAINER_PORT,
  POOL_STOP_GRACE_SECONDS,
  renderVerifyReport,
  SLOW_PROBE,
  VERIFY_GIVEN,
  verifyExitCode,
  type Given,
  type Observations,
  type PointResult,
  type Probe,
} from '../core/image-contract';
import { httpRequest, type HttpResponse } from '../support/http';
import type { Out } from '../support/output';

/** No Docker Engine to run the image on: the operator's setup, reported as one line (exit 2). */
export class DockerUnavailableError extends Error {}

/** A label on every container verify-image starts, so a leftover one can be found. */
export const VERIFY_LABEL = 'bluegreen.verify-image';
/** How often /healthz is asked while the image starts. */
const POLL_MS = 250;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function docker(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile('docker', args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && e.code === 'ENOENT') {
        resolve({ code: 127, stdout: '', stderr: 'the docker CLI is not on PATH' });
        return;
      }
      // An exit status is the command's own answer; only a timeout or a spawn failure adds a message.
      const exited = !e || typeof e.code === 'number';
      resolve({
        code: e ? (typeof e.code === 'number' ? e.code : 1) : 0,
        stdout,
        stderr: exited ? stderr : stderr || e.message,
      });
    });
  });
}

const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function probe(res: HttpResponse): Probe {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  return { status: res.status, headers, body: res.body };
}

async function get(port: number, path: string, timeoutMs = 2000): Promise<Probe> {
  try {
    return probe(await httpRequest(`http://127.0.0.1:${port}${path}`, { agent: false, timeoutMs }));
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Throws DockerUnavailableError unless an engine answers. */
async function assertEngine(): Promise<void> {
  const v = await docker(['version', '--format', '{{.Server.Version}}'], 20_000);
  if (v.code !== 0 || !v.stdout.trim())
    throw new DockerUnavailableError(
      `no Docker Engine answers (docker version: ${firstLine(v.stderr) || 'no server version'}): start Docker or set DOCKER_HOST`,
    );
}

/** The image is here, or pulled now; a name that can be neither is bad input. */
async function ensureImage(image: string, out: Out): Promise<void> {
  if ((await docker(['image', 'inspect', '--format', '{{.Id}}', image])).code === 0) return;
  out(`${image} is not on this engine: docker pull ${image}`);
  const pulled = await docker(['pull', '--quiet', image], 600_000);
  if (pulled.code !== 0)
    throw new ConfigError(
      `IMAGE "${image}" is not on this Docker Engine and docker pull failed: ${firstLine(pulled.stderr)}`,
    );
}

/** The host port Docker published the container's port on (127.0.0.1 only). */
async function publishedPort(name: string, port: number): Promise<number | undefined> {
  const r = await docker(['port', name, `${port}/tcp`]);
  const m = /127\.0\.0\.1:(\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}

async function state(name: string): Promise<{ running: boolean; exitCode: number } | undefined> {
  const r = await docker(['inspect', '--format', '{{.State.Running}} {{.State.ExitCode}}', name]);
  const m = /^(true|false) (-?\d+)/.exec(r.stdout.trim());
  return m ? { running: m[1] === 'true', exitCode: Number(m[2]) } : undefined;
}

async function logs(name: string): Promise<Run> {
  return docker(['logs', name], 30_000);
}

/** Runs the container and observes every contract point; the caller removes the container. */
async function observe(image: string, name: string, given: Given, healthcheck?: string): Promise<Observations> {
  const o: Observations = { given };
  const run = await docker(
    [
      'run',
      '--detach',
      '--pull',
      'never',
      '--name',
      name,
      '--label',
      `${VERIFY_LABEL}=1`,
      '--env',
      `APP_POOL=${given.pool}`,
      '--env',
      `RELEASE_ID=${given.release}`,
      '--env',
      `PORT=${given.port}`,
      '--publish',
      `127.0.0.1::${given.port}`,
      // Also the default port, only to say "listens on 3000, not on PORT" when that is the fault.
      '--publish',
      `127.0.0.1::${POOL_CONTAINER_PORT}`,
      image,
    ],
    120_000,
  );
  if (run.code !== 0) {
    o.runError = firstLine(run.stderr) || `exit ${run.code}`;
    return o;
  }
  const port = await publishedPort(name, given.port);
  const defaultPort = await publishedPort(name, POOL_CONTAINER_PORT);
  let requests = 0;

  // Starts and answers /healthz 200 within the timeout; stop early when the container exits.
  const started = Date.now();
  const deadline = started + given.timeoutSeconds * 1000;
  let lastStateCheck = 0;
  for (;;) {
    const h = port === undefined ? { error: `PORT ${given.port} was not published` } : await get(port, '/healthz');
    requests++;
    o.healthz = { ...h, afterMs: Date.now() - started };
    if ('status' in h && h.status === 200) break;
    if (Date.now() - lastStateCheck >= 1000) {
      lastStateCheck = Date.now();
      const s = await state(name);
      if (s && !s.running) {
        const text = await logs(name);
        const lines = `${text.stdout}\n${text.stderr}`.split('\n').filter((l) => l.trim() !== '');
        o.exited = { exitCode: s.exitCode, lastLogLine: lines.at(-1) };
        o.logs = { text: lines.join('\n'), requests };
        break;
      }
    }
    if (Date.now() >= deadline) break;
    await sleep(POLL_MS);
  }
  if (o.exited) return o;

  if (port !== undefined) {
    o.version = await get(port, '/version');
    requests++;
  }
  // The host's health check, as Compose runs it (CMD-SHELL: /bin/sh -c in the container), at PORT.
  const command = healthcheckForPort(healthcheck ?? DEFAULT_POOL_HEALTHCHECK, given.port);
  const exec = await docker(['exec', name, '/bin/sh', '-c', command], 15_000);
  o.healthcheck = {
    command: healthcheck ?? DEFAULT_POOL_HEALTHCHECK,
    custom: healthcheck !== undefined,
    exitCode: exec.code,
    output: `${exec.stdout}${exec.stderr}`,
  };
  const answered = (p: Probe | undefined) => !!p && 'status' in p;
  if (!answered(o.healthz) && !answered(o.version) && defaultPort !== undefined) {
    o.defaultPort = await get(defaultPort, '/healthz');
    requests++;
  }
  if (port !== undefined && answered(o.healthz)) {
    const t0 = Date.now();
    const slow = await get(port, `${SLOW_PROBE.path}?ms=${SLOW_PROBE.ms}`, SLOW_PROBE.ms + 5000);
    o.slowProbe = { ...slow, tookMs: Date.now() - t0 };
    requests++;
  }

  const text = await logs(name);
  o.logs = text.code === 0 ? { text: `${text.stdout}${text.stderr}`, requests } : { error: firstLine(text.stderr) };

  // Graceful SIGTERM: docker stop sends it, then SIGKILL after the grace (as Compose does on the host).
  const s = await state(name);
  if (!s?.running) return o;
  let inFlight: Promise<Probe> | undefined;
  if (port !== undefined && o.slowProbe && 'status' in o.slowProbe && o.slowProbe.status === 200) {
    inFlight = get(port, `${SLOW_PROBE.path}?ms=${SLOW_PROBE.ms}`, given.graceSeconds * 1000 + 5000);
    await sleep(SLOW_PROBE.stopAfterMs);
  }
  const stopped = await docker(['stop', '--time', String(given.graceSeconds), name], (given.graceSeconds + 30) * 1000);
  const after = await state(name);
  o.stop = {
    inFlight: inFlight ? await inFlight : undefined,
    exitCode: after && !after.running ? after.exitCode : undefined,
    error: stopped.code !== 0 ? firstLine(stopped.stderr) : undefined,
  };
  return o;
}

export interface VerifyResult {
  code: 0 | 1;
  given: Given;
  results: PointResult[];
  container: string;
}

/** Verifies one image and prints the report; the container is gone when this returns or throws. */
export async function verifyImage(
  image: string,
  timeoutSeconds: number,
  out: Out,
  healthcheck?: string,
): Promise<VerifyResult> {
  await assertEngine();
  await ensureImage(image, out);
  const suffix = randomBytes(4).toString('hex');
  const name = `bluegreen-verify-${process.pid}-${suffix}`;
  const given: Given = {
    pool: VERIFY_GIVEN.pool,
    release: `verify-${suffix}`,
    port: VERIFY_GIVEN.port,
    timeoutSeconds,
    graceSeconds: POOL_STOP_GRACE_SECONDS,
  };
  // Ctrl-C or a kill while the container runs: remove it before going (synchronously: we are exiting).
  const onSignal = (signal: NodeJS.Signals) => {
    spawnSync('docker', ['rm', '--force', '--volumes', name], { stdio: 'ignore', timeout: 30_000 });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    out(`verify-image: running ${image} as ${name} (127.0.0.1 only) ...`);
    const results = judgeImage(await observe(image, name, given, healthcheck));
    for (const line of renderVerifyReport(image, given, results)) out(line);
    return { code: verifyExitCode(results), given, results, container: name };
  } finally {
    await docker(['rm', '--force', '--volumes', name], 60_000);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** The CLI command: 0 every point passed, 1 a point failed; bad input and no engine throw (exit 2). */
export async function verifyImageCommand(args: string[], _env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const { image, timeoutSeconds, healthcheck } = parseVerifyImageArgs(args);
  return (await verifyImage(image, timeoutSeconds, out, healthcheck)).code;
}
