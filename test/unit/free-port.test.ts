// Free ports for local stacks on free ports (tests, benches): chosen below the kernel's ephemeral
// range, where no outgoing connection can take one between the check and the pool binding it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, listenRange } from '../../local/ports';

let dir: string;
beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-ports-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the range is below the ephemeral range the kernel reports; none where it cannot be read or leaves no room', () => {
  const file = path.join(dir, 'range');
  writeFileSync(file, '32768\t60999\n');
  expect(listenRange(file)).toEqual([10_000, 32_768]);
  writeFileSync(file, '1024\t65535\n');
  expect(listenRange(file)).toBeUndefined();
  expect(listenRange(path.join(dir, 'missing'))).toBeUndefined();
});

test('a free port is bindable, and outside the ephemeral range where the machine has one', async () => {
  const port = await freePort();
  const range = listenRange();
  if (range) {
    expect(port).toBeGreaterThanOrEqual(range[0]);
    expect(port).toBeLessThan(range[1]);
  }
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
});

test('a taken port is passed over', async () => {
  const taken = net.createServer();
  const port = await freePort();
  await new Promise<void>((r) => taken.listen(port, '127.0.0.1', () => r()));
  const range = listenRange();
  // The first pick lands on the taken port (when it is inside the range), the second elsewhere.
  const picks = range && port >= range[0] && port < range[1] ? [(port - range[0]) / (range[1] - range[0]), 0.5] : [0.5];
  let i = 0;
  const got = await freePort('127.0.0.1', () => picks[Math.min(i++, picks.length - 1)]);
  expect(got).not.toBe(port);
  await new Promise<void>((r) => taken.close(() => r()));
});
