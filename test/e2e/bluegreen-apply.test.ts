// The host's bluegreen-apply, for real, without Docker: the aws CLI reads the pool state from
// moto_server (put there as an operator or the release CLI would), and the active pool and canary
// share go through the repo's switch-pool.sh to a real local nginx (no reload). The pool containers
// (pull, recreate, health, smoke, addresses) are exercised on a Docker Engine in test/docker/.
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { httpRequest } from '../../support/http';
import { summarize } from '../../local/load';
import { LocalStack } from '../../local/stack';
import { runScript, switchEnv } from '../../local/switch';
import { proxySettingsEnv, proxySettingsFromEnv } from '../../core/proxy-settings';
import { parameterNames } from '../../core/names';
import { boundEnv } from '../../core/release-record';
import { parseStepLines } from '../../core/step-line';
import { startLoad, TEST_LOAD } from '../helpers/load';
import { createLedgerTable, Moto, putParameters, startMoto } from '../helpers/moto';
import { ledgerHostEnv, putLedgerHead } from '../helpers/ledger';
import { ledgerTableName } from '../../core/release-ledger';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { startThrottleProxy } from '../helpers/throttle-proxy';
import { synthTemplate } from '../helpers/cdk';
import { startTestStack, waitFor, workerPids } from '../helpers/stack';

const APPLY = path.join(REPO_ROOT, 'userdata', 'bluegreen-apply.sh');
const STAGE = 'it';
const NAMES = parameterNames(STAGE);
const PARAM = NAMES.activePool;

let moto: Moto;
let stack: LocalStack;
let stateDir: string;
beforeAll(async () => {
  moto = await startMoto();
  await createLedgerTable(moto, STAGE);
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-apply-state-'));
  await putParameters(moto, { [NAMES.canaryPercent]: '0' });
});
afterEach(async () => {
  await stack?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

/** What an operator types to flip the pool. */
const putParameter = (value: string, name = PARAM) => putParameters(moto, { [name]: value });

function applyEnv(extra: Record<string, string> = {}) {
  return {
    ...moto.env,
    ...switchEnv(stack.state),
    STAGE,
    BLUEGREEN_HOME: REPO_ROOT,
    BLUEGREEN_STATE_DIR: stateDir,
    BLUEGREEN_MANAGE_POOLS: 'no',
    BLUEGREEN_ENV_FILE: '/nonexistent/env',
    ...extra,
  };
}
const apply = (...args: string[]) => runScript(APPLY, args, applyEnv());

const upstreamConf = () => readFileSync(path.join(stack.state.confDir, 'upstream.conf'), 'utf8');
const greenActive = () => existsSync(path.join(stack.state.switchDir, 'green-active'));
const servedBy = async (pool: string) =>
  (await httpRequest(`${stack.url}/version`, { agent: false })).headers['x-app-pool'] === pool;

test('a flip put in SSM moves traffic when bluegreen-apply runs: no reload, 0 failed for a client that never re-sends', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  await putParameter('blue');
  const workers = workerPids(stack);
  const load = startLoad({ url: `${stack.url}/version`, ...TEST_LOAD, retryStaleSockets: false });
  await load.after(50, 'before the flip');

  await putParameter('green');
  const result = await apply();
  expect(result.stdout).toContain(`bluegreen-apply: ${PARAM} = green`);
  expect(result.stdout).toContain('step=active pool=green ok=true detail=switch-pool: active pool is now green');
  expect(result.stdout).toContain('step=pools pool=- ok=true');
  expect(result.code).toBe(0);
  await waitFor(
    () => load.samples.length > 20 && load.samples.slice(-20).every((s) => s.pool === 'green'),
    'traffic on green',
  );

  await putParameter('blue');
  expect((await apply()).code).toBe(0);
  await waitFor(() => load.samples.slice(-20).every((s) => s.pool === 'blue'), 'traffic back on blue');
  const result2 = await load.finish();
  const summary = summarize(result2.samples, result2.durationMs);
  expect(summary.failures).toEqual({});
  expect(workerPids(stack)).toEqual(workers);
});

test('the canary share from SSM: switch-pool.sh --canary; a bad value is refused (exit 2) while the flip still applies', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  await putParameters(moto, { [PARAM]: 'blue', [NAMES.canaryPercent]: '30' });
  const result = await apply();
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(
    /^step=canary pool=green ok=true detail=switch-pool: canary share is now 30% \(was 0%\)/m,
  );
  expect(readlinkSync(path.join(stack.state.switchDir, 'canary'))).toBe('.canary-30');

  await putParameters(moto, { [PARAM]: 'green', [NAMES.canaryPercent]: '150' });
  const bad = await apply();
  expect(bad.code).toBe(2);
  expect(bad.stdout).toContain(
    `step=canary pool=blue ok=false detail=${NAMES.canaryPercent} is '150', not a whole number 0-99 (optionally followed by a space and cookie:NAME or header:NAME): refused; the canary share stays as it is`,
  );
  expect(readlinkSync(path.join(stack.state.switchDir, 'canary'))).toBe('.canary-30');
  expect(greenActive()).toBe(true);
});

