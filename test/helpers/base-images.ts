// The base images the project's files name, read by test/docker/base-images.sh: the reader the
// Docker harness uses too, so the tests and the harness can never read them differently.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';

export const BASE_IMAGES_READER = path.join(REPO_ROOT, 'test', 'docker', 'base-images.sh');

/** { nginx: docker-compose.yml's default, node: app/Dockerfile's ARG BASE_IMAGE } of a repo's files. */
export function baseImages(repo = REPO_ROOT): Record<'nginx' | 'node', string> {
  const out = execFileSync('sh', [BASE_IMAGES_READER, repo], { encoding: 'utf8' });
  const found = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  );
  return { nginx: found.nginx, node: found.node };
}

/** name:tag@sha256:… → name:tag (what the harness tags: `docker tag` cannot create a digest). */
export const withoutDigest = (ref: string) => ref.replace(/@sha256:[a-f0-9]{64}$/, '');
