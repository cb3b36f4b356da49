// `npm run generate`: writes the host files core/host-files.ts defines. `--check` only compares and
// exits 1 naming the stale files (what the test does too).
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { GENERATED_HOST_FILES } from '../core/host-files';
import { REPO_ROOT } from '../local/paths';

function current(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function generate(check: boolean, out: (line: string) => void): number {
  let stale = 0;
  for (const [relative, render] of Object.entries(GENERATED_HOST_FILES)) {
    const file = path.join(REPO_ROOT, relative);
    const text = render();
    if (current(file) === text) continue;
    stale++;
    if (check) out(`stale: ${relative} (run npm run generate)`);
    else {
      writeFileSync(file, text);
      out(`wrote ${relative}`);
    }
  }
  return check && stale ? 1 : 0;
}

if (require.main === module) process.exit(generate(process.argv.includes('--check'), (l) => console.log(l)));