test('a sticky canary from SSM ("<share> <key>"): share and key in one switch; a key the host was not rendered for is refused (exit 2), the share stays', async () => {
  stack = await startTestStack({
    activePool: 'blue',
    upstreamEnv: proxySettingsEnv(proxySettingsFromEnv({ STICKY_KEYS: 'cookie:session' })),
  });
  const workers = workerPids(stack);
  const canaryLink = () => readlinkSync(path.join(stack.state.switchDir, 'canary'));
  await putParameters(moto, { [PARAM]: 'blue', [NAMES.canaryPercent]: '20 cookie:session' });
  const result = await apply();
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(
    /^step=canary pool=green ok=true detail=switch-pool: canary share is now 20% sticky on cookie:session \(was 0%\)/m,
  );
  expect(canaryLink()).toBe('.canary-20.cookie.session');
  // A client carrying the cookie stays on one side.
  for (const user of ['a', 'b', 'c', 'd']) {
    const pools = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await httpRequest(`${stack.url}/version`, { agent: false, headers: { cookie: `session=${user}` } });
      pools.add(String(res.headers['x-app-pool']));
    }
    expect(pools.size).toBe(1);
  }

  await putParameters(moto, { [NAMES.canaryPercent]: '20 header:X-Other' });
  const bad = await apply();
  expect(bad.code).toBe(2);
  expect(bad.stdout).toContain(
    `step=canary pool=green ok=false detail=${NAMES.canaryPercent} is '20 header:X-Other': header:x-other is not one of this stage's sticky keys (STICKY_KEYS: cookie:session; the stickyKeys context), so nginx here cannot read it: refused; the canary share stays as it is`,
  );
  expect(canaryLink()).toBe('.canary-20.cookie.session');

  // A plain share, written as before sticky canaries: the key is cleared with it.
  await putParameters(moto, { [NAMES.canaryPercent]: '0' });
  expect((await apply()).code).toBe(0);
  expect(canaryLink()).toBe('.canary-0');
  expect(workerPids(stack)).toEqual(workers);
});

test('step lines under dash: a value holding a backslash-n stays inside its own step line (echo would forge a step= line the CLI reads)', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  // Refused, and quoted in the refusal's detail: dash's echo turns its \n into a line break.
  const forged = '5\\nstep=active pool=green ok=true detail=forged';
  await putParameters(moto, { [PARAM]: 'blue', [NAMES.canaryPercent]: forged });
  const result = await new Promise<{ code: number; stdout: string }>((resolve, reject) => {
    const child = spawn('dash', [APPLY], {
      env: { ...process.env, ...applyEnv() },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout }));
  });
  expect(result.code).toBe(2);
  const steps = parseStepLines(result.stdout, 'i-1');
  expect(steps.filter((s) => s.step === 'active')).toEqual([expect.objectContaining({ pool: 'blue', ok: true })]);
  expect(steps).toContainEqual(
    expect.objectContaining({
      step: 'canary',
      ok: false,
      detail: `${NAMES.canaryPercent} is '${forged}', not a whole number 0-99 (optionally followed by a space and cookie:NAME or header:NAME): refused; the canary share stays as it is`,
    }),
  );
  expect(greenActive()).toBe(false);
});

test('a value that is not blue|green (moto does not enforce the allowed pattern): refused, nothing changed', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const before = upstreamConf();
  await putParameter('purple');
  const result = await apply();
  expect(result.code).toBe(2);
  expect(result.stderr.trim()).toBe(
    `bluegreen-apply: ${PARAM} is 'purple', not blue or green: refusing it; nginx keeps serving its current config`,
  );
  expect(upstreamConf()).toBe(before);
  expect(greenActive()).toBe(false);
  expect(await servedBy('blue')).toBe(true);
});

