// The host's data plane on a real Docker Engine (test/docker/harness.sh prepares it; .ci/run runs it
// first): the real userdata/docker-compose.yml under `docker compose` v2, the real bluegreen-apply
// reading the pool state from moto_server with the aws CLI, nginx/switch-pool.sh and
// apply-upstream.sh (through bluegreen-nginx) against nginx in its container. Traffic goes only to
// the set's published ports on 127.0.0.1, bounded in time and count, from a keep-alive client that
// never re-sends a request (a load balancer in front of the host behaves the same).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { httpRequest } from '../../support/http';
import { summarize } from '../../local/load';
import { FULL_SPEED_LOAD, startLoad } from '../helpers/load';
import { baseImages, withoutDigest } from '../helpers/base-images';
import { matchesFilterPattern } from '../helpers/filter-pattern';
import { installCommands, loggedTags, runLogrotate, startTaggedTraffic, testLogrotateConf } from '../helpers/logrotate';
import { LOG_ROTATION_FAILED_PATTERN } from '../../lib/log-rotation-alarm';
import { waitFor } from '../helpers/stack';
import { ComposeSet, describeWithDocker, dockerEngine, Pool, startComposeSet, stepLines } from './compose-set';

const engine = dockerEngine();
const describeDocker = describeWithDocker(__filename);

/** Full-speed keep-alive load that never re-sends: bounded by time and count. */
const LOAD = { ...FULL_SPEED_LOAD, durationMs: 90_000, maxRequests: 400_000 } as const;

const version = async (url: string) => {
  const res = await httpRequest(`${url}/version`, { agent: false });
  return {
    status: res.status,
    pool: res.headers['x-app-pool'],
    body: JSON.parse(res.body) as { pool: string; release: string },
  };
};

/** One line per measured run, so the figures reach the notes (and CI logs). */
function report(what: string, summary: ReturnType<typeof summarize>) {
  process.stdout.write(
    `docker ${what}: ${summary.requests} requests, ${summary.failed} failed, ${Math.round(summary.requestsPerSec)} req/s, by pool ${JSON.stringify(summary.byPool)}\n`,
  );
}

