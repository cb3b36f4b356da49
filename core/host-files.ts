// The files the host scripts read their facts from, generated from core so the shell never keeps a
// copy: `npm run generate` writes them, test/unit/host-files.test.ts fails when one is stale. Each is
// a repository path (relative, `/`-separated) and its exact content. Each ships in the asset folder of
// the script that reads it, next to it (the script finds it from its own path, on a host and locally).
import {
  MAX_PRE_PROMOTE_TIMEOUT_SECONDS,
  PRE_PROMOTE_B64_PATTERN,
  PRE_PROMOTE_EXIT_PRINTF,
  PRE_PROMOTE_OUTPUT_BYTES,
  PRE_PROMOTE_OUTPUT_LINES,
  PRE_PROMOTE_OUTPUT_PREFIX,
  PRE_PROMOTE_STEP,
  PRE_PROMOTE_TIMED_OUT_PRINTF,
  TIMEOUT_EXIT,
} from './pre-promote';
import { limit } from './aws-limits';
import { CANARY_SHARE_PATTERN, MAX_STICKY_KEYS, STICKY_KEY_PATTERN } from './canary';
import { parameterNames } from './names';
import { DEFAULT_APP_IMAGE, POOL_STATE_PATTERNS } from './patterns';
import { POOL_ENV_RULE } from './pool-env';
import { PREVIEW_TOKEN_PATTERN } from './preview';
import { GATE_PROBE_MS, HEALTH_INTERVAL_SECONDS, HEALTH_RETRIES, POOL_HEALTH } from './pool-health';
import { POOL_OPTIONS_RULE } from './pool-options';
import { POOLS } from './pools';
import { PORTS } from './ports';
import {
  KEEPALIVE_MARGIN_SECONDS,
  MAX_SLOW_PATHS,
  MAX_TIME_MS,
  POOL_GENERATIONS,
  PREFIX_PATTERN,
  PROXY_SETTINGS,
  ProxySettingKey,
  TIME_PATTERN,
  WAIT_MARGIN_SECONDS,
} from './proxy-settings';
import {
  BAKE_AHEAD_MS,
  CLOCK_AHEAD_MS,
  FINAL_STATES,
  GATE_PASSED_STATES,
  RECORD_TIME,
  STALE_AFTER_MS,
} from './release-record';
import { STEP_LINE_PRINTF } from './step-line';

/** The generated files' banner: a reader of the host file learns where to change it. */
export const GENERATED_BY = 'Generated from core/ by `npm run generate` (core/host-files.ts): do not edit.';

/**
 * A JavaScript pattern as jq (Oniguruma) reads it the same way: the whole input (`\A`…`\z`: jq's `$`
 * also matches before a final line feed) and ASCII digits only (JavaScript's `\d`; Oniguruma's
 * matches any Unicode digit). Refuses a pattern using more than that translation covers.
 */
export function jqPattern(re: RegExp): string {
  const body = re.source.slice(1, -1);
  if (re.flags !== '' || !re.source.startsWith('^') || !re.source.endsWith('$') || /\\[^d.]|[\^$]/.test(body)) {
    throw new Error(`jqPattern: /${re.source}/${re.flags} is not a whole-input pattern of \\d, \\. and plain syntax`);
  }
  return `\\A${body.replace(/\\d/g, '[0-9]')}\\z`;
}

/**
 * fleet/record-verdict.jq: the release record's verdict (recordVerdict over parseRecord) for
 * fleet/bluegreen-join.sh, with core's final states, limits and time form baked in. Input: the
 * stored value, raw (`jq -rRs --argjson now <epoch seconds> -f record-verdict.jq`), so jq itself
 * failing is never "no record". test/e2e/host-join.test.ts runs it against parseRecord + recordVerdict.
 */
