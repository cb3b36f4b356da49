// What a newcomer needs besides npm, and the Node.js the README recommends: one list, held true.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { missingTools, missingToolsMessage, readmeToolRows, TEST_TOOLS } from '../tools';

const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

test("README's table lists every tool the tests need, with the same install lines", () => {
  expect(readme).toContain(readmeToolRows());
});

test('the Python tools are pinned in requirements-dev.txt', () => {
  const reqs = readFileSync(path.join(REPO_ROOT, 'requirements-dev.txt'), 'utf8');
  for (const pkg of ['moto[server]', 'cfn-lint', 'awscli'])
    expect(reqs).toMatch(new RegExp(`^${pkg.replace(/[[\]]/g, '\\$&')}==\\d+\\.\\d+\\.\\d+$`, 'm'));
});

test('a machine without them is told which are missing and how to get each, on its platform', () => {
  const missing = missingTools(
    TEST_TOOLS.filter((t) => !t.usable),
    { PATH: '/nonexistent' },
  );
  // /usr/sbin and friends are searched too: what a machine has there is found even with no PATH.
  for (const t of missing) expect(TEST_TOOLS).toContain(t);
  const moto = TEST_TOOLS.find((t) => t.command === 'moto_server')!;
  const nginx = TEST_TOOLS.find((t) => t.command === 'nginx')!;
  expect(missingToolsMessage([moto, nginx], 'linux')).toBe(
    [
      'npm test needs 2 tools this machine does not have (README: "Tools the tests need"):',
      '  moto_server (the AWS calls (SSM, CloudWatch Logs, SQS) against a local emulator): pip install -r requirements-dev.txt',
      '  nginx (the data plane in every e2e test): sudo apt-get install nginx',
    ].join('\n'),
  );
  expect(missingToolsMessage([nginx], 'darwin')).toContain('a tool this machine does not have');
  expect(missingToolsMessage([nginx], 'darwin')).toContain(
    'nginx (the data plane in every e2e test): brew install nginx',
  );
});

test('the Node.js README recommends is the one in .nvmrc, the one CI runs npm test on, and the Lambda runtime', () => {
  const nvmrc = readFileSync(path.join(REPO_ROOT, '.nvmrc'), 'utf8').trim();
  expect(nvmrc).toMatch(/^\d+\.\d+\.\d+$/);
  const major = nvmrc.split('.')[0];
  expect(readme).toContain(`Prerequisites: Node.js ${major} (the version in \`.nvmrc\``);
  const ci = readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8');
  expect(ci).toContain('.nvmrc');
  expect(ci).toContain('test/clock-ahead.sh');
  // Every function's runtime and bundle target (lib/function-defaults.ts).
  const functions = readFileSync(path.join(REPO_ROOT, 'lib', 'function-defaults.ts'), 'utf8');
  expect(functions).toContain(`lambda.Runtime.NODEJS_${major}_X`);
  expect(functions).toContain(`target: 'node${major}'`);
  // The oldest Node.js README says works is the one engines accepts (and CI's clock-ahead run uses).
  const engines = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).engines.node as string;
  const oldest = engines.match(/^>=(\d+)$/)![1];
  expect(readme).toContain(`${oldest} is the oldest that works, tested in CI too`);
});
