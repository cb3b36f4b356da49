// `bluegreen release --sticky` against `npm start` with STICKY_KEYS: the key travels from the
// environment through the stack to the switch dir during the canary, is kept on the record, and a
// key the stack did not declare is refused (exit 2) before anything is written.
import { readlinkSync } from 'node:fs';
import * as path from 'node:path';
import { readDesired, readLocalRecord } from '../../local/release-store';
import { httpRequest } from '../../support/http';
import { localStackForFile } from '../helpers/npm-start';
import { waitFor } from '../helpers/stack';

jest.setTimeout(90_000);

const stack = localStackForFile('sticky', {
  RELEASE_ID_BLUE: 'r1',
  RELEASE_ID_GREEN: 'g1',
  RELEASE_HEALTH_TIMEOUT_SECONDS: '3',
  ACTIVE_POOL: 'blue',
  STICKY_KEYS: 'cookie:session,header:X-User',
});

const cli = stack.cli;

const canaryLink = () => {
  try {
    return readlinkSync(path.join(stack.stateDir, 'switch', 'canary'));
  } catch {
    return undefined;
  }
};

test('npm start says which keys it was rendered with', () => {
  expect(stack.started.output()).toContain('sticky canary keys: cookie:session, header:x-user');
});

test('a key the stack did not declare: exit 2, nothing written', async () => {
  const files = () =>
    [readLocalRecord(stack.stateDir), readDesired(stack.stateDir, 'blue'), readDesired(stack.stateDir, 'green')].map(
      (x) => JSON.stringify(x),
    );
  const before = files();
  const run = cli('release', '--release', 'r2', '--strategy', 'canary', '--sticky', 'cookie:other');
  expect(await run.exited).toBe(2);
  expect(run.output()).toContain(
    "--sticky cookie:other is not one of this stage's sticky keys (cookie:session,header:x-user): nginx reads only the keys it was rendered with",
  );
  expect(files()).toEqual(before);
  // No canary was ever set on this stack: no link.
  expect(canaryLink()).toBeUndefined();
});

test('--sticky header:X-User: the canary sticks on it while it runs, the record keeps it, the share is 0 again after', async () => {
  const run = cli(
    'release',
    '--release',
    'g2',
    '--strategy',
    'canary',
    '--canary-percent',
    '50',
    '--canary-duration',
    '4s',
    '--sticky',
    'header:X-User',
    '--bake',
    '2s',
    // The gate's evidence here is the users' requests below (no load runs in this file).
    '--min-requests',
    '10',
  );
  await waitFor(() => canaryLink() === '.canary-50.header.x-user', 'the sticky canary in the switch dir', 30_000);
  // While it runs, one user sees one pool.
  const url = `http://127.0.0.1:${stack.started.ports.nginx}/version`;
  for (const user of ['ann', 'bob', 'cyd']) {
    const pools = new Set<string>();
    for (let i = 0; i < 6; i++) {
      // A user's browser, not one of the project's probes (those are no evidence for the gate).
      const res = await httpRequest(url, { agent: false, headers: { 'X-User': user, 'User-Agent': 'test-browser' } });
      pools.add(String(res.headers['x-app-pool']));
    }
    expect(pools.size).toBe(1);
  }
  // The bake judges requests it saw reach g2: a user's, not the project's probes.
  await waitFor(() => readLocalRecord(stack.stateDir)?.state === 'baking', 'the bake', 30_000);
  for (let i = 0; i < 12; i++)
    await httpRequest(url, { agent: false, headers: { 'X-User': 'dee', 'User-Agent': 'test-browser' } });
  expect(await run.exited).toBe(0);
  const record = readLocalRecord(stack.stateDir);
  expect(record).toMatchObject({ release: 'g2', state: 'promoted', sticky: 'header:x-user', canaryPercent: 50 });
  expect(record!.steps.find((s) => s.step === 'canary')!.detail).toBe('50% sticky on header:x-user for 4 s');
  expect(canaryLink()).toBe('.canary-0');
});
