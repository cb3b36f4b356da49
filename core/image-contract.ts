// The pool contract (docs/POOL-CONTRACT.md) as `bluegreen verify-image` checks it: the points, what
// the check gives the image, the judgement of each point from what was observed, and the report.
// Pure: the Docker and HTTP I/O that gathers the observations is local/verify-image.ts.
import { POOL_OPTIONS_RULE } from './pool-options';
import { ConfigError } from './config-error';
import { parseDuration } from './duration';
import { POOL_HEALTHCHECK_PATTERN, POOL_HEALTHCHECK_WHAT, POOL_STATE_REGEXPS } from './patterns';
import type { Pool } from './pools';

/** The PORT the host gives every pool container (userdata/docker-compose.yml; held by a test). */
export const POOL_CONTAINER_PORT = 3000;
/**
 * The host's health check when the stage sets no `poolHealthcheck`: docker-compose.yml's default
 * (`CMD-SHELL`, so `/bin/sh -c` inside the container; held to the file by a test). It needs `node`.
 */
export const DEFAULT_POOL_HEALTHCHECK =
  "node -e \"require('http').get('http://127.0.0.1:3000/healthz',r=>process.exit(r.statusCode==200?0:1)).on('error',()=>process.exit(1))\"";

/** A health check command as written for port 3000, aimed at `port` instead (verify-image's PORT). */
export function healthcheckForPort(command: string, port: number): string {
  return command.replace(/\b(127\.0\.0\.1|localhost):3000\b/g, `$1:${port}`);
}
/** docker-compose.yml's stop_grace_period: SIGTERM, then this long before SIGKILL (held by a test). */
export const POOL_STOP_GRACE_SECONDS = POOL_OPTIONS_RULE.seconds.drainSeconds.default;

/**
 * What verify-image gives the image. A PORT other than the host's 3000, so an image that ignores
 * PORT shows; green, since an app that ignores APP_POOL tends to default to the first pool, blue.
 */
export const VERIFY_GIVEN = { pool: 'green' as Pool, port: 3917 } as const;
export const VERIFY_TIMEOUT_DEFAULT_SECONDS = 60;
export const VERIFY_TIMEOUT_MAX_SECONDS = 600;
/**
 * The graceful-stop probe: a request to the demo app's slow route (`/slow/<any>?ms=N`), sent this
 * long before `docker stop`. Shorter than the demo app's own 2 s drain limit, so a graceful app
 * finishes it; an image without such a route is only checked for its exit status.
 */
export const SLOW_PROBE = { path: '/slow/verify-image', ms: 1500, stopAfterMs: 500 } as const;
/** A /slow/ answer this much faster than asked for is not slow: a catch-all route, not a wait. */
const SLOW_ENOUGH_SHARE = 0.9;

export const CONTRACT_POINTS = [
  { id: 'healthz', title: 'starts, /healthz 200' },
  { id: 'healthcheck', title: "host's health check" },
  { id: 'version', title: '/version release' },
  { id: 'pool-header', title: 'X-App-Pool header' },
  { id: 'port', title: 'listens on PORT' },
  { id: 'logs', title: 'logs to stdout/stderr' },
  { id: 'sigterm', title: 'graceful SIGTERM' },
] as const;
export type PointId = (typeof CONTRACT_POINTS)[number]['id'];

/** An HTTP answer as seen (header names in lower case), or why none came. */
export type Probe = { status: number; headers: Record<string, string | undefined>; body: string } | { error: string };

export interface Given {
  pool: Pool;
  release: string;
  port: number;
  timeoutSeconds: number;
  graceSeconds: number;
}

export interface Observations {
  given: Given;
  /** `docker run` itself failed (bad entrypoint, port clash): nothing else was observed. */
  runError?: string;
  /** GET /healthz on the given PORT: the first 200, or the last answer when none came in time. */
  healthz?: Probe & { afterMs?: number };
  /** The container stopped by itself before /healthz answered 200. */
  exited?: { exitCode: number; lastLogLine?: string };
  /** The host's health check command, run in the container as Compose does (`/bin/sh -c`). */
  healthcheck?: { command: string; custom: boolean; exitCode: number; output: string };
  /** GET /version on the given PORT. */
  version?: Probe;
  /** GET /healthz on the default port 3000, asked only when nothing answered on the given PORT. */
  defaultPort?: Probe;
  /** `docker logs` (both streams) after the requests above; `requests` = how many were sent. */
  logs?: { text: string; requests: number } | { error: string };
  /** GET SLOW_PROBE before the stop, with how long it took: does the image have a slow route? */
  slowProbe?: Probe & { tookMs: number };
  /** `docker stop --time grace` with a slow request in flight (when the image has the route). */
  stop?: { inFlight?: Probe; exitCode?: number; error?: string };
}