test('an unchanged value changes nothing and does not reload', async () => {
  stack = await startTestStack({ activePool: 'green' });
  await putParameter('green');
  const workers = workerPids(stack);
  const result = await apply();
  expect(result.code).toBe(0);
  expect(result.stdout).toContain(
    'step=active pool=green ok=true detail=switch-pool: green is already the active pool; nothing changed',
  );
  expect(result.stdout).toContain(
    'step=canary pool=blue ok=true detail=switch-pool: canary share is already 0%; nothing changed',
  );
  expect(workerPids(stack)).toEqual(workers);
});

test('a parameter SSM cannot give: exit 3, the reason, nothing touched', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const before = upstreamConf();
  const result = await runScript(APPLY, [], applyEnv({ STAGE: 'nosuchstage' }));
  expect(result.code).toBe(3);
  expect(result.stderr).toMatch(
    /could not read \/bluegreen\/nosuchstage\/active-pool: .*ParameterNotFound.*nginx keeps serving its current config/s,
  );
  expect(result.stdout).toBe('');
  expect(upstreamConf()).toBe(before);
});

test('SSM unreachable: exit 3, nothing touched', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const result = await runScript(
    APPLY,
    [],
    applyEnv({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' }),
  );
  expect(result.code).toBe(3);
  expect(result.stderr).toMatch(
    /^bluegreen-apply: could not read the pool state from SSM \(\/bluegreen\/it\): .*; nginx keeps serving its current config$/m,
  );
  expect(greenActive()).toBe(false);
});

test('--no-reload (boot) writes the switch dir and upstream.conf from SSM without touching nginx', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  await putParameters(moto, { [PARAM]: 'green', [NAMES.canaryPercent]: '5' });
  const workers = workerPids(stack);
  rmSync(path.join(stack.state.confDir, 'upstream.conf'));
  const result = await apply('--no-reload');
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('bluegreen-apply: rendered upstream.conf (no reload)');
  expect(upstreamConf()).toContain(`default "${stack.state.switchDir}";`);
  expect(greenActive()).toBe(true);
  expect(readlinkSync(path.join(stack.state.switchDir, 'canary'))).toBe('.canary-5');
  expect(workerPids(stack)).toEqual(workers);
});

test('timeouts and slow paths from the host env file: rendered at boot, applied by the next run with one reload, then left alone; a bad value keeps the running config', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  await putParameter('blue');
  const envFile = path.join(stateDir, 'env');
  const routesConf = () => readFileSync(path.join(stack.state.confDir, 'routes.conf'), 'utf8');
  const run = (...args: string[]) => runScript(APPLY, args, applyEnv({ BLUEGREEN_ENV_FILE: envFile }));
  // What the stack's user data writes for context slowPaths=/slow/:10s (test/infra/stack.test.ts).
  writeFileSync(envFile, "export PROXY_READ_TIMEOUT='1s'\nexport SLOW_PATHS='/slow/:10s'\n");
  const workers = workerPids(stack);

  const applied = await run();
  expect(applied.code).toBe(0);
  expect(applied.stdout).toContain(
    'step=settings pool=- ok=true detail=apply-upstream: routes.conf updated (config tested, nginx reloaded gracefully)',
  );
  expect(routesConf()).toMatch(/^location \/slow\/ \{\n[^}]*proxy_read_timeout 10s;/m);
  await waitFor(() => workerPids(stack).every((pid) => !workers.includes(pid)), 'new nginx workers after the reload');
  expect((await httpRequest(`${stack.url}/slow/report?ms=3000`, { agent: false })).status).toBe(200);

  // Nothing new: no step line, no reload (the timer runs this every minute).
  const reloaded = workerPids(stack);
  const again = await run();
  expect(again.code).toBe(0);
  expect(again.stdout).not.toContain('step=settings');
  expect(workerPids(stack)).toEqual(reloaded);

  // A bad value (an env file edited by hand): refused by the renderer, the running config kept.
  const before = routesConf();
  writeFileSync(envFile, "export SLOW_PATHS='/slow/:10s;deny all'\n");
  const bad = await run();
  expect(bad.code).toBe(1);
  expect(bad.stdout).toMatch(
    /^step=settings pool=- ok=false detail=nginx keeps its previous config: render-upstream: SLOW_PATHS must be prefix:timeout pairs separated by commas, without spaces/m,
  );
  expect(routesConf()).toBe(before);
  expect(workerPids(stack)).toEqual(reloaded);

  // Boot renders routes.conf from the env file, without touching nginx.
  writeFileSync(envFile, "export SLOW_PATHS='/slow/:20s'\n");
  rmSync(path.join(stack.state.confDir, 'routes.conf'));
  const boot = await run('--no-reload');
  expect(boot.code).toBe(0);
  expect(boot.stdout).toContain('bluegreen-apply: rendered routes.conf (no reload)');
  expect(routesConf()).toContain('proxy_read_timeout 20s;');
  expect(workerPids(stack)).toEqual(reloaded);
});

