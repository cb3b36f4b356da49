// The host's bluegreen-apply, for real: the aws CLI reads the parameter from moto_server (put there
// as an operator would), and the switch goes through the repo's switch script to a real nginx.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../local/defaults';
import { summarize } from '../../local/load';
import { httpRequest } from '../../local/http';
import { LocalStack } from '../../local/stack';
import { runScript, switchEnv } from '../../local/switch';
import { parameterNames } from '../../lib/config';
import { startLoad, TEST_LOAD } from '../helpers/load';
import { Moto, startMoto } from '../helpers/moto';
import { startTestStack, waitFor } from '../helpers/stack';

const run = promisify(execFile);
const APPLY = path.join(REPO_ROOT, 'userdata', 'bluegreen-apply.sh');
const STAGE = 'it';
const PARAM = parameterNames(STAGE).activePool;

let moto: Moto;
let stack: LocalStack;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});
afterEach(async () => {
  await stack?.stop();
});

/** What an operator types to flip the pool. */
const putParameter = (value: string) =>
  run('aws', ['ssm', 'put-parameter', '--name', PARAM, '--type', 'String', '--overwrite', '--value', value], { env: { ...process.env, ...moto.env } });

function apply(...args: string[]) {
  return runScript(APPLY, args, {
    ...moto.env,
    ...switchEnv(stack.state),
    STAGE,
    BLUEGREEN_HOME: REPO_ROOT,
    BLUEGREEN_ENV_FILE: '/nonexistent/env',
  });
}

const upstreamConf = () => readFileSync(path.join(stack.state.confDir, 'upstream.conf'), 'utf8');
const servedBy = async (pool: string) => (await httpRequest(`${stack.url}/version`, { agent: false })).headers['x-app-pool'] === pool;
const workerPids = () => execFileSync('ps', ['-o', 'pid=', '--ppid', String(stack.pid('nginx'))], { encoding: 'utf8' }).split('\n').filter((s) => s.trim()).sort();

test('a flip put in SSM moves traffic when bluegreen-apply runs, with zero failed requests under load', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  await putParameter('blue');
  const load = startLoad({ url: `${stack.url}/version`, ...TEST_LOAD });
  await load.after(50, 'before the flip');

  await putParameter('green');
  const result = await apply();
  expect(result.stdout).toContain(`bluegreen-apply: ${PARAM} = green`);
  expect(result.stdout).toContain('switch-pool: active pool is now green');
  expect(result.code).toBe(0);
  await waitFor(() => load.samples.length > 20 && load.samples.slice(-20).every((s) => s.pool === 'green'), 'traffic on green');

  await putParameter('blue');
  expect((await apply()).code).toBe(0);
  await waitFor(() => load.samples.slice(-20).every((s) => s.pool === 'blue'), 'traffic back on blue');
  const result2 = await load.finish();
  const summary = summarize(result2.samples, result2.durationMs);
  expect(summary.failures).toEqual({});
});

test('a value that is not blue|green (moto does not enforce the allowed pattern): refused, old config keeps serving', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const before = upstreamConf();
  await putParameter('purple');
  const result = await apply();
  expect(result.code).toBe(2);
  expect(result.stderr.trim()).toBe(`bluegreen-apply: ${PARAM} is 'purple', not blue or green: refusing it; nginx keeps serving its current config`);
  expect(upstreamConf()).toBe(before);
  expect(await servedBy('blue')).toBe(true);
});

test('an unchanged value changes nothing and does not reload', async () => {
  stack = await startTestStack({ activePool: 'green' });
  await putParameter('green');
  const workers = workerPids();
  const result = await apply();
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('green is already the active pool; nothing changed, no reload');
  expect(workerPids()).toEqual(workers);
});

test('a parameter SSM cannot give: exit 3, the reason, nothing touched', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  const before = upstreamConf();
  const result = await runScript(APPLY, [], { ...moto.env, ...switchEnv(stack.state), STAGE: 'nosuchstage', BLUEGREEN_HOME: REPO_ROOT, BLUEGREEN_ENV_FILE: '/nonexistent/env' });
  expect(result.code).toBe(3);
  expect(result.stderr).toMatch(/could not read \/bluegreen\/nosuchstage\/active-pool: .*ParameterNotFound.*nginx keeps serving its current config/s);
  expect(upstreamConf()).toBe(before);
});

test('--no-reload (boot) renders upstream.conf from the parameter without touching nginx', async () => {
  stack = await startTestStack({ activePool: 'blue' });
  await putParameter('green');
  const workers = workerPids();
  const result = await apply('--no-reload');
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('rendered upstream.conf for green (no reload)');
  expect(upstreamConf()).toContain('# active_pool=green');
  expect(workerPids()).toEqual(workers);
  expect(await servedBy('blue')).toBe(true);
});
