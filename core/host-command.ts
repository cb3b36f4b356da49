// The one command Run Command runs on a stage's hosts (the pool-switch rule, and the release CLI's
// deploy, canary and restore): bluegreen-apply — unless the host is still bootstrapping.
//
// Why: Run Command finds hosts by their stage tag, and a host launched by a
// scale-out carries the tag (and answers Run Command) minutes before its bootstrap has installed
// bluegreen-apply and brought the pools up. Sent to it, the command would fail ("not found", or a
// half-built Compose set) and fail a whole release or flip for a host that serves nothing yet. So a
// bootstrapping host answers with one `step=join` line and exit 0; it is not in service, and before it
// joins it waits until no release is in progress and applies the stage's state as it is then
// (fleet/bluegreen-join.sh), so it never enters service half-released.
// No CDK import here: the CLI bundles this too.
import { formatStepLine } from './step-line';

/** The fleet's user data creates it before bootstrap.sh runs and removes it once the host has joined (lib/fleet-hosts.ts). */
export const BOOTSTRAPPING_MARKER = '/var/lib/bluegreen/bootstrapping';
export const APPLY_PATH = '/usr/local/bin/bluegreen-apply';
/** The step a still-bootstrapping host reports instead of running anything (ops/stage-hosts.ts counts it as joining). */
export const JOINING_STEP = 'join';
export const JOINING_DETAIL =
  'still bootstrapping, not in service: it joins with the stage state once no release is in progress';

/**
 * cloud-init writes it when the user data has finished: a host without it is still in its first
 * boot. Before the fleet's user data sets the marker (it first downloads the host's files), only
 * this tells a booting host from an in-service one that lost bluegreen-apply, which must fail.
 */
export const BOOT_FINISHED = '/var/lib/cloud/instance/boot-finished';

/**
 * bluegreen-apply's flag for the runs that must not deploy: the host's one-minute timer and a
 * fleet's pool-switch rule run on every host at once, and a pool's new desired release is deployed by
 * the release's own Run Command, at its --max-concurrency and stopping at its --max-errors. These
 * runs keep nginx, the active pool and the canary share in step and restart a pool on what it runs.
 */
export const NO_DEPLOY = '--no-deploy';
/** The timer's command: userdata/bluegreen-apply.service's ExecStart is APPLY_PATH with these (a test holds it to them). */
export const TIMER_APPLY_ARGS: readonly string[] = [NO_DEPLOY];

/** Every host path the command reads (a test that runs it under a stand-in root moves each one). */
export const HOST_PATHS = [BOOTSTRAPPING_MARKER, APPLY_PATH, BOOT_FINISHED] as const;

/** The shell command for AWS-RunShellScript: bluegreen-apply with `args`, or the join step on a bootstrapping host. */
export function hostApplyCommand(args: readonly string[] = []): string {
  // Flags, and a flag's value only in a form the shell reads as one plain word (base64, digits):
  // nothing an operator typed ever reaches this line as shell text (--pre-promote is base64).
  args.forEach((a, i) => {
    const flag = /^--[a-z-]+$/.test(a);
    const value = i > 0 && /^--[a-z-]+$/.test(args[i - 1]) && /^[A-Za-z0-9+/]+={0,2}$/.test(a);
    if (!flag && !value) throw new Error(`hostApplyCommand: unexpected argument ${JSON.stringify(a)}`);
  });
  const apply = [APPLY_PATH, ...args].join(' ');
  const booting = `[ -e ${BOOTSTRAPPING_MARKER} ] || { [ ! -x ${APPLY_PATH} ] && [ ! -e ${BOOT_FINISHED} ]; }`;
  return `if ${booting}; then echo '${formatStepLine({ step: JOINING_STEP, pool: '-', ok: true, detail: JOINING_DETAIL })}'; else ${apply}; fi`;
}
