// The AWS side of a preview, for real without Docker: the release CLI's AWS backend writes the preview
// parameter (a SecureString) to moto_server and runs the host's bluegreen-apply --preview (the real
// script, its aws CLI reading with decryption) against a real local nginx, as Run Command would.
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parameterNames } from '../../core/names';
import { PREVIEW_HEADER } from '../../core/preview';
import { parseStepLines } from '../../core/step-line';
import { REPO_ROOT } from '../../local/paths';
import { LocalStack } from '../../local/stack';
import { runScript, ScriptResult, switchEnv } from '../../local/switch';
import { AwsReleaseBackend } from '../../ops/release/aws-backend';
import { newPreviewToken } from '../../ops/release/preview';
import { httpRequest } from '../../support/http';
import { Moto, motoClientConfig, putParameters, startMoto } from '../helpers/moto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { startTestStack, workerPids } from '../helpers/stack';

const APPLY = path.join(REPO_ROOT, 'userdata', 'bluegreen-apply.sh');
const STAGE = 'pv';
const NAMES = parameterNames(STAGE);

let moto: Moto;
let ssm: SSMClient;
let stack: LocalStack;
let stateDir: string;
let runs: ScriptResult[];
beforeAll(async () => {
  moto = await startMoto();
  ssm = new SSMClient({
    endpoint: moto.endpoint,
    region: moto.env.AWS_REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
});
afterAll(async () => {
  ssm?.destroy();
  await moto?.stop();
});
beforeEach(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-preview-apply-'));
  stack = await startTestStack({ activePool: 'blue', releases: { blue: 'b1', green: 'g2' } });
  await putParameters(moto, { [NAMES.activePool]: 'blue', [NAMES.canaryPercent]: '0', [NAMES.publicUrl]: stack.url });
  runs = [];
});
afterEach(async () => {
  await stack?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const applyEnv = () => ({
  ...moto.env,
  ...switchEnv(stack.state),
  STAGE,
  BLUEGREEN_HOME: REPO_ROOT,
  BLUEGREEN_STATE_DIR: stateDir,
  BLUEGREEN_MANAGE_POOLS: 'no',
  BLUEGREEN_ENV_FILE: '/nonexistent/env',
});

/** The backend with Run Command replaced by the real script on this one "host". */
const backend = () =>
  new AwsReleaseBackend({
    ssm,
    ddb: new DynamoDBClient(motoClientConfig(moto)),
    stage: STAGE,
    async runApply(args) {
      const r = await runScript(APPLY, args, applyEnv());
      runs.push(r);
      const ok = r.code === 0;
      return {
        commandId: 'local',
        hosts: [
          {
            host: 'i-local',
            status: ok ? 'Success' : 'Failed',
            ok,
            steps: parseStepLines(r.stdout, 'i-local'),
            error: r.stderr,
          },
        ],
      };
    },
  });

const poolFor = async (token: string) =>
  (await httpRequest(`${stack.url}/version`, { agent: false, headers: { [PREVIEW_HEADER]: token } })).headers[
    'x-app-pool'
  ];
const previewFiles = () => readdirSync(stack.state.switchDir).filter((n) => n.startsWith('preview.'));

test('setPreview: a SecureString, applied by bluegreen-apply --preview; the token never printed; off ends it; no reload', async () => {
  const workers = workerPids(stack);
  const token = newPreviewToken();
  const { url } = await backend().setPreview({ pool: 'green', token });
  expect(url).toBe(stack.url);
  const stored = (await ssm.send(new GetParameterCommand({ Name: NAMES.preview, WithDecryption: true }))).Parameter!;
  expect(stored).toMatchObject({ Type: 'SecureString', Value: `green ${token}` });
  expect(runs).toHaveLength(1);
  expect(runs[0].stdout).toMatch(/^step=preview pool=green ok=true detail=switch-pool: preview of green is on/m);
  expect(runs[0].stdout + runs[0].stderr).not.toContain(token);
  expect(await poolFor(token)).toBe('green');
  expect(await poolFor(newPreviewToken())).toBe('blue');

  await backend().setPreview(undefined);
  expect(runs[1].stdout).toMatch(/^step=preview pool=- ok=true detail=switch-pool: preview is off/m);
  expect(previewFiles()).toEqual([]);
  expect(await poolFor(token)).toBe('blue');
  expect(workerPids(stack)).toEqual(workers);
});

test('no parameter yet is off; a bad value is refused (exit 2, value not shown) and ends any preview; the active pool is refused', async () => {
  const apply = () => runScript(APPLY, ['--preview'], applyEnv());
  const first = await apply();
  expect(first.code).toBe(0);
  expect(first.stdout).toMatch(/^step=preview pool=- ok=true detail=switch-pool: no preview is on/m);

  const token = newPreviewToken();
  const put = (value: string) =>
    ssm.send(new PutParameterCommand({ Name: NAMES.preview, Value: value, Type: 'SecureString', Overwrite: true }));
  await put(`green ${token}`);
  expect((await apply()).code).toBe(0);
  expect(previewFiles()).toEqual([`preview.green.${token}`]);
  for (const bad of [`green ../${token}`, `red ${token}`, token, `green ${token}.x`]) {
    await put(bad);
    const r = await apply();
    expect({ bad, code: r.code }).toEqual({ bad, code: 2 });
    expect(r.stdout + r.stderr).not.toContain(token);
    expect(previewFiles()).toEqual([]);
  }
  // blue is active: a preview is of the idle pool only.
  await put(`blue ${token}`);
  const active = await apply();
  expect(active.code).toBe(1);
  expect(active.stdout).toMatch(/^step=preview pool=blue ok=false detail=switch-pool: blue is the active pool/m);
  expect(previewFiles()).toEqual([]);
  // --preview takes nothing else.
  expect((await runScript(APPLY, ['--preview', '--retry'], applyEnv())).code).toBe(2);
});

test('the per-minute run leaves the preview as it is (it does not read the parameter), and ends a preview of the pool that became active', async () => {
  const token = newPreviewToken();
  await backend().setPreview({ pool: 'green', token });
  expect(previewFiles()).toHaveLength(1);
  // The timer's run: its eight names (core/names.ts hostReadParameterNames), the preview not among them.
  const timer = await runScript(APPLY, ['--no-deploy'], applyEnv());
  expect(timer.code).toBe(0);
  expect(previewFiles()).toHaveLength(1);
  await putParameters(moto, { [NAMES.activePool]: 'green' });
  expect((await runScript(APPLY, ['--no-deploy'], applyEnv())).code).toBe(0);
  expect(previewFiles()).toEqual([]);
  expect(await poolFor(token)).toBe('green');
});
