// What both runtimes do with a batch of raw log lines: parse (malformed lines counted, never fatal),
// evaluate, and split the decisions into what to post and what only to log. Pure.
import { parseAccessLogLine } from './access-log';
import { Decision, EngineInput, EngineState, entryTime, evaluate, RuleConfig } from './rules';

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
  /** Requests the active pool failed and another attempt answered (upstream_status with a comma). */
  failedOver: number;
  malformed: Array<{ reason: string; line: string }>;
}

export function processLines(state: EngineState, lines: readonly RawLine[], config: RuleConfig, maintenance: boolean): BatchResult {
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
  const { state: next, decisions } = evaluate(state, inputs, { config, maintenance });
  const failedOver = inputs.filter((i) => i.entry.upstream_status.includes(',')).length;
  return { state: next, decisions, toPost: decisions.filter((d) => d.suppressed === null), evaluated: inputs.length, failedOver, malformed };
}
