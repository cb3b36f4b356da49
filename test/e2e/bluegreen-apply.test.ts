// The host's bluegreen-apply, for real, without Docker: the aws CLI reads the pool state from
// moto_server (put there as an operator or the release CLI would), and the active pool and canary
// share go through the repo's switch-pool.sh to a real local nginx (no reload). The pool containers
// (pull, recreate, health, smoke, addresses) are exercised on a Docker Engine in test/docker/.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/defaults';
import { httpRequest } from '../../local/http';
import { summarize } from '../../local/load';
import { LocalStack } from '../../local/stack';
import { runScript, switchEnv } from '../../local/switch';
import { parameterNames } from '../../lib/config';
import { startLoad, TEST_LOAD } from '../helpers/load';
import { Moto, putParameters, startMoto } from '../helpers/moto';
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
const servedBy = async (pool: string) => (await httpRequest(`${stack.url}/version`, { agent: false })).headers['x-app-pool'] === pool;

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
  await waitFor(() => load.samples.length > 20 && load.samples.slice(-20).every((s) => s.pool === 'green'), 'traffic on green');

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
  expect(result.stdout).toMatch(/^step=canary pool=green ok=true detail=switch-pool: canary share is now 30% \(was 0%\)/m);
  expect(readlinkSync(path.join(stack.state.switchDir, 'canary'))).toBe('.canary-30');

  await putParameters(moto, { [PARAM]: 'green', [NAMES.canaryPercent]: '150' });
  const bad = await apply();
  expect(bad.code).toBe(2);
  expect(bad.stdout).toContain(`step=canary pool=blue ok=false detail=${NAMES.canaryPercent} is '150', not a whole number 0-99: refused; the canary share stays as it is`);
  expect(readlinkSync(path.join(stack.state.switchDir, 'canary'))).toBe('.canary-30');
  expect(greenActive()).toBe(true);
});

test('a value that is not blue|green (moto does not enforce the allowed pattern): refused, nothing changed', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const before = upstreamConf();
  await putParameter('purple');
  const result = await apply();
  expect(result.code).toBe(2);
  expect(result.stderr.trim()).toBe(`bluegreen-apply: ${PARAM} is 'purple', not blue or green: refusing it; nginx keeps serving its current config`);
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
  expect(result.stdout).toContain('step=active pool=green ok=true detail=switch-pool: green is already the active pool; nothing changed');
  expect(result.stdout).toContain('step=canary pool=blue ok=true detail=switch-pool: canary share is already 0%; nothing changed');
  expect(workerPids(stack)).toEqual(workers);
});

test('a parameter SSM cannot give: exit 3, the reason, nothing touched', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const before = upstreamConf();
  const result = await runScript(APPLY, [], applyEnv({ STAGE: 'nosuchstage' }));
  expect(result.code).toBe(3);
  expect(result.stderr).toMatch(/could not read \/bluegreen\/nosuchstage\/active-pool: .*ParameterNotFound.*nginx keeps serving its current config/s);
  expect(result.stdout).toBe('');
  expect(upstreamConf()).toBe(before);
});

test('SSM unreachable: exit 3, nothing touched', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const result = await runScript(APPLY, [], applyEnv({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' }));
  expect(result.code).toBe(3);
  expect(result.stderr).toMatch(/^bluegreen-apply: could not read the pool state from SSM \(\/bluegreen\/it\): .*; nginx keeps serving its current config$/m);
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
  expect(applied.stdout).toContain('step=settings pool=- ok=true detail=apply-upstream: routes.conf updated (config tested, nginx reloaded gracefully)');
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
  expect(bad.stdout).toMatch(/^step=settings pool=- ok=false detail=nginx keeps its previous config: render-upstream: SLOW_PATHS must be prefix:timeout pairs separated by commas, without spaces/m);
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
  const holder = spawn('flock', [path.join(stateDir, 'apply.lock'), 'sleep', '30'], { stdio: 'ignore', detached: true });
  try {
    await waitFor(() => execFileSync('sh', ['-c', `flock -n ${path.join(stateDir, 'apply.lock')} true && echo free || echo held`], { encoding: 'utf8' }).trim() === 'held', 'the lock to be held');
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
  expect(result.stderr.trim()).toBe("bluegreen-apply: unknown argument '--force' (usage: bluegreen-apply [--no-reload] [--retry] [--no-deploy])");
});

test("a throttled SSM read is retried with backoff by the host's aws CLI, as /etc/bluegreen/env configures it: the run succeeds, never a failed step", async () => {
  // What the stack writes to the host's /etc/bluegreen/env for the aws CLI's retries (the user data).
  const userData = JSON.stringify(synthTemplate({}).toJSON());
  const retryLines = [...userData.matchAll(/export (AWS_RETRY_MODE|AWS_MAX_ATTEMPTS)='([^']*)'/g)].map((m) => `export ${m[1]}='${m[2]}'`);
  const envFile = path.join(stateDir, 'env');
  writeFileSync(envFile, `${retryLines.join('\n')}\n`);
  stack = await startTestStack({ activePool: 'blue' });
  await putParameter('green');
  const proxy = await startThrottleProxy(moto.endpoint);
  try {
    // Five in a row: past AWS CLI v1's legacy default (5 attempts) and v2's standard one (3).
    proxy.throttleNext(5, ['GetParameters']);
    const result = await runScript(APPLY, [], applyEnv({ AWS_ENDPOINT_URL: proxy.endpoint, BLUEGREEN_ENV_FILE: envFile }));
    expect(proxy.throttled.GetParameters).toBe(5);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('step=active pool=green ok=true');
    expect(greenActive()).toBe(true);
  } finally {
    await proxy.close();
  }
}, 120_000);