describeDocker('the host Compose set on a Docker Engine', () => {
  let set: ComposeSet;
  const bootStarted = Date.now();
  let bootMs = 0;
  beforeAll(async () => {
    set = await startComposeSet({ active: 'blue' });
    bootMs = Date.now() - bootStarted;
  }, 240_000);
  afterAll(async () => {
    await set?.down();
  }, 60_000);

  const nginxTop = () =>
    execFileSync('docker', ['top', set.containerId('nginx'), '-o', 'pid,args'], { encoding: 'utf8' });
  const nginxWorkers = () =>
    nginxTop()
      .split('\n')
      .filter((l) => l.includes('worker process'))
      .map((l) => l.trim().split(/\s+/)[0]);

  const flip = async (pool: Pool) => {
    await set.put({ [`/bluegreen/${set.stage}/active-pool`]: pool });
    const result = await set.apply();
    expect(stepLines(result.stdout)).toContainEqual(expect.objectContaining({ step: 'active', pool, ok: true }));
    expect(result.code).toBe(0);
    return result;
  };

  test('(0) the harness tagged its offline image as the base images the files name, and the set runs them', async () => {
    const files = baseImages();
    const tags = { nginx: withoutDigest(files.nginx), node: withoutDigest(files.node) };
    const label = (image: string) =>
      execFileSync(
        'docker',
        ['image', 'inspect', '-f', '{{ index .Config.Labels "bluegreen.harness.rootfs" }}', image],
        { encoding: 'utf8' },
      ).trim();
    expect(label(tags.nginx)).toMatch(/^[0-9a-f]{12}$/);
    expect(label(tags.node)).toBe(label(tags.nginx));
    expect(engine.ready && engine.line).toContain(`images=${tags.nginx},${tags.node} `);
    // The running nginx is that image (by the name the Compose file gives, or its tag when pinned by digest).
    const running = execFileSync('docker', ['inspect', '-f', '{{.Config.Image}}', set.containerId('nginx')], {
      encoding: 'utf8',
    }).trim();
    expect(running).toBe(set.env.NGINX_IMAGE ?? files.nginx);
  });

  test('(a) boots healthy from the pool state in SSM and answers through the published port', async () => {
    process.stdout.write(`docker: engine ${engine.ready ? engine.line : ''}; set booted in ${bootMs} ms\n`);
    const ps = JSON.stringify(await set.compose('ps', '--format', 'json'));
    for (const service of ['app_blue', 'app_green', 'nginx']) expect(ps).toContain(service);
    expect((await set.compose('ps', '--status', 'running', '--services')).split('\n').filter(Boolean).sort()).toEqual([
      'app_blue',
      'app_green',
      'nginx',
    ]);
    const answer = await version(set.url);
    expect(answer).toMatchObject({ status: 200, pool: 'blue', body: { release: 'blue-1' } });
    expect((await version(set.poolUrl('green'))).body).toMatchObject({ pool: 'green', release: 'green-1' });
    // Fixed addresses on the set's own subnet, and upstream.conf points at them.
    expect(set.containerAddress('blue')).toBe(set.addresses.blue);
    expect(set.containerAddress('green')).toBe(set.addresses.green);
    expect(set.upstreamConf()).toContain(`server ${set.addresses.blue}:3000 max_fails=`);
    // nginx sees the switch dir at /etc/bluegreen/switch and writes its log to the host directory.
    expect(set.upstreamConf()).toContain('"/etc/bluegreen/switch"');
    const log = await waitFor(
      () => readFileSync(path.join(set.logDir, 'access.log'), 'utf8').trim(),
      'an access-log line',
    );
    const last = JSON.parse(log.split('\n').pop()!);
    expect(last).toMatchObject({ active_pool: 'blue', primary_pool: 'blue', pool: 'blue' });
    // A run with nothing to change changes nothing.
    const idle = await set.apply();
    expect(idle.code).toBe(0);
    expect(
      stepLines(idle.stdout)
        .filter((s) => s.step === 'reconcile')
        .map((s) => s.detail),
    ).toEqual([expect.stringContaining('unchanged'), expect.stringContaining('unchanged')]);
  });

  test('(b) flips under full-speed keep-alive load: 0 failed, no reload', async () => {
    const nginxPids = () =>
      execFileSync('docker', ['top', set.containerId('nginx'), '-o', 'pid'], { encoding: 'utf8' });
    const pidsBefore = nginxPids();
    const load = startLoad({ url: `${set.url}/version`, ...LOAD });
    await load.after(2_000, 'before the first flip');
    for (const pool of ['green', 'blue', 'green', 'blue'] as const) {
      await flip(pool);
      await waitFor(
        () => load.samples.length > 200 && load.samples.slice(-100).every((s) => s.pool === pool),
        `traffic on ${pool}`,
        20_000,
      );
    }
    const result = await load.finish();
    const summary = summarize(result.samples, result.durationMs);
    report('4 flips', summary);
    expect(summary.failures).toEqual({});
    expect(result.staleSocketRetries).toBe(0);
    // No reload: the same nginx worker processes served before and after.
    expect(nginxPids()).toBe(pidsBefore);
  }, 120_000);

  test('(c) releases the idle pool under load: 0 failed, the active pool untouched, the new release on its port', async () => {
    const blueId = set.containerId('blue');
    const greenId = set.containerId('green');
    const load = startLoad({ url: `${set.url}/version`, ...LOAD });
    await load.after(2_000, 'before the release');
    await set.setPool('green', { release: 'green-2', env: { GREETING: 'release two' } });
    const started = Date.now();
    const result = await set.apply();
    const applyMs = Date.now() - started;
    await load.after(2_000, 'after the release');
    const loadResult = await load.finish();
    const summary = summarize(loadResult.samples, loadResult.durationMs);
    report(`release of the idle pool (apply ${applyMs} ms)`, summary);

    expect(result.code).toBe(0);
    const steps = stepLines(result.stdout);
    expect(steps.filter((s) => s.pool === 'green' && s.step !== 'canary').map((s) => `${s.step}:${s.ok}`)).toEqual([
      'pull:true',
      'recreate:true',
      'health:true',
      // Healthy: nginx gets a fresh upstream generation for green (its old passive state stays behind).
      'fresh:true',
      'smoke:true',
      'reconcile:true',
      'address:true',
    ]);
    expect(steps).toContainEqual(
      expect.objectContaining({
        step: 'reconcile',
        pool: 'blue',
        ok: true,
        detail: expect.stringContaining('unchanged'),
      }),
    );
    expect(summary.failures).toEqual({});
    expect(summary.byPool).toEqual({ blue: summary.requests });
    expect(set.containerId('blue')).toBe(blueId);
    expect(set.containerId('green')).not.toBe(greenId);
    // Recreated at its fixed address: no nginx change was needed.
    expect(set.containerAddress('green')).toBe(set.addresses.green);
    expect((await version(set.poolUrl('green'))).body).toMatchObject({ pool: 'green', release: 'green-2' });
    expect(readFileSync(path.join(set.stateDir, 'pools', 'green.env'), 'utf8')).toBe("GREETING='release two'\n");
  }, 120_000);

  test('(d) a bad release (FAIL_HEALTHZ=1) fails the health gate; the active pool keeps serving, 0 failed, exit 1', async () => {
    const blueId = set.containerId('blue');
    const load = startLoad({ url: `${set.url}/version`, ...LOAD });
    await load.after(2_000, 'before the release');
    await set.setPool('green', { release: 'green-3', env: { FAIL_HEALTHZ: '1' } });
    const result = await set.apply();
    const loadResult = await load.finish();
    const summary = summarize(loadResult.samples, loadResult.durationMs);
    report('bad release of the idle pool', summary);

    expect(result.code).toBe(1);
    const steps = stepLines(result.stdout).filter((s) => s.pool === 'green' && s.step !== 'canary');
    expect(steps.map((s) => `${s.step}:${s.ok}`)).toEqual([
      'pull:true',
      // The container is created and started (no `--wait`): the gate's own probe judges it.
      'recreate:true',
      'health:false',
      'restore:true',
      // The restored container is a new process too: a fresh generation, so nginx tries it at once.
      'fresh:true',
    ]);
    expect(steps.find((s) => s.step === 'health')!.detail).toMatch(
      // Docker's verdict, or (a check late on a loaded machine) the gate's own bound.
      /^Docker reports it unhealthy after \d+ ms \(start period 10 s\); .*healthz answers 503$|did not answer 200 within 34 s .*last: 503/,
    );
    expect(summary.failures).toEqual({});
    expect(summary.byPool).toEqual({ blue: summary.requests });
    expect(set.containerId('blue')).toBe(blueId);
    // The idle pool is back on its previous release: a healthy backup again.
    expect((await version(set.poolUrl('green'))).body).toMatchObject({ release: 'green-2' });

    // The timer does not deploy the failing release again every minute...
    const again = await set.apply();
    expect(again.code).toBe(1);
    expect(stepLines(again.stdout)).toContainEqual(
      expect.objectContaining({
        step: 'reconcile',
        pool: 'green',
        ok: false,
        detail: expect.stringContaining('not tried again'),
      }),
    );
    expect(stepLines(again.stdout).map((s) => s.step)).not.toContain('recreate');
  }, 150_000);

  test('(e) a container that moved to another address: bluegreen-apply points nginx at it, and a flip to it is answered by it', async () => {
    // Put green's desired state back to what it runs, then move its container by hand.
    await set.setPool('green', { release: 'green-2', env: { GREETING: 'release two' } });
    const id = set.containerId('green');
    const network = `${set.project}_pools`;
    const moved = set.addresses.green.replace(/\.12$/, '.99');
    execFileSync('docker', ['network', 'disconnect', network, id]);
    execFileSync('docker', ['network', 'connect', '--ip', moved, network, id]);
    expect(set.containerAddress('green')).toBe(moved);

    const workersBefore = nginxWorkers();
    const result = await set.apply();
    expect(result.code).toBe(0);
    expect(stepLines(result.stdout)).toContainEqual(
      expect.objectContaining({
        step: 'upstream',
        ok: true,
        detail: expect.stringContaining(`green ${set.addresses.green} -> ${moved}`),
      }),
    );
    // A real config change is a graceful reload (nginx -t first): wait until the old workers are gone.
    // (A reload closes idle keep-alive connections; clients that never re-send would see those as
    // resets. That is why the pools have fixed addresses and this path is the exception.)
    await waitFor(
      () => {
        const now = nginxWorkers();
        return now.length > 0 && now.every((w) => !workersBefore.includes(w)) && !nginxTop().includes('shutting down');
      },
      'the reload to finish',
      20_000,
    );
    expect(set.upstreamConf()).toContain(`server ${moved}:3000 max_fails=`);
    expect(set.upstreamConf()).not.toContain(`${set.addresses.green}:3000`);

    const load = startLoad({ url: `${set.url}/version`, ...LOAD });
    await load.after(2_000, 'before the flip');
    await flip('green');
    // Answered by green itself: had nginx kept the old address, blue (the backup) would answer.
    await waitFor(
      () => load.samples.length > 500 && load.samples.slice(-200).every((s) => s.pool === 'green'),
      'traffic on green',
      20_000,
    );
    await load.after(2_000, 'after the flip');
    const loadResult = await load.finish();
    const summary = summarize(loadResult.samples, loadResult.durationMs);
    report('flip to the moved pool', summary);
    expect(summary.failures).toEqual({});
    expect(await version(set.url)).toMatchObject({ pool: 'green', body: { release: 'green-2' } });
  }, 120_000);

  test('(f) a failed pull leaves the idle pool as it was (exit 1); a bad value is refused (exit 2); the active pool is never recreated', async () => {
    // green is active now (e); blue is idle.
    const ids = { blue: set.containerId('blue'), green: set.containerId('green') };
    // "localhost/..." is a registry on this machine's port 443: nothing there, the pull fails at once.
    await set.setPool('blue', { image: 'localhost/bluegreen/app:9', release: 'blue-9' });
    const pull = await set.apply();
    expect(pull.code).toBe(1);
    const blueSteps = stepLines(pull.stdout).filter((s) => s.pool === 'blue' && s.step !== 'canary');
    expect(blueSteps.map((s) => `${s.step}:${s.ok}`)).toEqual(['pull:false']);
    expect(blueSteps[0].detail).toMatch(/^pull of localhost\/bluegreen\/app:9 failed: .*; the pool is left as it was$/);
    expect(set.containerId('blue')).toBe(ids.blue);
    expect((await version(set.poolUrl('blue'))).body).toMatchObject({ release: 'blue-1' });

    await set.setPool('blue', {
      image: 'bluegreen-app:local',
      release: 'blue-9',
      env: { LIMIT: 1 as unknown as string },
    });
    const bad = await set.apply();
    expect(bad.code).toBe(2);
    expect(stepLines(bad.stdout)).toContainEqual({
      step: 'validate',
      pool: 'blue',
      ok: false,
      detail: `/bluegreen/${set.stage}/pools/blue/env is not usable: values must be strings: refused; the pool is left as it is`,
    });
    expect(set.containerId('blue')).toBe(ids.blue);

    // A desired state for the ACTIVE pool is reported, never applied.
    await set.setPool('blue', { release: 'blue-1', env: {} });
    await set.setPool('green', { release: 'green-7' });
    const active = await set.apply();
    expect(active.code).toBe(1);
    expect(stepLines(active.stdout)).toContainEqual(
      expect.objectContaining({
        step: 'reconcile',
        pool: 'green',
        ok: false,
        detail: expect.stringContaining('the active pool is never recreated'),
      }),
    );
    expect(set.containerId('green')).toBe(ids.green);
    expect(set.containerId('blue')).toBe(ids.blue);
    await set.setPool('green', { release: 'green-2' });
  }, 60_000);

  test('(g) log rotation with the real logrotate.conf and bluegreen-nginx under traffic: no line lost, nginx writes the new file', async () => {
    // The host's logrotate.conf on the set's log dir, included by AL2023's global logrotate.conf
    // (create, dateext) as logrotate.service runs it; its postrotate (bluegreen-log-reopen) reaches
    // nginx in its container through the real bluegreen-nginx, as on the host.
    const work = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-docker-logrotate-'));
    try {
      const commands = installCommands(path.join(work, 'bin'));
      const rotate = () =>
        runLogrotate(testLogrotateConf(set.logDir, commands), work, {
          ...set.env,
          BLUEGREEN_NGINX: commands['/usr/local/bin/bluegreen-nginx'],
        });
      // A first rotation takes the earlier tests' lines out of the way (and must succeed as well).
      const first = await rotate();
      expect(first).toMatchObject({ code: 0, stderr: '' });
      rmSync(path.join(set.logDir, 'access.log.1'), { force: true });

      const traffic = startTaggedTraffic(set.url, 'dock');
      await traffic.after(300);
      const run = await rotate();
      await traffic.after(300);
      await traffic.stop();

      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(traffic.errors).toEqual([]);
      const sent = [...traffic.answered].sort();
      const logged = await waitFor(() => {
        const l = loggedTags(set.logDir, 'dock');
        return l.current.length + l.rotated.length >= sent.length ? l : undefined;
      }, `${sent.length} access-log lines`);
      expect([...logged.rotated, ...logged.current].sort()).toEqual(sent);
      expect(logged.rotated.length).toBeGreaterThanOrEqual(300);
      expect(logged.current.length).toBeGreaterThanOrEqual(300);
      process.stdout.write(
        `docker logrotate: ${sent.length} requests, ${logged.rotated.length} lines in access.log.1, ${logged.current.length} in access.log, 0 lost\n`,
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 60_000);

  // Last: it stops nginx (and starts it again).
  test('(h) a rotation while the nginx container is stopped fails loudly: logrotate fails, one alarm line, no access.log until nginx is back', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-docker-logrotate-'));
    const failures = path.join(set.logDir, 'log-rotation-failures');
    try {
      const commands = installCommands(path.join(work, 'bin'));
      await httpRequest(`${set.url}/version?before=stop`, { agent: false });
      await waitFor(
        () =>
          existsSync(path.join(set.logDir, 'access.log')) &&
          readFileSync(path.join(set.logDir, 'access.log'), 'utf8').includes('before=stop'),
        'a line in access.log',
      );
      // GIVEN the nginx container is stopped: the real bluegreen-nginx cannot reach nginx
      await set.compose('stop', 'nginx');

      // WHEN logrotate runs through the global conf
      const run = await runLogrotate(testLogrotateConf(set.logDir, commands), work, {
        ...set.env,
        BLUEGREEN_NGINX: commands['/usr/local/bin/bluegreen-nginx'],
        BLUEGREEN_REOPEN_TRIES: '2',
        BLUEGREEN_REOPEN_PAUSE: '0.2',
      });

      // THEN it fails, naming docker compose's answer, the log dir is as the RUNBOOK says, and the
      // line for the alarm matches the alarm's filter pattern
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain(`bluegreen-logrotate: nginx did not reopen its logs in ${set.logDir} after 2 tries`);
      expect(existsSync(path.join(set.logDir, 'access.log'))).toBe(false);
      expect(readFileSync(path.join(set.logDir, 'access.log.1'), 'utf8')).toContain('before=stop');
      const lines = readFileSync(failures, 'utf8').split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(matchesFilterPattern(LOG_ROTATION_FAILED_PATTERN, lines[0])).toBe(true);
      process.stdout.write(`docker logrotate, nginx stopped: ${lines[0]}\n`);

      // AND once nginx runs again it writes a new access.log
      await set.compose('start', 'nginx');
      await waitFor(
        async () =>
          (await httpRequest(`${set.url}/version?after=start`, { agent: false }).catch(() => undefined))?.status ===
          200,
        'nginx answering again',
        30_000,
      );
      await waitFor(
        () =>
          existsSync(path.join(set.logDir, 'access.log')) &&
          readFileSync(path.join(set.logDir, 'access.log'), 'utf8').includes('after=start'),
        'a new access.log',
      );
    } finally {
      rmSync(failures, { force: true });
      rmSync(work, { recursive: true, force: true });
    }
  }, 90_000);

  // Last: it takes the set down and boots it again, as a reboot does (bluegreen.service: ExecStop
  // `docker compose down`; at boot `bluegreen-apply --no-reload`, then `docker compose up --wait`).
  const applied = (pool: Pool) =>
    /^release=(.*)$/m.exec(readFileSync(path.join(set.stateDir, 'pools', `${pool}.applied`), 'utf8'))![1];
  test('(i) a host booting with an idle pool env ending in a backslash: the value is refused, nginx and both pools come up', async () => {
    const greenRan = applied('green');
    await set.compose('down', '--timeout', '5');
    // Compose read `A='x\'` as a value running on into the next line: `docker compose up` failed for
    // every service, nginx included, and bluegreen.service's Restart=on-failure tried again for ever.
    await set.put({ [`/bluegreen/${set.stage}/active-pool`]: 'blue' });
    await set.setPool('green', { release: 'green-8', env: { A: 'x\\' } });

    const boot = await set.apply('--no-reload');
    const up = await set.compose('up', '-d', '--wait', '--wait-timeout', '120').then(
      () => 'up',
      (err: Error) => err.message,
    );
    expect(up).toBe('up');
    expect(boot.code).toBe(2);
    expect(stepLines(boot.stdout)).toContainEqual({
      step: 'validate',
      pool: 'green',
      ok: false,
      detail: `/bluegreen/${set.stage}/pools/green/env is not usable: values must not end in a backslash (Compose reads \\' as a quote inside '...'): refused; the pool is left as it is`,
    });

    expect((await set.compose('ps', '--services', '--status', 'running')).split('\n').filter(Boolean).sort()).toEqual([
      'app_blue',
      'app_green',
      'nginx',
    ]);
    expect(await version(set.url)).toMatchObject({ status: 200, pool: 'blue' });
    // The refused pool starts with what it ran before the reboot.
    expect((await version(set.poolUrl('green'))).body).toMatchObject({ pool: 'green', release: greenRan });
  }, 240_000);

  test("(j) a host rebooting after its ACTIVE pool's desired state was written: the active pool boots with its applied release, the next run reports the difference and recreates nothing", async () => {
    await set.compose('down', '--timeout', '5');
    const blueRan = applied('blue');
    await set.put({ [`/bluegreen/${set.stage}/active-pool`]: 'blue' });
    await set.setPool('green', { release: applied('green'), env: {} });
    // Nothing gated blue-66 (the release CLI never writes the active pool): at boot it went live.
    await set.setPool('blue', { release: 'blue-66', env: {} });

    const boot = await set.apply('--no-reload');
    const up = await set.compose('up', '-d', '--wait', '--wait-timeout', '120').then(
      () => 'up',
      (err: Error) => err.message,
    );
    expect(up).toBe('up');
    expect(await version(set.url)).toMatchObject({ status: 200, pool: 'blue', body: { release: blueRan } });
    expect(boot.code).toBe(0);
    expect(stepLines(boot.stdout)).toContainEqual(
      expect.objectContaining({
        step: 'pull',
        pool: 'blue',
        ok: true,
        detail: expect.stringContaining(
          `the active pool starts with its applied release ${blueRan} (bluegreen-app:local); its desired release blue-66 (bluegreen-app:local) is not applied to the active pool`,
        ),
      }),
    );

    // The timer's next run: the difference is reported, the active pool is not recreated.
    const blueId = set.containerId('blue');
    const next = await set.apply();
    expect(next.code).toBe(1);
    expect(stepLines(next.stdout)).toContainEqual(
      expect.objectContaining({
        step: 'reconcile',
        pool: 'blue',
        ok: false,
        detail: expect.stringContaining(
          `active pool runs release ${blueRan}, desired blue-66; the active pool is never recreated`,
        ),
      }),
    );
    expect(set.containerId('blue')).toBe(blueId);
    expect(await version(set.url)).toMatchObject({ pool: 'blue', body: { release: blueRan } });
  }, 240_000);
});
