// `bluegreen build` (and `bluegreen release --build`): build a directory's Dockerfile for the stage's
// hosts, tag it <the stage's repository>:<release id>, log in to that registry with a token from the
// SDK and push it. Returns the image reference a release then names (--image). Nothing is pushed
// when the build fails, and the caller releases nothing when this throws.
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import type { ECRClient } from '@aws-sdk/client-ecr';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError } from '../../core/config-error';
import { IMAGE_PLATFORM_PATTERN } from '../../core/image-platform';
import { parameterNames } from '../../core/names';
import { POOL_STATE_REGEXPS } from '../../core/patterns';
import type { Out } from '../../support/output';
import { DockerRun, lastLines, runDocker } from './docker-cli';

/** A build or push that failed: one line saying which step and why (exit 1; nothing released). */
export class ImageBuildError extends Error {
  override name = 'ImageBuildError';
}

export interface ImageBuildDeps {
  ssm: SSMClient;
  ecr: Pick<ECRClient, 'send'>;
  stage: string;
  out: Out;
  /** The docker binary. @default 'docker' */
  docker?: string;
  /** The environment docker runs with (DOCKER_HOST, DOCKER_CONFIG). @default process.env */
  env?: NodeJS.ProcessEnv;
}

export interface BuiltImage {
  /** <repository>:<release>, what the release names. */
  image: string;
  platform: string;
  /** The pushed manifest's digest (sha256:…), as `docker push` reported it; undefined when it did not. */
  digest?: string;
}

/** A build context the CLI can hand to docker: a directory with a Dockerfile; bad input otherwise. */
export function checkBuildDir(dir: string, flag: string): string {
  const abs = path.resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new ConfigError(`${flag} ${dir}: no such directory`);
  if (!existsSync(path.join(abs, 'Dockerfile')))
    throw new ConfigError(`${flag} ${dir}: no Dockerfile in it (the directory is the build context)`);
  return abs;
}

/** The stage's repository and image platform, as the stack published them. */
async function stageTarget(ssm: SSMClient, stage: string): Promise<{ repository: string; platform: string }> {
  const n = parameterNames(stage);
  const res = await ssm.send(new GetParametersCommand({ Names: [n.ecrRepository, n.imagePlatform] }));
  const value = (name: string) => res.Parameters?.find((p) => p.Name === name)?.Value;
  const repository = value(n.ecrRepository);
  const platform = value(n.imagePlatform);
  if (repository === undefined)
    throw new ImageBuildError(
      `stage ${stage} has no ${n.ecrRepository}: is the stage deployed (cdk deploy) in this region?`,
    );
  if (platform === undefined)
    throw new ImageBuildError(
      `stage ${stage} has no ${n.imagePlatform} (the hosts' architecture): deploy the stage with this version first (cdk deploy)`,
    );
  if (!new RegExp(IMAGE_PLATFORM_PATTERN).test(platform))
    throw new ImageBuildError(`${n.imagePlatform} is "${platform}", not linux/amd64 or linux/arm64`);
  return { repository, platform };
}

/** The registry host of a repository URI (`<account>.dkr.ecr.<region>.amazonaws.com`, `127.0.0.1:5000`). */
export function registryOf(repository: string): string {
  return repository.split('/')[0];
}

/** The registry password from ECR's authorization token (base64 of `AWS:<password>`). */
export function passwordFromToken(token: string): { username: string; password: string } {
  const text = Buffer.from(token, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 1) throw new ImageBuildError('ECR returned an authorization token that is not user:password');
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** docker push's per-layer progress (`bb3d7175bca7: Preparing`): not why a push failed. */
const LAYER_PROGRESS = /^[a-f0-9]{12}: (Preparing|Waiting|Pushing|Pushed|Layer already exists|Retrying|Mounted from)/;

function failed(what: string, run: DockerRun, lines: number): ImageBuildError {
  const why = run.output
    .split(/\r?\n/)
    .filter((l) => !LAYER_PROGRESS.test(l.trim()))
    .join('\n');
  const tail = lastLines(why, lines);
  return new ImageBuildError(`${what} (exit ${run.code})${tail ? `: ${tail}` : ''}`);
}

/** Builds DIR for the stage's hosts, pushes it as <repository>:<release>; throws ImageBuildError/ConfigError. */
export async function buildAndPush(deps: ImageBuildDeps, dir: string, release: string): Promise<BuiltImage> {
  const docker = deps.docker ?? 'docker';
  const env = deps.env ?? process.env;
  const context = checkBuildDir(dir, 'build directory');
  const { repository, platform } = await stageTarget(deps.ssm, deps.stage);
  const image = `${repository}:${release}`;
  if (!POOL_STATE_REGEXPS.image.test(image))
    throw new ImageBuildError(`${parameterNames(deps.stage).ecrRepository} gives "${image}", not an image reference`);

  // Docker itself first: "no Docker" is its own answer, not a build failure.
  const engine = await runDocker(docker, ['version', '--format', '{{.Server.Version}}'], { env });
  if (engine.code === null)
    throw new ImageBuildError(
      `docker not found (${engine.startError}): install Docker to build images, or release one with --image`,
    );
  if (engine.code !== 0)
    throw new ImageBuildError(
      `the Docker Engine does not answer: ${lastLines(engine.output, 1) || `docker version exited ${engine.code}`}`,
    );

  deps.out(`build: ${path.relative(process.cwd(), context) || '.'} for ${platform} as ${image}`);
  const build = await runDocker(docker, ['build', '--platform', platform, '--tag', image, context], { env });
  if (build.code !== 0) throw failed(`docker build of ${dir} failed`, build, 5);

  const token = await deps.ecr.send(new GetAuthorizationTokenCommand({}));
  const data = token.authorizationData?.[0]?.authorizationToken;
  if (!data) throw new ImageBuildError('ECR GetAuthorizationToken returned no token');
  const { username, password } = passwordFromToken(data);
  const registry = registryOf(repository);
  // The password on stdin only: argv is visible to every user of the machine (ps).
  const login = await runDocker(docker, ['login', '--username', username, '--password-stdin', registry], {
    env,
    stdin: password,
  });
  if (login.code !== 0) throw failed(`docker login to ${registry} refused`, login, 2);

  const push = await runDocker(docker, ['push', image], { env });
  if (push.code !== 0) throw failed(`docker push of ${image} refused`, push, 3);
  const digest = push.output.match(/digest: (sha256:[a-f0-9]{64})/)?.[1];
  deps.out(`push: ${image}${digest ? ` (${digest})` : ''}`);
  return { image, platform, ...(digest ? { digest } : {}) };
}
