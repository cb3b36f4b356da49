// How many of the stage's hosts a Run Command reaches at a time, and how many failures stop it: one
// definition for the release flow, its AWS backend and the command line. DECISIONS.md "Fleet: Run
// Command rate control" says why these defaults.

/**
 * Run Command's rate control for one run on the stage's hosts (SendCommand MaxConcurrency /
 * MaxErrors: a number of hosts or a percentage of them).
 */
export interface RunRate {
  maxConcurrency: string;
  maxErrors: string;
}

/** The patterns SSM itself enforces for the two values (checked before anything is sent). */
export const MAX_CONCURRENCY_PATTERN = /^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$/;
export const MAX_ERRORS_PATTERN = /^([1-9][0-9]*|0|[1-9][0-9]%|[0-9]%|100%)$/;

/**
 * A release's deploy of the idle pool: half the fleet at a time (at least one host), and the first
 * failure stops Run Command from starting it on further hosts. The idle pool serves no traffic but
 * is every host's backup; half at a time keeps half the fleet with a healthy backup, and a bad
 * release is found on the first half before the rest is touched.
 */
export const DEPLOY_RATE: RunRate = { maxConcurrency: '50%', maxErrors: '0' };
/**
 * Back to a known state, or a share that must hold everywhere (the restore after a failed gate, the
 * canary share): every host at once, and one host failing does not stop the others.
 */
export const EVERY_HOST_RATE: RunRate = { maxConcurrency: '100%', maxErrors: '100%' };
