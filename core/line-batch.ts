// What both runtimes do with a batch of raw log lines: parse (malformed lines counted, never fatal),
// evaluate, and split the decisions into what to post and what only to log. Pure.
import { parseAccessLogLine, primaryPool } from './access-log';
import { Decision, EngineInput, EngineState, entryTime, evaluate, failedByPrimary, RuleConfig } from './rules';

export interface RawLine {
  message: string;
  host: string;
  /** When the log system received it (fallback when the line has no time of its own). */
  receivedAt: number;
}

export interface BatchResult {
  state: EngineState;
  decisions: Decision[];
  toPost: Decision[];
  evaluated: number;
  /**
   * Requests answered by a pool other than the one they were first sent to: a failover inside the
   * request ("500, 200") or sent straight to the backup because nginx had marked the primary down.
   */
  failedOver: number;
  /** Requests failed by their primary pool (the error-rate measure: failedOver, a 5xx attempt or status). */
  failed: number;
  malformed: Array<{ reason: string; line: string }>;
}

/** `fleetSize`: the stage's desired hosts (EvaluateOptions.fleetSize); local mode passes none. */
export function processLines(
  state: EngineState,
  lines: readonly RawLine[],
  config: RuleConfig,
  maintenance: boolean,
  fleetSize?: number,
): BatchResult {
  const inputs: EngineInput[] = [];
  const malformed: BatchResult['malformed'] = [];
  for (const line of lines) {
    const parsed = parseAccessLogLine(line.message);
    if (!parsed.ok) {
      malformed.push({ reason: parsed.reason, line: line.message.slice(0, 300) });
      continue;
    }
    inputs.push({ entry: parsed.entry, host: line.host, at: entryTime(parsed.entry, line.receivedAt) });
  }
  const { state: next, decisions } = evaluate(state, inputs, { config, maintenance, fleetSize });
  let failedOver = 0;
  let failed = 0;
  for (const { entry } of inputs) {
    const primary = primaryPool(entry);
    if (entry.pool !== primary && entry.pool !== '' && primary !== '') failedOver++;
    if (failedByPrimary(entry)) failed++;
  }
  return {
    state: next,
    decisions,
    toPost: decisions.filter((d) => d.suppressed === null),
    evaluated: inputs.length,
    failedOver,
    failed,
    malformed,
  };
}
