// The base images the host runs (docker-compose.yml's nginx, app/Dockerfile's node): on a release
// line that still gets fixes today (the table in test/helpers/base-image-support.ts), named the same
// everywhere the repo names them, and every reader of an image name takes the digest-pinned form
// name:tag@sha256:<64 hex> (README: how to bump the base images).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { POOL_STATE_PATTERNS } from '../../core/patterns';
import { parseConfig } from '../../lib/stack-config';
import { REPO_ROOT } from '../../local/paths';
import { parseReleaseArgs } from '../../ops/release/args';
import {
  BASE_IMAGE_SUPPORT,
  LAMBDA_RUNTIME_SUPPORT,
  SUPPORT_WARN_DAYS,
  supportVerdict,
} from '../helpers/base-image-support';
import { synthTemplate } from '../helpers/cdk';
import { BASE_IMAGES_READER as READER, baseImages } from '../helpers/base-images';

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

/** `node:26-alpine@sha256:…` → { name: 'node', tag: '26-alpine', digest }. */
function parseRef(ref: string) {
  const m = ref.match(/^([a-z0-9][a-z0-9._/-]*):([A-Za-z0-9._-]{1,128})(?:@(sha256:[a-f0-9]{64}))?$/);
  if (!m) throw new Error(`"${ref}" is not name:tag or name:tag@sha256:<64 hex>`);
  return { name: m[1], tag: m[2], digest: m[3] };
}

/** The release line a tag names: node '26-alpine' → '26', nginx '1.30.1-alpine' → '1.30'. */
const lineOf = {
  node: (tag: string) => tag.match(/^(\d+)(?:[.-]|$)/)?.[1],
  nginx: (tag: string) => tag.match(/^(\d+\.\d+)(?:[.-]|$)/)?.[1],
};

// The one test in the repository that reads the calendar (it exists to notice the date): the
// clock-ahead run (test/clock-ahead.sh) leaves this file out.
const today = new Date().toISOString().slice(0, 10);

describe.each(['node', 'nginx'] as const)('the %s base image', (what) => {
  const ref = baseImages()[what];
  const table = BASE_IMAGE_SUPPORT[what];

  test('is named by tag (a line), optionally pinned by digest', () => {
    const { name, tag } = parseRef(ref);
    expect(name).toBe(what);
    expect(lineOf[what](tag)).toBeDefined();
  });

  test(`is on a release line that gets fixes today (${today}) and is ${table.preferredWhat}`, () => {
    const line = lineOf[what](parseRef(ref).tag)!;
    const end = table.lines[line];
    if (!end)
      throw new Error(
        `${ref}: line ${line} is not in test/helpers/base-image-support.ts: add its end-of-support date from ${table.source}`,
      );
    const support = supportVerdict(end, today);
    if (support.verdict === 'ended')
      throw new Error(
        `${ref}: ${what} ${line} stopped getting fixes on ${end}: move to a supported line (README: how to bump the base images; ${table.source})`,
      );
    if (support.verdict === 'ending')
      console.warn(
        `${ref}: ${what} ${line} stops getting fixes on ${end}, in ${support.daysLeft} days: plan the bump (README: how to bump the base images)`,
      );
    if (!table.preferred(line)) throw new Error(`${ref}: ${what} ${line} is not ${table.preferredWhat}`);
  });
});

test(`every Lambda runtime the stacks use is supported today (${today})`, () => {
  const runtimes = new Set<string>();
  for (const context of [{}, { stage: 'fleet', hosts: '3' }]) {
    const functions = synthTemplate(context).findResources('AWS::Lambda::Function');
    for (const fn of Object.values(functions))
      runtimes.add((fn as { Properties: { Runtime: string } }).Properties.Runtime);
  }
  expect(runtimes.size).toBeGreaterThan(0);
  for (const runtime of runtimes) {
    const end = LAMBDA_RUNTIME_SUPPORT.lines[runtime];
    if (!end)
      throw new Error(
        `Lambda runtime ${runtime} is not in test/helpers/base-image-support.ts: add its deprecation date from ${LAMBDA_RUNTIME_SUPPORT.source}`,
      );
    const support = supportVerdict(end, today);
    if (support.verdict === 'ended')
      throw new Error(
        `Lambda runtime ${runtime} was deprecated on ${end}: move to a supported one (${LAMBDA_RUNTIME_SUPPORT.source})`,
      );
    if (support.verdict === 'ending')
      console.warn(
        `Lambda runtime ${runtime} is deprecated on ${end}, in ${support.daysLeft} days: plan the move (${LAMBDA_RUNTIME_SUPPORT.source})`,
      );
  }
});

describe(`the support verdict: a warning ${SUPPORT_WARN_DAYS} days before a line's last day, a failure only after it`, () => {
  test.each([
    ['2027-04-30', '2027-01-01', 'supported'],
    ['2027-04-30', '2027-03-15', 'ending'],
    ['2027-04-30', '2027-03-01', 'ending'],
    ['2027-04-30', '2027-04-30', 'ending'],
    ['2027-04-30', '2027-05-01', 'ended'],
  ])('a line ending %s, on %s: %s', (end, on, verdict) => {
    expect(supportVerdict(end, on).verdict).toBe(verdict);
  });

  test('days left are counted in whole days', () => {
    expect(supportVerdict('2027-04-30', '2027-03-01')).toEqual({ verdict: 'ending', daysLeft: 60 });
    expect(supportVerdict('2027-04-30', '2027-02-28').verdict).toBe('supported');
  });
});

