// The AWS limits this project relies on, as data: each one with the documentation that states it
// (read 2026-12-06) and what in this project depends on it. Code, stack and tests take the numbers
// from here; DECISIONS.md ("Limits as data") says what each one decided.
//
// Why here: the alert function bundles this (state and record sizes), so it must be free of CDK and
// of every dependency, and lambda/alert/ is where the facts the function shares with the stack, the
// CLI and local mode already live (fleet-size.ts, release-record.ts, alarm-notification.ts). lib/,
// ops/ and local/ import it from here; nothing here imports anything.

export interface AwsLimit {
  readonly value: number;
  readonly unit: string;
  /** The limit as the documentation words it. */
  readonly says: string;
  /** The AWS documentation page that states it. */
  readonly doc: string;
  /** What in this project depends on it. */
  readonly usedBy: string;
}

const SSM_API = 'https://docs.aws.amazon.com/systems-manager/latest/APIReference';
const KB = 1024;

export const AWS_LIMITS = {
  standardParameterValue: {
    value: 4 * KB,
    unit: 'bytes',
    says: 'Parameter Store: a standard parameter value is at most 4 KB',
    doc: 'https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html',
    usedBy:
      "the alert state (/bluegreen/<stage>/alert-state, fitState), the pools' env and options parameters (a release's pinned secrets must fit)",
  },
  advancedParameterValue: {
    value: 8 * KB,
    unit: 'bytes',
    says: 'Parameter Store: an advanced parameter value is at most 8 KB (Intelligent-Tiering picks advanced when a value needs it)',
    doc: 'https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html',
    usedBy: 'the release record (/bluegreen/<stage>/release, serializeRecord)',
  },
  parameterVersions: {
    value: 100,
    unit: 'versions',
    says: 'Parameter Store keeps the last 100 versions of a parameter; older ones are deleted as new ones are written',
    doc: 'https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-versions.html',
    usedBy: "`bluegreen history` (the release record's versions: about 10-15 releases)",
  },
  parameterHistoryPage: {
    value: 50,
    unit: 'versions per call',
    says: 'GetParameterHistory: MaxResults 1 to 50',
    doc: `${SSM_API}/API_GetParameterHistory.html`,
    usedBy: '`bluegreen history` pages through the versions',
  },
  getParametersNames: {
    value: 10,
    unit: 'names per call',
    says: 'GetParameters: Names holds 1 to 10 items',
    doc: `${SSM_API}/API_GetParameters.html`,
    usedBy: "bluegreen-apply reads the host's pool state (10 names: all of it) in one get-parameters call",
  },
  parameterStoreThroughput: {
    value: 40,
    unit: 'requests per second',
    says: "Parameter Store's default throughput, per account and Region, for GetParameter, GetParameters and PutParameter together (higher throughput is a paid setting)",
    doc: 'https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-throughput.html',
    usedBy: "the request model (core/ssm-budget.ts): hosts' timers, the alert function, the CLI, joining hosts",
  },
  sendCommandInstanceIds: {
    value: 50,
    unit: 'instance ids',
    says: 'SendCommand: InstanceIds takes up to 50 ids (Targets by tag reach more)',
    doc: `${SSM_API}/API_SendCommand.html`,
    usedBy: "Run Command targets the stage's tag, never instance ids",
  },
  sendCommandDefaultConcurrency: {
    value: 50,
    unit: 'hosts at once',
    says: 'SendCommand: MaxConcurrency defaults to 50 (and MaxErrors to 0)',
    doc: `${SSM_API}/API_SendCommand.html`,
    usedBy:
      "the pool-switch rule (EventBridge sets no MaxConcurrency): a fleet's group is at most this many hosts (FLEET_LIMITS.maxHosts)",
  },
  sendCommandTimeout: {
    value: 172_800,
    unit: 'seconds',
    says: 'SendCommand: TimeoutSeconds (delivery) 30 to 2,880 minutes',
    doc: `${SSM_API}/API_SendCommand.html`,
    usedBy: "a release's deploy in rounds (its delivery timeout covers every round)",
  },
  sendCommandComment: {
    value: 100,
    unit: 'characters',
    says: 'SendCommand: Comment is at most 100 characters',
    doc: `${SSM_API}/API_SendCommand.html`,
    usedBy: "the comment that marks the CLI's own commands",
  },
  commandStdout: {
    value: 24_000,
    unit: 'characters',
    says: 'GetCommandInvocation: StandardOutputContent is the first 24,000 characters written to stdout',
    doc: `${SSM_API}/API_GetCommandInvocation.html`,
    usedBy: "the CLI reads each host's step= lines from it (release gate, status)",
  },
  commandStderr: {
    value: 8_000,
    unit: 'characters',
    says: 'GetCommandInvocation: StandardErrorContent is the first 8,000 characters written to stderr',
    doc: `${SSM_API}/API_GetCommandInvocation.html`,
    usedBy: 'the last stderr lines of a failed host',
  },
  commandPluginOutput: {
    value: 2_500,
    unit: 'characters',
    says: "ListCommandInvocations (Details): a plugin's Output is at most 2,500 characters",
    doc: `${SSM_API}/API_CommandPlugin.html`,
    usedBy: "RUNBOOK's list-command-invocations commands (the CLI reads GetCommandInvocation instead)",
  },
  lambdaAsyncPayload: {
    value: 1024 * KB,
    unit: 'bytes',
    says: 'Lambda: invocation payload 1 MB for asynchronous invocations (256 KB until October 2025)',
    doc: 'https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html',
    usedBy: 'the alert function: log subscription batches, EventBridge and SNS events all invoke it asynchronously',
  },
  lambdaSyncPayload: {
    value: 6 * 1024 * KB,
    unit: 'bytes',
    says: 'Lambda: invocation payload (request and response) 6 MB for synchronous invocations',
    doc: 'https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html',
    usedBy: 'nothing invokes the alert function synchronously (a test invocation from the console would)',
  },
  albIdleTimeoutMin: {
    value: 1,
    unit: 'seconds',
    says: 'Application Load Balancer: idle_timeout.timeout_seconds, valid range 1-4000 seconds',
    doc: 'https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html',
    usedBy: "the fleet's load balancer idle timeout (core/proxy-settings.ts loadBalancerIdleSeconds)",
  },
  albIdleTimeoutMax: {
    value: 4000,
    unit: 'seconds',
    says: 'Application Load Balancer: idle_timeout.timeout_seconds, valid range 1-4000 seconds',
    doc: 'https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html',
    usedBy: "the fleet's load balancer idle timeout",
  },
  albIdleTimeoutDefault: {
    value: 60,
    unit: 'seconds',
    says: "Application Load Balancer: the idle timeout defaults to 60 seconds; a target's keep-alive timeout should be longer than the load balancer's idle timeout",
    doc: 'https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html',
    usedBy: "the fleet's load balancer idle timeout (at least this) and nginx's keepalive_timeout (longer than it)",
  },
} as const satisfies Record<string, AwsLimit>;

export type AwsLimitName = keyof typeof AWS_LIMITS;

/** The value of a limit (the number, in its unit). */
export const limit = (name: AwsLimitName): number => AWS_LIMITS[name].value;

/**
 * The largest fleet: the pool-switch rule's Run Command reaches the stage's hosts at Run Command's
 * default concurrency (an EventBridge target cannot set another), so past it a flip would go in
 * batches and stop at the first failed host.
 */
export const MAX_FLEET_HOSTS = limit('sendCommandDefaultConcurrency');
