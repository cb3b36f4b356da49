// The host's Compose file, agent and units: the Compose file validated by docker-compose itself (v1
// works offline, without an engine), then the promises that matter checked on its normalised
// output; the agent's defaults checked against the Compose file's. The same files run for real on
// a Docker Engine in test/docker/.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { APPLY_PATH, NO_DEPLOY, TIMER_APPLY_ARGS } from '../../core/host-command';
import { PORTS } from '../../core/ports';
import { HOST_TIMER, hostRetryEnv, JOIN_POLL_SECONDS } from '../../core/ssm-budget';
import { synthTemplate } from '../helpers/cdk';
import { REPO_ROOT } from '../../local/paths';

interface Service {
  ports: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  restart?: string;
  command?: string[];
  environment?: Record<string, string>;
  image?: string;
  build?: unknown;
  tmpfs?: string[];
  networks?: Record<string, { ipv4_address?: string } | null>;
  stop_grace_period?: string;
}
interface Config {
  services: Record<string, Service>;
  networks: Record<string, { driver?: string; ipam?: { config: Array<{ subnet: string }> } }>;
}

const read = (...p: string[]) => readFileSync(path.join(REPO_ROOT, ...p), 'utf8');
let config: Config;
let services: Record<string, Service>;
let dir: string;
let stateDir: string;
beforeAll(() => {
  // Lay the files out as the host does: /opt/bluegreen/{app,userdata}, /var/lib/bluegreen/pools.
  dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-compose-'));
  for (const sub of ['app', 'userdata']) cpSync(path.join(REPO_ROOT, sub), path.join(dir, sub), { recursive: true });
  stateDir = path.join(dir, 'state');
  mkdirSync(path.join(stateDir, 'pools'), { recursive: true });
  // What bluegreen-apply writes from /bluegreen/<stage>/pools/<pool>/env.
  writeFileSync(path.join(stateDir, 'pools', 'blue.env'), 'GREETING=hello\nRELEASE_ID=from-env-file\n');
  writeFileSync(path.join(stateDir, 'pools', 'green.env'), '');
  // What bluegreen-apply keeps in its secrets dir (a tmpfs on a host): each pool's file, empty without secrets.
  mkdirSync(path.join(dir, 'secrets'));
  writeFileSync(path.join(dir, 'secrets', 'blue.env'), '');
  writeFileSync(path.join(dir, 'secrets', 'green.env'), "DB_PASSWORD='from-secrets'\n");
  config = composeConfig({ RELEASE_ID_BLUE: 'b-9' });
  services = config.services;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** docker-compose (v1) validates and normalises the file; PyYAML (shipped with cfn-lint) turns it into JSON. */
function composeConfig(env: Record<string, string> = {}): Config {
  const run = spawnSync('docker-compose', ['-f', path.join(dir, 'userdata', 'docker-compose.yml'), 'config'], {
    encoding: 'utf8',
    env: { ...process.env, BLUEGREEN_STATE_DIR: stateDir, BLUEGREEN_SECRETS_DIR: path.join(dir, 'secrets'), ...env },
  });
  if (run.error)
    throw new Error(
      `docker-compose (v1, apt-get install docker-compose) is needed to validate the Compose file: ${run.error.message}`,
    );
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  const json = execFileSync('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], {
    input: run.stdout,
    encoding: 'utf8',
  });
  return JSON.parse(json);
}

/** A `NAME=${NAME:-default}` style default the agent script uses. */
function scriptDefault(script: string, pattern: RegExp): string {
  const m = read('userdata', script).match(pattern);
  if (!m) throw new Error(`${script}: no match for ${pattern}`);
  return m[1];
}

test('nothing is ever built by Compose: a registry image is pulled, never replaced by a build of app/', () => {
  const registry = composeConfig({ BLUE_IMAGE: 'ghcr.io/acme/shop:1.4.2' });
  expect(registry.services.app_blue.image).toBe('ghcr.io/acme/shop:1.4.2');
  for (const s of Object.values(registry.services)) expect(s.build).toBeUndefined();
  // bluegreen-app:local is built from app/ by the agent's pull step; any other image is pulled, and
  // a failed pull leaves the pool as it was.
  const apply = read('userdata', 'bluegreen-apply.sh');
  expect(apply).toContain('docker build -q -t "$local_image" "$home/app"');
  expect(apply).toContain('docker pull -q "$1"');
  // (DEFAULT_APP_IMAGE from userdata/facts.sh, generated from core: test/unit/host-files.test.ts)
  expect(apply).toMatch(/^local_image=\$DEFAULT_APP_IMAGE$/m);
});

test('POOL_HEALTHCHECK replaces the node health check for images without node', () => {
  const custom = composeConfig({ POOL_HEALTHCHECK: 'wget -q -O /dev/null http://127.0.0.1:3000/healthz' });
  expect(custom.services.app_blue.healthcheck!.test).toEqual([
    'CMD-SHELL',
    'wget -q -O /dev/null http://127.0.0.1:3000/healthz',
  ]);
});

test('three services: nginx and the two pools', () => {
  expect(Object.keys(services).sort()).toEqual(['app_blue', 'app_green', 'nginx']);
});

test('ports: nginx 8080, blue 8081, green 8082 (each pool listening on 3000 inside); the tests move them to loopback ports', () => {
  expect(services.nginx.ports).toEqual(['0.0.0.0:8080:8080/tcp']);
  expect(services.app_blue.ports).toEqual(['0.0.0.0:8081:3000/tcp']);
  expect(services.app_green.ports).toEqual(['0.0.0.0:8082:3000/tcp']);
  const moved = composeConfig({
    BLUEGREEN_PUBLISH_ADDR: '127.0.0.1',
    BLUEGREEN_HTTP_PORT: '18080',
    BLUE_PORT: '18081',
    GREEN_PORT: '18082',
  }).services;
  expect([moved.nginx.ports, moved.app_blue.ports, moved.app_green.ports]).toEqual([
    ['127.0.0.1:18080:8080/tcp'],
    ['127.0.0.1:18081:3000/tcp'],
    ['127.0.0.1:18082:3000/tcp'],
  ]);
});

test("pools: each reads its secrets' file from the secrets dir too (README Secrets), that pool's only; health and drain times per pool, at today's defaults", () => {
  expect(services.app_green.environment!.DB_PASSWORD).toBe('from-secrets');
  expect(services.app_blue.environment!.DB_PASSWORD).toBeUndefined();
  for (const pool of ['blue', 'green']) {
    const service = services[`app_${pool}`] as Service & { healthcheck?: { timeout?: string; start_period?: string } };
    expect([service.healthcheck?.timeout, service.healthcheck?.start_period, service.stop_grace_period]).toEqual([
      '3s',
      '10s',
      '10s',
    ]);
  }
});

test('pools: health-checked on /healthz, restarted, told who they are; the release env file cannot override that', () => {
  for (const [name, pool] of [
    ['app_blue', 'blue'],
    ['app_green', 'green'],
  ] as const) {
    const s = services[name];
    expect(s.healthcheck!.test.join(' ')).toContain('http://127.0.0.1:3000/healthz');
    expect(s.restart).toBe('unless-stopped');
    expect(s.environment).toMatchObject({ APP_POOL: pool, PORT: '3000' });
  }
  expect(services.app_blue.environment!.RELEASE_ID).toBe('b-9');
  expect(services.app_green.environment!.RELEASE_ID).toBe('green-1');
  // Each pool's own env file (pools/<pool>.env under the state dir) reaches that pool only.
  expect(services.app_blue.environment!.GREETING).toBe('hello');
  expect(services.app_green.environment!.GREETING).toBeUndefined();
});

test('fixed pool addresses on a user-defined network with an ipam subnet, the same defaults as bluegreen-apply', () => {
  expect(config.networks.pools).toEqual({ driver: 'bridge', ipam: { config: [{ subnet: '192.168.213.0/24' }] } });
  expect(services.app_blue.networks).toEqual({ pools: { ipv4_address: '192.168.213.11' } });
  expect(services.app_green.networks).toEqual({ pools: { ipv4_address: '192.168.213.12' } });
  expect(Object.keys(services.nginx.networks!)).toEqual(['pools']);
  // The agent renders upstream.conf with these addresses at boot and compares containers with them.
  expect(scriptDefault('bluegreen-apply.sh', /^subnet=\$\{BLUEGREEN_SUBNET:-([^}]+)\}$/m)).toBe('192.168.213.0/24');
  expect(read('userdata', 'bluegreen-apply.sh')).toMatch(/^blue_addr=\$\{BLUE_ADDR:-\$net_base\.11\}$/m);
  expect(read('userdata', 'bluegreen-apply.sh')).toMatch(/^green_addr=\$\{GREEN_ADDR:-\$net_base\.12\}$/m);
  // The published ports' defaults: core's PORTS, through userdata/facts.sh.
  expect(services.app_blue.ports).toEqual([`0.0.0.0:${PORTS.blue}:3000/tcp`]);
  expect(services.app_green.ports).toEqual([`0.0.0.0:${PORTS.green}:3000/tcp`]);
  expect(read('userdata', 'bluegreen-apply.sh')).toMatch(/^blue_port=\$\{BLUE_PORT:-\$PORT_BLUE\}$/m);
  expect(read('userdata', 'bluegreen-apply.sh')).toMatch(/^green_port=\$\{GREEN_PORT:-\$PORT_GREEN\}$/m);
  // Overridable when a VPC uses that range.
  const moved = composeConfig({
    BLUEGREEN_SUBNET: '10.250.9.0/24',
    BLUE_ADDR: '10.250.9.11',
    GREEN_ADDR: '10.250.9.12',
  });
  expect(moved.networks.pools.ipam!.config[0].subnet).toBe('10.250.9.0/24');
  expect(moved.services.app_green.networks).toEqual({ pools: { ipv4_address: '10.250.9.12' } });
});

