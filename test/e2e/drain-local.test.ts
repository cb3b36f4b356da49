// Local mode honours a release's --drain as a host does: when the pool agent replaces a pool's
// process, the old one gets SIGTERM and its own release's drain to finish what it is answering
// (SIGKILL after it), not a fixed few seconds.
import { httpRequest } from '../../support/http';
import { localStackForFile } from '../helpers/npm-start';

jest.setTimeout(120_000);

const stack = localStackForFile('drain', { RELEASE_ID_BLUE: 'b1', RELEASE_ID_GREEN: 'g1', ACTIVE_POOL: 'blue' });

test("a pool replaced while a slow request is in flight: answered within the old release's drain (20 s), longer than the default (10 s)", async () => {
  const green = `http://127.0.0.1:${stack.started.ports.green}`;
  const first = stack.cli('release', '--release', 'd1', '--drain', '20s', '--no-promote');
  expect(await first.exited).toBe(0);
  // 12 s: past the default drain, within d1's.
  const slow = httpRequest(`${green}/slow/report?ms=12000`, { agent: false, timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, 500));
  const next = stack.cli('release', '--release', 'd2', '--no-promote');
  const res = await slow;
  expect(res.status).toBe(200);
  expect(JSON.parse(res.body)).toMatchObject({ release: 'd1', waitedMs: 12_000 });
  expect(await next.exited).toBe(0);
  const now = await httpRequest(`${green}/version`, { agent: false });
  expect(JSON.parse(now.body)).toMatchObject({ release: 'd2' });
});
