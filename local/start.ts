// `npm start`: the local data plane in the foreground until Ctrl-C / SIGTERM.
import { ConfigError } from '../core/config-error';
import { DEFAULT_ACTIVE_POOL, parsePool } from '../core/pools';
import { LOCAL_SLACK_ACTIONS_PORT, PORTS, parsePort } from '../core/ports';
import { LOCAL_STATE_DIR } from './paths';
import { LocalStack } from './stack';
import { releaseGateFromEnv, ruleConfigFromEnv } from '../core/rule-config';
import { DEFAULT_HEALTH_TIMEOUT_MS, PoolAgent } from './pool-agent';
import { AlertWatcher } from './watcher';
import { ProxySettings, proxySettingsEnv, proxySettingsFromEnv, ProxySettingsError } from '../core/proxy-settings';
import { stickyKeyText } from '../core/canary';
import { LocalSlackActions } from './slack-actions-server';
import { SLACK_RESPONSE_URL_PREFIX } from '../core/slack-click';
import { readActivePool } from './switch';

export interface StartConfig {
  stateDir: string;
  ports: { nginx: number; blue: number; green: number };
  activePool: ReturnType<typeof parsePool>;
  releases: { blue: string; green: string };
  /** nginx's timeouts and slow paths (PROXY_*_TIMEOUT, SLOW_PATHS): the same settings as CDK context on a host. */
  proxy: ProxySettings;
}

function proxyFromEnv(env: NodeJS.ProcessEnv): ProxySettings {
  try {
    return proxySettingsFromEnv(env);
  } catch (err) {
    if (err instanceof ProxySettingsError) throw new ConfigError(err.message);
    throw err;
  }
}

/** Reads the documented environment overrides; throws naming the variable that is wrong. */
export function startConfigFromEnv(env: NodeJS.ProcessEnv): StartConfig {
  return {
    stateDir: env.BLUEGREEN_STATE_DIR || LOCAL_STATE_DIR,
    ports: {
      nginx: parsePort(env.NGINX_PORT, 'NGINX_PORT', PORTS.nginx),
      blue: parsePort(env.BLUE_PORT, 'BLUE_PORT', PORTS.blue),
      green: parsePort(env.GREEN_PORT, 'GREEN_PORT', PORTS.green),
    },
    activePool: env.ACTIVE_POOL ? parsePool(env.ACTIVE_POOL, 'ACTIVE_POOL') : DEFAULT_ACTIVE_POOL,
    releases: { blue: env.RELEASE_ID_BLUE || 'blue-local', green: env.RELEASE_ID_GREEN || 'green-local' },
    proxy: proxyFromEnv(env),
  };
}

function parseSeconds(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 600) throw new ConfigError(`${name} must be seconds 1-600, got "${value}"`);
  return n;
}

