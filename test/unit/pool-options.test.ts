// The pool options rule (userdata/pool-options.json) as its two readers apply it: the release CLI
// (core/pool-options.ts) and the host (userdata/pool-options.jq). Both get the same texts and must
// give the same verdict, word for word; what the host keeps is the options with keys sorted, the
// text the CLI stores (serializePoolOptions).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import {
  optionSeconds,
  parsePoolOptions,
  POOL_OPTIONS_RULE,
  PoolOptions,
  serializePoolOptions,
} from '../../core/pool-options';

function host(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'jq',
      [
        '-rRs',
        '--slurpfile',
        'rule',
        path.join(REPO_ROOT, 'userdata', 'pool-options.json'),
        '-f',
        path.join(REPO_ROOT, 'userdata', 'pool-options.jq'),
      ],
      (error, stdout, stderr) => (error ? reject(new Error(`jq failed: ${stderr}`)) : resolve(stdout)),
    );
    child.stdin!.end(text);
  });
}

const p = POOL_OPTIONS_RULE.problems;
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf';
const VERSION_ID = 'a1b2c3d4-5678-90ab-cdef-EXAMPLE11111';
const CASES: Array<[string, string, string | undefined]> = [
  ['no options', '{}', undefined],
  [
    'every option',
    '{"secrets":{"B":"2","A":"1"},"drainSeconds":30,"healthTimeoutSeconds":5,"healthStartPeriodSeconds":0}',
    undefined,
  ],
  ['a Secrets Manager reference', `{"secrets":{"DB":"${ARN}"}}`, undefined],
  ['a Secrets Manager reference with a JSON key', `{"secrets":{"DB":"${ARN}:password"}}`, undefined],
  ['a Secrets Manager pin', `{"secrets":{"DB":"${ARN}:::${VERSION_ID}"}}`, undefined],
  ['a Secrets Manager pin with a JSON key', `{"secrets":{"DB":"${ARN}:password::${VERSION_ID}"}}`, undefined],
  ['a pin with a version stage', `{"secrets":{"DB":"${ARN}:password:AWSCURRENT:${VERSION_ID}"}}`, p.badSecretRef],
  ['a pin with a short version id', `{"secrets":{"DB":"${ARN}:::abc"}}`, p.badSecretRef],
  ['a pin with a version id of another alphabet', `{"secrets":{"DB":"${ARN}:::${'$'.repeat(36)}"}}`, p.badSecretRef],
  [
    'the bounds themselves',
    '{"healthStartPeriodSeconds":1800,"healthTimeoutSeconds":1,"drainSeconds":3600}',
    undefined,
  ],
  ['no secrets', '{"secrets":{}}', undefined],
  ['an unknown key', '{"drainSecs":1}', `drainSecs: ${p.unknownKey}`],
  ['two unknown keys: the first by name', '{"z":1,"b":1}', `b: ${p.unknownKey}`],
  ['a fraction', '{"drainSeconds":1.5}', p.notWhole],
  ['a string for a number', '{"drainSeconds":"10"}', p.notWhole],
  ['a fraction after a number out of bounds', '{"healthStartPeriodSeconds":5000,"drainSeconds":1.5}', p.notWhole],
  ['a negative drain', '{"drainSeconds":-1}', p.outOfBounds],
  ['a timeout of 0', '{"healthTimeoutSeconds":0}', p.outOfBounds],
  ['a start period past the bound', '{"healthStartPeriodSeconds":1801}', p.outOfBounds],
  ['secrets as a list', '{"secrets":["A"]}', p.secretsNotObject],
  ['a secret pinned to a number', '{"secrets":{"A":1}}', p.secretsNotObject],
  ['a secret name that is not a variable name', '{"secrets":{"1A":"1"}}', p.badSecretName],
  ['a secret name ending in a line feed', '{"secrets":{"A\\n":"1"}}', p.badSecretName],
  ['a reserved secret name', '{"secrets":{"PORT":"1"}}', p.reservedSecretName],
  ['version 0', '{"secrets":{"A":"0"}}', p.badSecretRef],
  ['a value, not a version', '{"secrets":{"A":"hunter2"}}', p.badSecretRef],
  ['a version with a line feed', '{"secrets":{"A":"1\\n"}}', p.badSecretRef],
  ['an ARN of another service', '{"secrets":{"A":"arn:aws:ssm:eu-west-1:123456789012:parameter/x"}}', p.badSecretRef],
  [
    'too many secrets',
    JSON.stringify({ secrets: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`S${i}`, '1'])) }),
    p.tooManySecrets,
  ],
  ['a list', '[]', p.notObject],
  ['null', 'null', p.notObject],
  ['junk', '{"a":', p.notJson],
];

test.each(CASES)('%s: the CLI and the host agree', async (_name, text, problem) => {
  const parsed = parsePoolOptions(text);
  expect('problem' in parsed ? parsed.problem : undefined).toBe(problem);
  const out = await host(text);
  if (problem) expect(out).toBe(`refused: ${problem}\n`);
  else expect(out).toBe(`ok\n${serializePoolOptions(JSON.parse(text) as PoolOptions)}\n`);
});

test("defaults are today's Compose values: health start period 10 s, probe timeout 3 s, drain 10 s", () => {
  expect(optionSeconds(undefined, 'healthStartPeriodSeconds')).toBe(10);
  expect(optionSeconds({}, 'healthTimeoutSeconds')).toBe(3);
  expect(optionSeconds({ drainSeconds: 45 }, 'drainSeconds')).toBe(45);
});

test("docker-compose.yml's per-pool defaults are the rule's (the host writes them anyway; a plain compose up agrees)", () => {
  const compose = readFileSync(path.join(REPO_ROOT, 'userdata', 'docker-compose.yml'), 'utf8');
  for (const pool of ['BLUE', 'GREEN'])
    for (const { compose: name, default: seconds } of Object.values(POOL_OPTIONS_RULE.seconds))
      expect(compose).toContain(`\${${pool}_${name}:-${seconds}s}`);
});