export type Verdict = 'pass' | 'fail' | 'skip';
export interface PointResult {
  id: PointId;
  title: string;
  verdict: Verdict;
  reason: string;
}

/** Why a point could not be observed: what stopped the run before it. */
const notReached = (o: Observations) =>
  `not reached: ${o.runError ? 'docker run failed' : o.exited ? 'the container exited while starting' : 'nothing answered on PORT'}`;
const isAnswer = (p: Probe | undefined): p is Extract<Probe, { status: number }> => !!p && 'status' in p;
const oneLine = (text: string, max = 100) => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};
const what = (p: Probe | undefined) =>
  isAnswer(p) ? `${p.status}` : p ? `no answer (${oneLine(p.error, 60)})` : 'no answer';

/** Whether the image has a route that really waits (the demo app's /slow/): the in-flight probe needs one. */
export function hasSlowRoute(probe: Observations['slowProbe']): boolean {
  return isAnswer(probe) && probe.status === 200 && probe.tookMs >= SLOW_PROBE.ms * SLOW_ENOUGH_SHARE;
}

function judgeHealthz(o: Observations): [Verdict, string] {
  const { port, timeoutSeconds } = o.given;
  if (o.runError) return ['fail', `docker run failed: ${oneLine(o.runError)}`];
  const h = o.healthz;
  if (isAnswer(h) && h.status === 200)
    return ['pass', `GET /healthz answered 200 after ${((h.afterMs ?? 0) / 1000).toFixed(1)} s`];
  if (o.exited)
    return [
      'fail',
      `the container exited with status ${o.exited.exitCode} before /healthz answered 200` +
        (o.exited.lastLogLine ? ` (last log line: ${oneLine(o.exited.lastLogLine, 80)})` : ''),
    ];
  if (isAnswer(h))
    return [
      'fail',
      `GET /healthz answered ${h.status}, not 200, for ${timeoutSeconds} s (the host's health check needs 200)`,
    ];
  return ['fail', `nothing answered GET /healthz on PORT ${port} within ${timeoutSeconds} s (last: ${what(h)})`];
}

function judgeHealthcheck(o: Observations): [Verdict, string] {
  const h = o.healthcheck;
  if (!h) return ['skip', notReached(o)];
  const which = h.custom ? `--healthcheck "${h.command}"` : "the host's default (a node one-liner)";
  if (h.exitCode === 0) return ['pass', `${which} exits 0 in the container`];
  if (!h.custom && (h.exitCode === 127 || /\bnode\b.*not found|not found.*\bnode\b/i.test(h.output)))
    return [
      'fail',
      "no node in the image for the host's default health check: give the stage a poolHealthcheck (e.g. wget -q -O /dev/null http://127.0.0.1:3000/healthz) and pass it as --healthcheck",
    ];
  return [
    'fail',
    `${which} exits ${h.exitCode} in the container${h.output.trim() ? `: ${oneLine(h.output, 80)}` : ''}`,
  ];
}

function judgeVersion(o: Observations): [Verdict, string] {
  const v = o.version;
  if (!v) return ['skip', notReached(o)];
  if (!isAnswer(v)) return ['fail', `GET /version: ${what(v)}`];
  const expected = o.given.release;
  if (v.status !== 200)
    return ['fail', `GET /version answered ${v.status}, expected 200 with {"release":"${expected}"}`];
  let release: unknown;
  try {
    release = (JSON.parse(v.body) as { release?: unknown } | null)?.release;
  } catch {
    return ['fail', `GET /version is not JSON (${oneLine(v.body, 40)}), expected {"release":"${expected}"}`];
  }
  if (release !== expected)
    return [
      'fail',
      `GET /version's "release" is ${JSON.stringify(release ?? null)}, expected "${expected}" (RELEASE_ID)`,
    ];
  const header = v.headers['x-release-id'];
  if (header !== expected)
    return [
      'fail',
      `GET /version's X-Release-Id is ${header === undefined ? 'missing' : `"${header}"`}, expected "${expected}"`,
    ];
  return ['pass', `GET /version answers release ${expected} (body and X-Release-Id)`];
}

