// `bluegreen verify-image` on the real Docker Engine (test/docker/harness.sh prepares it): the demo
// app keeps the pool contract; images that break one point fail, naming it; the container is gone
// afterwards, also when the CLI is interrupted. More images: add a row to IMAGES.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { DEFAULT_APP_IMAGE } from '../../core/patterns';
import type { PointId } from '../../core/image-contract';
import { REPO_ROOT } from '../../local/paths';
import { VERIFY_LABEL, verifyImage, type VerifyResult } from '../../local/verify-image';
import { baseImages, withoutDigest } from '../helpers/base-images';
import { describeWithDocker } from './compose-set';

const describeDocker = describeWithDocker(__filename);

const FIXTURE_DIR = path.join('test', 'fixtures', 'verify-image');
const fixtureImage = (fault: string) => `bluegreen-verify-fixture:${fault}`;

/**
 * `docker build` of a folder of the repo with build args, offline: the FROM must be an image the
 * harness imported (or built). A new image to verify is a row below with `build: () => buildImage(...)`.
 */
function buildImage(dir: string, tag: string, buildArgs: Record<string, string> = {}): void {
  const args = Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  execFileSync('docker', ['build', '--quiet', ...args, '--tag', tag, path.join(REPO_ROOT, dir)], {
    stdio: 'pipe',
    timeout: 120_000,
  });
}

/** test/fixtures/verify-image with one FAULT, from the harness's node image (app/Dockerfile's name). */
const buildFixture = (fault: string) =>
  buildImage(FIXTURE_DIR, fixtureImage(fault), { BASE_IMAGE: withoutDigest(baseImages().node), FAULT: fault });

interface ImageCase {
  /** What the row shows. */
  name: string;
  image: string;
  /** Builds the image (offline); none: the harness built it. */
  build?: () => void;
  /** The points that must fail; every other point must pass. */
  fails: PointId[];
  /** --timeout for /healthz (seconds): short where /healthz is meant never to answer 200. */
  timeoutSeconds?: number;
  /** --healthcheck: the stage's poolHealthcheck (none: the host's default). */
  healthcheck?: string;
}

const IMAGES: ImageCase[] = [
  { name: 'the demo app (app/, built by the harness)', image: DEFAULT_APP_IMAGE, fails: [] },
  {
    // Another runtime, no node in the image: the host's default health check finds python3.
    name: 'the Python example (examples/python-app, on the harness python image)',
    image: 'bluegreen-verify-python:local',
    build: () => buildImage(path.join('examples', 'python-app'), 'bluegreen-verify-python:local'),
    fails: [],
  },
  {
    name: "the demo app with a stage's poolHealthcheck (wget)",
    image: DEFAULT_APP_IMAGE,
    healthcheck: 'wget -q -O /dev/null http://127.0.0.1:3000/healthz',
    fails: [],
  },
  {
    name: 'the demo app with a poolHealthcheck the image cannot run',
    image: DEFAULT_APP_IMAGE,
    healthcheck: 'curl -fsS http://127.0.0.1:3000/healthz',
    fails: ['healthcheck'],
  },
  {
    name: 'an image without /healthz',
    image: fixtureImage('no-healthz'),
    build: () => buildFixture('no-healthz'),
    // The host's health check asks /healthz too.
    fails: ['healthz', 'healthcheck'],
    timeoutSeconds: 3,
  },
  {
    name: 'an image that listens on 3000 whatever PORT says',
    image: fixtureImage('ignores-port'),
    build: () => buildFixture('ignores-port'),
    // Nothing answers on PORT, so /version and X-App-Pool are not reached (skipped counts as not passed).
    fails: ['healthz', 'healthcheck', 'version', 'pool-header', 'port'],
    timeoutSeconds: 3,
  },
  {
    name: 'an image that ignores SIGTERM',
    image: fixtureImage('ignores-sigterm'),
    build: () => buildFixture('ignores-sigterm'),
    fails: ['sigterm'],
  },
  {
    name: 'an image that exits at once on SIGTERM, dropping a request in flight',
    image: fixtureImage('drops-in-flight'),
    build: () => buildFixture('drops-in-flight'),
    fails: ['sigterm'],
  },
];

const leftovers = () =>
  execFileSync('docker', ['ps', '--all', '--quiet', '--filter', `label=${VERIFY_LABEL}`], { encoding: 'utf8' }).trim();

