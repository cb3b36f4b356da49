// Every regular file under a directory, recursively: what a test searches when a value must be on no
// file of a host's directories.
import { readdirSync } from 'node:fs';
import * as path from 'node:path';

export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}
