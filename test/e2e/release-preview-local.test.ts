// Preview before promotion, end to end in local mode: `npm start` (real nginx, two pool processes, the
// pool agent and the watcher with the guard) and the release CLI as a real process. Users' load and a
// tester's load run at once, each from keep-alive clients that never re-send. One stack for the file;
// the cases run in order.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AccessLogEntry, parseAccessLogLine } from '../../core/access-log';
import { PREVIEW_COOKIE, PREVIEW_HEADER, PREVIEW_PATH } from '../../core/preview';
import { header, httpRequest } from '../../support/http';
import { summarize } from '../../local/load';
import { readActivePool, readPreviewPool } from '../../local/switch';
import { readLocalRecord } from '../../local/release-store';
import { newPreviewToken } from '../../ops/release/preview';
import { startLoad } from '../helpers/load';
import { cliAgainst, npmStart, Started } from '../helpers/npm-start';
import { waitFor } from '../helpers/stack';

jest.setTimeout(90_000);

let stateDir: string;
let started: Started;
let url: string;

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-preview-'));
  started = await npmStart(stateDir, {
    RELEASE_ID_BLUE: 'r1',
    RELEASE_ID_GREEN: 'g1',
    RELEASE_HEALTH_TIMEOUT_SECONDS: '3',
    ACTIVE_POOL: 'blue',
  });
  await waitFor(() => started.output().includes('ready:'), 'npm start to be ready', 30_000);
  url = `http://127.0.0.1:${started.ports.nginx}`;
}, 60_000);

