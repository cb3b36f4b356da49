// Preview before promotion, at the public entry (real nginx, the pool apps): a request carrying the
// preview token goes to the idle pool alone, with no fallback; anything that is not exactly a token
// routes nothing; the cookie endpoint; a flip ends it; no reload.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { logEntryFor, startTestStack, workerPids } from '../helpers/stack';
import { httpRequest, HttpResponse } from '../../support/http';
import { LocalStack } from '../../local/stack';
import { NGINX_DIR } from '../../local/paths';
import { PREVIEW_COOKIE, PREVIEW_HEADER, PREVIEW_PATH, PREVIEW_TOKEN_PATTERN } from '../../core/preview';
import { newPreviewToken } from '../../ops/release/preview';

const TOKEN = newPreviewToken();

let stack: LocalStack;
beforeEach(async () => {
  stack = await startTestStack({ activePool: 'blue', releases: { blue: 'blue-r1', green: 'green-r2' } });
});
afterEach(async () => {
  await stack?.stop();
});

const get = (headers: Record<string, string> = {}, p = '/version'): Promise<HttpResponse> =>
  httpRequest(`${stack.url}${p}`, { agent: false, headers });

test('nginx.conf sanitises the header, the cookie and the argument with core/preview.ts pattern', () => {
  const conf = readFileSync(path.join(NGINX_DIR, 'nginx.conf'), 'utf8');
  const maps = [...conf.matchAll(/"~(\^[^"]+\$)" \$(http_x_bluegreen_preview|cookie_bluegreen_preview|arg_token);/g)];
  expect(maps.map((m) => m[2]).sort()).toEqual(['arg_token', 'cookie_bluegreen_preview', 'http_x_bluegreen_preview']);
  for (const m of maps) expect(m[1]).toBe(PREVIEW_TOKEN_PATTERN);
  expect(conf).toContain(`$http_${PREVIEW_HEADER.toLowerCase().replace(/-/g, '_')}`);
  expect(conf).toContain(`$cookie_${PREVIEW_COOKIE}`);
  expect(conf).toContain(`location = ${PREVIEW_PATH} {`);
});

test('a request with the token goes to the idle pool; every other request to the active one; no reload', async () => {
  const workers = workerPids(stack);
  expect((await stack.preview({ pool: 'green', token: TOKEN })).code).toBe(0);
  const preview = await get({ [PREVIEW_HEADER]: TOKEN });
  expect(preview.status).toBe(200);
  expect(preview.headers['x-app-pool']).toBe('green');
  expect(preview.headers['x-release-id']).toBe('green-r2');
  expect(preview.headers['x-active-pool']).toBe('blue');
  expect(await logEntryFor(stack, preview)).toMatchObject({
    preview: 'green',
    primary_pool: 'green',
    active_pool: 'blue',
    pool: 'green',
    upstream_block: 'bluegreen_preview_green',
    upstream_addr: `127.0.0.1:${stack.ports.green}`,
  });
  // The app never sees the token.
  const echoed = await get({ [PREVIEW_HEADER]: TOKEN }, '/version');
  expect(echoed.body).not.toContain(TOKEN);

  const plain = await get();
  expect(plain.headers['x-app-pool']).toBe('blue');
  expect(await logEntryFor(stack, plain)).toMatchObject({ preview: '', primary_pool: 'blue' });
  const wrong = await get({ [PREVIEW_HEADER]: newPreviewToken() });
  expect(wrong.headers['x-app-pool']).toBe('blue');
  expect(workerPids(stack)).toEqual(workers);
});

test('nothing but exactly a token reaches the file check, even when a matching file exists', async () => {
  expect((await stack.preview({ pool: 'green', token: TOKEN })).code).toBe(0);
  const dir = stack.state.switchDir;
  // Files a sloppy check would find: a dotted name, a longer one, one a path climbs to.
  const tooLong = `${TOKEN}x`;
  for (const name of [`preview.green.${tooLong}`, 'preview.green.a.b', 'preview.green.a', 'preview.green.%2E'])
    writeFileSync(path.join(dir, name), '');
  const refused = [
    tooLong,
    TOKEN.slice(1),
    'a.b',
    'a',
    '%2E',
    `../${TOKEN.slice(3)}`,
    `${TOKEN.slice(0, 29)}/..`,
    `${TOKEN} `.replace(' ', '\t'),
    `${TOKEN},${TOKEN}`,
  ];
  for (const value of refused) {
    const res = await get({ [PREVIEW_HEADER]: value });
    expect({ value, pool: res.headers['x-app-pool'] }).toEqual({ value, pool: 'blue' });
    expect((await logEntryFor(stack, res)).preview).toBe('');
    const byCookie = await get({ Cookie: `${PREVIEW_COOKIE}=${value}` });
    expect({ value, pool: byCookie.headers['x-app-pool'] }).toEqual({ value, pool: 'blue' });
    const grant = await get({}, `${PREVIEW_PATH}?token=${encodeURIComponent(value)}`);
    expect({ value, status: grant.status, cookie: grant.headers['set-cookie'] }).toEqual({
      value,
      status: 403,
      cookie: undefined,
    });
  }
  // A valid header wins over the cookie; an invalid one counts as none, so the cookie decides.
  const both = await get({ [PREVIEW_HEADER]: 'a.b', Cookie: `${PREVIEW_COOKIE}=${TOKEN}` });
  expect(both.headers['x-app-pool']).toBe('green');
  const headerOnly = await get({ [PREVIEW_HEADER]: TOKEN, Cookie: `${PREVIEW_COOKIE}=${newPreviewToken()}` });
  expect(headerOnly.headers['x-app-pool']).toBe('green');
});