test('the base images are named the same wherever the repo names them', () => {
  // Every file git knows (bench/results hold what past runs used, and this file its bad examples, on purpose).
  const self = path.relative(REPO_ROOT, __filename);
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  })
    .split('\n')
    .filter(
      (f) =>
        f &&
        f !== self &&
        !f.startsWith('bench/results/') &&
        /\.(ts|js|sh|yml|yaml|json|md|conf|service|timer)$|Dockerfile$|^\.ci\/run$/.test(f),
    );
  const images = baseImages();
  const tagOf = { node: parseRef(images.node).tag, nginx: parseRef(images.nginx).tag };
  const wrong: string[] = [];
  for (const file of files) {
    const text = readFileSync(path.join(REPO_ROOT, file), 'utf8');
    for (const m of text.matchAll(/\b(node|nginx):(\d[A-Za-z0-9._-]*)(@sha256:[a-f0-9]+)?/g)) {
      const what = m[1] as 'node' | 'nginx';
      if (m[2] !== tagOf[what] || (m[3] && m[0] !== images[what]))
        wrong.push(`${file}: ${m[0]} (the files say ${images[what]})`);
    }
  }
  expect(wrong).toEqual([]);
});

describe('a digest-pinned name (name:tag@sha256:<64 hex>) is taken everywhere an image name is read', () => {
  const pinned = `nginx:1.30-alpine@${DIGEST}`;

  test('the harness reader: docker-compose.yml and app/Dockerfile pinned by digest', () => {
    const repo = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-base-images-'));
    try {
      for (const dir of ['userdata', 'app']) mkdirSync(path.join(repo, dir));
      const compose = readFileSync(path.join(REPO_ROOT, 'userdata', 'docker-compose.yml'), 'utf8');
      const dockerfile = readFileSync(path.join(REPO_ROOT, 'app', 'Dockerfile'), 'utf8');
      const { nginx, node } = baseImages();
      writeFileSync(path.join(repo, 'userdata', 'docker-compose.yml'), compose.replace(nginx, `${nginx}@${DIGEST}`));
      writeFileSync(
        path.join(repo, 'app', 'Dockerfile'),
        dockerfile.replace(`ARG BASE_IMAGE=${node}`, `ARG BASE_IMAGE=${node}@${DIGEST}`),
      );
      expect(baseImages(repo)).toEqual({ nginx: `${nginx}@${DIGEST}`, node: `${node}@${DIGEST}` });
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  test('the harness reader names the file when a name is missing', () => {
    const repo = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-base-images-'));
    try {
      cpSync(
        path.join(REPO_ROOT, 'userdata', 'docker-compose.yml'),
        path.join(repo, 'userdata', 'docker-compose.yml'),
        { recursive: true },
      );
      mkdirSync(path.join(repo, 'app'));
      writeFileSync(path.join(repo, 'app', 'Dockerfile'), 'FROM scratch\n');
      const r = spawnSync('sh', [READER, repo], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('base-images: no base image in app/Dockerfile (ARG BASE_IMAGE=...)');
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  test('the SSM pool image pattern, the context keys and the CLI --image', () => {
    expect(new RegExp(POOL_STATE_PATTERNS.image).test(pinned)).toBe(true);
    expect(
      new RegExp(POOL_STATE_PATTERNS.image).test(`123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v2@${DIGEST}`),
    ).toBe(true);
    expect(parseConfig({ blueImage: pinned }).blueImage).toBe(pinned);
    expect(parseReleaseArgs(['--release', 'r1', '--image', pinned]).options.image).toBe(pinned);
  });
});

describe("bluegreen-apply's host image settings (NGINX_IMAGE, BASE_IMAGE from /etc/bluegreen/env)", () => {
  // Run with no AWS region: a run that gets past the check stops at the SSM read (exit 3), offline.
  function apply(env: Record<string, string>) {
    const state = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-apply-images-'));
    try {
      // The agent's facts (IMAGE_RE among them: userdata/facts.sh, generated from core) from its home.
      cpSync(path.join(REPO_ROOT, 'userdata', 'facts.sh'), path.join(state, 'home', 'userdata', 'facts.sh'));
      const r = spawnSync('sh', [path.join(REPO_ROOT, 'userdata', 'bluegreen-apply.sh')], {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH ?? '',
          HOME: state,
          STAGE: 'img',
          BLUEGREEN_ENV_FILE: '/nonexistent/env',
          BLUEGREEN_HOME: path.join(state, 'home'),
          BLUEGREEN_STATE_DIR: path.join(state, 'state'),
          ...env,
        },
        timeout: 30_000,
      });
      return { code: r.status, stderr: r.stderr };
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  }

  test.each([
    ['NGINX_IMAGE', `nginx:1.30-alpine@${DIGEST}`],
    ['BASE_IMAGE', `node:26-alpine@${DIGEST}`],
    ['NGINX_IMAGE', '123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/nginx:1.30-alpine'],
  ])('%s=%s is taken (the run goes on to read SSM)', (name, value) => {
    const r = apply({ [name]: value });
    expect(r.stderr).not.toContain(`${name} is`);
    expect(r.code).toBe(3);
  });

  test.each([
    ['NGINX_IMAGE', 'nginx:1.30 alpine', 'nginx:1.30 alpine'],
    ['NGINX_IMAGE', 'nginx:1.30-alpine\nBLUE_IMAGE=evil:1', 'nginx:1.30-alpine BLUE_IMAGE=evil:1'],
    ['BASE_IMAGE', `node:26-alpine@sha256:${'ab'.repeat(8)}`, `node:26-alpine@sha256:${'ab'.repeat(8)}`],
  ])('%s=%j is refused before anything is touched (exit 2)', (name, value, shown) => {
    const r = apply({ [name]: value });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `bluegreen-apply: ${name} is '${shown}', not an image reference like nginx:1.30-alpine or nginx:1.30-alpine@sha256:<64 hex>; nothing was changed`,
    );
  });
});
