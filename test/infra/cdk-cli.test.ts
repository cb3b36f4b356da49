// `npx cdk synth` as a user runs it: offline, with no AWS credentials or config anywhere.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';

const CDK = path.join(REPO_ROOT, 'node_modules', '.bin', 'cdk');
let home: string;
let out: string;
beforeAll(() => {
  home = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-nohome-'));
  out = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-cdkout-'));
});
afterAll(() => {
  rmSync(home, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

function cdk(...args: string[]) {
  // No AWS_* variables, an empty HOME: nothing to find credentials or a region in.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('CDK_')),
  );
  return spawnSync(CDK, [...args, '--no-notices', '--no-version-reporting', '-o', out], {
    cwd: REPO_ROOT,
    env: { ...env, HOME: home, AWS_EC2_METADATA_DISABLED: 'true', CI: 'true' },
    encoding: 'utf8',
  });
}

test('npx cdk synth works offline with no credentials and writes the stage template', () => {
  const run = cdk('synth', '-q', '-c', 'stage=ci');
  expect(run.stderr).not.toMatch(/ERROR/);
  expect(run.status).toBe(0);
  const file = path.join(out, 'BlueGreen-ci.template.json');
  expect(existsSync(file)).toBe(true);
  expect(JSON.parse(readFileSync(file, 'utf8')).Resources).toBeDefined();
});

test('the alert function is bundled for real by the local esbuild (no Docker): minified, with a source map, under 1 MB', () => {
  // Runs after the synth above, which bundles (the infra unit tests skip bundling).
  const bundles = readdirSync(out)
    .filter((d) => d.startsWith('asset.') && existsSync(path.join(out, d, 'index.js.map')))
    .map((d) => path.join(out, d, 'index.js'));
  expect(bundles).toHaveLength(1);
  const code = readFileSync(bundles[0], 'utf8');
  expect(statSync(bundles[0]).size).toBeLessThan(1024 * 1024);
  expect(code).toContain('sourceMappingURL=index.js.map');
  expect(code.split('\n').length).toBeLessThan(50); // minified
  expect(code).not.toMatch(/node_modules\/@aws-sdk\/client-ssm\/dist/); // the runtime's SDK is used
});

test('a bad context value fails synth with its message', () => {
  const run = cdk('synth', '-q', '-c', 'logRetentionDays=8');
  expect(run.status).not.toBe(0);
  expect(run.stderr).toContain('bluegreen: context key "logRetentionDays" must be one of 1, 3, 5, 7, 14, 30, 60, 90');
});
