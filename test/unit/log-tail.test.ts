// The local watcher's tail: new lines only, across truncation and rename-style rotation.
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LogTail } from '../../local/log-tail';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-tail-'));
  file = path.join(dir, 'access.log');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('starts at the end: history is not news; then returns whole lines only', () => {
  writeFileSync(file, 'old 1\nold 2\n');
  const tail = new LogTail(file);
  expect(tail.read()).toEqual([]);
  appendFileSync(file, 'new 1\nnew ');
  expect(tail.read()).toEqual(['new 1']);
  appendFileSync(file, '2\n');
  expect(tail.read()).toEqual(['new 2']);
  tail.close();
});

test('truncation in place: starts over from the beginning', () => {
  writeFileSync(file, 'a\nb\n');
  const tail = new LogTail(file);
  tail.read();
  truncateSync(file, 0);
  appendFileSync(file, 'c\n');
  expect(tail.read()).toEqual(['c']);
  tail.close();
});

test('rotation by rename: finishes the old file, then follows the new one', () => {
  writeFileSync(file, '');
  const tail = new LogTail(file);
  tail.read();
  appendFileSync(file, 'before rotate\n');
  renameSync(file, `${file}.1`);
  appendFileSync(`${file}.1`, 'late write to the old file\n');
  writeFileSync(file, 'first in new file\n');
  expect(tail.read()).toEqual(['before rotate', 'late write to the old file', 'first in new file']);
  appendFileSync(file, 'second\n');
  expect(tail.read()).toEqual(['second']);
  tail.close();
});

test('a missing file is no error: lines appear once it exists', () => {
  const tail = new LogTail(file, true);
  expect(tail.read()).toEqual([]);
  writeFileSync(file, 'x\n');
  expect(tail.read()).toEqual(['x']);
  tail.close();
});
