// Fleet mode on the Docker Engine harness (fleet.ts): two hosts, each the host's real Compose set and
// bluegreen-apply, one stage in moto_server, behind an nginx container playing the ALB. Under
// keep-alive load through the balancer from a client that never re-sends (STRICT_CLIENT):
//   - `bluegreen flip`'s own code flips the fleet: every host follows, 0 failed;
//   - `bluegreen release`'s own code (the AWS backend, Run Command stood in for with rate control):
//     a good release deployed, gated and promoted on every host, 0 failed; then one with one host
//     failing its gate: nothing promoted anywhere, the record names the host, 0 failed;
//   - a failing release at --max-concurrency 1 while every host's timer runs (sped up): Run Command
//     reaches the first host only, and no timer deploys it anywhere else;
//   - a host launched (scale-out) right as a release starts: it answers the deploy with `step=join`
//     while it bootstraps, waits in bluegreen-join until the release is over, and enters the
//     balancer only then, with the release's outcome, 0 failed;
//   - a host killed mid-load: the balancer routes around it; what failed is counted and explained.
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { execFileSync } from 'node:child_process';
import { BOOTSTRAP_HOOK_NAME, fleetGroupName } from '../../lib/fleet-hosts';
import { JOINING_STEP } from '../../core/host-command';
import { otherPool, Pool } from '../../core/pools';
import { summarize, Sample } from '../../local/load';
import { flipOnAws } from '../../ops/aws-flip';
import { hostGates } from '../../ops/stage-hosts';
import { ReleaseOptions } from '../../ops/release/args';
import { AwsReleaseBackend } from '../../ops/release/aws-backend';
import { promoteHeld, runRelease } from '../../ops/release/orchestrator';
import type { ReleaseBackend } from '../../core/release-backend';

/** The held release promoted by hand, as an operator does after a look (`bluegreen release promote`). */
async function promoteByHand(backend: ReleaseBackend, lines: string[]): Promise<void> {
  const held = (await backend.readRecord())!;
  const code = await promoteHeld(held.id, backend, (l) => lines.push(l));
  if (code !== 0) throw new Error(`release promote ${held.id} exited ${code}: ${lines.at(-1)}`);
}
import { httpRequest, header } from '../../support/http';
import { startLoad, STRICT_CLIENT } from '../helpers/load';
import { describeWithDocker, stepLines } from './compose-set';
import { Fleet, FleetHost, killHost, LaunchedHost, LB_FAIL_TIMEOUT_S, startFleet } from './fleet';

const describeDocker = describeWithDocker(__filename);

// Bounded: a 2-core machine runs two hosts (six containers; nine while a third joins), the balancer,
// moto and the client.
/**
 * The launched host's release bakes this long: its bootstrap (a Compose set up from the stage's
 * state: 22 s under this file's load, measured) must end while the release (deploy, flip, bake) is
 * still in progress, or the run shows no wait (the test then says so).
 */
const JOIN_BAKE_S = 30;
/** Every host in one round (keeps the file within its time; the default 50% rounds run in the failing-gate test). */
const EVERY_HOST_AT_ONCE = { maxConcurrency: '100%', maxErrors: '0' } as const;
const LOAD = {
  connections: 8,
  ratePerSec: 300,
  durationMs: 150_000,
  maxRequests: 1_000_000,
  requestTimeoutMs: 5_000,
  ...STRICT_CLIENT,
} as const;

