// The pool contract as verify-image judges it (core/image-contract.ts): each point from what was
// observed, the report, the arguments, and the CLI's exit 2 without a Docker Engine. The Docker
// runs themselves: test/docker/verify-image.test.ts.
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  CONTRACT_POINTS,
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
  type PointId,
  type Probe,
} from '../../core/image-contract';
import { REPO_ROOT } from '../../local/paths';

const given: Given = { pool: 'green', release: 'verify-1', port: 3917, timeoutSeconds: 60, graceSeconds: 10 };
const answer = (status: number, body: unknown = {}, headers: Record<string, string> = {}): Probe => ({
  status,
  headers: { 'x-app-pool': 'green', 'x-release-id': 'verify-1', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

/** What a good image shows: every point holds, with a slow route. */
const good = (): Observations => ({
  given,
  healthz: { ...answer(200, { status: 'ok' }), afterMs: 800 },
  healthcheck: { command: DEFAULT_POOL_HEALTHCHECK, custom: false, exitCode: 0, output: '' },
  version: answer(200, { release: 'verify-1' }),
  logs: { text: '{"msg":"listening"}\n', requests: 5 },
  slowProbe: { ...answer(200), tookMs: 1510 },
  stop: { inFlight: answer(200), exitCode: 0 },
});

const verdicts = (o: Observations) =>
  Object.fromEntries(judgeImage(o).map((r) => [r.id, r.verdict])) as Record<PointId, string>;
const reasonOf = (o: Observations, id: PointId) => judgeImage(o).find((r) => r.id === id)!.reason;
const failing = (o: Observations) =>
  judgeImage(o)
    .filter((r) => r.verdict !== 'pass')
    .map((r) => r.id);

test('a good image passes every point, in the contract order, exit 0', () => {
  const results = judgeImage(good());
  expect(results.map((r) => r.id)).toEqual(CONTRACT_POINTS.map((p) => p.id));
  expect(results.every((r) => r.verdict === 'pass')).toBe(true);
  expect(verifyExitCode(results)).toBe(0);
  expect(reasonOf(good(), 'healthz')).toBe('GET /healthz answered 200 after 0.8 s');
  expect(reasonOf(good(), 'sigterm')).toBe(
    'a 1500 ms request in flight at docker stop answered 200; exited 0 within the 10 s grace',
  );
});

describe('healthz', () => {
  test('a 404 for the whole timeout fails with the status', () => {
    const o = { ...good(), healthz: answer(404) };
    expect(failing(o)).toEqual(['healthz']);
    expect(reasonOf(o, 'healthz')).toBe(
      "GET /healthz answered 404, not 200, for 60 s (the host's health check needs 200)",
    );
  });
  test('no answer names the PORT and the last error', () => {
    const o: Observations = { given, healthz: { error: 'connect ECONNREFUSED 127.0.0.1:41000' } };
    expect(reasonOf(o, 'healthz')).toBe(
      'nothing answered GET /healthz on PORT 3917 within 60 s (last: no answer (connect ECONNREFUSED 127.0.0.1:41000))',
    );
  });
  test('a container that exits says its status and last log line', () => {
    const o: Observations = {
      given,
      healthz: { error: 'socket hang up' },
      exited: { exitCode: 1, lastLogLine: 'Error: Cannot find module express' },
      logs: { text: '', requests: 3 },
    };
    expect(reasonOf(o, 'healthz')).toBe(
      'the container exited with status 1 before /healthz answered 200 (last log line: Error: Cannot find module express)',
    );
    expect(reasonOf(o, 'port')).toBe('the container exited (status 1) without answering on PORT=3917');
    expect(verdicts(o)).toMatchObject({ healthcheck: 'skip', version: 'skip', 'pool-header': 'skip', sigterm: 'skip' });
    expect(reasonOf(o, 'version')).toBe('not reached: the container exited while starting');
    // What it printed before it exited is the logs point's evidence.
    const printed = { ...o, logs: { text: 'booting\nError: Cannot find module express', requests: 3 } };
    expect(renderVerifyReport('shop:1', given, judgeImage(printed)).at(-1)).toBe(
      'shop:1 breaks the pool contract: healthz, port (not checked: healthcheck, version, pool-header, sigterm) (docs/POOL-CONTRACT.md)',
    );
    expect(verifyExitCode(judgeImage(o))).toBe(1);
  });
  test('docker run failing fails healthz with its line, the rest not reached', () => {
    const o: Observations = { given, runError: 'exec: "server": executable file not found in $PATH' };
    expect(reasonOf(o, 'healthz')).toBe('docker run failed: exec: "server": executable file not found in $PATH');
    expect(verdicts(o)).toEqual({
      healthz: 'fail',
      healthcheck: 'skip',
      version: 'skip',
      'pool-header': 'skip',
      port: 'skip',
      logs: 'skip',
      sigterm: 'skip',
    });
  });
});

describe('version: what the host smoke step and local mode check', () => {
  test.each<[string, Probe, string]>([
    [
      'not 200',
      answer(503, { release: 'verify-1' }),
      'GET /version answered 503, expected 200 with {"release":"verify-1"}',
    ],
    ['not JSON', answer(200, 'verify-1'), 'GET /version is not JSON (verify-1), expected {"release":"verify-1"}'],
    [
      'another release',
      answer(200, { release: 'v7' }),
      'GET /version\'s "release" is "v7", expected "verify-1" (RELEASE_ID)',
    ],
    [
      'no release',
      answer(200, { version: 'verify-1' }),
      'GET /version\'s "release" is null, expected "verify-1" (RELEASE_ID)',
    ],
    [
      'no X-Release-Id',
      { status: 200, headers: { 'x-app-pool': 'green' }, body: '{"release":"verify-1"}' },
      'GET /version\'s X-Release-Id is missing, expected "verify-1"',
    ],
    ['no answer', { error: 'no answer within 2000 ms' }, 'GET /version: no answer (no answer within 2000 ms)'],
  ])('%s fails', (_what, version, reason) => {
    const o = { ...good(), version };
    expect(reasonOf(o, 'version')).toBe(reason);
    expect(verdicts(o).version).toBe('fail');
  });
});

describe("the host's health check", () => {
  test('no node for the default command: told to set poolHealthcheck and pass it', () => {
    const o = {
      ...good(),
      healthcheck: {
        command: DEFAULT_POOL_HEALTHCHECK,
        custom: false,
        exitCode: 127,
        output: '/bin/sh: 1: node: not found\n',
      },
    };
    expect(failing(o)).toEqual(['healthcheck']);
    expect(reasonOf(o, 'healthcheck')).toBe(
      "no node in the image for the host's default health check: give the stage a poolHealthcheck (e.g. wget -q -O /dev/null http://127.0.0.1:3000/healthz) and pass it as --healthcheck",
    );
  });
  test("a stage's command that fails says its exit status and output", () => {
    const o = {
      ...good(),
      healthcheck: {
        command: 'curl -fsS http://127.0.0.1:3000/healthz',
        custom: true,
        exitCode: 127,
        output: 'sh: curl: not found',
      },
    };
    expect(reasonOf(o, 'healthcheck')).toBe(
      '--healthcheck "curl -fsS http://127.0.0.1:3000/healthz" exits 127 in the container: sh: curl: not found',
    );
    expect(reasonOf({ ...o, healthcheck: { ...o.healthcheck, exitCode: 0 } }, 'healthcheck')).toBe(
      '--healthcheck "curl -fsS http://127.0.0.1:3000/healthz" exits 0 in the container',
    );
  });
  test('written for port 3000, run against the PORT given', () => {
    expect(healthcheckForPort(DEFAULT_POOL_HEALTHCHECK, 3917)).toContain("'http://127.0.0.1:3917/healthz'");
    expect(healthcheckForPort('wget -q -O /dev/null http://localhost:3000/healthz', 3917)).toBe(
      'wget -q -O /dev/null http://localhost:3917/healthz',
    );
    expect(healthcheckForPort('python /app/check.py', 3917)).toBe('python /app/check.py');
    expect(healthcheckForPort('wget http://127.0.0.1:30001/', 3917)).toBe('wget http://127.0.0.1:30001/');
  });
});

test('X-App-Pool must be the APP_POOL given, on /healthz and on /version', () => {
  const wrong = { ...good(), version: answer(200, { release: 'verify-1' }, { 'x-app-pool': 'blue' }) };
  expect(reasonOf(wrong, 'pool-header')).toBe('/version answered with X-App-Pool "blue", expected "green" (APP_POOL)');
  const missing: Observations = {
    ...good(),
    healthz: { status: 200, headers: {}, body: 'ok', afterMs: 10 },
  };
  expect(reasonOf(missing, 'pool-header')).toBe(
    '/healthz answered with no X-App-Pool header, expected "green" (APP_POOL)',
  );
  expect(reasonOf(good(), 'pool-header')).toBe('X-App-Pool: green on /healthz and /version');
});

test('port: an image that answers only on 3000 is told to read PORT', () => {
  const o: Observations = {
    given,
    healthz: { error: 'socket hang up' },
    version: { error: 'socket hang up' },
    defaultPort: answer(200),
    logs: { text: 'listening on 3000\n', requests: 10 },
  };
  expect(reasonOf(o, 'port')).toBe(
    'answers on 3000, not on the PORT=3917 it was given: read PORT from the environment',
  );
  const nothing = { ...o, defaultPort: { error: 'socket hang up' } };
  expect(reasonOf(nothing, 'port')).toMatch(
    /^nothing answered HTTP on PORT=3917 \(nor on 3000\) within 60 s; listen on 0\.0\.0\.0/,
  );
  // A 404 on /healthz still shows the port is right.
  expect(verdicts({ ...good(), healthz: answer(404) }).port).toBe('pass');
});

test('logs: nothing in docker logs after the requests fails', () => {
  const o = { ...good(), logs: { text: '\n \n', requests: 4 } };
  expect(reasonOf(o, 'logs')).toBe(
    'docker logs shows nothing after the start and 4 requests: write logs to stdout/stderr',
  );
  expect(reasonOf(good(), 'logs')).toBe('docker logs shows 1 line, first: {"msg":"listening"}');
});

describe('sigterm: graceful stop', () => {
  test('SIGKILLed after the grace (137) fails, naming the usual cause', () => {
    const o = { ...good(), stop: { inFlight: { error: 'socket hang up' }, exitCode: 137 } };
    expect(reasonOf(o, 'sigterm')).toMatch(
      /^SIGKILLed \(exit 137\) after the 10 s grace: the process did not exit on SIGTERM/,
    );
  });
  test('a request in flight that is cut fails, even with exit 0', () => {
    const o = { ...good(), stop: { inFlight: { error: 'socket hang up' }, exitCode: 0 } };
    expect(reasonOf(o, 'sigterm')).toBe(
      'a 1500 ms request in flight at docker stop ended with no answer (socket hang up), not 200: finish requests in flight',
    );
  });
  test('without a slow route: the exit status alone; 0 and 143 pass, others fail', () => {
    const noSlow = { ...good(), slowProbe: { ...answer(404), tookMs: 3 } };
    expect(reasonOf({ ...noSlow, stop: { exitCode: 0 } }, 'sigterm')).toBe(
      'exited 0 on SIGTERM within the 10 s grace (no /slow/ route: requests in flight not checked)',
    );
    expect(verdicts({ ...noSlow, stop: { exitCode: 143 } }).sigterm).toBe('pass');
    expect(reasonOf({ ...noSlow, stop: { exitCode: 1 } }, 'sigterm')).toBe(
      'exited with status 1 on SIGTERM, expected 0 (or 143)',
    );
  });
  test('a /slow/ that answers at once is a catch-all, not a slow route: the in-flight request is not judged', () => {
    const fast = { ...good(), slowProbe: { ...answer(200), tookMs: 5 }, stop: { exitCode: 0 } };
    expect(reasonOf(fast, 'sigterm')).toMatch(/requests in flight not checked/);
    expect(SLOW_PROBE.ms).toBeLessThan(2000); // the demo app drains for 2 s at most (app/server.js)
  });
  test('docker stop failing with no exit status fails', () => {
    expect(reasonOf({ ...good(), stop: { error: 'Error response from daemon: boom' } }, 'sigterm')).toBe(
      'docker stop failed: Error response from daemon: boom',
    );
  });
});

test('the report: a table of every point and a last line naming the failed ones', () => {
  const o = { ...good(), healthz: answer(404), stop: { inFlight: answer(200), exitCode: 137 } };
  const lines = renderVerifyReport('shop:1', given, judgeImage(o));
  expect(lines[0]).toBe(
    'verify-image shop:1: APP_POOL=green RELEASE_ID=verify-1 PORT=3917, timeout 60 s, stop grace 10 s',
  );
  expect(lines[1]).toMatch(/^point +result +reason$/);
  expect(lines.slice(2, 9).map((l) => l.split(/ {2,}/)[1])).toEqual([
    'FAIL',
    'PASS',
    'PASS',
    'PASS',
    'PASS',
    'PASS',
    'FAIL',
  ]);
  expect(lines[2]).toMatch(/^starts, \/healthz 200 +FAIL +GET \/healthz answered 404/);
  expect(lines.at(-1)).toBe('shop:1 breaks the pool contract: healthz, sigterm (docs/POOL-CONTRACT.md)');
  expect(lines).toHaveLength(10);
});

describe('arguments', () => {
  test('IMAGE and --timeout', () => {
    expect(parseVerifyImageArgs(['shop:1'])).toEqual({ image: 'shop:1', timeoutSeconds: 60 });
    expect(parseVerifyImageArgs(['--timeout', '2m', 'registry.example/shop@sha256:' + 'a'.repeat(64)])).toEqual({
      image: `registry.example/shop@sha256:${'a'.repeat(64)}`,
      timeoutSeconds: 120,
    });
    expect(parseVerifyImageArgs(['shop:1', '--timeout=90s']).timeoutSeconds).toBe(90);
    expect(parseVerifyImageArgs(['shop:1', '--healthcheck', 'python /app/check.py'])).toEqual({
      image: 'shop:1',
      timeoutSeconds: 60,
      healthcheck: 'python /app/check.py',
    });
  });
  test.each<[string[], RegExp]>([
    [[], /^IMAGE is missing/],
    [['a:1', 'b:1'], /^one IMAGE only, got "a:1" and "b:1"/],
    [['Shop:1'], /^IMAGE must be an image reference/],
    [['shop;rm -rf /'], /^IMAGE must be an image reference/],
    [['shop:1', '--timeout'], /^--timeout needs a value/],
    [['shop:1', '--timeout', 'soon'], /^--timeout must be a duration/],
    [['shop:1', '--timeout', '11m'], /^--timeout must be between 1s and 600s/],
    [['shop:1', '--pool', 'blue'], /^unknown option "--pool"/],
    [['shop:1', '--healthcheck'], /^--healthcheck must be a command of letters, .* got nothing$/],
    [
      ['shop:1', "--healthcheck=curl -f 'http://x'"],
      /^--healthcheck must be .*\(as the stage's poolHealthcheck\), got "curl -f 'http:\/\/x'"$/,
    ],
  ])('%j is refused naming the argument', (args, message) => {
    expect(() => parseVerifyImageArgs(args)).toThrow(message);
  });
});

test('what verify-image gives differs from the host defaults, and the host facts match the Compose file', () => {
  expect(VERIFY_GIVEN.port).not.toBe(POOL_CONTAINER_PORT);
  const compose = readFileSync(path.join(REPO_ROOT, 'userdata', 'docker-compose.yml'), 'utf8');
  // Per pool since pool options (core/pool-options.ts drainSeconds): each pool's default is this.
  for (const pool of ['BLUE', 'GREEN'])
    expect(compose).toContain(`stop_grace_period: \${${pool}_STOP_GRACE:-${POOL_STOP_GRACE_SECONDS}s}`);
  expect(compose.match(new RegExp(`^      PORT: "${POOL_CONTAINER_PORT}"$`, 'gm'))).toHaveLength(2);
  // The default health check, as the YAML double-quoted string holds it.
  expect(compose).toContain(`\${POOL_HEALTHCHECK:-${DEFAULT_POOL_HEALTHCHECK.replace(/"/g, '\\"')}}"]`);
  expect(DEFAULT_POOL_HEALTHCHECK).toContain(`http://127.0.0.1:${POOL_CONTAINER_PORT}/healthz`);
});

describe('the CLI without a Docker Engine: exit 2, one line', () => {
  const cli = (env: NodeJS.ProcessEnv, ...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(
        process.execPath,
        [path.join(REPO_ROOT, 'bin', 'bluegreen.cjs'), 'verify-image', ...args],
        { env: { ...process.env, ...env }, cwd: REPO_ROOT },
        (error, stdout, stderr) =>
          resolve({
            code: error ? Number((error as { code?: number }).code ?? 1) : 0,
            out: stdout.trimEnd(),
            err: stderr.trimEnd(),
          }),
      );
    });

  test('no docker CLI on PATH', async () => {
    const r = await cli({ PATH: '/nonexistent' }, 'shop:1');
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      'bluegreen verify-image: no Docker Engine answers (docker version: the docker CLI is not on PATH): start Docker or set DOCKER_HOST',
    );
  });

  const hasDockerCli = spawnSync('docker', ['--version']).status === 0;
  (hasDockerCli ? test : test.skip)('a docker CLI whose engine does not answer', async () => {
    const r = await cli({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' }, 'shop:1');
    expect(r.code).toBe(2);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^bluegreen verify-image: no Docker Engine answers \(docker version: .+\): start Docker/);
  });

  test('bad input before any Docker call; --help prints the usage', async () => {
    const bad = await cli({ PATH: '/nonexistent' }, 'shop:1', '--timeout', 'x');
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('bluegreen verify-image: --timeout must be a duration like 30s, 2m or 1h, got "x"');
    const help = await cli({}, '--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('usage: bluegreen verify-image IMAGE [--timeout 60s] [--healthcheck CMD]');
  });
});
