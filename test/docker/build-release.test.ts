// `bluegreen release --build` on the Docker Engine harness: the Python example app (an image without
// node) is built by the CLI's own build code (ops/build: the stage's platform parameter, docker build
// --platform, an ECR token from GetAuthorizationToken on moto_server, docker login --password-stdin,
// docker push) into a real registry (the harness's docker-registry on loopback, which the stage's
// repository parameter names), pulled by the host's bluegreen-apply and released over the demo app
// by the release code (release-stage.ts), under full-speed keep-alive load from a client that never
// re-sends. A build that fails, or a registry that refuses the login, releases nothing.
import { ECRClient } from '@aws-sdk/client-ecr';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parameterNames } from '../../core/names';
import { summarize } from '../../local/load';
import { REPO_ROOT } from '../../local/paths';
import { ImageBuildDeps, ImageBuildError } from '../../ops/build/image-build';
import { releaseCommand } from '../../ops/release/release-commands';
import { httpRequest } from '../../support/http';
import { putParameters } from '../helpers/moto';
import { FULL_SPEED_LOAD, STRICT_CLIENT, startLoad } from '../helpers/load';
import { waitFor } from '../helpers/stack';
import { freePort } from '../../local/ports';
import { ComposeSet, describeWithDocker, startComposeSet } from './compose-set';
import { DockerStage, startDockerStage } from './release-stage';
import { cliArgs, readWorkflow } from '../helpers/github-workflow';

const describeDocker = describeWithDocker(__filename);

const EXAMPLE = path.join(REPO_ROOT, 'examples', 'python-app');
const REGISTRY_FILE = path.join(
  process.env.BLUEGREEN_HARNESS_CACHE ?? '/var/cache/bluegreen-harness',
  'registry-address',
);
const LOAD = FULL_SPEED_LOAD;