export async function startCommand(env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const config = startConfigFromEnv(env);
  let rules;
  let gate;
  try {
    rules = ruleConfigFromEnv(env);
    gate = releaseGateFromEnv(env, rules);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const healthTimeoutMs = env.RELEASE_HEALTH_TIMEOUT_SECONDS
    ? parseSeconds(env.RELEASE_HEALTH_TIMEOUT_SECONDS, 'RELEASE_HEALTH_TIMEOUT_SECONDS') * 1000
    : DEFAULT_HEALTH_TIMEOUT_MS;
  const verbose = env.BLUEGREEN_VERBOSE === '1';
  // Set once the stack serves; a crash reported before that is kept for it.
  let crashed: (reason: string) => void = (reason) => (earlyCrash ??= reason);
  let earlyCrash: string | undefined;
  const stack = await LocalStack.start({
    stateDir: config.stateDir,
    ports: config.ports,
    portSources: { nginx: 'NGINX_PORT', blue: 'BLUE_PORT', green: 'GREEN_PORT' },
    activePool: config.activePool,
    releases: config.releases,
    upstreamEnv: proxySettingsEnv(config.proxy),
    onOutput: (source, line) => {
      // Pool apps print a JSON line per start; nginx prints only problems: always show those.
      if (verbose || source === 'nginx' || source === 'supervisor') out(`[${source}] ${line}`);
    },
    onUnexpectedExit: (name, reason) => {
      // The stack has stopped nginx's workers and restarted it once already ("[supervisor] ...
      // restarted nginx (1 of 1)"): an nginx that will not stay up stops the supervisor.
      if (name === 'nginx') crashed(`[supervisor] nginx exited (${reason}); see the error log`);
      // A pool dying is what failover is for: say so, keep serving from the other pool.
      else out(`[supervisor] ${name} pool exited (${reason}); nginx sends its traffic to the other pool`);
    },
  });
  const { ports, host, accessLog, errorLog } = stack.state;
  out(`blue  pool: http://${host}:${ports.blue} (release ${config.releases.blue})`);
  out(`green pool: http://${host}:${ports.green} (release ${config.releases.green})`);
  const { proxy } = config;
  const slow = proxy.slowPaths.map((p) => `${p.prefix} ${p.timeout}`).join(', ');
  out(
    `timeouts: ${proxy.readTimeout} per read, failover within ${proxy.nextUpstreamTimeout}; slow paths: ${slow || 'none (SLOW_PATHS)'}`,
  );
  const sticky = proxy.stickyKeys.map(stickyKeyText).join(', ');
  out(`sticky canary keys: ${sticky || 'none (STICKY_KEYS)'}`);
  out(`access log: ${accessLog}`);
  out(`error log:  ${errorLog}`);
  // Slack's buttons, answered on loopback when the app's signing secret is given (a tunnel brings
  // Slack's requests here): the same code as the Slack actions function.
  const slackActions = env.SLACK_SIGNING_SECRET
    ? new LocalSlackActions({
        stateDir: config.stateDir,
        host,
        port: parsePort(env.SLACK_ACTIONS_PORT, 'SLACK_ACTIONS_PORT', LOCAL_SLACK_ACTIONS_PORT),
        signingSecret: env.SLACK_SIGNING_SECRET,
        allowedUsers: env.SLACK_ALLOWED_USERS ?? '',
        responseUrlPrefix: env.SLACK_RESPONSE_URL_PREFIX || SLACK_RESPONSE_URL_PREFIX,
        flip: (pool) => stack.flip(pool),
        canary: (percent) => stack.canary(percent),
        activePool: () => readActivePool(stack.state),
        out,
      })
    : undefined;
  if (slackActions)
    out(`slack actions: ${await slackActions.start()} (SLACK_ALLOWED_USERS: ${env.SLACK_ALLOWED_USERS || 'nobody'})`);
  const watcher = new AlertWatcher({
    accessLog,
    stateDir: config.stateDir,
    stage: 'local',
    config: rules,
    slackWebhookUrl: env.SLACK_WEBHOOK_URL || undefined,
    out,
    // Local mode's server-side release guard: lives here, not in the release CLI's process.
    release: { gate, flip: (pool) => stack.flip(pool), canary: (percent) => stack.canary(percent) },
    slackActions: slackActions !== undefined,
  });
  watcher.start();
  const agent = new PoolAgent({ stateDir: config.stateDir, stack, out, healthTimeoutMs });
  agent.start();
  out(
    `releases: pool agent and release guard running (gate: > ${(gate.errorRate * 100).toFixed(1)}% of at least ${gate.minRequests} requests; try: npx bluegreen release --release v2)`,
  );
  out(
    env.SLACK_WEBHOOK_URL
      ? 'alerts: posted to SLACK_WEBHOOK_URL'
      : 'alerts: printed here as [alert] lines (set SLACK_WEBHOOK_URL to post them to Slack)',
  );
  out(`ready: ${stack.url} serves through nginx, active pool ${config.activePool} (try: curl -i ${stack.url}/version)`);
  out(`try failover: npx bluegreen check   flip: npx bluegreen flip green   stop: Ctrl-C`);

  return new Promise((resolve) => {
    let stopping = false;
    const stop = (why: string, code: number) => {
      if (stopping) return;
      stopping = true;
      out(`${why}: stopping nginx and the pools`);
      void agent
        .stop()
        .then(() => slackActions?.stop())
        .then(() => watcher.stop())
        .then(() => stack.stop())
        .then(() => {
          out('stopped');
          resolve(code);
        });
    };
    crashed = (reason) => stop(reason, 1);
    if (earlyCrash) stop(earlyCrash, 1);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal, 0));
  });
}
