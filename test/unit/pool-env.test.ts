// The pool env rule (userdata/pool-env.json) as the two readers apply it: the release CLI
// (core/pool-env.ts) and the host, whose jq program (userdata/pool-env.jq) is also the env file's
// writer. Both get the same texts and must give the same verdict, word for word, and the host must
// write exactly the lines the rule promises. What Compose makes of those lines is
// test/docker/env-file.test.ts's.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';
import { POOL_ENV_RULE, poolEnvFileLines, poolEnvTextProblem } from '../../core/pool-env';

const PROGRAM = path.join(REPO_ROOT, 'userdata', 'pool-env.jq');

/** The host's verdict: the way bluegreen-apply runs it. */
function host(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'jq',
      ['-rRs', '--slurpfile', 'rule', path.join(REPO_ROOT, 'userdata', 'pool-env.json'), '-f', PROGRAM],
      (error, stdout, stderr) => (error ? reject(new Error(`jq failed: ${stderr}`)) : resolve(stdout)),
    );
    child.stdin!.end(text);
  });
}

const p = POOL_ENV_RULE.problems;
const CASES: Array<[string, string, string | undefined]> = [
  ['no variables', '{}', undefined],
  ['plain values, sorted by key in the file', '{"B":"two words","A":"1"}', undefined],
  ['an empty value', '{"A":""}', undefined],
  ['backslashes inside a value', '{"A":"a\\\\b","B":"a\\\\\\\\b","C":"\\\\x"}', undefined],
  ['a dollar sign and a hash (single quotes: no interpolation, no comment)', '{"A":"$HOME #x"}', undefined],
  ['a key of 128 characters', `{"${'K'.repeat(128)}":"x"}`, undefined],
  ['a trailing backslash', '{"A":"x\\\\"}', p.endsInBackslash],
  [
    'a trailing backslash that smuggles HOST through the next value',
    '{"A":"x\\\\","B":" HOST=127.0.0.1 #"}',
    p.endsInBackslash,
  ],
  ['two trailing backslashes', '{"A":"x\\\\\\\\"}', p.endsInBackslash],
  ["a key ending in a line feed (jq's $ matched before it)", '{"SECRET_ON_HOST\\n":"x"}', p.badKey],
  ['a reserved key ending in a line feed', '{"HOST\\n":"x"}', p.badKey],
  ['a key holding a line feed', '{"A\\nB":"x"}', p.badKey],
  ['a key ending in a carriage return', '{"A\\r":"x"}', p.badKey],
  ['a key of 129 characters', `{"${'K'.repeat(129)}":"x"}`, p.badKey],
  ['a key starting with a digit', '{"1A":"x"}', p.badKey],
  ['an empty key', '{"":"x"}', p.badKey],
  ['a reserved key', '{"HOST":"0.0.0.0"}', p.reservedKey],
  ['a single quote', '{"A":"it\'s"}', p.badValue],
  ['a line feed in a value', '{"A":"a\\nB=c"}', p.badValue],
  ['a carriage return in a value', '{"A":"a\\r"}', p.badValue],
  ['a NUL in a value', '{"A":"a\\u0000b"}', p.badValue],
  ['a number', '{"A":1}', p.notString],
  ['a list', '["A"]', p.notObject],
  ['null', 'null', p.notObject],
  ['junk', '{"A":', p.notJson],
];

test.each(CASES)('%s: the CLI and the host agree', async (_name, text, problem) => {
  expect(poolEnvTextProblem(text)).toBe(problem);
  const out = await host(text);
  if (problem) {
    expect(out).toBe(`refused: ${problem}\n`);
  } else {
    expect(out).toBe(['ok', ...poolEnvFileLines(JSON.parse(text) as Record<string, string>)].join('\n') + '\n');
  }
});
