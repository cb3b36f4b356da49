// `bluegreen build DIR [--release ID] --stage S`: build and push an image for a stage, without
// releasing it (the release names it later with --image). `release --build DIR` does both in one step.
import { ECRClient } from '@aws-sdk/client-ecr';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../core/config-error';
import { POOL_STATE_REGEXPS } from '../../core/patterns';
import { sdkRetryConfig } from '../../core/ssm-budget';
import type { Out } from '../../support/output';
import { AWS_FLAGS, awsTarget, namesStage } from '../aws-target';
import { buildAndPush, checkBuildDir, ImageBuildDeps } from './image-build';

export const BUILD_USAGE = `usage: bluegreen build DIR [--release ID] --stage S [--region R] [--profile P]
  Builds DIR's Dockerfile for the stage's hosts (linux/amd64, or linux/arm64 on Graviton instance
  types: /bluegreen/<stage>/image-platform), tags it <the stage's repository>:<ID>, logs in to that
  registry (a token from ECR GetAuthorizationToken, given to docker login on stdin) and pushes it.
  Prints the image; release it with: bluegreen release --stage S --release ID --image IMAGE, or do
  both in one step with: bluegreen release --stage S --release ID --build DIR.
  --release ID   the tag, and the release id to use later (default: b<UTC date>-<time>, like
                 b20250301-141500). Repository tags are immutable: a new build needs a new ID
  Needs Docker, and the operator's push permissions (README "4. Release"). Exit 0 pushed, 1 the
  build, login or push failed (its last lines printed; nothing released), 2 bad input.
  Without a stage: refused (local mode runs app/ as processes, there is no image to build).`;

/** The refusal when no stage is named: local mode has no registry and no images. */
export const LOCAL_BUILD_REFUSAL =
  'needs a deployed stage to push to: name it with --stage S (or $BLUEGREEN_STAGE); local mode runs app/ as processes and has no images';

/** A default release id from the clock: b<YYYYMMDD>-<HHMMSS> (UTC). */
export function defaultBuildId(now: Date): string {
  const iso = now.toISOString(); // 2025-03-01T14:15:00.000Z
  return `b${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}`;
}

export function parseBuildArgs(
  args: string[],
  now: Date,
): { dir: string; release: string; aws: { stage?: string; region?: string; profile?: string } } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { ...AWS_FLAGS, release: { type: 'string' } },
    });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (see bluegreen build --help)`);
  }
  const [dir, ...rest] = parsed.positionals;
  if (dir === undefined || rest.length > 0)
    throw new ConfigError(
      'usage: bluegreen build DIR [--release ID] --stage S (DIR: the directory with the Dockerfile)',
    );
  const release = parsed.values.release ?? defaultBuildId(now);
  if (!POOL_STATE_REGEXPS.release.test(release))
    throw new ConfigError(`--release must be 1-64 characters of A-Z a-z 0-9 . _ -, got "${release}"`);
  const { stage, region, profile } = parsed.values;
  return { dir, release, aws: { stage, region, profile } };
}

/** The SDK clients and docker settings `buildAndPush` needs for a stage named by flags/env. */
export function awsImageBuildDeps(
  flags: { stage?: string; region?: string; profile?: string },
  env: NodeJS.ProcessEnv,
  out: Out,
): ImageBuildDeps {
  const target = awsTarget(flags, env);
  const ecr = new ECRClient({ region: flags.region, profile: flags.profile, ...sdkRetryConfig() });
  return { ssm: target.ssm, ecr, stage: target.stage, out, env };
}

export async function buildCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: Out,
  now: () => Date = () => new Date(),
): Promise<number> {
  const { dir, release, aws } = parseBuildArgs(args, now());
  if (!namesStage(args, env)) throw new ConfigError(`build DIR ${LOCAL_BUILD_REFUSAL}`);
  checkBuildDir(dir, 'DIR');
  const built = await buildAndPush(awsImageBuildDeps(aws, env, out), dir, release);
  out(`image: ${built.image}`);
  out(
    `release it: npx bluegreen release --stage ${aws.stage ?? env.BLUEGREEN_STAGE} --release ${release} --image ${built.image}`,
  );
  return 0;
}