test('nginx starts only after both pools are healthy, and has a health check of its own', () => {
  expect(services.nginx.depends_on).toEqual({
    app_blue: { condition: 'service_healthy' },
    app_green: { condition: 'service_healthy' },
  });
  expect(services.nginx.healthcheck!.test.join(' ')).toContain('http://127.0.0.1:8080/version');
  expect(services.nginx.restart).toBe('unless-stopped');
});

test('nginx runs the repo config from the asset, sees the switch dir, and writes its logs to a host directory', () => {
  expect(services.nginx.command).toEqual([
    'nginx',
    '-p',
    '/var/lib/bluegreen/',
    '-c',
    '/etc/bluegreen/conf/nginx.conf',
    '-g',
    'daemon off;',
  ]);
  // /opt/bluegreen (nginx/, conf/, switch/) at /etc/bluegreen: the host's /opt/bluegreen/switch is
  // the /etc/bluegreen/switch that upstream.conf names.
  expect(services.nginx.volumes).toContain('/opt/bluegreen:/etc/bluegreen:ro');
  expect(scriptDefault('bluegreen-apply.sh', /nginx_switch=\$\{NGINX_SWITCH_DIR:-(\/etc\/bluegreen\/switch)\}/)).toBe(
    '/etc/bluegreen/switch',
  );
  expect(read('userdata', 'bluegreen-apply.sh')).toMatch(/^SWITCH_DIR=\$\{SWITCH_DIR:-\$home\/switch\}$/m);
  // The log mount: a host directory (a file bind-mount would become a directory if it did not exist).
  expect(services.nginx.volumes).toContain('/var/log/bluegreen:/var/lib/bluegreen/logs:rw');
  expect(read('nginx', 'nginx.conf')).toMatch(/access_log logs\/access\.log bluegreen_json;/);
  // A temporary BLUEGREEN_HOME (the docker tests) moves the mount with it.
  expect(composeConfig({ BLUEGREEN_HOME: '/tmp/bg-home' }).services.nginx.volumes).toContain(
    '/tmp/bg-home:/etc/bluegreen:ro',
  );
});

