// The lockfile must install on a developer's Mac or Windows machine, not only on Linux CI.
// npm never adds a platform package that an existing lockfile lacks (npm/cli#4828, #8320), so a
// native dependency whose darwin/win32 builds are missing from package-lock.json fails to load its
// binding there ("Cannot find module '@swc/core-darwin-arm64'"). Each package that ships per-platform
// builds as optional dependencies must have an entry for every platform the README supports.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';

interface LockEntry {
  version?: string;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  optionalDependencies?: Record<string, string>;
}

/** The platforms a developer runs `npm ci && npm test` on (README, "Develop"). */
const PLATFORMS = [
  { os: 'darwin', cpu: 'arm64' },
  { os: 'darwin', cpu: 'x64' },
  { os: 'win32', cpu: 'x64' },
  { os: 'linux', cpu: 'x64' },
  // Devcontainers and Linux VMs on Apple Silicon (glibc, like the x64 row: see the libc check below).
  { os: 'linux', cpu: 'arm64' },
] as const;

const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
};

/** Where npm would find `name` from the package installed at `from` (node_modules lookup, innermost first). */
function resolve(from: string, name: string): LockEntry | undefined {
  let dir = from;
  for (;;) {
    const entry = lock.packages[`${dir ? `${dir}/` : ''}node_modules/${name}`];
    if (entry) return entry;
    if (!dir) return undefined;
    const cut = dir.lastIndexOf('/node_modules/');
    dir = cut < 0 ? '' : dir.slice(0, cut);
  }
}

const PLATFORM_NAME = /(darwin|win32|linux)/;

/** Packages whose optional dependencies are per-platform builds (esbuild, @swc/core, unrs-resolver, ...). */
const nativePackages = Object.entries(lock.packages)
  .filter(
    ([key, entry]) =>
      key !== '' && Object.keys(entry.optionalDependencies ?? {}).filter((n) => PLATFORM_NAME.test(n)).length >= 2,
  )
  .map(([key, entry]) => ({ key, entry }));

test('the lockfile is npm 7+ (lists every package with its os/cpu)', () => {
  expect(lock.lockfileVersion).toBeGreaterThanOrEqual(2);
});

test('the known native dependencies are found', () => {
  const names = nativePackages.map((p) => p.key);
  expect(names).toEqual(
    expect.arrayContaining(['node_modules/esbuild', 'node_modules/@swc/core', 'node_modules/unrs-resolver']),
  );
});

describe.each(nativePackages.map((p) => [p.key.replace(/^.*node_modules\//, ''), p] as const))(
  '%s',
  (_name, { key, entry }) => {
    test.each(PLATFORMS.map((p) => [`${p.os}-${p.cpu}`, p] as const))(
      'has a build for %s in the lockfile',
      (_label, platform) => {
        const builds = Object.entries(entry.optionalDependencies ?? {}).flatMap(([dep, wanted]) => {
          const found = resolve(key, dep);
          return found ? [{ dep, wanted, found }] : [];
        });
        const match = builds.find(
          ({ found }) =>
            found.os?.includes(platform.os) &&
            found.cpu?.includes(platform.cpu) &&
            // glibc is what a developer's Linux (and CI) has; musl builds alone would not do.
            (platform.os !== 'linux' || !found.libc || found.libc.includes('glibc')),
        );
        if (!match) {
          const missing = Object.keys(entry.optionalDependencies ?? {}).filter(
            (d) => d.includes(platform.os) && !resolve(key, d),
          );
          throw new Error(
            `${key}@${entry.version} has no ${platform.os}-${platform.cpu} build in package-lock.json` +
              (missing.length ? ` (listed but absent: ${missing.join(', ')})` : '') +
              ': pin a version whose every platform package the registry serves, then regenerate the lockfile',
          );
        }
        // The build must be the version the package asks for, or npm installs nothing for that platform.
        expect(match.found.version).toBe(match.wanted);
      },
    );
  },
);