describeDocker('fleet mode: two hosts behind a load balancer', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    // One spare balancer slot: the host the scale-out test launches.
    fleet = await startFleet({ hosts: 2, spares: 1, active: 'blue', releases: { blue: 'v1', green: 'v0' } });
  }, 240_000);
  afterAll(async () => {
    await fleet?.down();
  }, 90_000);

  const param = async (name: string) =>
    (await fleet.ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  /** What one host's own nginx answers (its published port): the pool that answered and the active one. */
  const hostAnswer = async (url: string) => {
    const res = await httpRequest(`${url}/version`, { timeoutMs: 3000, agent: false });
    return {
      status: res.status,
      pool: header(res, 'x-app-pool'),
      active: header(res, 'x-active-pool'),
      release: header(res, 'x-release-id'),
    };
  };
  /** The release CLI's AWS backend on the harness's stage (Run Command stood in for by the fleet). */
  const stageBackend = () =>
    new AwsReleaseBackend({
      ssm: fleet.ssm,
      ddb: fleet.ddb,
      stage: fleet.stage,
      pollMs: 200,
      flipTimeoutMs: 30_000,
      runApply: fleet.runApply,
      confirmAnswers: 10,
    });
  /** An all-at-once release of `release` (deploy at the default 50% rate unless `deployRate` says otherwise). */
  const releaseOf = (release: string, o: Pick<ReleaseOptions, 'bakeSeconds' | 'deployRate'>): ReleaseOptions => ({
    release,
    env: {},
    strategy: 'all-at-once',
    canaryPercent: 0,
    canarySeconds: 10,
    promote: true,
    deployTimeoutSeconds: 180,
    // No guard runs in this harness (release.test.ts has it on one host), so there is nothing to
    // extend the bake for: the CLI holds it once its grace is over (exit 3), and the test promotes
    // it by hand, as an operator would after a look (bluegreen release promote).
    maxBakeSeconds: o.bakeSeconds,
    ...o,
  });
  const figures = (what: string, samples: Sample[], durationMs: number, from: number) => {
    const summary = summarize(samples, durationMs);
    const served = fleet.servedBy(fleet.lbLog(from).entries);
    process.stdout.write(
      `docker fleet ${what}: ${summary.requests} requests, ${summary.failed} failed ${JSON.stringify(summary.failures)}, by pool ${JSON.stringify(summary.byPool)}, ` +
        `by host ${JSON.stringify(served.byHost)}, retried by the balancer on another host ${served.retriedOnAnother}, p99 ${summary.p99Ms} ms\n`,
    );
    return { summary, served };
  };
  /** A release run by the CLI's own code while the load runs through the balancer; its figures and output printed. */
  const releaseUnderLoad = async (what: string, options: ReleaseOptions, io: { graceMs?: number } = {}) => {
    const backend = stageBackend();
    const from = fleet.lbLog().end;
    const load = startLoad({ url: `${fleet.url}/version`, ...LOAD });
    await load.after(1_000, 'before the release');
    const lines: string[] = [];
    const code = await runRelease(options, backend, { out: (l) => lines.push(l), pollMs: 200, ...io });
    if (code === 3) await promoteByHand(backend, lines);
    await load.after(1_000, 'after the release');
    const result = await load.finish();
    const { summary, served } = figures(what, result.samples, result.durationMs, from);
    process.stdout.write(`${lines.join('\n')}\n`);
    return { code, backend, result, summary, served };
  };

  test('flip under load: every host follows the active-pool parameter, confirmed through the balancer, 0 failed', async () => {
    const from = fleet.lbLog().end;
    const load = startLoad({ url: `${fleet.url}/version`, ...LOAD });
    await load.after(1_000, 'before the flip');
    const lines: string[] = [];
    // The CLI's flip: write the parameter, then N answers in a row from green through the public URL
    // (the balancer). The pool-switch rule's stand-in runs bluegreen-apply on every host.
    const outcome = await flipOnAws({
      ssm: fleet.ssm,
      stage: fleet.stage,
      params: fleet.names,
      pool: 'green',
      wait: true,
      timeoutMs: 60_000,
      pollMs: 200,
      answers: 10,
      out: (l) => lines.push(l),
    });
    await load.after(1_000, 'after the flip');
    const result = await load.finish();
    const { summary, served } = figures('flip blue → green', result.samples, result.durationMs, from);
    process.stdout.write(`${lines.join('\n')}\n`);
    expect(outcome).toMatchObject({ ok: true });
    expect(summary.failures).toEqual({});
    expect(served.lbFailed).toBe(0);
    expect(await param(fleet.names.activePool)).toBe('green');
    // Every host switched, and both carried the load.
    for (const h of fleet.hosts) {
      expect(await hostAnswer(h.set.url)).toMatchObject({ status: 200, pool: 'green', active: 'green' });
      expect(served.byHost[h.id]).toBeGreaterThan(100);
    }
    expect(result.samples.slice(-200).every((s) => s.pool === 'green')).toBe(true);
  }, 120_000);

  test('a good release to the fleet: deployed and gated on every host, promoted through the balancer, 0 failed', async () => {
    // Every host at once (100%) keeps this file within its time; the 50% rounds are exercised below.
    // No alert function runs here (release.test.ts has the guard on one host): the CLI holds the
    // short bake it cannot judge once its grace is over (exit 3), and it is promoted by hand.
    const { code, backend, result, summary, served } = await releaseUnderLoad(
      'release v2 (good)',
      releaseOf('v2', { bakeSeconds: 2, deployRate: EVERY_HOST_AT_ONCE }),
      { graceMs: 500 },
    );
    expect(code).toBe(3);
    expect(summary.failures).toEqual({});
    expect(served.lbFailed).toBe(0);
    expect(await param(fleet.names.activePool)).toBe('blue');
    const record = (await backend.readRecord())!;
    expect(record).toMatchObject({
      release: 'v2',
      pool: 'blue',
      state: 'promoted',
      previousPool: 'green',
      previousRelease: 'v0',
    });
    expect(hostGates(record.steps).map((g) => `${g.host}:${g.ok}`)).toEqual(fleet.hosts.map((h) => `${h.id}:true`));
    for (const h of fleet.hosts) {
      expect(await hostAnswer(h.set.url)).toMatchObject({ status: 200, pool: 'blue', active: 'blue', release: 'v2' });
      expect(served.byHost[h.id]).toBeGreaterThan(100);
    }
    expect(result.samples.slice(-200).every((s) => s.pool === 'blue')).toBe(true);
  }, 180_000);

  test('release with one host failing its gate: nothing promoted on any host, the record names the host, 0 failed', async () => {
    const [good, bad] = fleet.hosts;
    // On `bad` only, release v3 starts with FAIL_HEALTHZ=1: its /healthz answers 503 (fleet.ts HostFault).
    fleet.fault = { host: bad.id, release: 'v3', env: { FAIL_HEALTHZ: '1' } };
    const { code, backend, result, summary, served } = await releaseUnderLoad(
      'release v3 (gate fails on one host)',
      releaseOf('v3', { bakeSeconds: 10 }),
    );
    fleet.fault = undefined;

    expect(code).toBe(1);
    expect(summary.failures).toEqual({});
    expect(served.lbFailed).toBe(0);
    expect(result.samples.every((s) => s.pool === 'blue')).toBe(true);
    // Nothing promoted: the active pool never changed, no promotion step, every host still on blue.
    expect(await param(fleet.names.activePool)).toBe('blue');
    const record = (await backend.readRecord())!;
    expect(record).toMatchObject({
      release: 'v3',
      pool: 'green',
      state: 'failed',
      previousPool: 'blue',
      previousRelease: 'v2',
    });
    expect(record.steps.map((s) => s.step)).not.toContain('promoting');
    expect(record.reason).toContain(bad.id);
    expect(record.reason).not.toContain(`${good.id}:`);
    // The deploy reached `good` first (50% at a time) and passed there; `bad` failed its health gate.
    const gates = hostGates(record.steps);
    expect(gates).toEqual([
      expect.objectContaining({ host: good.id, ok: true }),
      expect.objectContaining({ host: bad.id, ok: false, failure: expect.stringMatching(/^step (recreate|health)/) }),
    ]);
    const badSteps = record.steps
      .filter((s) => s.host === bad.id && s.step !== 'canary' && s.step !== 'host')
      .map((s) => `${s.step}:${s.ok}`);
    expect(badSteps).toEqual(expect.arrayContaining(['health:false', 'restore:true']));
    expect(record.steps.find((s) => s.host === bad.id && s.step === 'health')!.detail).toMatch(/healthz answers 503/);
    // Restored: green's desired release is v0 again, and every host's green runs v0 (its backup).
    expect(await param(fleet.names.pools.green.release)).toBe('v0');
    for (const h of fleet.hosts) {
      expect(await hostAnswer(h.set.poolUrl('green'))).toMatchObject({ status: 200, pool: 'green', release: 'v0' });
      expect(await hostAnswer(h.set.url)).toMatchObject({ status: 200, pool: 'blue', active: 'blue', release: 'v2' });
      expect(served.byHost[h.id]).toBeGreaterThan(100);
    }
  }, 240_000);

  test("a failing release at --max-concurrency 1 reaches one host only: every host's timer runs during it and none deploys it; 0 failed", async () => {
    const [first, second] = fleet.hosts;
    const active = (await param(fleet.names.activePool)) as Pool;
    const pool = otherPool(active);
    const ran = (await param(fleet.names.pools[pool].release))!;
    /** The idle pool's container on a host: a deploy (or its restore) recreates it, with a new id. */
    const idleContainer = (h: FleetHost) =>
      execFileSync(
        'docker',
        [
          'ps',
          '-q',
          '--no-trunc',
          '--filter',
          `label=com.docker.compose.project=${h.set.project}`,
          '--filter',
          `label=com.docker.compose.service=app_${pool}`,
        ],
        { encoding: 'utf8' },
      ).trim();
    const untouched = idleContainer(second);
    // Run Command starts the deploy on the first host only (one at a time) and it fails its gate
    // there: with --max-errors 0 no other host starts it.
    fleet.fault = { host: first.id, release: 'v5', env: { FAIL_HEALTHZ: '1' } };
    // The hosts' timers, sped up so that this release's minute holds several of their runs: every 3 s,
    // each host at its own offset (the unit's shape: minutely, spread over the randomized delay).
    fleet.timer.speedUp({ periodMs: 3_000, spreadMs: 3_000 });
    const runsBefore = fleet.timer.runs().length;
    let outcome: Awaited<ReturnType<typeof releaseUnderLoad>>;
    try {
      outcome = await releaseUnderLoad(
        'release v5 (fails on the first host) at --max-concurrency 1, timers every 3 s',
        releaseOf('v5', { bakeSeconds: 10, deployRate: { maxConcurrency: '1', maxErrors: '0' } }),
      );
    } finally {
      fleet.fault = undefined;
      fleet.timer.reset();
    }
    const { code, backend, summary, served } = outcome;
    const record = (await backend.readRecord())!;
    const [startedAt, finishedAt] = [Date.parse(record.startedAt), Date.parse(record.finishedAt ?? '')];
    const during = fleet.timer
      .runs()
      .slice(runsBefore)
      .filter((r) => r.startedAt >= startedAt && r.startedAt <= finishedAt);
    const deploySteps = (stdout: string) =>
      stepLines(stdout).filter(
        (s) => s.pool === pool && ['pull', 'recreate', 'health', 'smoke', 'restore'].includes(s.step),
      );
    process.stdout.write(
      `  timer runs during the release: ${fleet.hosts.map((h) => `${h.id} ${during.filter((r) => r.host === h.id).length}`).join(', ')}; ` +
        `${second.id}'s said: ${[
          ...new Set(
            during
              .filter((r) => r.host === second.id)
              .flatMap((r) =>
                stepLines(r.result.stdout)
                  .filter((s) => s.pool === pool && s.step === 'reconcile')
                  .map((s) => s.detail),
              ),
          ),
        ].join(' | ')}\n`,
    );

    expect(code).toBe(1);
    expect(record).toMatchObject({ release: 'v5', pool, state: 'failed' });
    const gates = hostGates(record.steps);
    expect(gates).toEqual([
      expect.objectContaining({
        host: first.id,
        ok: false,
        notRun: false,
        failure: expect.stringMatching(/^step (recreate|health)/),
      }),
      expect.objectContaining({ host: second.id, ok: false, notRun: true }),
    ]);
    // The second host's timer ran while the release was in progress, and deployed nothing there.
    const secondRuns = during.filter((r) => r.host === second.id);
    expect(secondRuns.length).toBeGreaterThan(0);
    for (const r of secondRuns) expect(deploySteps(r.result.stdout)).toEqual([]);
    expect(idleContainer(second)).toBe(untouched);
    expect(await hostAnswer(second.set.poolUrl(pool))).toMatchObject({ status: 200, pool, release: ran });
    // No timer run deployed it on the first host either: its only deploy was the release's own.
    for (const r of during.filter((x) => x.host === first.id)) expect(deploySteps(r.result.stdout)).toEqual([]);
    // Restored everywhere, nothing promoted, nobody saw a failure.
    expect(await param(fleet.names.pools[pool].release)).toBe(ran);
    expect(await param(fleet.names.activePool)).toBe(active);
    expect(summary.failures).toEqual({});
    expect(served.lbFailed).toBe(0);
  }, 240_000);

  test("a host launched during a release joins only after it, with the release's outcome; 0 failed", async () => {
    const active = (await param(fleet.names.activePool)) as Pool;
    const pool = otherPool(active);
    const inService = [...fleet.hosts];
    const backend = stageBackend();
    const from = fleet.lbLog().end;
    const load = startLoad({ url: `${fleet.url}/version`, ...LOAD });
    let launched: LaunchedHost | undefined;
    try {
      await load.after(1_000, 'before the release');
      const lines: string[] = [];
      // The scale-out right as the release starts: the group launches a host, tagged (so reached by
      // Run Command) from now on, bootstrapping for a while. Every host at once (100%), so the deploy
      // reaches it while it boots; the bake outlasts its bootstrap (no guard here: the CLI finishes
      // the bake after its grace, as in the good release above).
      launched = fleet.launchHost();
      const code = await runRelease(
        releaseOf('v4', { bakeSeconds: JOIN_BAKE_S, deployRate: EVERY_HOST_AT_ONCE }),
        backend,
        { out: (l) => lines.push(l), pollMs: 200, graceMs: 500 },
      );
      // Held (no guard here), then promoted by hand: the joiner applied what the release left either
      // way. The release became final when it was held: the join's timing is measured against that.
      const final = (await backend.readRecord())!;
      if (code === 3) await promoteByHand(backend, lines);
      const record = (await backend.readRecord())!;
      const host = await launched.ready;
      await load.after(1_500, 'after the new host joined');
      const result = await load.finish();
      const { summary, served } = figures(
        `release v4 with ${launched.id} launched at its start`,
        result.samples,
        result.durationMs,
        from,
      );
      const { phases, id } = launched;
      const finishedAt = Date.parse(final.finishedAt ?? '');
      const at = (t: number | undefined) => (t === undefined ? '-' : `${((t - phases.launched) / 1000).toFixed(1)} s`);
      const joinedDeploy = record.steps.some((s) => s.host === id && s.step === JOINING_STEP);
      process.stdout.write(
        `  ${id}: the deploy found it ${joinedDeploy ? 'still bootstrapping (it answered step=join)' : 'bootstrapped (deployed and gated like the others)'}; from its launch: ` +
          `marker removed ${at(phases.markerRemoved)}, join waiting ${at(phases.joinWaiting)}, release final ${at(finishedAt)}, join exited ${at(phases.joinExited)}, ` +
          `bluegreen-apply ${at(phases.applied)}, registered ${at(phases.registered)}; held out ${(((phases.joinExited ?? 0) - (phases.markerRemoved ?? 0)) / 1000).toFixed(1)} s after its bootstrap, ` +
          `${launched.heartbeats().length} lifecycle heartbeats; its bluegreen-apply before joining: ${stepLines(
            launched.apply?.stdout ?? '',
          )
            .map((s) => `${s.step} ${s.pool}${s.ok ? '' : ' FAILED'}`)
            .join(', ')}\n`,
      );
      process.stdout.write(`${lines.join('\n')}\n${launched.join.stdout}`);

      // The release: promoted (by hand), with the newcomer counted as joining (or, had it booted first, gated).
      expect(code).toBe(3);
      expect(record).toMatchObject({ release: 'v4', pool, state: 'promoted' });
      expect(await param(fleet.names.activePool)).toBe(pool);
      const gates = hostGates(record.steps);
      expect(gates.filter((g) => g.host !== id)).toEqual(
        inService.map((h) => expect.objectContaining({ host: h.id, ok: true, joining: false })),
      );
      if (joinedDeploy) {
        // The deploy found it bootstrapping: `step=join`, not gated, not failed, its marker still there.
        expect(gates.find((g) => g.host === id)).toMatchObject({ ok: false, joining: true, notRun: false });
        expect(lines.join('\n')).toContain(
          `1 still bootstrapping (${id}): not in service, they join after this release with its outcome`,
        );
      } else {
        // It finished its bootstrap before the deploy came: deployed and gated like the others.
        expect(gates.find((g) => g.host === id)).toMatchObject({ ok: true, joining: false });
      }
      // Registered only after the release was over, and after its own bluegreen-apply.
      expect(launched.apply?.code).toBe(0);
      expect(phases.registered!).toBeGreaterThan(finishedAt);
      expect(phases.registered!).toBeGreaterThanOrEqual(phases.applied!);

      // What the balancer sent it: nothing before its registration (its log's start of each request,
      // ms resolution), then only the release's outcome: the new active pool on v4.
      const entries = fleet.lbLog(from).entries;
      const onIt = entries.filter((e) => e.targets.some((t) => fleet.hostOf(t) === id));
      expect(onIt.filter((e) => e.startMsec < phases.registered! - 1)).toEqual([]);
      expect(
        onIt.filter(
          (e) =>
            e.status !== 200 ||
            e.pool !== pool ||
            e.release !== 'v4' ||
            fleet.hostOf(e.targets[e.targets.length - 1]) !== id,
        ),
      ).toEqual([]);
      expect(served.byHost[id]).toBe(onIt.length);
      expect(onIt.length).toBeGreaterThan(100);
      // It booted while the release was in progress (else this run shows no wait: the bake is too
      // short for this machine), waited in bluegreen-join for that very release, heartbeating its
      // launch, and went on only once the record was final.
      if (!(phases.markerRemoved! < finishedAt))
        throw new Error(
          `${id} finished its bootstrap after the release did: raise JOIN_BAKE_S (${JOIN_BAKE_S} s) for this machine`,
        );
      expect(launched.join.code).toBe(0);
      expect(launched.join.stdout).toContain(`bluegreen-join: release ${record.id} is in progress (`);
      expect(launched.join.stdout).toMatch(
        new RegExp(`bluegreen-join: release ${record.id} is over \\(final\\) after \\d+ s: joining`),
      );
      expect(phases.joinWaiting!).toBeLessThan(finishedAt);
      expect(phases.joinExited!).toBeGreaterThan(finishedAt);
      const heartbeats = launched.heartbeats();
      expect(heartbeats.length).toBeGreaterThanOrEqual(1);
      for (const hb of heartbeats) {
        expect(hb.call).toBe(
          `autoscaling record-lifecycle-action-heartbeat --auto-scaling-group-name ${fleetGroupName(fleet.stage)} --lifecycle-hook-name ${BOOTSTRAP_HOOK_NAME} --instance-id ${id}`,
        );
        expect(hb.at).toBeGreaterThanOrEqual(phases.joinStarted!);
        expect(hb.at).toBeLessThanOrEqual(phases.joinExited!);
      }
      // Every host, the newcomer too, runs the release's outcome.
      for (const h of [...inService, host])
        expect(await hostAnswer(h.set.url)).toMatchObject({ status: 200, pool, active: pool, release: 'v4' });
      // Nobody saw a failure.
      expect(summary.failures).toEqual({});
      expect(served.lbFailed).toBe(0);
      for (const h of inService) expect(served.byHost[h.id]).toBeGreaterThan(100);
    } finally {
      await load.finish().catch(() => undefined);
      // Scale-in again, so the kill below runs on the two hosts it is written for.
      if (launched) await fleet.terminate(launched);
    }
  }, 300_000);

  test('a host killed mid-load: the balancer routes around it; failures only among requests in flight on it, none after', async () => {
    const [survivor, victim] = fleet.hosts;
    const from = fleet.lbLog().end;
    const load = startLoad({ url: `${fleet.url}/version`, ...LOAD });
    await load.after(1_500, 'before the kill');
    const killedAt = Date.now();
    killHost(victim);
    const killDone = Date.now();
    await load.after(2_000, 'after the kill');
    const result = await load.finish();
    const { summary, served } = figures(`host ${victim.id} killed`, result.samples, result.durationMs, from);
    const killRel = killedAt - result.startedAt;
    const killDoneRel = killDone - result.startedAt;
    const failed = result.samples.filter((s) => s.status !== 200);
    // In flight while `docker kill` ran: sent before it returned, not answered before it began.
    const inFlight = failed.filter((s) => s.sentAt <= killDoneRel && s.sentAt + s.latencyMs >= killRel);
    const after = fleet.lbLog(from).entries.filter((e) => e.msec > killDone + 500);
    const servedAfter = fleet.servedBy(after);
    process.stdout.write(
      `  kill at ${killRel}-${killDoneRel} ms into the run: ${failed.length} failed (${inFlight.length} of them in flight at the kill: ${JSON.stringify(failed.map((s) => s.error ?? s.status))}); ` +
        `after the kill: ${after.length} requests, by host ${JSON.stringify(servedAfter.byHost)}, ${servedAfter.retriedOnAnother} of them first tried on the dead host and answered by the other ` +
        `(the balancer tries a failed target again every ${LB_FAIL_TIMEOUT_S} s)\n`,
    );
    // Explained: a request can only fail if it was on its way through the killed host at that moment
    // (its connection reset before the balancer could retry it); at most one per client connection.
    expect(failed).toEqual(inFlight);
    expect(failed.length).toBeLessThanOrEqual(LOAD.connections);
    expect(result.samples.filter((s) => s.sentAt > killDoneRel && s.status !== 200)).toEqual([]);
    // Routed around: after the kill only the survivor answers, and it answers everything.
    expect(served.byHost[victim.id]).toBeGreaterThan(100); // it did carry load before
    expect(servedAfter.byHost[victim.id]).toBe(0);
    expect(servedAfter.byHost[survivor.id]).toBe(after.length);
    expect(summary.requests).toBeGreaterThan(3_000);
  }, 120_000);
});