test('systemd: boot renders from SSM then brings the set up; the timer reconciles every minute', () => {
  const service = read('userdata', 'bluegreen.service');
  expect(service).toContain('ExecStartPre=-/usr/local/bin/bluegreen-apply --no-reload');
  expect(service).toMatch(/^ExecStart=\/usr\/bin\/docker compose up -d --wait/m);
  // The timer never deploys a pool's new release (a release's own Run Command paces that): the unit
  // runs what core/host-command.ts says the timer runs.
  expect(/^ExecStart=(.*)$/m.exec(read('userdata', 'bluegreen-apply.service'))![1]).toBe(
    [APPLY_PATH, ...TIMER_APPLY_ARGS].join(' '),
  );
  expect(TIMER_APPLY_ARGS).toEqual([NO_DEPLOY]);
  expect(read('userdata', 'bluegreen-apply.timer')).toContain('OnCalendar=minutely');
});

test("the timer's schedule is the request model's: minutely, each host at a fixed offset within the randomized delay", () => {
  const timer = read('userdata', 'bluegreen-apply.timer');
  const key = (name: string) => [...timer.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]);
  expect(key('OnCalendar')).toEqual([HOST_TIMER.onCalendar]);
  expect(key('RandomizedDelaySec')).toEqual([`${HOST_TIMER.randomizedDelaySeconds}s`]);
  expect(key('AccuracySec')).toEqual([`${HOST_TIMER.accuracySeconds}s`]);
  expect(key('FixedRandomDelay')).toEqual([HOST_TIMER.fixedRandomDelay ? 'yes' : 'no']);
});

