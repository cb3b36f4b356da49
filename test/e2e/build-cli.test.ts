// `bluegreen build` and `bluegreen release --build` as real processes, up to where Docker takes over:
// bad input is one line and exit 2 (local mode refuses a build), a stage without its repository or
// platform parameter and a machine without Docker are one line and exit 1, and nothing is released.
// The build, login, push and release on a real engine and registry: test/docker/build-release.test.ts.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { REPO_ROOT } from '../../local/paths';
import { parameterNames } from '../../core/names';
import { createLedgerTable, Moto, putParameters, startMoto } from '../helpers/moto';
import { ledgerHeadText } from '../helpers/ledger';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'bluegreen.cjs');
const EXAMPLE = path.join(REPO_ROOT, 'examples', 'python-app');
const STAGE = 'bld';
const names = parameterNames(STAGE);

let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
  // What the stack creates: the stage's release ledger, empty until a release.
  await createLedgerTable(moto, STAGE);
});
afterAll(async () => {
  await moto?.stop();
});

async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, BLUEGREEN_STAGE: '', ...moto.env, ...env },
      cwd: REPO_ROOT,
    });
    return { code: 0, stdout, stderr: ownLines(stderr) };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: ownLines(e.stderr) };
  }
}

/** The CLI's own lines: Node's warnings about itself (the SDK's Node version notice) left out. */
function ownLines(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('bluegreen '))
    .join('\n');
}

/** The release record (the ledger's head): none as long as nothing was released. */
const releaseRecord = () => ledgerHeadText(moto, STAGE);

test('without a stage, build and release --build are refused: one line, exit 2 (local mode has no images)', async () => {
  const build = await cli(['build', EXAMPLE, '--release', 'v1']);
  expect(build.code).toBe(2);
  expect(build.stderr.trim()).toMatch(
    /^bluegreen build: build DIR needs a deployed stage to push to: name it with --stage S/,
  );
  expect(build.stderr.trim().split('\n')).toHaveLength(1);
  const release = await cli(['release', '--release', 'v1', '--build', EXAMPLE]);
  expect(release.code).toBe(2);
  expect(release.stderr.trim()).toMatch(/^bluegreen release: --build needs a deployed stage to push to/);
});

test('bad input names the flag: --build with --image, a directory without a Dockerfile, a bad --release', async () => {
  const both = await cli(['release', '--stage', STAGE, '--release', 'v1', '--build', EXAMPLE, '--image', 'app:v1']);
  expect([both.code, both.stderr.trim()]).toEqual([
    2,
    'bluegreen release: --build and --image exclude each other: --build DIR pushes the image it releases',
  ]);
  const noDockerfile = await cli([
    'release',
    '--stage',
    STAGE,
    '--release',
    'v1',
    '--build',
    path.join(REPO_ROOT, 'docs'),
  ]);
  expect(noDockerfile.code).toBe(2);
  expect(noDockerfile.stderr.trim()).toMatch(/^bluegreen release: --build .*docs: no Dockerfile in it/);
  const badId = await cli(['build', EXAMPLE, '--stage', STAGE, '--release', 'v 1']);
  expect(badId.code).toBe(2);
  expect(badId.stderr.trim()).toBe(
    'bluegreen build: --release must be 1-64 characters of A-Z a-z 0-9 . _ -, got "v 1"',
  );
  expect(await releaseRecord()).toBeUndefined();
});

test('a stage without its repository or platform parameter: one line saying which, exit 1, nothing released', async () => {
  const noRepo = await cli(['release', '--stage', STAGE, '--release', 'v1', '--build', EXAMPLE]);
  expect(noRepo.code).toBe(1);
  expect(noRepo.stderr.trim()).toBe(
    `bluegreen release: stage ${STAGE} has no ${names.ecrRepository}: is the stage deployed (cdk deploy) in this region?`,
  );
  await putParameters(moto, { [names.ecrRepository]: '123456789012.dkr.ecr.us-east-1.amazonaws.com/bluegreen-bld' });
  const noPlatform = await cli(['build', EXAMPLE, '--stage', STAGE, '--release', 'v1']);
  expect(noPlatform.code).toBe(1);
  expect(noPlatform.stderr.trim()).toMatch(
    new RegExp(`^bluegreen build: stage ${STAGE} has no ${names.imagePlatform} `),
  );
  expect(await releaseRecord()).toBeUndefined();
});

test('no Docker on PATH: one line, exit 1, nothing built or released', async () => {
  await putParameters(moto, { [names.imagePlatform]: 'linux/arm64' });
  const r = await cli(['release', '--stage', STAGE, '--release', 'v1', '--build', EXAMPLE], {
    PATH: mkdtempSync(path.join(os.tmpdir(), 'bluegreen-no-docker-')),
  });
  expect(r.code).toBe(1);
  expect(r.stderr.trim()).toBe(
    'bluegreen release: docker not found (ENOENT): install Docker to build images, or release one with --image',
  );
  expect(await releaseRecord()).toBeUndefined();
});

test("moto_server answers ECR GetAuthorizationToken (the harness's login token): base64 of AWS:<password>", async () => {
  const ecr = new ECRClient({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const token = (await ecr.send(new GetAuthorizationTokenCommand({}))).authorizationData?.[0]?.authorizationToken;
  expect(Buffer.from(token!, 'base64').toString()).toMatch(/^AWS:.+/);
  ecr.destroy();
});