test('one run at a time: a run waits for the lock, and gives up with exit 1 when it is held too long', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  await putParameter('blue');
  // Hold the lock as a running bluegreen-apply would (flock on the state dir's lock file).
  // (Its own process group: flock's child, sleep, holds the lock too and must end with it.)
  const holder = spawn('flock', [path.join(stateDir, 'apply.lock'), 'sleep', '30'], {
    stdio: 'ignore',
    detached: true,
  });
  try {
    await waitFor(
      () =>
        execFileSync('sh', ['-c', `flock -n ${path.join(stateDir, 'apply.lock')} true && echo free || echo held`], {
          encoding: 'utf8',
        }).trim() === 'held',
      'the lock to be held',
    );
    const result = await runScript(APPLY, [], applyEnv({ BLUEGREEN_LOCK_TIMEOUT: '1' }));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('another bluegreen-apply still holds');
    expect(result.stdout).toBe('');
  } finally {
    process.kill(-holder.pid!, 'SIGTERM');
  }
  expect((await apply()).code).toBe(0);
});

test('unknown arguments: exit 2 with the usage', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const result = await apply('--force');
  expect(result.code).toBe(2);
  expect(result.stderr.trim()).toBe(
    "bluegreen-apply: unknown argument '--force' (usage: bluegreen-apply [--no-reload] [--retry] [--no-deploy] | --pre-promote <base64> [--pre-promote-timeout <s>] | --preview)",
  );
});

test('--pre-promote: a value that is not base64, a bad timeout, or mixed with other flags is exit 2 before anything is read; unmanaged pools refuse it', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const b64 = Buffer.from('echo hi; exit 0').toString('base64');
  for (const [args, message] of [
    [['--pre-promote', 'echo hi'], /--pre-promote must be the command in base64/],
    [['--pre-promote', '$(reboot)'], /--pre-promote must be the command in base64/],
    [['--pre-promote', 'A'.repeat(4000)], /--pre-promote must be the command in base64/],
    [['--pre-promote'], /--pre-promote needs a value/],
    [['--pre-promote-timeout', '60'], /--pre-promote-timeout needs --pre-promote/],
    [['--pre-promote', b64, '--pre-promote-timeout', '0'], /--pre-promote-timeout must be whole seconds 1-3600/],
    [['--pre-promote', b64, '--pre-promote-timeout', '3601'], /--pre-promote-timeout must be whole seconds 1-3600/],
    [['--pre-promote', b64, '--no-deploy'], /--pre-promote runs alone/],
  ] as Array<[string[], RegExp]>) {
    const result = await apply(...args);
    expect([args, result.code]).toEqual([args, 2]);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).not.toMatch(/^step=/m);
  }
  // This test host manages no containers: refused as a step (exit 1), nothing run.
  await putParameter('blue');
  const refused = await apply('--pre-promote', b64, '--pre-promote-timeout', '5');
  expect(refused.code).toBe(1);
  expect(refused.stdout).toMatch(/^step=pre-promote pool=green ok=false detail=refused: no pool containers here/m);
});