export function recordVerdictJq(): string {
  const notATime = (field: string) => `${field} is not a time as the CLI writes it (YYYY-MM-DDTHH:MM:SS[.sss]Z)`;
  return `# ${GENERATED_BY}
# The release record's verdict (core/release-record.ts: parseRecord, recordVerdict, recordTimesProblem)
# for fleet/bluegreen-join.sh, which ships with it:
#   jq -rRs --argjson now <epoch seconds> -f record-verdict.jq <the record's stored value>
# prints none | final | invalid <why> | stale | in-progress <id> <state>. The value is read raw and
# parsed here: junk, "{}", or no id/state/steps list or a pool other than blue|green is no record.
# Times are read only in the form the CLI writes, a real date from 1970, in milliseconds.

def final_states: ${JSON.stringify(FINAL_STATES)};
# Not final and not written nor due (bakeUntil, maxBakeUntil) for this long: abandoned (STALE_AFTER_MS).
def stale_after_ms: ${STALE_AFTER_MS};
# How far ahead of this clock a record may have been written (CLOCK_AHEAD_MS).
def clock_ahead_ms: ${CLOCK_AHEAD_MS};
# How far past updatedAt a bakeUntil (or maxBakeUntil) may be: the longest bake and a promotion (BAKE_AHEAD_MS).
def bake_ahead_ms: ${BAKE_AHEAD_MS};
# The record's time form (RECORD_TIME).
def record_time: ${JSON.stringify(jqPattern(RECORD_TIME))};

def ms:
  if type == "string" and test(record_time) and (.[0:4] | tonumber) >= 1970 then
    (.[0:19] + "Z") as $s
    | (try ($s | fromdateiso8601) catch null) as $e
    | if $e != null and ($e | todateiso8601) == $s then $e * 1000 + (if length == 24 then .[20:23] | tonumber else 0 end) else null end
  else null end;

def problem($r):
  ($r.startedAt | ms) as $started | ($r.updatedAt | ms) as $updated
  | ($r.bakeUntil != null) as $baking | ($r.bakeUntil | ms) as $bake
  | ($r.maxBakeUntil != null) as $extendable | ($r.maxBakeUntil | ms) as $maxBake
  | if $started == null then ${JSON.stringify(notATime('startedAt'))}
    elif $updated == null then ${JSON.stringify(notATime('updatedAt'))}
    elif $baking and $bake == null then ${JSON.stringify(notATime('bakeUntil'))}
    elif $extendable and $maxBake == null then ${JSON.stringify(notATime('maxBakeUntil'))}
    elif $started > $updated then "startedAt is after updatedAt"
    elif $updated > $now * 1000 + clock_ahead_ms then ${JSON.stringify(`updatedAt is more than ${CLOCK_AHEAD_MS / 1000} s ahead of this clock`)}
    elif $baking and $bake > $updated + bake_ahead_ms then ${JSON.stringify(`bakeUntil is more than ${BAKE_AHEAD_MS / 1000} s after updatedAt (the longest bake and a promotion)`)}
    elif $extendable and $maxBake > $updated + bake_ahead_ms then ${JSON.stringify(`maxBakeUntil is more than ${BAKE_AHEAD_MS / 1000} s after updatedAt (the longest bake and a promotion)`)}
    else null end;

(try fromjson catch null) as $r
| if ($r | type) != "object" or ($r.state | type) != "string" or ($r.id | type) != "string"
    or ($r.pool != "blue" and $r.pool != "green") or ($r.steps | type) != "array" then "none"
  elif ($r.state as $s | final_states | any(. == $s)) then "final"
  elif problem($r) != null then "invalid \\(problem($r))"
  elif ($now * 1000 - ([($r.updatedAt | ms), ($r.bakeUntil | ms // 0), ($r.maxBakeUntil | ms // 0)] | max)) > stale_after_ms then "stale"
  else "in-progress \\($r.id) \\($r.state)" end
`;
}

