// The host's Compose file and units: validated by docker-compose itself (v1 works offline, without
// an engine), then the promises that matter checked on its normalised output.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../local/defaults';

interface Service {
  ports: Array<{ published: number | string; target: number }>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  volumes?: Array<string | { source: string; target: string; read_only?: boolean }>;
  restart?: string;
  command?: string[];
  environment?: Record<string, string>;
  image?: string;
  tmpfs?: string[];
}

let services: Record<string, Service>;
let dir: string;
beforeAll(() => {
  // Lay the files out as the host does: /opt/bluegreen/{app,userdata}.
  dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-compose-'));
  for (const sub of ['app', 'userdata']) cpSync(path.join(REPO_ROOT, sub), path.join(dir, sub), { recursive: true });
  // As bootstrap.sh composes it when both pools run the project's own image.
  services = composeConfig(['docker-compose.yml', 'docker-compose.build-blue.yml', 'docker-compose.build-green.yml'], { RELEASE_ID_BLUE: 'b-9' });
});

/** docker-compose (v1) validates and normalises the files; PyYAML (shipped with cfn-lint) turns it into JSON. */
function composeConfig(files: string[], env: Record<string, string> = {}): Record<string, Service> {
  const args = files.flatMap((f) => ['-f', path.join(dir, 'userdata', f)]);
  const run = spawnSync('docker-compose', [...args, 'config'], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (run.error) throw new Error(`docker-compose (v1, apt-get install docker-compose) is needed to validate the Compose file: ${run.error.message}`);
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  const json = execFileSync('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: run.stdout, encoding: 'utf8' });
  return JSON.parse(json).services;
}
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('a registry image is pulled, never replaced by a build of app/ when the pull fails', () => {
  const registry = composeConfig(['docker-compose.yml', 'docker-compose.build-green.yml'], { BLUE_IMAGE: 'ghcr.io/acme/shop:1.4.2' });
  expect(registry.app_blue.image).toBe('ghcr.io/acme/shop:1.4.2');
  expect((registry.app_blue as { build?: unknown }).build).toBeUndefined();
  expect((registry.app_green as { build?: unknown }).build).toBeDefined();
  const bootstrap = readFileSync(path.join(REPO_ROOT, 'userdata', 'bootstrap.sh'), 'utf8');
  expect(bootstrap).toContain('[ -n "${BLUE_IMAGE:-}" ] || compose_files="$compose_files:docker-compose.build-blue.yml"');
});

test('POOL_HEALTHCHECK replaces the node health check for images without node', () => {
  const custom = composeConfig(['docker-compose.yml'], { POOL_HEALTHCHECK: 'wget -q -O /dev/null http://127.0.0.1:3000/healthz' });
  expect(custom.app_blue.healthcheck!.test).toEqual(['CMD-SHELL', 'wget -q -O /dev/null http://127.0.0.1:3000/healthz']);
});

test('three services: nginx and the two pools', () => {
  expect(Object.keys(services).sort()).toEqual(['app_blue', 'app_green', 'nginx']);
});

test('ports: nginx 8080, blue 8081, green 8082 (each pool listening on 3000 inside)', () => {
  expect(services.nginx.ports).toEqual([expect.objectContaining({ published: 8080, target: 8080 })]);
  expect(services.app_blue.ports).toEqual([expect.objectContaining({ published: 8081, target: 3000 })]);
  expect(services.app_green.ports).toEqual([expect.objectContaining({ published: 8082, target: 3000 })]);
});

test('pools: health-checked on /healthz, restarted, told who they are', () => {
  for (const [name, pool] of [['app_blue', 'blue'], ['app_green', 'green']] as const) {
    const s = services[name];
    expect(s.healthcheck!.test.join(' ')).toContain('http://127.0.0.1:3000/healthz');
    expect(s.restart).toBe('unless-stopped');
    expect(s.environment).toMatchObject({ APP_POOL: pool, PORT: '3000' });
  }
  expect(services.app_blue.environment!.RELEASE_ID).toBe('b-9');
  expect(services.app_green.environment!.RELEASE_ID).toBe('green-1');
});

test('nginx starts only after both pools are healthy, and has a health check of its own', () => {
  expect(services.nginx.depends_on).toEqual({ app_blue: { condition: 'service_healthy' }, app_green: { condition: 'service_healthy' } });
  expect(services.nginx.healthcheck!.test.join(' ')).toContain('http://127.0.0.1:8080/version');
  expect(services.nginx.restart).toBe('unless-stopped');
});

test('nginx runs the repo config from the asset, and writes its logs to a host directory', () => {
  expect(services.nginx.command).toEqual(['nginx', '-p', '/var/lib/bluegreen/', '-c', '/etc/bluegreen/conf/nginx.conf', '-g', 'daemon off;']);
  const volumes = JSON.stringify(services.nginx.volumes);
  expect(volumes).toContain('/opt/bluegreen:/etc/bluegreen:ro');
  // The log mount: a host directory (a file bind-mount would become a directory if it did not exist).
  expect(volumes).toContain('/var/log/bluegreen:/var/lib/bluegreen/logs');
  expect(readFileSync(path.join(REPO_ROOT, 'nginx', 'nginx.conf'), 'utf8')).toMatch(/access_log logs\/access\.log bluegreen_json;/);
});

test('the CloudWatch agent config tails the file nginx writes, into the stage log groups', () => {
  const agent = JSON.parse(readFileSync(path.join(REPO_ROOT, 'userdata', 'cloudwatch-agent.json'), 'utf8'));
  const files = agent.logs.logs_collected.files.collect_list;
  expect(files.map((f: { file_path: string }) => f.file_path)).toEqual(['/var/log/bluegreen/access.log', '/var/log/bluegreen/error.log']);
  expect(files.map((f: { log_group_name: string }) => f.log_group_name)).toEqual(['__ACCESS_LOG_GROUP__', '__ERROR_LOG_GROUP__']);
  expect(files[0]).toMatchObject({ timestamp_format: '%Y-%m-%dT%H:%M:%S', timezone: 'UTC' });
});

test('logrotate renames (never copytruncate) and makes nginx reopen', () => {
  const conf = readFileSync(path.join(REPO_ROOT, 'userdata', 'logrotate.conf'), 'utf8');
  expect(conf).not.toMatch(/^\s*copytruncate/m);
  expect(conf).toContain('/usr/local/bin/bluegreen-nginx -s reopen');
});
