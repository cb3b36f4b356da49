// bluegreen-apply does not take its own .applied file on trust: a pool whose running container
// differs from it (another release, or not healthy: a failed restore, a run killed between recreate
// and writing .applied, a hand-made change) is not "unchanged". The idle pool is reconciled back to
// the desired release; the active pool is reported (exit 1) and never recreated.
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { httpRequest } from '../../support/http';
import { ComposeSet, describeWithDocker, Pool, startComposeSet, stepLines } from './compose-set';

const describeDocker = describeWithDocker(__filename);

const release = async (url: string) =>
  (JSON.parse((await httpRequest(`${url}/version`, { agent: false })).body) as { release: string }).release;

describeDocker('bluegreen-apply checks what a pool really runs', () => {
  let set: ComposeSet;
  beforeAll(async () => {
    set = await startComposeSet({ active: 'blue' });
  }, 240_000);
  afterAll(async () => {
    await set?.down();
  }, 60_000);

  /** Recreates a pool's container by hand with another RELEASE_ID, behind bluegreen-apply's back. */
  const runByHand = async (pool: Pool, releaseId: string) => {
    const envFile = path.join(set.home, 'userdata', '.env');
    const variable = `RELEASE_ID_${pool.toUpperCase()}`;
    writeFileSync(
      envFile,
      readFileSync(envFile, 'utf8').replace(new RegExp(`^${variable}=.*$`, 'm'), `${variable}=${releaseId}`),
    );
    await set.compose('up', '-d', '--no-deps', '--force-recreate', '--wait', '--wait-timeout', '60', `app_${pool}`);
    expect(await release(set.poolUrl(pool))).toBe(releaseId);
  };

  test('the idle pool running another release than .applied says is recreated with the desired release (exit 0)', async () => {
    await runByHand('green', 'green-drift');
    const before = set.containerId('green');
    const result = await set.apply();
    expect(result.code).toBe(0);
    const steps = stepLines(result.stdout).filter((s) => s.pool === 'green' && s.step !== 'canary');
    expect(steps.map((s) => `${s.step}:${s.ok}`)).toEqual([
      'reconcile:true',
      'pull:true',
      'recreate:true',
      'health:true',
      'fresh:true',
      'smoke:true',
      'reconcile:true',
      'address:true',
    ]);
    expect(steps[0].detail).toBe(
      'the applied file says release green-1 (bluegreen-app:local) but the container runs release green-drift (bluegreen-app:local): recreating',
    );
    expect(set.containerId('green')).not.toBe(before);
    expect(await release(set.poolUrl('green'))).toBe('green-1');

    // Back in step: the next run changes nothing.
    const again = await set.apply();
    expect(again.code).toBe(0);
    expect(
      stepLines(again.stdout)
        .filter((s) => s.step === 'reconcile')
        .map((s) => s.detail),
    ).toEqual([expect.stringContaining('unchanged'), expect.stringContaining('unchanged')]);
  }, 120_000);

  test('an idle pool that is not healthy (paused) is recreated (exit 0)', async () => {
    const before = set.containerId('green');
    execFileSync('docker', ['pause', before]);
    const result = await set.apply();
    expect(result.code).toBe(0);
    const steps = stepLines(result.stdout).filter((s) => s.pool === 'green' && s.step !== 'canary');
    expect(steps[0]).toMatchObject({
      step: 'reconcile',
      ok: true,
      detail: expect.stringMatching(
        /^the applied file says release green-1 .* but the container is not healthy: paused.*: recreating$/,
      ),
    });
    expect(steps.map((s) => `${s.step}:${s.ok}`).slice(1)).toEqual([
      'pull:true',
      'recreate:true',
      'health:true',
      'fresh:true',
      'smoke:true',
      'reconcile:true',
      'address:true',
    ]);
    expect(set.containerId('green')).not.toBe(before);
    expect(await release(set.poolUrl('green'))).toBe('green-1');
  }, 120_000);

  test('the active pool running another release is reported (exit 1) and never recreated', async () => {
    await runByHand('blue', 'blue-drift');
    const before = set.containerId('blue');
    const result = await set.apply();
    expect(result.code).toBe(1);
    const steps = stepLines(result.stdout).filter(
      (s) => s.pool === 'blue' && s.step !== 'canary' && s.step !== 'active',
    );
    expect(steps).toEqual([
      {
        step: 'reconcile',
        pool: 'blue',
        ok: false,
        detail:
          'active pool: the applied file says release blue-1 (bluegreen-app:local) but the container runs release blue-drift (bluegreen-app:local); the active pool is never recreated here: flip to green first, then bluegreen-apply recreates blue as the idle pool',
      },
    ]);
    expect(stepLines(result.stdout)).toContainEqual(
      expect.objectContaining({
        step: 'reconcile',
        pool: 'green',
        ok: true,
        detail: expect.stringContaining('unchanged'),
      }),
    );
    expect(set.containerId('blue')).toBe(before);
    expect(await release(set.poolUrl('blue'))).toBe('blue-drift');
  }, 120_000);
});
