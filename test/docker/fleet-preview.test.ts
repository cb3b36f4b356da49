// Preview before promotion on a fleet (fleet.ts: two hosts, each the real Compose set and
// bluegreen-apply, one stage in moto_server, behind an nginx container playing the ALB): a release
// deployed with --no-promote by the CLI's own code opens the preview on every host; through the
// balancer, which passes headers and cookies on, the token reaches the new pool on whichever host
// serves it, and users' load (keep-alive, never re-sending) stays on the active pool with 0 failed.
import { PREVIEW_COOKIE, PREVIEW_HEADER, PREVIEW_PATH } from '../../core/preview';
import { summarize } from '../../local/load';
import { ReleaseOptions } from '../../ops/release/args';
import { AwsReleaseBackend } from '../../ops/release/aws-backend';
import { runRelease } from '../../ops/release/orchestrator';
import { header, httpRequest } from '../../support/http';
import { startLoad, STRICT_CLIENT } from '../helpers/load';
import { describeWithDocker } from './compose-set';
import { Fleet, startFleet } from './fleet';

const describeDocker = describeWithDocker(__filename);

describeDocker('preview on a fleet, through the load balancer', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await startFleet({ hosts: 2, active: 'blue', releases: { blue: 'v1', green: 'v0' } });
  }, 240_000);
  afterAll(async () => {
    await fleet?.down();
  }, 90_000);

  test('--no-promote: the token reaches green on every host through the balancer; users stay on blue, 0 failed', async () => {
    const backend = new AwsReleaseBackend({
      ssm: fleet.ssm,
      ddb: fleet.ddb,
      stage: fleet.stage,
      pollMs: 200,
      flipTimeoutMs: 30_000,
      runApply: fleet.runApply,
    });
    const options: ReleaseOptions = {
      release: 'v2',
      env: {},
      strategy: 'all-at-once',
      canaryPercent: 0,
      canarySeconds: 10,
      bakeSeconds: 10,
      promote: false,
      deployTimeoutSeconds: 180,
      deployRate: { maxConcurrency: '100%', maxErrors: '0' },
    };
    const lines: string[] = [];
    expect(await runRelease(options, backend, { out: (l) => lines.push(l), pollMs: 200 })).toBe(0);
    const token = new RegExp(`${PREVIEW_HEADER}: ([A-Za-z0-9_-]{32})`).exec(lines.join('\n'))?.[1];
    expect(token).toBeDefined();

    // The tester's requests, each on a new connection: the balancer spreads them over both hosts.
    const from = fleet.lbLog().end;
    const answers: Array<string | undefined> = [];
    for (let i = 0; i < 40; i++) {
      const res = await httpRequest(`${fleet.url}/version`, { agent: false, headers: { [PREVIEW_HEADER]: token! } });
      answers.push(`${res.status} ${header(res, 'x-app-pool')} ${header(res, 'x-release-id')}`);
    }
    expect(new Set(answers)).toEqual(new Set(['200 green v2']));
    const served = fleet.servedBy(fleet.lbLog(from).entries);
    expect(Object.keys(served.byHost).length).toBe(2);

    // The cookie flow through the balancer: Location stays relative (not nginx's own port).
    const grant = await httpRequest(`${fleet.url}${PREVIEW_PATH}?token=${token}`, { agent: false });
    expect(grant.status).toBe(302);
    expect(grant.headers.location).toBe('/');
    expect(grant.headers['set-cookie']?.[0]).toMatch(new RegExp(`^${PREVIEW_COOKIE}=${token}; Path=/; HttpOnly`));
    const withCookie = await httpRequest(`${fleet.url}/version`, {
      agent: false,
      headers: { Cookie: `${PREVIEW_COOKIE}=${token}` },
    });
    expect(header(withCookie, 'x-app-pool')).toBe('green');

    const users = startLoad({
      url: `${fleet.url}/version`,
      connections: 4,
      ratePerSec: 200,
      durationMs: 60_000,
      requestTimeoutMs: 5_000,
      ...STRICT_CLIENT,
    });
    await users.after(600, 'while the preview is on');
    const result = await users.finish();
    const summary = summarize(result.samples, result.durationMs);
    expect(summary.failures).toEqual({});
    expect(summary.byPool).toEqual({ blue: summary.requests });
  }, 300_000);
});
