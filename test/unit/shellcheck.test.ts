// Every shell script in the repo passes shellcheck (they run on hosts with nothing but a shell).
import { execFileSync, spawnSync } from 'node:child_process';
import { REPO_ROOT } from '../../local/paths';

const scripts = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.sh', '.ci/run'], {
  cwd: REPO_ROOT,
  encoding: 'utf8',
})
  .split('\n')
  .filter(Boolean);

test('there are shell scripts to check', () => {
  expect(scripts).toEqual(
    expect.arrayContaining(['nginx/render-upstream.sh', 'nginx/switch-pool.sh', 'nginx/apply-upstream.sh', '.ci/run']),
  );
});

test.each(scripts)('shellcheck %s', (file) => {
  const result = spawnSync('shellcheck', ['--external-sources', file], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (result.error)
    throw new Error(
      `shellcheck is not installed (apt-get install shellcheck / brew install shellcheck): ${result.error.message}`,
    );
  expect(result.stdout + result.stderr).toBe('');
  expect(result.status).toBe(0);
});
