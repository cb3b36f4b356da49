// SLOW_PATHS on the host's real data plane (test/docker/harness.sh prepares the engine): the value
// the stack writes into /etc/bluegreen/env reaches nginx in its container through bluegreen-apply
// (boot render), and an edited value is applied by the next bluegreen-apply run (one reload).
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { httpRequest } from '../../support/http';
import { ComposeSet, describeWithDocker, startComposeSet, stepLines } from './compose-set';

const describeDocker = describeWithDocker(__filename);

describeDocker('slow paths on the host Compose set', () => {
  let set: ComposeSet;
  beforeAll(async () => {
    set = await startComposeSet({ active: 'blue', hostEnv: { SLOW_PATHS: '/slow/listed/:10s' } });
  }, 240_000);
  afterAll(async () => {
    await set?.down();
  }, 60_000);

  const get = (p: string) => httpRequest(`${set.url}${p}`, { agent: false, timeoutMs: 15_000 });
  const routesConf = () => readFileSync(path.join(set.home, 'conf', 'routes.conf'), 'utf8');

  test('a listed 3 s route answers 200 from the active pool; an unlisted one ends as the JSON 504 after both pools', async () => {
    expect(routesConf()).toContain('location /slow/listed/ {');
    const listed = await get('/slow/listed/report?ms=3000');
    expect(listed.status).toBe(200);
    expect(listed.headers['x-app-pool']).toBe('blue');
    const other = await get('/slow/other/report?ms=3000');
    expect(other.status).toBe(504);
    expect(JSON.parse(other.body)).toMatchObject({ error: 'gateway_timeout', upstream_status: '504, 504' });
  }, 60_000);

  test('an edited SLOW_PATHS is applied by the next bluegreen-apply run (tested, reloaded), and the run after changes nothing', async () => {
    set.env.SLOW_PATHS = '/slow/:10s';
    const applied = await set.apply();
    expect(applied.code).toBe(0);
    expect(stepLines(applied.stdout)).toContainEqual(
      expect.objectContaining({
        step: 'settings',
        ok: true,
        detail: expect.stringContaining('routes.conf updated (config tested, nginx reloaded gracefully)'),
      }),
    );
    expect((await get('/slow/other/report?ms=3000')).status).toBe(200);
    const again = await set.apply();
    expect(again.code).toBe(0);
    expect(stepLines(again.stdout).map((s) => s.step)).not.toContain('settings');
  }, 120_000);
});