afterAll(async () => {
  await started?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const cli = (...args: string[]) => cliAgainst(started, ...args);
const switchDir = () => ({ switchDir: path.join(stateDir, 'switch') });
const record = () => readLocalRecord(stateDir);

function logEntries(): AccessLogEntry[] {
  return readFileSync(path.join(stateDir, 'logs', 'access.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => parseAccessLogLine(l))
    .flatMap((p) => (p.ok ? [p.entry] : []));
}

/** The token the CLI printed (header form). */
function printedToken(out: string): string {
  const m = new RegExp(`${PREVIEW_HEADER}: ([A-Za-z0-9_-]{32})`).exec(out);
  if (!m) throw new Error(`no preview token in:\n${out}`);
  return m[1];
}

const get = async (headers: Record<string, string> = {}, p = '/version') => {
  const res = await httpRequest(`${url}${p}`, { agent: false, headers });
  return { res, pool: header(res, 'x-app-pool'), release: header(res, 'x-release-id') };
};

/** A tester's load: keep-alive, never re-sends, every request carrying the token. */
const testerLoad = (token: string) =>
  startLoad({
    url: `${url}/`,
    connections: 2,
    durationMs: 30_000,
    retryStaleSockets: false,
    headers: { [PREVIEW_HEADER]: token },
  });
const usersLoad = () => startLoad({ url: `${url}/`, connections: 8, durationMs: 60_000, retryStaleSockets: false });

let token: string;

test('(a) --no-promote: the token reaches the new pool only, everyone else the active one; 0 failed on both sides', async () => {
  const users = usersLoad();
  await users.after(200, 'before the release');
  const c = cli('release', '--release', 'r2', '--no-promote');
  expect(await c.exited).toBe(0);
  const out = c.output();
  token = printedToken(out);
  expect(out).toContain(`${url}${PREVIEW_PATH}?token=${token}`);
  expect(out).toMatch(/preview: requests carrying this release's token go to green \(r2\) only/);
  expect(readPreviewPool(switchDir())).toBe('green');

  const tester = testerLoad(token);
  await tester.after(300, 'from the tester');
  await users.after(300, 'while the tester tests');
  const testerResult = await tester.finish();
  const usersResult = await users.finish();

  const testerSummary = summarize(testerResult.samples, testerResult.durationMs);
  expect(testerSummary.failed).toBe(0);
  expect(testerResult.samples.every((s) => s.pool === 'green')).toBe(true);
  const usersSummary = summarize(usersResult.samples, usersResult.durationMs);
  expect(usersSummary.failures).toEqual({});
  expect(usersSummary.failed).toBe(0);
  expect(usersResult.staleSocketRetries).toBe(0);
  expect(usersResult.samples.every((s) => s.pool === 'blue')).toBe(true);

  // Marked in the access log: the tester's requests, and only those.
  const previews = logEntries().filter((e) => e.preview === 'green');
  expect(previews.length).toBe(testerResult.samples.length);
  expect(previews.every((e) => e.release === 'r2' && e.active_pool === 'blue')).toBe(true);

  // The record says a preview was on, never the token.
  const r = record()!;
  expect(r).toMatchObject({ release: 'r2', pool: 'green', state: 'deployed', preview: true });
  expect(JSON.stringify(r)).not.toContain(token);
  expect(readActivePool(switchDir())).toBe('blue');
  // `status` says a preview is on and where, never the token.
  const status = cli('status');
  await status.exited;
  expect(status.output()).toMatch(/^preview\s+on: requests carrying \S+-green-r2's token go to green only/m);
  expect(status.output()).not.toContain(token);
});

test('(b) the cookie flow, and a wrong token routes nothing to the idle pool', async () => {
  const grant = await get({}, `${PREVIEW_PATH}?token=${token}`);
  expect(grant.res.status).toBe(302);
  expect(grant.res.headers.location).toBe('/');
  const cookie = grant.res.headers['set-cookie']![0];
  expect(cookie).toBe(`${PREVIEW_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax`);
  const browsing = await get({ Cookie: cookie.split(';')[0] }, '/');
  expect(browsing).toMatchObject({ pool: 'green', release: 'r2' });

  const wrong = newPreviewToken();
  const refused = await get({}, `${PREVIEW_PATH}?token=${wrong}`);
  expect(refused.res.status).toBe(403);
  expect(refused.res.headers['set-cookie']).toBeUndefined();
  const wrongs: Array<Record<string, string>> = [{ [PREVIEW_HEADER]: wrong }, { Cookie: `${PREVIEW_COOKIE}=${wrong}` }];
  for (const headers of wrongs) {
    const res = await get(headers);
    expect(res).toMatchObject({ pool: 'blue', release: 'r1' });
  }
});

test('(c) a failing new release: the tester gets its error, no fallback; users unaffected; no alert counts it', async () => {
  const from = started.output().length;
  const chaos = await httpRequest(`http://127.0.0.1:${started.ports.green}/chaos/start?mode=error`, {
    method: 'POST',
    agent: false,
  });
  expect(chaos.status).toBe(200);
  try {
    const users = usersLoad();
    const tester = testerLoad(token);
    await tester.after(300, 'from the tester');
    await users.after(300, 'while the tester sees errors');
    const testerResult = await tester.finish();
    const usersResult = await users.finish();
    // Every tester request answered by green with its error (never blue standing in).
    expect(testerResult.samples.every((s) => s.status >= 500 && s.pool === 'green')).toBe(true);
    const usersSummary = summarize(usersResult.samples, usersResult.durationMs);
    expect(usersSummary.failed).toBe(0);
    expect(usersResult.samples.every((s) => s.pool === 'blue')).toBe(true);
    // One attempt each, on green.
    const failing = logEntries().filter((e) => e.preview === 'green' && e.status >= 500);
    expect(failing.length).toBeGreaterThanOrEqual(300);
    expect(failing.every((e) => e.upstream_status === String(e.status) && !e.upstream_addr.includes(','))).toBe(true);
    // The watcher (the alert rules, the guard's evidence) saw hundreds of 5xx and counted none.
    await new Promise((r) => setTimeout(r, 1500));
    expect(started.output().slice(from)).not.toMatch(/users_see_errors|error_rate|failover/);
  } finally {
    await httpRequest(`http://127.0.0.1:${started.ports.green}/chaos/stop`, { method: 'POST', agent: false });
  }
});

test('(d) promotion by flip ends the preview: the token routes nothing, before and after a flip back', async () => {
  const flip = cli('flip', 'green');
  expect(await flip.exited).toBe(0);
  expect(readPreviewPool(switchDir())).toBeUndefined();
  const status = cli('status');
  await status.exited;
  expect(status.output()).toMatch(/^preview\s+none$/m);
  const after = await get({ [PREVIEW_HEADER]: token });
  expect(after.pool).toBe('green');
  const entry = await waitFor(
    () => logEntries().find((e) => e.request_id === header(after.res, 'x-request-id')),
    'the log line',
  );
  expect(entry.preview).toBe('');
  expect((await get({}, `${PREVIEW_PATH}?token=${token}`)).res.status).toBe(403);
  const back = cli('flip', 'blue');
  expect(await back.exited).toBe(0);
  expect(await get({ [PREVIEW_HEADER]: token })).toMatchObject({ pool: 'blue' });
});

test('(e) a canary release that is promoted: its preview opens after the gate and ends at promotion; the old token stays dead', async () => {
  const old = token;
  // A canary: an all-at-once release promoted at once opens no preview (nobody could use it).
  const c = cli('release', '--release', 'r3', '--bake', '2s', '--canary-duration', '3s');
  // While it runs, before the promotion: the printed token reaches green.
  await waitFor(() => /X-Bluegreen-Preview: /.test(c.output()), 'the preview to open', 30_000);
  const fresh = printedToken(c.output());
  expect(fresh).not.toBe(old);
  const users = usersLoad();
  await users.after(1000, 'for the bake');
  const code = await c.exited;
  const usersResult = await users.finish();
  expect(summarize(usersResult.samples, usersResult.durationMs).failed).toBe(0);
  // Held (no verdict) or promoted is the guard's business; the preview ended at the flip either way.
  expect([0, 3]).toContain(code);
  expect(c.output()).toContain('promoted: the preview ended');
  expect(readPreviewPool(switchDir())).toBeUndefined();
  expect(record()).toMatchObject({ release: 'r3', pool: 'green', preview: true });
  for (const t of [fresh, old]) {
    const res = await get({ [PREVIEW_HEADER]: t });
    expect(res).toMatchObject({ pool: 'green', release: 'r3' });
    const line = await waitFor(
      () => logEntries().find((e) => e.request_id === header(res.res, 'x-request-id')),
      'the log line',
    );
    expect(line.preview).toBe('');
  }
});
