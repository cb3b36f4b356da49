// The files the host scripts read their facts from, generated from core so the shell never keeps a
// copy: `npm run generate` writes them, test/unit/host-files.test.ts fails when one is stale. Each is
// a repository path (relative, `/`-separated) and its exact content.
import { parameterNames } from './names';
import { DEFAULT_APP_IMAGE, POOL_STATE_PATTERNS } from './patterns';
import { POOL_ENV_RULE } from './pool-env';
import { POOLS } from './pools';
import { PORTS } from './ports';
import type { ReleaseState } from './release-record';
import { STEP_LINE_PRINTF } from './step-line';

/** The generated files' banner: a reader of the host file learns where to change it. */
export const GENERATED_BY = 'Generated from core/ by `npm run generate` (core/host-files.ts): do not edit.';

export const GENERATED_HOST_FILES: Readonly<Record<string, () => string>> = {
  // JSON has no comments: the banner is a field jq never reads.
  'userdata/pool-env.json': () => `${JSON.stringify({ generated: GENERATED_BY, ...POOL_ENV_RULE }, null, 2)}\n`,
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

/**
 * Release states in which the record's pool passed its gate on every host (the host boots a new
 * fleet host's pool from them). A Record over every state, so a new state must be placed here.
 */
const GATE_PASSED: Readonly<Record<ReleaseState, boolean>> = {
  deploying: false,
  verifying: true,
  deployed: true,
  baking: true,
  promoted: true,
  'rolled-back': true,
  failed: false,
};
export const GATE_PASSED_STATES = (Object.keys(GATE_PASSED) as ReleaseState[]).filter((s) => GATE_PASSED[s]);

/** What the stage stands for in a parameter name the shell expands ("$1" of bluegreen_parameter_names). */
const STAGE_PLACEHOLDER = '\u0000stage\u0000';

/** The parameter names the agent uses, by shell variable (PARAM_ROOT, PARAM_ACTIVE_POOL, PARAM_BLUE_IMAGE, ...). */
export function applyParameterNames(stage: string): Record<string, string> {
  const n = parameterNames(stage);
  return {
    PARAM_ROOT: n.root,
    PARAM_ACTIVE_POOL: n.activePool,
    PARAM_CANARY_PERCENT: n.canaryPercent,
    ...Object.fromEntries(POOLS.flatMap((p) => (['image', 'release', 'env'] as const).map((k) => [`PARAM_${upperSnake(p)}_${upperSnake(k)}`, n.pools[p][k]]))),
  };
}

/** A parameter name with the stage as the shell's "$1": each literal piece single-quoted. */
function stageExpanded(name: string): string {
  const pieces = name.split(STAGE_PLACEHOLDER);
  if (pieces.length < 2) throw new Error(`parameter name ${JSON.stringify(name)} does not depend on the stage`);
  return pieces.map((piece) => (piece === '' ? '' : shellQuote(piece))).join('"$1"');
}

export function renderApplyFacts(): string {
  const assign = (name: string, value: string | number) => `${name}=${typeof value === 'number' ? String(value) : shellQuote(value)}`;
  return [
    '# shellcheck shell=sh disable=SC2034',
    `# ${GENERATED_BY}`,
    '# The facts userdata/bluegreen-apply.sh shares with the TypeScript side; it sources this file from',
    '# $BLUEGREEN_HOME/userdata/facts.sh (on a host /opt/bluegreen/userdata, from the userdata asset).',
    '',
    "# Value patterns of the pool state parameters (core/patterns.ts POOL_STATE_PATTERNS): the",
    "# parameters' AllowedPattern, checked again by the host (grep -E).",
    ...Object.entries(POOL_STATE_PATTERNS).map(([key, pattern]) => assign(`${upperSnake(key)}_RE`, pattern)),
    '# The image value for "the app/ image, built on the host" (core/patterns.ts DEFAULT_APP_IMAGE).',
    assign('DEFAULT_APP_IMAGE', DEFAULT_APP_IMAGE),
    '',
    "# Published ports' defaults (core/ports.ts PORTS): nginx, and each pool's direct port.",
    ...Object.entries(PORTS).map(([key, port]) => assign(`PORT_${upperSnake(key)}`, port)),
    '',
    '# The step line (core/step-line.ts STEP_LINE_PRINTF): step, pool, ok, detail; the release CLI parses it.',
    assign('STEP_LINE_PRINTF', STEP_LINE_PRINTF),
    '',
    '# Release record states in which its pool passed the gate on every host (core/release-record.ts',
    '# ReleaseState), as a JSON array for jq.',
    assign('GATE_PASSED_STATES', JSON.stringify(GATE_PASSED_STATES)),
    '',
    '# bluegreen_parameter_names <stage>: the SSM parameter names the agent reads (core/names.ts',
    '# parameterNames), each in its own variable.',
    'bluegreen_parameter_names() {',
    ...Object.entries(applyParameterNames(STAGE_PLACEHOLDER)).map(([name, value]) => `  ${name}=${stageExpanded(value)}`),
    '}',
    '',
  ].join('\n');
}