function judgePoolHeader(o: Observations): [Verdict, string] {
  const answers = (
    [
      ['/healthz', o.healthz],
      ['/version', o.version],
    ] as const
  ).filter(([, p]) => isAnswer(p)) as Array<[string, Extract<Probe, { status: number }>]>;
  if (answers.length === 0) return ['skip', notReached(o)];
  for (const [path, answer] of answers) {
    const got = answer.headers['x-app-pool'];
    if (got !== o.given.pool)
      return [
        'fail',
        `${path} answered with ${got === undefined ? 'no X-App-Pool header' : `X-App-Pool "${got}"`}, expected "${o.given.pool}" (APP_POOL)`,
      ];
  }
  return ['pass', `X-App-Pool: ${o.given.pool} on ${answers.map(([p]) => p).join(' and ')}`];
}

function judgePort(o: Observations): [Verdict, string] {
  const { port } = o.given;
  if (o.runError) return ['skip', notReached(o)];
  if (isAnswer(o.healthz) || isAnswer(o.version))
    return ['pass', `answers HTTP on PORT=${port}, the port it was given (not the default ${POOL_CONTAINER_PORT})`];
  if (isAnswer(o.defaultPort))
    return [
      'fail',
      `answers on ${POOL_CONTAINER_PORT}, not on the PORT=${port} it was given: read PORT from the environment`,
    ];
  if (o.exited) return ['fail', `the container exited (status ${o.exited.exitCode}) without answering on PORT=${port}`];
  return [
    'fail',
    `nothing answered HTTP on PORT=${port} (nor on ${POOL_CONTAINER_PORT}) within ${o.given.timeoutSeconds} s; listen on 0.0.0.0, not 127.0.0.1`,
  ];
}

function judgeLogs(o: Observations): [Verdict, string] {
  const l = o.logs;
  if (!l) return ['skip', notReached(o)];
  if ('error' in l) return ['fail', `docker logs failed: ${oneLine(l.error)}`];
  const lines = l.text.split('\n').filter((s) => s.trim() !== '');
  if (lines.length === 0)
    return [
      'fail',
      `docker logs shows nothing after the start and ${l.requests} requests: write logs to stdout/stderr`,
    ];
  return [
    'pass',
    `docker logs shows ${lines.length} line${lines.length === 1 ? '' : 's'}, first: ${oneLine(lines[0], 60)}`,
  ];
}

function judgeSigterm(o: Observations): [Verdict, string] {
  const s = o.stop;
  const grace = o.given.graceSeconds;
  if (!s) return ['skip', o.exited || o.runError ? notReached(o) : 'not reached: the container had stopped'];
  if (s.error !== undefined && s.exitCode === undefined) return ['fail', `docker stop failed: ${oneLine(s.error)}`];
  const code = s.exitCode;
  if (code === 137)
    return [
      'fail',
      `SIGKILLed (exit 137) after the ${grace} s grace: the process did not exit on SIGTERM (a shell as PID 1? exec the server, or add an init)`,
    ];
  if (code !== 0 && code !== 143) return ['fail', `exited with status ${String(code)} on SIGTERM, expected 0 (or 143)`];
  const slow = hasSlowRoute(o.slowProbe);
  if (slow) {
    const f = s.inFlight;
    if (!isAnswer(f) || f.status !== 200)
      return [
        'fail',
        `a ${SLOW_PROBE.ms} ms request in flight at docker stop ended with ${what(f)}, not 200: finish requests in flight`,
      ];
    return [
      'pass',
      `a ${SLOW_PROBE.ms} ms request in flight at docker stop answered 200; exited ${code} within the ${grace} s grace`,
    ];
  }
  return [
    'pass',
    `exited ${code} on SIGTERM within the ${grace} s grace (no /${SLOW_PROBE.path.split('/')[1]}/ route: requests in flight not checked)`,
  ];
}

const JUDGES: Record<PointId, (o: Observations) => [Verdict, string]> = {
  healthz: judgeHealthz,
  healthcheck: judgeHealthcheck,
  version: judgeVersion,
  'pool-header': judgePoolHeader,
  port: judgePort,
  logs: judgeLogs,
  sigterm: judgeSigterm,
};

/** Each contract point's verdict, in CONTRACT_POINTS order, with a one-line reason. */
export function judgeImage(o: Observations): PointResult[] {
  return CONTRACT_POINTS.map(({ id, title }) => {
    const [verdict, reason] = JUDGES[id](o);
    return { id, title, verdict, reason };
  });
}

