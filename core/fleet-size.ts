// The value of /bluegreen/<stage>/hosts: `fleet:<desired hosts>` in fleet mode, absent for the single
// host. One format for its writer (the stack, lib/stack-config.ts hostsParameterValue) and its reader (the
// alert function, which words its messages for the fleet). Kept free of CDK so the Lambda bundle
// stays small.

const PREFIX = 'fleet:';

/** The parameter's value for a fleet of `desired` hosts. */
export function formatHostsParameter(desired: number): string {
  if (!Number.isInteger(desired) || desired < 1)
    throw new Error(`desired hosts must be a whole number >= 1, got ${desired}`);
  return `${PREFIX}${desired}`;
}

/**
 * The desired host count from the parameter's value; undefined when the parameter is absent (the
 * single host). A value not of the form `fleet:<n>` (n a whole number >= 1) throws, naming it.
 */
export function parseHostsParameter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = /^fleet:([1-9][0-9]*)$/.exec(value.trim());
  if (!match) throw new Error(`hosts parameter value must be "${PREFIX}<n>" (n a whole number >= 1), got "${value}"`);
  return Number(match[1]);
}