test('the units use only keys systemd knows (systemd-analyze verify: an unknown key is ignored with a warning)', () => {
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (analyze.status !== 0) {
    process.stderr.write('host-files.test.ts: systemd-analyze not found; unit keys not verified\n');
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-units-'));
  try {
    for (const unit of ['bluegreen-apply.timer', 'bluegreen-apply.service'])
      cpSync(path.join(REPO_ROOT, 'userdata', unit), path.join(dir, unit));
    const verify = spawnSync('systemd-analyze', ['verify', path.join(dir, 'bluegreen-apply.timer')], {
      encoding: 'utf8',
    });
    expect(`${verify.stdout}${verify.stderr}`).not.toMatch(/Unknown key|Unknown section|Failed to parse/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the hosts' aws CLI retries a throttled call with backoff: /etc/bluegreen/env carries the retry mode and attempts", () => {
  for (const context of [{}, { hosts: '2' }]) {
    const template = JSON.stringify(synthTemplate(context).toJSON());
    for (const [k, v] of Object.entries(hostRetryEnv())) expect(template).toContain(`export ${k}='${v}'`);
  }
});

test("a joining host polls the release record at the request model's cadence (bluegreen-join's default)", () => {
  expect(read('fleet', 'bluegreen-join.sh')).toContain(`poll=\${JOIN_POLL_SECONDS:-${JOIN_POLL_SECONDS}}`);
});

test('bootstrap: pool images and releases come from SSM, ECR pulls go through the credential helper', () => {
  const bootstrap = read('userdata', 'bootstrap.sh');
  expect(bootstrap).not.toMatch(/BLUE_IMAGE|GREEN_IMAGE|RELEASE_ID_/);
  expect(bootstrap).toMatch(/dnf install .*amazon-ecr-credential-helper/);
  expect(bootstrap).toContain(`jq --arg r "$ECR_REGISTRY" '.credHelpers[$r] = "ecr-login"'`);
  expect(bootstrap).toContain('COMPOSE_VERSION=2.29.6');
});

test('the CloudWatch agent config tails the file nginx writes, into the stage log groups', () => {
  const agent = JSON.parse(read('userdata', 'cloudwatch-agent.json'));
  const files = agent.logs.logs_collected.files.collect_list;
  // (log-rotation-failures: bluegreen-log-reopen's failure line, for the alarm; test/infra/log-rotation-alarm.test.ts)
  expect(files.map((f: { file_path: string }) => f.file_path)).toEqual([
    '/var/log/bluegreen/access.log',
    '/var/log/bluegreen/error.log',
    '/var/log/bluegreen/log-rotation-failures',
  ]);
  expect(files.map((f: { log_group_name: string }) => f.log_group_name)).toEqual([
    '__ACCESS_LOG_GROUP__',
    '__ERROR_LOG_GROUP__',
    '__ERROR_LOG_GROUP__',
  ]);
  expect(files[0]).toMatchObject({ timestamp_format: '%Y-%m-%dT%H:%M:%S', timezone: 'UTC' });
});

test('logrotate renames (never copytruncate) and makes nginx reopen through a check that can fail', () => {
  const conf = read('userdata', 'logrotate.conf');
  expect(conf).not.toMatch(/^\s*copytruncate/m);
  // (Run for real in test/e2e/log-rotation.test.ts and on a Docker Engine in test/docker/.)
  expect(conf).toContain('/usr/local/bin/bluegreen-log-reopen /var/log/bluegreen');
  expect(conf).not.toContain('|| true');
  // The check needs these whatever /etc/logrotate.conf says (AL2023's has create and dateext).
  expect(conf).toMatch(/^\s*nocreate$/m);
  expect(conf).toMatch(/^\s*nodateext$/m);
  expect(read('userdata', 'bootstrap.sh')).toContain(
    'install -m 0755 "$home/userdata/bluegreen-log-reopen.sh" /usr/local/bin/bluegreen-log-reopen',
  );
});

describe("bootstrap's log rotation check (AL2023 rotates only from logrotate.timer)", () => {
  // The function itself, cut out of bootstrap.sh and run by bash with systemctl and logrotate
  // replaced by stubs that record their calls and answer as told.
  const bootstrap = read('userdata', 'bootstrap.sh');
  const fn = bootstrap.match(/^ensure_log_rotation\(\) \{\n[\s\S]*?^\}\n/m)?.[0];
  const call = bootstrap.match(/^ensure_log_rotation (\S+)$/m)?.[1];

  function run(stub: { enabled: string; enable?: number; active?: number; conf?: number }) {
    if (!fn) throw new Error('bootstrap.sh has no ensure_log_rotation() { ... }');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-bootstrap-'));
    try {
      const calls = path.join(dir, 'calls');
      writeFileSync(
        path.join(dir, 'systemctl'),
        `#!/bin/sh\necho "systemctl $*" >>${calls}\ncase "$*" in\n` +
          `"is-enabled --quiet logrotate.timer") [ "${stub.enabled}" = enabled ] ;;\n` +
          `"is-enabled logrotate.timer") echo ${stub.enabled}; [ "${stub.enabled}" = enabled ] ;;\n` +
          `"enable --now logrotate.timer") echo "Failed to enable unit" >&2; exit ${stub.enable ?? 0} ;;\n` +
          `"is-active --quiet logrotate.timer") exit ${stub.active ?? 0} ;;\n` +
          `*) exit 0 ;;\nesac\n`,
        { mode: 0o755 },
      );
      writeFileSync(
        path.join(dir, 'logrotate'),
        `#!/bin/sh\necho "logrotate $*" >>${calls}\necho "error: $2:3 unknown option" >&2\nexit ${stub.conf ?? 0}\n`,
        { mode: 0o755 },
      );
      const script = `set -euo pipefail\nlog() { echo "bootstrap: $*"; }\n${fn}ensure_log_rotation /etc/logrotate.d/bluegreen\n`;
      const result = spawnSync('bash', ['-c', script], {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
      });
      const log = (() => {
        try {
          return readFileSync(calls, 'utf8').trim().split('\n');
        } catch {
          return [];
        }
      })();
      return { code: result.status, out: result.stdout + result.stderr, calls: log };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('bootstrap runs it on the installed configuration', () => {
    expect(call).toBe('/etc/logrotate.d/bluegreen');
    expect(bootstrap).toContain('install -m 0644 "$home/userdata/logrotate.conf" /etc/logrotate.d/bluegreen');
  });

  test('an enabled timer is left as it is', () => {
    const r = run({ enabled: 'enabled' });
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([
      'logrotate -d /etc/logrotate.d/bluegreen',
      'systemctl is-enabled --quiet logrotate.timer',
      'systemctl is-active --quiet logrotate.timer',
    ]);
    expect(r.out).toContain('bootstrap: logrotate.timer enabled and active');
  });

  test('a disabled timer is enabled and started, saying so', () => {
    const r = run({ enabled: 'disabled' });
    expect(r.code).toBe(0);
    expect(r.calls).toContain('systemctl enable --now logrotate.timer');
    expect(r.out).toContain('bootstrap: logrotate.timer is disabled: enabling it');
  });

  test('a timer that cannot be enabled fails the bootstrap, saying what it means', () => {
    const r = run({ enabled: 'masked', enable: 1 });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(
      'bootstrap: cannot enable logrotate.timer: the logs in /var/log/bluegreen would never rotate',
    );
  });

  test('a configuration logrotate rejects fails the bootstrap, naming the error', () => {
    const r = run({ enabled: 'enabled', conf: 1 });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(
      'bootstrap: logrotate rejects /etc/logrotate.d/bluegreen: error: /etc/logrotate.d/bluegreen:3 unknown option',
    );
  });
});

test('the host scripts pass shellcheck', () => {
  const files = [
    'userdata/bluegreen-apply.sh',
    'userdata/bluegreen-nginx.sh',
    'userdata/bluegreen-log-reopen.sh',
    'userdata/bootstrap.sh',
    'test/docker/harness.sh',
  ];
  const result = spawnSync('shellcheck', ['--external-sources', ...files], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (result.error)
    throw new Error(`shellcheck is not installed (apt-get install shellcheck): ${result.error.message}`);
  expect(result.stdout + result.stderr).toBe('');
  expect(result.status).toBe(0);
});