/** 0 when every point passed, 1 otherwise (a skipped point was not shown to hold). */
export function verifyExitCode(results: readonly PointResult[]): 0 | 1 {
  return results.every((r) => r.verdict === 'pass') ? 0 : 1;
}

/** The report: one line of what was given, the table, one line of the outcome. */
export function renderVerifyReport(image: string, given: Given, results: readonly PointResult[]): string[] {
  const rows: Array<[string, string, string]> = [
    ['point', 'result', 'reason'],
    ...results.map((r): [string, string, string] => [r.title, r.verdict.toUpperCase(), r.reason]),
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const failed = results.filter((r) => r.verdict === 'fail').map((r) => r.id);
  const skipped = results.filter((r) => r.verdict === 'skip').map((r) => r.id);
  return [
    `verify-image ${image}: APP_POOL=${given.pool} RELEASE_ID=${given.release} PORT=${given.port}, timeout ${given.timeoutSeconds} s, stop grace ${given.graceSeconds} s`,
    ...rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`),
    failed.length + skipped.length === 0
      ? `${image} keeps the pool contract (docs/POOL-CONTRACT.md)`
      : `${image} breaks the pool contract: ${failed.join(', ')}${skipped.length ? ` (not checked: ${skipped.join(', ')})` : ''} (docs/POOL-CONTRACT.md)`,
  ];
}

export const VERIFY_IMAGE_USAGE = `usage: bluegreen verify-image IMAGE [--timeout 60s] [--healthcheck CMD]
  Runs IMAGE on the local Docker Engine (published on 127.0.0.1 only, removed at the end) with
  APP_POOL=${VERIFY_GIVEN.pool}, a fresh RELEASE_ID and PORT=${VERIFY_GIVEN.port}, and checks the pool contract
  (docs/POOL-CONTRACT.md): /healthz 200, the host's health check, /version's release, X-App-Pool,
  PORT, logs, graceful SIGTERM.
  --timeout D        how long the image has to answer /healthz 200 (default ${VERIFY_TIMEOUT_DEFAULT_SECONDS}s, at most ${VERIFY_TIMEOUT_MAX_SECONDS}s)
  --healthcheck CMD  the stage's poolHealthcheck, if it sets one (default: the host's node one-liner);
                     written for port 3000 as on a host, run against PORT ${VERIFY_GIVEN.port}
  Exit codes: 0 every point passed, 1 a point failed, 2 bad input or no Docker Engine.`;

export interface VerifyImageArgs {
  image: string;
  timeoutSeconds: number;
  /** The stage's poolHealthcheck; undefined: the host's default. */
  healthcheck?: string;
}

/** `IMAGE [--timeout D] [--healthcheck CMD]`; throws a ConfigError naming the argument. */
export function parseVerifyImageArgs(args: readonly string[]): VerifyImageArgs {
  let image: string | undefined;
  let timeoutSeconds = VERIFY_TIMEOUT_DEFAULT_SECONDS;
  let healthcheck: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const flag = /^(--timeout|--healthcheck)(?:=(.*))?$/.exec(arg);
    if (flag) {
      const value = flag[2] ?? args[++i];
      if (flag[1] === '--timeout') {
        if (value === undefined) throw new ConfigError('--timeout needs a value like 60s or 2m');
        timeoutSeconds = parseDuration(value, '--timeout', VERIFY_TIMEOUT_MAX_SECONDS);
      } else {
        if (value === undefined || !POOL_HEALTHCHECK_PATTERN.test(value))
          throw new ConfigError(
            `--healthcheck must be ${POOL_HEALTHCHECK_WHAT} (as the stage's poolHealthcheck), got ${value === undefined ? 'nothing' : `"${value}"`}`,
          );
        healthcheck = value;
      }
    } else if (arg.startsWith('-')) {
      throw new ConfigError(`unknown option "${arg}" (usage: bluegreen verify-image IMAGE [--timeout 60s])`);
    } else if (image !== undefined) {
      throw new ConfigError(`one IMAGE only, got "${image}" and "${arg}"`);
    } else {
      image = arg;
    }
  }
  if (image === undefined)
    throw new ConfigError('IMAGE is missing (usage: bluegreen verify-image IMAGE [--timeout 60s])');
  if (!POOL_STATE_REGEXPS.image.test(image))
    throw new ConfigError(
      `IMAGE must be an image reference like registry/name:tag or name@sha256:<digest> (lower-case name), got "${image}"`,
    );
  return healthcheck === undefined ? { image, timeoutSeconds } : { image, timeoutSeconds, healthcheck };
}
