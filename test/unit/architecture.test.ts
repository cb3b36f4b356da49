// The shape of the code (docs/ARCHITECTURE.md "Parts"): core/ knows the domain and nothing else, every
// adapter stands on core/ (and support/) alone, and only the entry points wire adapters together.
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/paths';

const ADAPTERS = ['lib', 'lambda', 'ops', 'local'] as const;
/** What each folder may import from the project; entry points (bin/, bench/, test/) are free to wire. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  core: ['core'],
  support: ['core', 'support'],
  lib: ['core', 'lib'],
  lambda: ['core', 'support', 'lambda'],
  ops: ['core', 'support', 'ops'],
  local: ['core', 'support', 'local'],
};
/** Packages core/ must never load: it runs in the function's bundle, the CLI, local mode and synth alike. */
const CORE_FORBIDDEN = /^(aws-cdk-lib|constructs|@aws-sdk\/|node:(fs|child_process|http|https|net|os|zlib))/;

function sources(dir: string): string[] {
  return readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(REPO_ROOT, path.join(e.parentPath, e.name)));
}

/** Every `from '…'` / `import('…')` / `require('…')` specifier of a file. */
function specifiers(file: string): string[] {
  const text = readFileSync(path.join(REPO_ROOT, file), 'utf8');
  return [...text.matchAll(/(?:from\s+|import\(\s*|require\(\s*)'([^']+)'/g)].map((m) => m[1]);
}

function folderOf(spec: string, file: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  return path.relative(REPO_ROOT, path.resolve(REPO_ROOT, path.dirname(file), spec)).split(path.sep)[0];
}

const graph = new Map<string, Set<string>>();
for (const folder of Object.keys(MAY_IMPORT)) {
  for (const file of sources(folder)) {
    for (const spec of specifiers(file)) {
      const to = folderOf(spec, file);
      if (to === undefined) continue;
      if (!graph.has(file)) graph.set(file, new Set());
      graph.get(file)!.add(to);
    }
  }
}

test.each(Object.entries(MAY_IMPORT))('%s/ imports only %j of the project', (folder, allowed) => {
  const offending = [...graph]
    .filter(([file]) => file.startsWith(`${folder}/`))
    .flatMap(([file, tos]) => [...tos].filter((t) => !allowed.includes(t)).map((t) => `${file} -> ${t}/`));
  expect(offending).toEqual([]);
});

test('core/ loads no CDK, no AWS SDK and no I/O module', () => {
  const offending = sources('core').flatMap((file) =>
    specifiers(file)
      .filter((s) => CORE_FORBIDDEN.test(s))
      .map((s) => `${file}: ${s}`),
  );
  expect(offending).toEqual([]);
});

test('the CLI against AWS and local mode never load aws-cdk-lib', () => {
  const offending = ['ops', 'local', 'support']
    .flatMap((dir) => sources(dir))
    .flatMap((file) =>
      specifiers(file)
        .filter((s) => /^(aws-cdk-lib|constructs)/.test(s))
        .map((s) => `${file}: ${s}`),
    );
  expect(offending).toEqual([]);
});

test('every adapter is used through core: each one imports it', () => {
  for (const adapter of ADAPTERS)
    expect([...graph].some(([file, tos]) => file.startsWith(`${adapter}/`) && tos.has('core'))).toBe(true);
});

test("docs/ARCHITECTURE.md's import graph counts what the code imports (import statements, folder to folder)", () => {
  const counts = new Map<string, number>();
  for (const folder of Object.keys(MAY_IMPORT))
    for (const file of sources(folder))
      for (const spec of specifiers(file)) {
        const to = folderOf(spec, file);
        if (to === undefined || to === folder) continue;
        counts.set(`${folder} ${to}`, (counts.get(`${folder} ${to}`) ?? 0) + 1);
      }
  const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'ARCHITECTURE.md'), 'utf8');
  const block = /The import graph of the source folders[\s\S]*?```\n([\s\S]*?)```/.exec(doc)![1];
  // `a ──N──► b` and `b ◄──N── a` both say "a imports b N times".
  const said = new Map<string, number>();
  for (const [, from, n, to] of block.matchAll(/(\w+) ──(\d+)──► (\w+)/g)) said.set(`${from} ${to}`, Number(n));
  for (const [, to, n, from] of block.matchAll(/(\w+) ◄──(\d+)── (\w+)/g)) said.set(`${from} ${to}`, Number(n));
  expect(said.size).toBeGreaterThan(0);
  expect(Object.fromEntries([...said.keys()].map((k) => [k, counts.get(k) ?? 0]))).toEqual(Object.fromEntries(said));
});