describeDocker('bluegreen verify-image on the local Docker Engine', () => {
  const seen = new Map<string, VerifyResult>();
  afterAll(() => {
    const built = IMAGES.filter((c) => c.build).map((c) => c.image);
    spawnSync('docker', ['image', 'rm', '--force', ...built], { stdio: 'ignore' });
  });

  test.each(IMAGES.map((c) => [c.name, c] as const))(
    '%s',
    async (_name, c) => {
      c.build?.();
      const lines: string[] = [];
      const result = await verifyImage(c.image, c.timeoutSeconds ?? 30, (l) => lines.push(l), c.healthcheck);
      seen.set(c.healthcheck ? `${c.image} ${c.healthcheck}` : c.image, result);
      const report = lines.join('\n');
      const notPassed = result.results.filter((r) => r.verdict !== 'pass').map((r) => r.id);
      expect({ notPassed, report }).toEqual({ notPassed: c.fails, report: expect.any(String) });
      expect(result.code).toBe(c.fails.length === 0 ? 0 : 1);
      // The report names each failed point in its last line, and says why in its row.
      if (c.fails.length > 0) {
        expect(lines.at(-1)).toContain('breaks the pool contract: ');
        for (const id of c.fails) expect(lines.at(-1)).toMatch(new RegExp(`[:,(] ${id}[,) ]`));
      }
      expect(leftovers()).toBe('');
    },
    90_000,
  );

  test("what the points saw: the demo app's in-flight request, the ignoring image's SIGKILL, the missing /healthz", () => {
    const reason = (image: string, id: PointId) => seen.get(image)?.results.find((r) => r.id === id)?.reason;
    const demo = seen.get(DEFAULT_APP_IMAGE)!;
    expect(reason(DEFAULT_APP_IMAGE, 'version')).toBe(
      `GET /version answers release ${demo.given.release} (body and X-Release-Id)`,
    );
    // The demo app has the /slow/ route: a request in flight at docker stop is what is checked.
    expect(reason(DEFAULT_APP_IMAGE, 'sigterm')).toMatch(/request in flight at docker stop answered 200; exited 0/);
    expect(reason(fixtureImage('ignores-sigterm'), 'sigterm')).toMatch(/^SIGKILLed \(exit 137\) after the 10 s grace/);
    expect(reason(fixtureImage('drops-in-flight'), 'sigterm')).toMatch(
      /^a 1500 ms request in flight at docker stop ended with no answer \(.+\), not 200: finish requests in flight$/,
    );
    expect(reason(fixtureImage('no-healthz'), 'healthz')).toBe(
      "GET /healthz answered 404, not 200, for 3 s (the host's health check needs 200)",
    );
    expect(reason(fixtureImage('no-healthz'), 'healthcheck')).toBe(
      "the host's default (node, python3, curl or wget) exits 1 in the container",
    );
    expect(reason(fixtureImage('ignores-port'), 'port')).toMatch(/^answers on 3000, not on the PORT=3917 it was given/);
    expect(reason(`${DEFAULT_APP_IMAGE} curl -fsS http://127.0.0.1:3000/healthz`, 'healthcheck')).toMatch(
      /^--healthcheck "curl -fsS http:\/\/127\.0\.0\.1:3000\/healthz" exits 127 in the container: .*curl.*not found/,
    );
    expect(reason(DEFAULT_APP_IMAGE, 'healthcheck')).toBe(
      "the host's default (node, python3, curl or wget) exits 0 in the container",
    );
  });

  test('Ctrl-C while it runs: the CLI removes its container and exits 130', async () => {
    const child = spawn(
      process.execPath,
      [path.join(REPO_ROOT, 'bin', 'bluegreen.cjs'), 'verify-image', DEFAULT_APP_IMAGE],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Interrupt once its container exists (bounded: 30 s).
    for (let i = 0; i < 300 && leftovers() === ''; i++) await new Promise((r) => setTimeout(r, 100));
    expect(leftovers()).not.toBe('');
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stdout).toMatch(/running bluegreen-app:local as bluegreen-verify-/);
    expect(leftovers()).toBe('');
  }, 60_000);

  test('a name that is not on the engine and cannot be pulled: exit 2 with one line', () => {
    const run = spawnSync(
      process.execPath,
      [path.join(REPO_ROOT, 'bin', 'bluegreen.cjs'), 'verify-image', 'bluegreen-verify-fixture:never-built'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(run.status).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^bluegreen verify-image: IMAGE "bluegreen-verify-fixture:never-built" is not on this Docker Engine and docker pull failed: /,
      ),
    ]);
  }, 130_000);
});