test('the cookie flow: a valid token sets an HttpOnly cookie and redirects to /; a wrong one is refused', async () => {
  expect((await stack.preview({ pool: 'green', token: TOKEN })).code).toBe(0);
  const grant = await get({}, `${PREVIEW_PATH}?token=${TOKEN}`);
  expect(grant.status).toBe(302);
  expect(grant.headers.location).toBe('/');
  expect(grant.headers['cache-control']).toBe('no-store');
  expect(grant.headers['set-cookie']).toEqual([`${PREVIEW_COOKIE}=${TOKEN}; Path=/; HttpOnly; SameSite=Lax`]);
  const https = await get({ 'X-Forwarded-Proto': 'https' }, `${PREVIEW_PATH}?token=${TOKEN}`);
  expect(https.headers['set-cookie']).toEqual([`${PREVIEW_COOKIE}=${TOKEN}; Path=/; HttpOnly; SameSite=Lax; Secure`]);

  const withCookie = await get({ Cookie: `other=1; ${PREVIEW_COOKIE}=${TOKEN}` });
  expect(withCookie.headers['x-app-pool']).toBe('green');
  expect((await logEntryFor(stack, withCookie)).preview).toBe('green');

  const wrong = await get({}, `${PREVIEW_PATH}?token=${newPreviewToken()}`);
  expect(wrong.status).toBe(403);
  expect(wrong.headers['set-cookie']).toBeUndefined();
  expect(JSON.parse(wrong.body)).toMatchObject({ error: 'forbidden' });
  expect(await logEntryFor(stack, wrong)).toMatchObject({ status: 403, pool: '', preview: '' });
});

test('a preview request to a failing pool gets its error: no retry on the active pool', async () => {
  expect((await stack.preview({ pool: 'green', token: TOKEN })).code).toBe(0);
  await stack.chaos('green', 'error');
  const failing = await get({ [PREVIEW_HEADER]: TOKEN });
  expect(failing.status).toBeGreaterThanOrEqual(500);
  expect(await logEntryFor(stack, failing)).toMatchObject({
    preview: 'green',
    upstream_addr: `127.0.0.1:${stack.ports.green}`,
    upstream_status: String(failing.status),
  });
  // A refused connection too: the JSON 502, not the active pool.
  await stack.killPool('green');
  const gone = await get({ [PREVIEW_HEADER]: TOKEN });
  expect(gone.status).toBe(502);
  expect(JSON.parse(gone.body)).toMatchObject({ primary_pool: 'green', active_pool: 'blue' });
  // Everyone else is served by the active pool as ever.
  const plain = await get();
  expect(plain.status).toBe(200);
  expect(plain.headers['x-app-pool']).toBe('blue');
});

test('a flip to the previewed pool ends the preview: the token routes nothing, before or after a flip back', async () => {
  expect((await stack.preview({ pool: 'green', token: TOKEN })).code).toBe(0);
  expect((await stack.preview({ pool: 'blue', token: TOKEN })).code).toBe(2); // the active pool
  expect((await stack.flip('green')).code).toBe(0);
  expect(readdirSync(stack.state.switchDir).filter((n) => n.startsWith('preview.'))).toEqual([]);
  const promoted = await get({ [PREVIEW_HEADER]: TOKEN });
  expect(await logEntryFor(stack, promoted)).toMatchObject({ preview: '', pool: 'green', primary_pool: 'green' });
  expect((await get({}, `${PREVIEW_PATH}?token=${TOKEN}`)).status).toBe(403);
  expect((await stack.flip('blue')).code).toBe(0);
  const back = await get({ [PREVIEW_HEADER]: TOKEN });
  expect(back.headers['x-app-pool']).toBe('blue');
  // Ended by hand.
  expect((await stack.preview({ pool: 'green', token: TOKEN })).code).toBe(0);
  expect((await get({ [PREVIEW_HEADER]: TOKEN })).headers['x-app-pool']).toBe('green');
  expect((await stack.preview(undefined)).code).toBe(0);
  expect((await get({ [PREVIEW_HEADER]: TOKEN })).headers['x-app-pool']).toBe('blue');
});
