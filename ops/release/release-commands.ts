// The CLI side of `bluegreen release` and `bluegreen history`: parse, pick the backend (local stack
// or a deployed stage, like every other command), run, print.
import { awsTarget, namesStage } from '../aws-target';
import { ConfigError } from '../../core/config-error';
import { AwsReleaseBackend } from './aws-backend';
import { parseHistoryArgs, parsePromoteArgs, parseReleaseArgs } from './args';
import { ReleaseBackend } from '../../core/release-backend';
import { formatHistory, formatStats, historyRows, latestPerRelease } from './history';
import { releaseStats } from '../../core/release-stats';
import { ciRunUrl } from '../../core/release-actor';
import { historyCopy } from '../../core/release-ledger';
import { promoteHeld, runRelease } from './orchestrator';
import type { Out } from '../../support/output';
import { awsImageBuildDeps, LOCAL_BUILD_REFUSAL } from '../build/build-command';
import { buildAndPush, checkBuildDir, ImageBuildDeps } from '../build/image-build';

type AwsFlags = { stage?: string; region?: string; profile?: string };

/** Local mode's backend, given by the CLI's entry point (the CLI against AWS does not load local mode). */
export type LocalBackend = (env: NodeJS.ProcessEnv) => ReleaseBackend;

/** The deployed stage's backend: SSM for the pool state, the ledger for the record, Run Command for the deploy. */
export async function awsReleaseBackend(flags: AwsFlags, env: NodeJS.ProcessEnv, out?: Out): Promise<ReleaseBackend> {
  const target = awsTarget(flags, env);
  return new AwsReleaseBackend({ ssm: target.ssm, ddb: target.ddb, sts: target.sts, stage: target.stage, out });
}

async function backendFor(
  args: string[],
  flags: AwsFlags,
  env: NodeJS.ProcessEnv,
  local: LocalBackend,
  out?: Out,
): Promise<ReleaseBackend> {
  return namesStage(args, env) ? awsReleaseBackend(flags, env, out) : local(env);
}

/**
 * A progress writer: on a terminal one line rewritten in place (cleared before the next step line);
 * elsewhere (CI logs, pipes) a plain line at most every 10 s.
 */
function progressWriter(out: Out, stream: NodeJS.WriteStream | undefined): { out: Out; progress: Out } {
  if (stream?.isTTY) {
    let shown = false;
    return {
      out: (line) => {
        if (shown) stream.write('\r\x1b[2K');
        shown = false;
        out(line);
      },
      progress: (line) => {
        stream.write(`\r\x1b[2K${line.slice(0, (stream.columns || 100) - 1)}`);
        shown = true;
      },
    };
  }
  let last = Date.now();
  return {
    out: (line) => {
      last = Date.now();
      out(line);
    },
    // Only after 10 s without a line: a log shows the wait is alive without drowning the steps.
    progress: (line) => {
      if (Date.now() - last < 10_000) return;
      last = Date.now();
      out(line);
    },
  };
}

/**
 * A deployed stage's parts, when not the ones the flags name on AWS: the Docker harness hands its
 * stage (SSM and ECR on moto_server, the Compose set as the host) to the command as it is.
 */
export interface StageParts {
  backend: ReleaseBackend;
  imageBuild: (out: Out) => ImageBuildDeps;
}

/**
 * @param terminal the terminal `out` prints to, for an in-place progress line (the CLI passes stdout).
 * @param stage the stage's backend and image build clients (default: built from the flags, on AWS).
 */
export async function releaseCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: Out,
  local: LocalBackend,
  terminal?: NodeJS.WriteStream,
  stage?: StageParts,
): Promise<number> {
  if (args[0] === 'promote') {
    const promote = parsePromoteArgs(args.slice(1));
    const backend = await backendFor(args, promote.aws, env, local, out);
    return promoteHeld(promote.id, backend, out, await backend.actor?.());
  }
  const { options: parsed, aws, build } = parseReleaseArgs(args);
  let options = parsed;
  if (build !== undefined) {
    if (!namesStage(args, env)) throw new ConfigError(`--build ${LOCAL_BUILD_REFUSAL}`);
    checkBuildDir(build, '--build');
  }
  const backend = stage && namesStage(args, env) ? stage.backend : await backendFor(args, aws, env, local, out);
  // Built and pushed before anything of the release is written: a failed build or push throws
  // (exit 1) with nothing released.
  if (build !== undefined) {
    const built = await buildAndPush(
      stage?.imageBuild(out) ?? awsImageBuildDeps(aws, env, out),
      build,
      options.release,
    );
    options = {
      ...options,
      image: built.image,
      ...(built.digest ? { imageDigest: built.digest } : {}),
      // Pushed just now: the start of the release's lead time (history --stats).
      builtAt: new Date().toISOString(),
    };
  }
  // Who and where, for the ledger. A principal that cannot be told is left out, not guessed.
  const startedBy = await backend.actor?.().catch(() => undefined);
  const ci = ciRunUrl(env);
  options = { ...options, ...(startedBy ? { startedBy } : {}), ...(ci ? { ciRunUrl: ci } : {}) };
  // A sticky key nginx was not rendered to read would leave the canary split per request: refused
  // before anything is written, where the backend knows the stage's keys (local mode). On AWS the
  // CLI cannot know them (CDK context baked into the hosts): each host refuses the key instead.
  if (options.sticky && backend.stickyKeys) {
    const declared = await backend.stickyKeys();
    if (declared && !declared.includes(options.sticky))
      throw new ConfigError(
        `--sticky ${options.sticky} is not one of this stage's sticky keys (${declared.length ? declared.join(',') : 'none declared'}): nginx reads only the keys it was rendered with (STICKY_KEYS, e.g. STICKY_KEYS=${options.sticky} npm start); nothing changed`,
      );
  }
  // Ctrl-C before promotion cancels cleanly (canary share back to 0, record failed); once the bake
  // runs, the server side owns the release and an interrupt just ends this process.
  const controller = new AbortController();
  const interrupt = () => {
    if (!controller.signal.aborted) out('interrupted: cancelling before promotion (Ctrl-C again to quit at once)');
    else process.exit(130);
    controller.abort();
  };
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const detach = () => signals.forEach((s) => process.off(s, interrupt));
  signals.forEach((s) => process.on(s, interrupt));
  try {
    return await runRelease(options, backend, {
      ...progressWriter(out, terminal),
      signal: controller.signal,
      onBaking: detach,
    });
  } finally {
    detach();
  }
}

export async function historyCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: Out,
  local: LocalBackend,
): Promise<number> {
  const { limit, json, statsWindowMs, aws } = parseHistoryArgs(args);
  const backend = await backendFor(args, aws, env, local);
  const versions = await backend.history();
  if (statsWindowMs !== undefined) {
    out(formatStats(releaseStats(latestPerRelease(versions), Date.now(), statsWindowMs)));
    return 0;
  }
  if (json) {
    // The same redaction as the ledger's history items, for local mode's file too.
    out(JSON.stringify(latestPerRelease(versions).slice(0, limit).map(historyCopy), null, 2));
    return 0;
  }
  out(formatHistory(historyRows(versions, Date.now()).slice(0, limit)));
  return 0;
}