test('without its facts file (userdata/facts.sh, generated from core): exit 2 naming it, nothing read or touched', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  await putParameter('green');
  const home = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-apply-nofacts-'));
  try {
    for (const sub of ['nginx', 'userdata'])
      cpSync(path.join(REPO_ROOT, sub), path.join(home, sub), { recursive: true });
    rmSync(path.join(home, 'userdata', 'facts.sh'));
    const result = await runScript(
      path.join(home, 'userdata', 'bluegreen-apply.sh'),
      [],
      applyEnv({ BLUEGREEN_HOME: home }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      `bluegreen-apply: ${path.join(home, 'userdata', 'facts.sh')} is missing (generated from core/ by npm run generate, shipped in the userdata asset); nothing was changed`,
    );
    expect(result.stdout).toBe('');
    expect(greenActive()).toBe(false);
    expect(existsSync(path.join(stateDir, 'apply.lock'))).toBe(false);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

// ---- a host that manages its pools, booting (--no-reload): what it writes for Compose -------------
// No Docker here: a `docker` first on PATH records the calls and succeeds (build, pull), and knows of
// no container. What Compose itself makes of the files is test/docker's (env-file, compose-set).
describe('a booting host that manages its pools: the files Compose starts from', () => {
  let home: string;
  let calls: string;
  beforeEach(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-apply-home-'));
    for (const sub of ['nginx', 'userdata'])
      cpSync(path.join(REPO_ROOT, sub), path.join(home, sub), { recursive: true });
    mkdirSync(path.join(home, 'bin'));
    calls = path.join(home, 'docker-calls');
    writeFileSync(
      path.join(home, 'bin', 'docker'),
      `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\ncase "$1" in build|pull) echo ok ;; esac\nexit 0\n`,
    );
    chmodSync(path.join(home, 'bin', 'docker'), 0o755);
  });
  afterEach(() => {
    rmSync(home, { recursive: true, force: true });
    rmSync(secretsDir, { recursive: true, force: true });
  });
  const secretsDir = path.join('/dev/shm', `bluegreen-apply-secrets-${process.pid}`);

  const hostEnv = (extra: Record<string, string> = {}) => ({
    ...moto.env,
    STAGE,
    PATH: `${path.join(home, 'bin')}:${process.env.PATH}`,
    BLUEGREEN_HOME: home,
    BLUEGREEN_STATE_DIR: stateDir,
    BLUEGREEN_LOG_DIR: path.join(home, 'logs'),
    BLUEGREEN_ENV_FILE: '/nonexistent/env',
    // A tmpfs, as /run is on a host (never this machine's /run).
    BLUEGREEN_SECRETS_DIR: secretsDir,
    ...extra,
  });
  const boot = (extra: Record<string, string> = {}) =>
    runScript(path.join(home, 'userdata', 'bluegreen-apply.sh'), ['--no-reload'], hostEnv(extra));
  const poolState = (pool: 'blue' | 'green', state: { image?: string; release: string; env: string }) => ({
    [NAMES.pools[pool].image]: state.image ?? 'bluegreen-app:local',
    [NAMES.pools[pool].release]: state.release,
    [NAMES.pools[pool].env]: state.env,
  });
  const envFile = (pool: 'blue' | 'green') => readFileSync(path.join(stateDir, 'pools', `${pool}.env`), 'utf8');
  const composeEnv = () => readFileSync(path.join(home, 'userdata', '.env'), 'utf8');

  test.each([
    [
      "a trailing backslash (Compose reads \\' as a quote: the file breaks)",
      '{"A":"x\\\\"}',
      'values must not end in a backslash',
    ],
    [
      'a trailing backslash and a second value (HOST smuggled in)',
      '{"A":"x\\\\","B":" HOST=127.0.0.1 #"}',
      'values must not end in a backslash',
    ],
    [
      "a key ending in a line feed (a bare key: filled from the agent's environment)",
      '{"SECRET_ON_HOST\\n":"x"}',
      'keys must be environment variable names',
    ],
    ['a reserved key ending in a line feed', '{"HOST\\n":"x"}', 'keys must be environment variable names'],
  ])(
    "the idle pool's env with %s: refused (exit 2), its env file not written, the active pool boots",
    async (_name, env, problem) => {
      await putParameters(moto, {
        [PARAM]: 'blue',
        ...poolState('blue', { release: 'blue-1', env: '{"GREETING":"hi"}' }),
        ...poolState('green', { release: 'green-2', env }),
      });
      const result = await boot();
      expect(result.code).toBe(2);
      const steps = parseStepLines(result.stdout, 'i-1');
      expect(steps).toContainEqual(
        expect.objectContaining({
          step: 'validate',
          pool: 'green',
          ok: false,
          detail: expect.stringContaining(`${NAMES.pools.green.env} is not usable: ${problem}`),
        }),
      );
      expect(envFile('green')).toBe('');
      expect(envFile('blue')).toBe("GREETING='hi'\n");
      expect(composeEnv()).toContain('RELEASE_ID_BLUE=blue-1\n');
    },
  );

  test("pool options: each pool's health and drain times reach Compose's .env (defaults without options), the options are kept in .applied; unknown keys are refused (exit 2) and that pool is left as it is", async () => {
    await putParameters(moto, {
      [PARAM]: 'blue',
      ...poolState('blue', { release: 'blue-1', env: '{}' }),
      [NAMES.pools.blue.options]: '{}',
      ...poolState('green', { release: 'green-1', env: '{}' }),
      [NAMES.pools.green.options]: '{"drainSeconds":30,"healthStartPeriodSeconds":120,"healthTimeoutSeconds":5}',
    });
    const first = await boot();
    expect(first.code).toBe(0);
    expect(composeEnv()).toContain(
      'BLUE_HEALTH_START_PERIOD=10s\nBLUE_HEALTH_TIMEOUT=3s\nBLUE_STOP_GRACE=10s\n' +
        'GREEN_HEALTH_START_PERIOD=120s\nGREEN_HEALTH_TIMEOUT=5s\nGREEN_STOP_GRACE=30s\n',
    );
    const applied = readFileSync(path.join(stateDir, 'pools', 'green.applied'), 'utf8');
    expect(applied).toContain('options={"drainSeconds":30,"healthStartPeriodSeconds":120,"healthTimeoutSeconds":5}\n');
    expect(readFileSync(path.join(stateDir, 'pools', 'blue.applied'), 'utf8')).not.toContain('options');

    await putParameters(moto, { [NAMES.pools.green.options]: '{"drainSecs":30}' });
    // The other tests share this SSM: no options again, whatever this one finds.
    const refused = await boot().finally(() => putParameters(moto, { [NAMES.pools.green.options]: '{}' }));
    expect(refused.code).toBe(2);
    expect(parseStepLines(refused.stdout, 'i-1')).toContainEqual(
      expect.objectContaining({
        step: 'validate',
        pool: 'green',
        ok: false,
        detail: expect.stringContaining(`${NAMES.pools.green.options} is not usable: drainSecs: unknown key`),
      }),
    );
    // Refused: green boots with what it applied.
    expect(composeEnv()).toContain('GREEN_STOP_GRACE=30s\n');
  });

  test("secrets at boot: the pool's pinned version fetched into its 0600 file on the tmpfs (the other pool's file empty), no value in the output; a secrets dir that is not a tmpfs is refused", async () => {
    const VALUE = 'boot-secret-3Fq8-never-printed';
    const ssm = new SSMClient({
      endpoint: moto.endpoint,
      region: moto.env.AWS_REGION,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const secret = `${parameterNames(STAGE).secretsPath}DB_PASSWORD`;
    await ssm.send(new PutParameterCommand({ Name: secret, Value: 'old', Type: 'SecureString', Overwrite: true }));
    await ssm.send(new PutParameterCommand({ Name: secret, Value: VALUE, Type: 'SecureString', Overwrite: true }));
    ssm.destroy();
    await putParameters(moto, {
      [PARAM]: 'blue',
      ...poolState('blue', { release: 'blue-1', env: '{}' }),
      [NAMES.pools.blue.options]: '{}',
      ...poolState('green', { release: 'green-1', env: '{}' }),
      [NAMES.pools.green.options]: '{"secrets":{"DB_PASSWORD":"2"}}',
    });
    try {
      const result = await boot();
      expect(result.code).toBe(0);
      expect(readFileSync(path.join(secretsDir, 'green.env'), 'utf8')).toBe(`DB_PASSWORD='${VALUE}'\n`);
      expect(statSync(path.join(secretsDir, 'green.env')).mode & 0o777).toBe(0o600);
      expect(statSync(secretsDir).mode & 0o777).toBe(0o700);
      expect(readFileSync(path.join(secretsDir, 'blue.env'), 'utf8')).toBe('');
      expect(`${result.stdout}${result.stderr}`).not.toContain(VALUE);
      expect(composeEnv()).toContain(`BLUEGREEN_SECRETS_DIR=${secretsDir}\n`);
      expect(parseStepLines(result.stdout, 'i-1')).toContainEqual(
        expect.objectContaining({
          step: 'secrets',
          pool: 'green',
          ok: true,
          detail: expect.stringContaining('DB_PASSWORD@v2'),
        }),
      );

      const onDisk = await boot({ BLUEGREEN_SECRETS_DIR: path.join(home, 'secrets') });
      expect(onDisk.code).toBe(1);
      expect(parseStepLines(onDisk.stdout, 'i-1')).toContainEqual(
        expect.objectContaining({
          step: 'secrets',
          pool: 'green',
          ok: false,
          detail: expect.stringContaining('is not a tmpfs'),
        }),
      );
      expect(readFileSync(path.join(home, 'secrets', 'green.env'), 'utf8')).toBe('');
    } finally {
      await putParameters(moto, { [NAMES.pools.green.options]: '{}' });
    }
  });

  test('rebooting: the active pool boots with its applied release, never with a desired state written for it since (nothing gated it); the idle pool boots with its desired one', async () => {
    await putParameters(moto, {
      [PARAM]: 'blue',
      ...poolState('blue', { release: 'blue-1', env: '{"GREETING":"hi"}' }),
      ...poolState('green', { release: 'green-1', env: '{}' }),
    });
    expect((await boot()).code).toBe(0);
    // While the host is down, someone writes the ACTIVE pool's desired state (the release CLI never does).
    await putParameters(moto, {
      ...poolState('blue', { image: 'registry.example.com/evil:1', release: 'blue-9', env: '{"EVIL":"1"}' }),
      ...poolState('green', { release: 'green-2', env: '{"NEXT":"1"}' }),
    });
    writeFileSync(calls, '');
    const result = await boot();
    expect(result.code).toBe(0);
    expect(composeEnv()).toContain('BLUE_IMAGE=bluegreen-app:local\nRELEASE_ID_BLUE=blue-1\n');
    expect(envFile('blue')).toBe("GREETING='hi'\n");
    expect(readFileSync(calls, 'utf8')).not.toContain('registry.example.com/evil:1');
    expect(parseStepLines(result.stdout, 'i-1')).toContainEqual(
      expect.objectContaining({
        step: 'pull',
        pool: 'blue',
        ok: true,
        detail: expect.stringContaining(
          'the active pool starts with its applied release blue-1 (bluegreen-app:local); its desired release blue-9 (registry.example.com/evil:1) is not applied to the active pool',
        ),
      }),
    );
    // The idle pool: as before, its desired state (the next run gates nothing new: it takes no traffic).
    expect(composeEnv()).toContain('RELEASE_ID_GREEN=green-2\n');
    expect(envFile('green')).toBe("NEXT='1'\n");
  });

  const record = (r: Record<string, unknown>) =>
    JSON.stringify({
      id: 'r1',
      release: 'x',
      env: {},
      replacedRelease: 'x',
      replacedEnv: {},
      strategy: 'all-at-once',
      canaryPercent: 0,
      bakeSeconds: 60,
      startedAt: '2026-11-23T19:00:00.000Z',
      updatedAt: '2026-11-23T19:05:00.000Z',
      steps: [],
      ...r,
    });
  test.each([
    [
      'its release promoted to the active pool',
      record({
        pool: 'blue',
        previousPool: 'green',
        state: 'promoted',
        release: 'blue-2',
        image: 'registry.example.com/app:2',
        env: { A: '1' },
      }),
      { image: 'registry.example.com/app:2', release: 'blue-2', file: "A='1'\n" },
    ],
    [
      'the active pool left active by a rolled-back release',
      record({
        pool: 'green',
        previousPool: 'blue',
        state: 'rolled-back',
        previousRelease: 'blue-3',
        previousEnv: { B: '2' },
      }),
      { image: 'bluegreen-app:local', release: 'blue-3', file: "B='2'\n" },
    ],
  ])(
    "a brand-new fleet host, the release record naming %s: the active pool boots with what the stage's hosts run, not with a desired state nothing gated",
    async (_name, value, want) => {
      await putParameters(moto, {
        [PARAM]: 'blue',
        ...poolState('blue', { image: 'registry.example.com/evil:1', release: 'blue-9', env: '{"EVIL":"1"}' }),
        ...poolState('green', { release: 'green-1', env: '{}' }),
      });
      await putLedgerHead(moto, STAGE, value);
      const result = await boot(ledgerHostEnv(STAGE));
      expect(result.code).toBe(0);
      expect(composeEnv()).toContain(`BLUE_IMAGE=${want.image}\nRELEASE_ID_BLUE=${want.release}\n`);
      expect(envFile('blue')).toBe(want.file);
      expect(readFileSync(calls, 'utf8')).not.toContain('registry.example.com/evil:1');
      expect(parseStepLines(result.stdout, 'i-1')).toContainEqual(
        expect.objectContaining({
          step: 'pull',
          pool: 'blue',
          ok: true,
          detail: expect.stringContaining(
            `the active pool starts with release ${want.release} (${want.image}): what the release record says the stage's hosts run`,
          ),
        }),
      );
    },
  );

  /** The ledger's head (stage `it`), as the host's messages name it. */
  const HEAD = `the release record (the head of ${ledgerTableName(STAGE)})`;
  const NO_HEAD = Symbol('no head item');
  const NO_TABLE = Symbol('no ledger table');
  test.each<[string, string | typeof NO_HEAD | typeof NO_TABLE, string]>([
    ['no release yet ({})', '{}', `${HEAD} names no gated state for blue`],
    ['no release yet (the ledger has no head item)', NO_HEAD, `${HEAD} names no gated state for blue`],
    [
      'a release that failed its gate (the active pool was not checked by every host)',
      record({ pool: 'green', previousPool: 'blue', state: 'failed', previousRelease: 'blue-3', previousEnv: {} }),
      `${HEAD} names no gated state for blue`,
    ],
    [
      'a state the env rule refuses',
      record({ pool: 'blue', previousPool: 'green', state: 'promoted', release: 'blue-2', env: { A: 'x\\' } }),
      "the release record's blue env is not usable: values must not end in a backslash",
    ],
    [
      'an image holding a line feed (its lines would shift the fields)',
      record({
        pool: 'blue',
        previousPool: 'green',
        state: 'promoted',
        image: 'registry.example.com/app:2\nblue-2',
        release: '{}',
        env: {},
      }),
      `${HEAD} names no gated state for blue`,
    ],
    [
      'nothing it can read (no such table: the error is not "no release yet")',
      NO_TABLE,
      `the release record (the head of ${ledgerTableName(`${STAGE}-missing`)}) could not be read`,
    ],
    [
      'an env the record had to cut to fit (every key kept, values shortened: a summary, not what the pool ran)',
      record({
        pool: 'blue',
        previousPool: 'green',
        state: 'promoted',
        release: 'blue-2',
        env: boundEnv(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`SETTING_${i}`, 'v'.repeat(200)]))),
      }),
      `${HEAD} names no gated state for blue`,
    ],
  ])(
    'a brand-new fleet host, the release record holding %s: the desired state is all there is, and the step says so',
    async (_name, value, why) => {
      await putParameters(moto, {
        [PARAM]: 'blue',
        ...poolState('blue', { release: 'blue-9', env: '{}' }),
        ...poolState('green', { release: 'green-1', env: '{}' }),
      });
      if (value !== NO_TABLE) await putLedgerHead(moto, STAGE, value === NO_HEAD ? undefined : value);
      const result = await boot(ledgerHostEnv(value === NO_TABLE ? `${STAGE}-missing` : STAGE));
      expect(result.code).toBe(0);
      expect(composeEnv()).toContain('RELEASE_ID_BLUE=blue-9\n');
      expect(parseStepLines(result.stdout, 'i-1')).toContainEqual(
        expect.objectContaining({
          step: 'pull',
          pool: 'blue',
          ok: true,
          detail: expect.stringContaining(
            `the active pool starts with its desired release blue-9 (bluegreen-app:local): nothing applied here, and ${why}`,
          ),
        }),
      );
    },
  );

  test("POOL_HEALTHCHECK from the host env file goes into Compose's .env between single quotes: one ending in a backslash stops the run before anything is written", async () => {
    await putParameters(moto, {
      [PARAM]: 'blue',
      ...poolState('blue', { release: 'blue-1', env: '{}' }),
      ...poolState('green', { release: 'green-1', env: '{}' }),
    });
    const result = await boot({ POOL_HEALTHCHECK: 'wget -q -O /dev/null http://127.0.0.1:3000/healthz \\' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      "POOL_HEALTHCHECK is 'wget -q -O /dev/null http://127.0.0.1:3000/healthz \\': values must not end in a backslash",
    );
    expect(existsSync(path.join(home, 'userdata', '.env'))).toBe(false);
  });
});

test("a throttled SSM read is retried with backoff by the host's aws CLI, as /etc/bluegreen/env configures it: the run succeeds, never a failed step", async () => {
  // What the stack writes to the host's /etc/bluegreen/env for the aws CLI's retries (the user data).
  const userData = JSON.stringify(synthTemplate({}).toJSON());
  const retryLines = [...userData.matchAll(/export (AWS_RETRY_MODE|AWS_MAX_ATTEMPTS)='([^']*)'/g)].map(
    (m) => `export ${m[1]}='${m[2]}'`,
  );
  const envFile = path.join(stateDir, 'env');
  writeFileSync(envFile, `${retryLines.join('\n')}\n`);
  stack = await startTestStack({ activePool: 'blue' });
  await putParameter('green');
  const proxy = await startThrottleProxy(moto.endpoint);
  try {
    // Five in a row: past AWS CLI v1's legacy default (5 attempts) and v2's standard one (3).
    proxy.throttleNext(5, ['GetParameters']);
    const result = await runScript(
      APPLY,
      [],
      applyEnv({ AWS_ENDPOINT_URL: proxy.endpoint, BLUEGREEN_ENV_FILE: envFile }),
    );
    expect(proxy.throttled.GetParameters).toBe(5);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('step=active pool=green ok=true');
    expect(greenActive()).toBe(true);
  } finally {
    await proxy.close();
  }
}, 120_000);
