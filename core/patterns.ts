// The value patterns of a stage: what SSM's AllowedPattern, the CLI's input checks and the host agent
// accept. Strings (not RegExp) where a pattern also goes into a template or a generated shell file.
import { CANARY_VALUE_PATTERN } from './canary';

/** A stage name: it becomes part of the stack name, the SSM path and the log group names. */
export const STAGE_PATTERN = /^[a-z][a-z0-9-]{0,19}$/;

/**
 * Value patterns of the pool state parameters: the stack sets them as the parameters' AllowedPattern
 * (SSM refuses other values), the CLI checks its input against them, the host checks what it reads.
 */
export const POOL_STATE_PATTERNS = {
  activePool: '^(blue|green)$',
  maintenance: '^(on|off)$',
  // A share 0-99, optionally with the key a sticky canary sticks on: `10` or `10 cookie:session`
  // (core/canary.ts), so share and key change in one write.
  canaryPercent: CANARY_VALUE_PATTERN,
  release: '^[A-Za-z0-9._-]{1,64}$',
  // A registry path with an optional tag or digest; no spaces, quotes or shell characters, since
  // the value ends up in the host's Compose environment file.
  image: '^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]{1,128})?(@sha256:[a-f0-9]{64})?$',
} as const;
/**
 * A stage's pool health check command (context `poolHealthcheck`, also `verify-image --healthcheck`):
 * no quotes or shell metacharacters, since it travels through the user data and Compose's .env.
 */
export const POOL_HEALTHCHECK_PATTERN = /^[A-Za-z0-9 ./:_=|-]{1,200}$/;
export const POOL_HEALTHCHECK_WHAT =
  'a command of letters, digits, spaces and . / : _ = | - (no quotes), at most 200 characters';

/** The image parameter's value for "the project's app/ image, built on the host". */
export const DEFAULT_APP_IMAGE = 'bluegreen-app:local';

/** The same patterns compiled, for the checks written in TypeScript. */
export const POOL_STATE_REGEXPS = Object.fromEntries(
  Object.entries(POOL_STATE_PATTERNS).map(([k, v]) => [k, new RegExp(v)]),
) as {
  readonly [K in keyof typeof POOL_STATE_PATTERNS]: RegExp;
};