describeDocker(
  'bluegreen release --build: the Python example built, pushed to a real registry, pulled and released',
  () => {
    let set: ComposeSet;
    let stage: DockerStage;
    let ecr: ECRClient;
    let registry: string;
    let dockerConfig: string;
    const built: string[] = [];
    const lines: string[] = [];
    const deps = (): ImageBuildDeps => ({
      ssm: stage.ssm,
      ecr,
      stage: set.stage,
      out: (l) => lines.push(l),
      // A docker config of the test's own: the login's credentials never touch the machine's.
      env: { ...process.env, DOCKER_CONFIG: dockerConfig },
    });

    beforeAll(async () => {
      if (!existsSync(REGISTRY_FILE))
        throw new Error(`no harness registry (${REGISTRY_FILE}): run test/docker/harness.sh again`);
      registry = readFileSync(REGISTRY_FILE, 'utf8').trim();
      dockerConfig = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-docker-config-'));
      set = await startComposeSet({ active: 'blue', releases: { blue: 'v1', green: 'v0' } });
      stage = await startDockerStage(set);
      ecr = new ECRClient({
        endpoint: set.moto.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
      // What the stack publishes: the repository (here the harness registry) and the hosts' platform.
      const names = parameterNames(set.stage);
      await putParameters(set.moto, {
        [names.ecrRepository]: `${registry}/bluegreen-${set.stage}-${process.pid}`,
        [names.imagePlatform]: `linux/${process.arch === 'arm64' ? 'arm64' : 'amd64'}`,
      });
    }, 240_000);
    afterAll(async () => {
      ecr?.destroy();
      await stage?.stop();
      await set?.down();
      for (const image of built) spawnSync('docker', ['rmi', '-f', image], { stdio: 'ignore' });
      if (dockerConfig) rmSync(dockerConfig, { recursive: true, force: true });
    }, 60_000);

    /** `bluegreen release --stage <stage> ARGS`: the command's own code, with this stage's parts. */
    const releaseCli = (args: string[]) =>
      releaseCommand(
        ['--stage', set.stage, ...args],
        {},
        (l) => lines.push(l),
        () => {
          throw new Error('a stage is named: local mode is never asked');
        },
        undefined,
        { backend: stage.backend, imageBuild: (out) => ({ ...deps(), out }) },
      );

    test('release --build examples/python-app over the demo app: exit 0, 0 failed, /version answers the Python release', async () => {
      const image = `${registry}/bluegreen-${set.stage}-${process.pid}:py1`;
      built.push(image);
      const load = startLoad({ url: `${set.url}/version`, ...LOAD });
      await load.after(2_000, 'before the build');
      const code = await releaseCli(['--release', 'py1', '--build', EXAMPLE, '--bake', '10s']);
      await load.after(2_000, 'after the release');
      const result = await load.finish();
      const summary = summarize(result.samples, result.durationMs);
      process.stdout.write(
        `docker release --build py1: ${summary.requests} requests, ${summary.failed} failed, by pool ${JSON.stringify(summary.byPool)}\n${lines.join('\n')}\n`,
      );
      expect(code).toBe(0);
      expect(summary.failures).toEqual({});
      const text = lines.join('\n');
      expect(text).toMatch(/^build: .* for linux\/(amd64|arm64) as /m);
      const pushed = text.match(/^push: (\S+) \((sha256:[a-f0-9]{64})\)$/m);
      expect(pushed?.[1]).toBe(image);
      // The registry holds that manifest (the host's `docker pull` got it from there).
      const repo = image.slice(registry.length + 1, image.lastIndexOf(':'));
      const manifest = await httpRequest(`http://${registry}/v2/${repo}/manifests/py1`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
        agent: false,
        timeoutMs: 3_000,
      });
      expect([manifest.status, manifest.headers['docker-content-digest']]).toEqual([200, pushed?.[2]]);
      const record = (await stage.backend.readRecord())!;
      expect(record).toMatchObject({ release: 'py1', image, pool: 'green', state: 'promoted', previousRelease: 'v1' });
      // The ledger keeps the digest pushed: what ran, whatever the tag points at later.
      expect(record.imageDigest).toBe(pushed?.[2]);
      // The push's time starts the release's lead time (history --stats): before the release's start.
      expect(Date.parse(record.builtAt!)).toBeLessThanOrEqual(Date.parse(record.startedAt));
      expect(Date.parse(record.startedAt) - Date.parse(record.builtAt!)).toBeLessThan(60_000);
      expect(record.steps.filter((s) => s.host).map((s) => `${s.step}:${s.ok}`)).toEqual(
        expect.arrayContaining(['pull:true', 'recreate:true', 'health:true', 'smoke:true']),
      );
      // Through the public port: the Python app answers, as green, with the new release.
      const version = await httpRequest(`${set.url}/version`, { agent: false, timeoutMs: 3_000 });
      expect(version.status).toBe(200);
      expect(version.headers['x-release-id']).toBe('py1');
      expect(JSON.parse(version.body)).toMatchObject({ pool: 'green', release: 'py1', python: expect.any(String) });
      // The pool runs the pushed image, which has no node (the health check did not need it).
      const container = set.containerId('green');
      expect(
        execFileSync('docker', ['inspect', '-f', '{{.Config.Image}}', container], { encoding: 'utf8' }).trim(),
      ).toBe(image);
      expect(
        spawnSync('docker', ['exec', container, 'sh', '-c', 'command -v node'], { encoding: 'utf8' }).status,
      ).not.toBe(0);
    }, 300_000);

    test("the GitHub Actions example's Release step, as the runner runs it: built, pushed, released; the run's URL in the ledger", async () => {
      // The step's own line, expanded by bash with what the runner sets (the job's env, GitHub's variables).
      const workflow = readWorkflow(path.join(REPO_ROOT, 'examples', 'github-actions', 'release.yml'));
      const step = workflow.jobs.release.steps.find((s) => s.name === 'Release')!;
      const sha = 'f00dfeed0123456789abcdef0123456789abcdef';
      const runner = {
        STAGE: set.stage,
        GITHUB_SHA: sha,
        GITHUB_SERVER_URL: 'https://github.com',
        GITHUB_REPOSITORY: 'acme/shop',
        GITHUB_RUN_ID: '7203456789',
        GITHUB_RUN_ATTEMPT: '1',
      };
      const [command, ...args] = cliArgs(step.run!, runner);
      expect(command).toBe('release');
      const image = `${registry}/bluegreen-${set.stage}-${process.pid}:${sha.slice(0, 12)}`;
      built.push(image);
      // Its default bake (2 min) is judged on traffic: users keep coming while the job runs.
      const load = startLoad({
        url: `${set.url}/version`,
        connections: 2,
        ratePerSec: 50,
        durationMs: 360_000,
        ...STRICT_CLIENT,
      });
      // The runner's working directory is the checkout: the repository's root.
      const code = await releaseCommand(
        args,
        runner,
        (l) => lines.push(l),
        () => {
          throw new Error('a stage is named: local mode is never asked');
        },
        undefined,
        { backend: stage.backend, imageBuild: (out) => ({ ...deps(), out }) },
      );
      const result = await load.finish();
      expect(code).toBe(0);
      expect(summarize(result.samples, result.durationMs).failures).toEqual({});
      const record = (await stage.backend.readRecord())!;
      expect(record).toMatchObject({
        release: sha.slice(0, 12),
        image,
        state: 'promoted',
        ciRunUrl: 'https://github.com/acme/shop/actions/runs/7203456789',
      });
      expect(record.imageDigest).toMatch(/^sha256:[a-f0-9]{64}$/);
    }, 420_000);

    test('a build that fails releases nothing: one line with its last lines; a registry that refuses the login neither', async () => {
      const before = await stage.backend.readRecord();
      const broken = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-broken-build-'));
      try {
        writeFileSync(
          path.join(broken, 'Dockerfile'),
          'FROM python:3.13-slim\nRUN echo "compile error: app.py line 3" && exit 3\n',
        );
        const failure = await releaseCli(['--release', 'py2', '--build', broken]).catch((e: unknown) => e);
        expect(failure).toBeInstanceOf(ImageBuildError);
        expect((failure as Error).message).toMatch(
          /^docker build of .* failed \(exit \d+\): .*compile error: app\.py line 3/,
        );
        expect((failure as Error).message).not.toContain('\n');
      } finally {
        rmSync(broken, { recursive: true, force: true });
      }
      // A registry nobody serves: the login is refused, nothing pushed.
      await putParameters(set.moto, {
        [parameterNames(set.stage).ecrRepository]: `127.0.0.1:9/bluegreen-${set.stage}`,
      });
      built.push(`127.0.0.1:9/bluegreen-${set.stage}:py3`);
      const refused = await releaseCli(['--release', 'py3', '--build', EXAMPLE]).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ImageBuildError);
      expect((refused as Error).message).toMatch(
        /^docker login to 127\.0\.0\.1:9 refused \(exit 1\): .*connection refused/i,
      );
      expect(await stage.backend.readRecord()).toEqual(before);
    }, 120_000);

    test("a registry that refuses the push (read-only) releases nothing: one line with docker's last lines", async () => {
      const before = await stage.backend.readRecord();
      // A second docker-registry of the test's own, in maintenance mode: it answers, logs anyone in,
      // and refuses every write (as a registry over quota or a repository without push rights).
      const port = await freePort();
      const dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-readonly-registry-'));
      const config = path.join(dir, 'config.yml');
      writeFileSync(
        config,
        [
          'version: 0.1',
          'log:',
          '  level: warn',
          'storage:',
          '  filesystem:',
          `    rootdirectory: ${dir}/data`,
          '  maintenance:',
          '    readonly:',
          '      enabled: true',
          'http:',
          `  addr: 127.0.0.1:${port}`,
          '',
        ].join('\n'),
      );
      const readonly = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
      try {
        await waitFor(
          async () =>
            (await httpRequest(`http://127.0.0.1:${port}/v2/`, { agent: false, timeoutMs: 500 }).catch(() => undefined))
              ?.status === 200,
          'the read-only registry to answer',
          15_000,
        );
        const repo = `127.0.0.1:${port}/bluegreen-${set.stage}`;
        await putParameters(set.moto, { [parameterNames(set.stage).ecrRepository]: repo });
        built.push(`${repo}:py4`);
        const refused = await releaseCli(['--release', 'py4', '--build', EXAMPLE]).catch((e: unknown) => e);
        process.stdout.write(`read-only registry: ${String((refused as Error).message)}\n`);
        expect(refused).toBeInstanceOf(ImageBuildError);
        expect((refused as Error).message).toMatch(
          new RegExp(`^docker push of ${repo.replace(/\./g, '\\.')}:py4 refused \\(exit 1\\): .*HTTP 405`),
        );
        expect((refused as Error).message).not.toContain('\n');
        expect(await stage.backend.readRecord()).toEqual(before);
      } finally {
        readonly.kill('SIGTERM');
        await new Promise((r) => (readonly.exitCode !== null ? r(null) : readonly.once('exit', r)));
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  },
);
