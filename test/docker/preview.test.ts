// Preview before promotion on the host's real Compose set (test/docker/harness.sh prepares the
// engine): the preview SecureString in moto_server, the real bluegreen-apply --preview (aws CLI with
// decryption, switch-pool.sh on the host's switch dir), nginx in its container reading the file per
// request through the bind mount. Users' load from a keep-alive client that never re-sends; the
// tester's requests carry the header (what the ALB passes through on a fleet).
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { execFileSync } from 'node:child_process';
import { parameterNames } from '../../core/names';
import { PREVIEW_HEADER } from '../../core/preview';
import { summarize } from '../../local/load';
import { newPreviewToken } from '../../ops/release/preview';
import { httpRequest } from '../../support/http';
import { startLoad } from '../helpers/load';
import { ComposeSet, describeWithDocker, startComposeSet, stepLines } from './compose-set';

const describeDocker = describeWithDocker(__filename);

describeDocker('preview on the host Compose set', () => {
  let set: ComposeSet;
  let ssm: SSMClient;
  beforeAll(async () => {
    set = await startComposeSet({ active: 'blue' });
    ssm = new SSMClient({
      endpoint: set.moto.endpoint,
      region: set.moto.env.AWS_REGION,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
  }, 240_000);
  afterAll(async () => {
    ssm?.destroy();
    await set?.down();
  }, 60_000);

  const putPreview = (value: string) =>
    ssm.send(
      new PutParameterCommand({
        Name: parameterNames(set.stage).preview,
        Value: value,
        Type: 'SecureString',
        Overwrite: true,
      }),
    );
  const poolFor = async (headers: Record<string, string>) =>
    (await httpRequest(`${set.url}/version`, { agent: false, headers })).headers['x-app-pool'];
  const nginxWorkers = () =>
    execFileSync('docker', ['top', set.containerId('nginx'), '-o', 'pid,args'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('worker process'))
      .map((l) => l.trim().split(/\s+/)[0]);

  test('the header reaches the idle pool only, with no fallback; users stay on the active pool, 0 failed, no reload', async () => {
    const workers = nginxWorkers();
    const token = newPreviewToken();
    const users = startLoad({
      url: `${set.url}/version`,
      connections: 4,
      durationMs: 60_000,
      maxRequests: 100_000,
      retryStaleSockets: false,
    });
    await users.after(500, 'before the preview');
    await putPreview(`green ${token}`);
    const applied = await set.apply('--preview');
    expect(applied.code).toBe(0);
    expect(stepLines(applied.stdout)).toEqual([expect.objectContaining({ step: 'preview', pool: 'green', ok: true })]);
    expect(applied.stdout).not.toContain(token);

    expect(await poolFor({ [PREVIEW_HEADER]: token })).toBe('green');
    expect(await poolFor({ [PREVIEW_HEADER]: newPreviewToken() })).toBe('blue');
    expect(await poolFor({ [PREVIEW_HEADER]: `../${token.slice(3)}` })).toBe('blue');

    // green fails: the tester sees its error, not blue.
    const chaos = await httpRequest(`${set.poolUrl('green')}/chaos/start?mode=error`, { method: 'POST', agent: false });
    expect(chaos.status).toBe(200);
    const failing = await httpRequest(`${set.url}/version`, { agent: false, headers: { [PREVIEW_HEADER]: token } });
    expect(failing.status).toBeGreaterThanOrEqual(500);
    expect(failing.headers['x-app-pool']).toBe('green');
    await httpRequest(`${set.poolUrl('green')}/chaos/stop`, { method: 'POST', agent: false });

    await users.after(500, 'during the preview');
    const result = await users.finish();
    const summary = summarize(result.samples, result.durationMs);
    expect(summary.failures).toEqual({});
    expect(summary.byPool).toEqual({ blue: summary.requests });
    expect(nginxWorkers()).toEqual(workers);
  }, 120_000);

  test('a redeploy of the previewed pool ends the preview; so does off', async () => {
    const token = newPreviewToken();
    await putPreview(`green ${token}`);
    expect((await set.apply('--preview')).code).toBe(0);
    expect(await poolFor({ [PREVIEW_HEADER]: token })).toBe('green');
    await set.setPool('green', { release: 'green-3' });
    const deployed = await set.apply();
    expect(deployed.code).toBe(0);
    expect(stepLines(deployed.stdout)).toContainEqual(
      expect.objectContaining({ step: 'preview', pool: 'green', ok: true, detail: expect.stringContaining('is off') }),
    );
    expect(await poolFor({ [PREVIEW_HEADER]: token })).toBe('blue');

    await putPreview(`green ${token}`);
    expect((await set.apply('--preview')).code).toBe(0);
    expect(await poolFor({ [PREVIEW_HEADER]: token })).toBe('green');
    await putPreview('off');
    expect((await set.apply('--preview')).code).toBe(0);
    expect(await poolFor({ [PREVIEW_HEADER]: token })).toBe('blue');
  }, 180_000);
});