/** A value as one single-quoted sh word (the generated values never hold a quote or a line break). */
function shWord(value: string | number): string {
  const text = String(value);
  if (/['\n\r]/.test(text)) throw new Error(`shWord: ${JSON.stringify(text)} cannot be one single-quoted word`);
  return `'${text}'`;
}

/**
 * nginx/proxy-settings.sh: the proxy settings' defaults, syntax and limits (core/proxy-settings.ts) as
 * sh assignments, sourced by nginx/render-upstream.sh and nginx/switch-pool.sh from their own directory. Each default is named
 * after the environment variable that carries the setting (PROXY_CONNECT_TIMEOUT_DEFAULT, ...).
 */
export function proxySettingsSh(): string {
  const defaults = (Object.keys(PROXY_SETTINGS) as ProxySettingKey[]).map(
    (key) => `${PROXY_SETTINGS[key].env}_DEFAULT=${shWord(PROXY_SETTINGS[key].default)}`,
  );
  return `# ${GENERATED_BY}
# The proxy settings' defaults, syntax and limits (core/proxy-settings.ts), for render-upstream.sh,
# and switch-pool.sh, which source this file from their own directory. Assignments only.
# shellcheck shell=sh disable=SC2034

# Each setting's default, named after the variable that carries it (PROXY_SETTINGS).
${defaults.join('\n')}
# A time: a whole number with ms or s, no leading zero (POSIX ERE, TIME_PATTERN), at most MAX_TIME_MS.
PROXY_TIME_RE=${shWord(TIME_PATTERN)}
PROXY_MAX_TIME_MS=${shWord(MAX_TIME_MS)}
# A slow path prefix: plain path characters only (POSIX ERE, PREFIX_PATTERN); at most this many.
SLOW_PATH_PREFIX_RE=${shWord(PREFIX_PATTERN)}
MAX_SLOW_PATHS=${shWord(MAX_SLOW_PATHS)}
# A sticky canary key, cookie:NAME or header:NAME (POSIX ERE, core/canary.ts STICKY_KEY_PATTERN); a
# stage declares at most MAX_STICKY_KEYS (STICKY_KEYS). A canary share (CANARY_SHARE_PATTERN).
STICKY_KEY_RE=${shWord(STICKY_KEY_PATTERN)}
MAX_STICKY_KEYS=${shWord(MAX_STICKY_KEYS)}
CANARY_SHARE_RE=${shWord(CANARY_SHARE_PATTERN)}
# A preview token (POSIX ERE, core/preview.ts PREVIEW_TOKEN_PATTERN): part of a file name nginx checks.
PREVIEW_TOKEN_RE=${shWord(PREVIEW_TOKEN_PATTERN)}
# A pool's generations, in order (POOL_GENERATIONS): one upstream block each per primary pool;
# switch-pool.sh --fresh moves a pool to the next, after the last back to the first.
POOL_GENERATIONS=${shWord(POOL_GENERATIONS.join(' '))}
# keepalive_timeout (keepaliveSeconds): the load balancer's idle timeout is max(its default, the
# longest wait + WAIT_MARGIN_SECONDS); nginx holds an idle connection KEEPALIVE_MARGIN_SECONDS longer.
LB_IDLE_DEFAULT_SECONDS=${shWord(limit('albIdleTimeoutDefault'))}
WAIT_MARGIN_SECONDS=${shWord(WAIT_MARGIN_SECONDS)}
KEEPALIVE_MARGIN_SECONDS=${shWord(KEEPALIVE_MARGIN_SECONDS)}
`;
}

export const GENERATED_HOST_FILES: Readonly<Record<string, () => string>> = {
  // JSON has no comments: the banner is a field jq never reads.
  'userdata/pool-env.json': () => `${JSON.stringify({ generated: GENERATED_BY, ...POOL_ENV_RULE }, null, 2)}\n`,
  'userdata/pool-options.json': () => `${JSON.stringify({ generated: GENERATED_BY, ...POOL_OPTIONS_RULE }, null, 2)}\n`,
  'fleet/record-verdict.jq': recordVerdictJq,
  'nginx/proxy-settings.sh': proxySettingsSh,
  'userdata/facts.sh': () => renderApplyFacts(),
};

// ---- userdata/facts.sh: what the host agent (userdata/bluegreen-apply.sh) shares with core ---------
// The agent sources it from $BLUEGREEN_HOME/userdata/facts.sh (the userdata asset, unpacked into
// /opt/bluegreen/userdata): patterns, parameter names, ports, the step line's format, the record's
// states. POSIX sh assignments, each value single-quoted.

/** A value the shell reads back byte for byte: single quotes, a quote inside as '\''. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** camelCase → UPPER_SNAKE (activePool → ACTIVE_POOL). */
const upperSnake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** What the stage stands for in a parameter name the shell expands ("$1" of bluegreen_parameter_names). */
const STAGE_PLACEHOLDER = '\u0000stage\u0000';

/** The parameter names the agent uses, by shell variable (PARAM_ROOT, PARAM_ACTIVE_POOL, PARAM_BLUE_IMAGE, ...). */
export function applyParameterNames(stage: string): Record<string, string> {
  const n = parameterNames(stage);
  return {
    PARAM_ROOT: n.root,
    PARAM_ACTIVE_POOL: n.activePool,
    PARAM_CANARY_PERCENT: n.canaryPercent,
    PARAM_PREVIEW: n.preview,
    ...Object.fromEntries(
      POOLS.flatMap((p) =>
        (['image', 'release', 'env', 'options'] as const).map((k) => [
          `PARAM_${upperSnake(p)}_${upperSnake(k)}`,
          n.pools[p][k],
        ]),
      ),
    ),
  };
}

/** A parameter name with the stage as the shell's "$1": each literal piece single-quoted. */
function stageExpanded(name: string): string {
  const pieces = name.split(STAGE_PLACEHOLDER);
  if (pieces.length < 2) throw new Error(`parameter name ${JSON.stringify(name)} does not depend on the stage`);
  return pieces.map((piece) => (piece === '' ? '' : shellQuote(piece))).join('"$1"');
}

export function renderApplyFacts(): string {
  const assign = (name: string, value: string | number) =>
    `${name}=${typeof value === 'number' ? String(value) : shellQuote(value)}`;
  return [
    '# shellcheck shell=sh disable=SC2034',
    `# ${GENERATED_BY}`,
    '# The facts userdata/bluegreen-apply.sh shares with the TypeScript side; it sources this file from',
    '# $BLUEGREEN_HOME/userdata/facts.sh (on a host /opt/bluegreen/userdata, from the userdata asset).',
    '',
    '# Value patterns of the pool state parameters (core/patterns.ts POOL_STATE_PATTERNS): the',
    "# parameters' AllowedPattern, checked again by the host (grep -E).",
    ...Object.entries(POOL_STATE_PATTERNS).map(([key, pattern]) => assign(`${upperSnake(key)}_RE`, pattern)),
    '# A preview token (core/preview.ts PREVIEW_TOKEN_PATTERN): checked before it reaches switch-pool.sh.',
    assign('PREVIEW_TOKEN_RE', PREVIEW_TOKEN_PATTERN),
    '# The image value for "the app/ image, built on the host" (core/patterns.ts DEFAULT_APP_IMAGE).',
    assign('DEFAULT_APP_IMAGE', DEFAULT_APP_IMAGE),
    '',
    "# Published ports' defaults (core/ports.ts PORTS): nginx, and each pool's direct port.",
    ...Object.entries(PORTS).map(([key, port]) => assign(`PORT_${upperSnake(key)}`, port)),
    '',
    "# A pool's health settings' defaults in seconds (core/pool-health.ts POOL_HEALTH), Docker's check",
    '# interval and retries, and how often the gate probes /healthz itself (GATE_PROBE_MS).',
    assign('HEALTH_START_PERIOD_DEFAULT', POOL_HEALTH.startPeriodSeconds.default),
    assign('HEALTH_TIMEOUT_DEFAULT', POOL_HEALTH.timeoutSeconds.default),
    assign('DRAIN_DEFAULT', POOL_HEALTH.drainSeconds.default),
    assign('HEALTH_INTERVAL_SECONDS', HEALTH_INTERVAL_SECONDS),
    assign('HEALTH_RETRIES', HEALTH_RETRIES),
    assign('GATE_PROBE_MS', GATE_PROBE_MS),
    '',
    '# The step line (core/step-line.ts STEP_LINE_PRINTF): step, pool, ok, detail; the release CLI parses it.',
    assign('STEP_LINE_PRINTF', STEP_LINE_PRINTF),
    '',
    '# Release record states in which its pool passed the gate on every host (core/release-record.ts',
    '# ReleaseState), as a JSON array for jq.',
    assign('GATE_PASSED_STATES', JSON.stringify(GATE_PASSED_STATES)),
    '',
    '# The release phase (core/pre-promote.ts): --pre-promote <base64 of the command> (POSIX ERE), the',
    '# longest --pre-promote-timeout (s), the step name, the output line prefix, the lines and bytes of',
    '# output kept, the step details (printf formats) and the exit status of a command timeout killed.',
    assign('PRE_PROMOTE_B64_RE', PRE_PROMOTE_B64_PATTERN),
    assign('PRE_PROMOTE_MAX_TIMEOUT_SECONDS', MAX_PRE_PROMOTE_TIMEOUT_SECONDS),
    assign('PRE_PROMOTE_STEP', PRE_PROMOTE_STEP),
    assign('PRE_PROMOTE_OUTPUT_PREFIX', PRE_PROMOTE_OUTPUT_PREFIX),
    assign('PRE_PROMOTE_OUTPUT_LINES', PRE_PROMOTE_OUTPUT_LINES),
    assign('PRE_PROMOTE_OUTPUT_BYTES', PRE_PROMOTE_OUTPUT_BYTES),
    assign('PRE_PROMOTE_EXIT_PRINTF', PRE_PROMOTE_EXIT_PRINTF),
    assign('PRE_PROMOTE_TIMED_OUT_PRINTF', PRE_PROMOTE_TIMED_OUT_PRINTF),
    assign('PRE_PROMOTE_TIMEOUT_EXIT', TIMEOUT_EXIT),
    '',
    '# bluegreen_parameter_names <stage>: the SSM parameter names the agent reads (core/names.ts',
    '# parameterNames), each in its own variable.',
    'bluegreen_parameter_names() {',
    ...Object.entries(applyParameterNames(STAGE_PLACEHOLDER)).map(
      ([name, value]) => `  ${name}=${stageExpanded(value)}`,
    ),
    '}',
    '',
  ].join('\n');
}
