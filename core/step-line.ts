// The step line: how a host agent reports each step of a reconcile on stdout, one line per step, and
// how the CLI reads them back from Run Command's output. bluegreen-apply prints it with the printf
// format below (generated into the host's facts), the local pool agent and a bootstrapping host's
// answer with formatStepLine.

export interface HostStep {
  host: string;
  step: string;
  /** blue, green, or `-` for a step that is not about one pool. */
  pool: string;
  ok: boolean;
  detail?: string;
}

/** The shell's printf format: step, pool, ok, detail (the detail on one line). */
export const STEP_LINE_PRINTF = 'step=%s pool=%s ok=%s detail=%s\\n';

const STEP_LINE = /^step=(\S+) pool=(\S+) ok=(true|false)(?: detail=(.*))?$/;

/** One step line (without the line break). `detail` must not contain a line break. */
export function formatStepLine(step: Omit<HostStep, 'host'>): string {
  return `step=${step.step} pool=${step.pool} ok=${step.ok} detail=${step.detail ?? ''}`;
}

/** The `step=… pool=… ok=… detail=…` lines of an agent's output, in order; other lines are ignored. */
export function parseStepLines(output: string, host: string): HostStep[] {
  const steps: HostStep[] = [];
  for (const raw of output.split('\n')) {
    const m = raw.trim().match(STEP_LINE);
    if (!m) continue;
    steps.push({ host, step: m[1], pool: m[2], ok: m[3] === 'true', ...(m[4] ? { detail: m[4].trim() } : {}) });
  }
  return steps;
}
