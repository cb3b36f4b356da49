// Where a decision on a deployed stage's release acts, for the alert function's guard and the Slack
// actions function alike: the switches are parameter writes every host follows (a throw fails the
// invocation, which Lambda retries), and the record a conditional write to the ledger.
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { GuardPorts } from '../core/guard-actuator';
import type { DynamoReleaseLedger } from '../support/release-ledger';
import { putValue } from './alert/aws';

export function stageGuardPorts(
  ssm: SSMClient,
  ledger: DynamoReleaseLedger,
  params: { activePoolParam: string; canaryParam: string },
): GuardPorts {
  return {
    flip: async (pool) => {
      await putValue(ssm, params.activePoolParam, pool);
      return { ok: true, detail: `${params.activePoolParam} = ${pool}` };
    },
    setCanary: async (percent) => {
      await putValue(ssm, params.canaryParam, String(percent));
      return { ok: true, detail: `${params.canaryParam} = ${percent}` };
    },
    writeRecord: (next, basis) => ledger.write(next, basis),
  };
}
