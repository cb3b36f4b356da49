// Local mode honours a release's --drain as a host does: when the pool agent replaces a pool's
// process, the old one gets SIGTERM and its own release's drain to finish what it is answering
// (SIGKILL after it), not a fixed few seconds.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { httpRequest } from '../../support/http';
import { cliAgainst, npmStart, Started } from '../helpers/npm-start';
import { waitFor } from '../helpers/stack';

jest.setTimeout(120_000);

let stateDir: string;
let started: Started;

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-drain-'));
  started = await npmStart(stateDir, { RELEASE_ID_BLUE: 'b1', RELEASE_ID_GREEN: 'g1', ACTIVE_POOL: 'blue' });
  await waitFor(() => started.output().includes('ready:'), 'npm start to be ready', 30_000);
}, 60_000);

afterAll(async () => {
  await started?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const cli = (...args: string[]) => cliAgainst(started, ...args);

test("a pool replaced while a slow request is in flight: answered within the old release's drain (20 s), longer than the default (10 s)", async () => {
  const first = cli('release', '--release', 'd1', '--drain', '20s', '--no-promote');
  expect(await first.exited).toBe(0);
  // 12 s: past the default drain, within d1's.
  const slow = httpRequest(`http://127.0.0.1:${started.ports.green}/slow/report?ms=12000`, {
    agent: false,
    timeoutMs: 30_000,
  });
  await new Promise((r) => setTimeout(r, 500));
  const next = cli('release', '--release', 'd2', '--no-promote');
  const res = await slow;
  expect(res.status).toBe(200);
  expect(JSON.parse(res.body)).toMatchObject({ release: 'd1', waitedMs: 12_000 });
  expect(await next.exited).toBe(0);
  const now = await httpRequest(`http://127.0.0.1:${started.ports.green}/version`, { agent: false });
  expect(JSON.parse(now.body)).toMatchObject({ release: 'd2' });
});
