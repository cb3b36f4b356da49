// The names of a stage's resources that more than one part must agree on: SSM parameters, log groups,
// the ECR repository and the tag that marks a stage's hosts. The stack creates them, the host agent, the
// alert function and the CLI read them.
import { Pool, POOLS } from './pools';

/** The EC2 tag Run Command targets to reach a stage's hosts. */
export const STAGE_TAG_KEY = 'BluegreenStage';

/** A pool's desired state in SSM (README "What the stack creates"): what the host agent reconciles. */
export interface PoolParameterNames {
  /** Registry image; DEFAULT_APP_IMAGE = the app/ image built on the host. */
  readonly image: string;
  /** Release id the pool reports in X-Release-Id. */
  readonly release: string;
  /** Extra environment of the pool's container: a JSON object of strings, `{}` when none. */
  readonly env: string;
  /** The pool's options (core/pool-options.ts): pinned secrets, health and drain times; `{}` when none. */
  readonly options: string;
}

/** SSM parameter names of a stage: the one definition the stack, the host, the Lambda and the CLI use. */
export function parameterNames(stage: string) {
  const root = `/bluegreen/${stage}`;
  const pool = (p: Pool): PoolParameterNames => ({
    image: `${root}/pools/${p}/image`,
    release: `${root}/pools/${p}/release`,
    env: `${root}/pools/${p}/env`,
    options: `${root}/pools/${p}/options`,
  });
  return {
    root,
    activePool: `${root}/active-pool`,
    maintenance: `${root}/maintenance`,
    /** Share (0-99) of requests whose first try goes to the idle pool. */
    canaryPercent: `${root}/canary-percent`,
    /** The release record (JSON, core/release-record.ts); its history = GetParameterHistory. */
    release: `${root}/release`,
    pools: { blue: pool('blue'), green: pool('green') } as Readonly<Record<Pool, PoolParameterNames>>,
    slackWebhookUrl: `${root}/slack-webhook-url`,
    /** The Slack app's signing secret (a SecureString the operator puts): Slack's buttons are verified with it. */
    slackSigningSecret: `${root}/slack-signing-secret`,
    /** Who may act from Slack's buttons: Slack user ids (core/slack-actions.ts); absent = nobody. */
    slackAllowedUsers: `${root}/slack-allowed-users`,
    alertState: `${root}/alert-state`,
    publicUrl: `${root}/public-url`,
    /** The single host's instance id; not written in fleet mode (hosts carry the tag BluegreenStage=<stage>). */
    instanceId: `${root}/instance-id`,
    /** Fleet mode only: `fleet:<desired>` (hostsParameterValue); absent = the single host. */
    hosts: `${root}/hosts`,
    /**
     * The preview of a release not yet promoted (core/preview.ts): `<pool> <token>` or `off`, a
     * SecureString the CLI writes; a host reads it only when asked (bluegreen-apply --preview), never
     * in its per-minute read.
     */
    preview: `${root}/preview`,
    /** URI of the stage's ECR repository (for the CLI's push hint; `bluegreen build` pushes there). */
    ecrRepository: `${root}/ecr-repository`,
    /** The hosts' `docker build --platform` (linux/amd64 or linux/arm64, core/image-platform.ts). */
    imagePlatform: `${root}/image-platform`,
    /**
     * How many days the ledger keeps a release's items (context releaseHistoryDays); absent = for good.
     * The CLI copies it into each release's record, and every writer sets the items' TTL from it.
     */
    releaseHistoryDays: `${root}/release-history-days`,
    /** The stage's secrets: /bluegreen/<stage>/secrets/<NAME> (core/secrets.ts). */
    secretsPath: `${root}/secrets/`,
  };
}

/**
 * The parameters the host agent reads: active pool, canary share and the eight pool parameters. Ten:
 * exactly GetParameters' limit per call (AWS_LIMITS.getParametersNames), so the agent reads them in
 * one call; a further pool parameter needs a second call (or a parameter that holds two).
 */
export function hostReadParameterNames(stage: string): string[] {
  const n = parameterNames(stage);
  return [
    n.activePool,
    n.canaryPercent,
    ...POOLS.flatMap((p) => [n.pools[p].image, n.pools[p].release, n.pools[p].env, n.pools[p].options]),
  ];
}

/** The stage's ECR repository name. */
export function ecrRepositoryName(stage: string): string {
  return `bluegreen-${stage}`;
}

export function logGroupNames(stage: string) {
  return {
    access: `/bluegreen/${stage}/nginx/access`,
    error: `/bluegreen/${stage}/nginx/error`,
    /** The pools' stdout/stderr (Docker's awslogs driver), streams `<pool>/<release>/<host>` (core/app-log.ts). */
    app: `/bluegreen/${stage}/app`,
  };
}

/** A secret's parameter: /bluegreen/<stage>/secrets/<NAME> (a SecureString, or a String holding a Secrets Manager reference). */
export function secretParameterName(stage: string, name: string): string {
  return `${parameterNames(stage).secretsPath}${name}`;
}

/** The function behind Slack's buttons (a fixed name: it invokes itself asynchronously by it). */
export function slackActionsFunctionName(stage: string): string {
  return `bluegreen-${stage}-slack-actions`;
}

/** The stage's CloudWatch dashboard (lib/operations.ts); the alert function draws the releases on it. */
export function dashboardName(stage: string): string {
  return `bluegreen-${stage}`;
}
