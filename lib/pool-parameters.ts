// The stage's pool state in SSM (README "What the stack creates"): the active pool, maintenance, the canary share,
// each pool's desired image/release/env/options, and the release record. CloudFormation creates them once
// (CreateOnlyParameter) and never writes them again: operators, `bluegreen release` and the alert
// function own their values from then on. Context (initialActivePool, blueImage, releaseBlue, ...)
// gives only the initial values. The Slack webhook is a SecureString the operator creates.
// Migration: these replace the AWS::SSM::Parameter ActivePool/Maintenance of earlier versions; no
// stack was deployed with those (a deployed one would need the old parameters' values copied first).
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DEFAULT_APP_IMAGE, POOL_STATE_PATTERNS } from '../core/patterns';
import { parameterNames } from '../core/names';
import { Pool } from '../core/pools';
import { CreateOnlyParameter } from './create-only-parameter';

export const ACTIVE_POOL_PATTERN = POOL_STATE_PATTERNS.activePool;
export const MAINTENANCE_PATTERN = POOL_STATE_PATTERNS.maintenance;

/** A pool's initial desired state. */
export interface InitialPool {
  /** Registry image. @default DEFAULT_APP_IMAGE (the app/ image built on the host) */
  readonly image?: string;
  readonly release: string;
}

export interface PoolParametersProps {
  readonly stage: string;
  /** @default 'blue' */
  readonly initialActivePool?: Pool;
  readonly blue: InitialPool;
  readonly green: InitialPool;
  /** Retention of the create-only resources' function log. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

const cap = (s: string) => s[0].toUpperCase() + s.slice(1);

export class PoolParameters extends Construct {
  public readonly names: ReturnType<typeof parameterNames>;
  public readonly activePool: CreateOnlyParameter;
  public readonly maintenance: CreateOnlyParameter;
  public readonly canaryPercent: CreateOnlyParameter;
  public readonly release: CreateOnlyParameter;
  public readonly pools: Record<
    Pool,
    { image: CreateOnlyParameter; release: CreateOnlyParameter; env: CreateOnlyParameter; options: CreateOnlyParameter }
  >;
  /** The role of the create-only parameters' function: put/delete on exactly these parameters. */
  public readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: PoolParametersProps) {
    super(scope, id);
    const { stage } = props;
    const names = (this.names = parameterNames(stage));
    const stack = Stack.of(this);
    const arn = (name: string) =>
      stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: name.slice(1) });

    const logGroup = new logs.LogGroup(this, 'FunctionLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `bluegreen ${stage}: creates the pool state parameters once, deletes them with the stack`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    const all: string[] = [];
    // One after another: without dependencies CloudFormation creates all twelve at once, and their
    // PutParameter calls (a few TPS at standard throughput) can be throttled; a ThrottlingException
    // is not ignored and would fail the first deploy. Each waits for the one before.
    let previous: CreateOnlyParameter | undefined;
    const param = (
      id: string,
      logicalId: string,
      parameterName: string,
      initialValue: string,
      description: string,
      allowedPattern?: string,
    ) => {
      all.push(parameterName);
      const created = new CreateOnlyParameter(this, id, {
        parameterName,
        initialValue,
        description: `bluegreen ${stage}: ${description}`,
        allowedPattern,
        role: this.role,
        logGroup,
        logicalId,
      });
      if (previous) created.node.addDependency(previous);
      previous = created;
      return created;
    };

    this.activePool = param(
      'ActivePool',
      'PoolStateActivePool',
      names.activePool,
      props.initialActivePool ?? 'blue',
      'the pool nginx sends traffic to first (blue|green). Changing it flips the pool.',
      POOL_STATE_PATTERNS.activePool,
    );
    this.maintenance = param(
      'Maintenance',
      'PoolStateMaintenance',
      names.maintenance,
      'off',
      'on = alerts are evaluated and logged but not posted.',
      POOL_STATE_PATTERNS.maintenance,
    );
    this.canaryPercent = param(
      'CanaryPercent',
      'PoolStateCanaryPercent',
      names.canaryPercent,
      '0',
      'share (0-99) of requests whose first try goes to the idle pool.',
      POOL_STATE_PATTERNS.canaryPercent,
    );
    // "{}" = no release yet; the record's shape is core/release-record.ts.
    this.release = param(
      'Release',
      'PoolStateRelease',
      names.release,
      '{}',
      'the release record (JSON), written by bluegreen release and the alert function; history = GetParameterHistory.',
    );
    const pool = (p: Pool) => ({
      image: param(
        `${cap(p)}Image`,
        `PoolState${cap(p)}Image`,
        names.pools[p].image,
        props[p].image ?? DEFAULT_APP_IMAGE,
        `desired image of the ${p} pool (${DEFAULT_APP_IMAGE} = the app/ image built on the host).`,
        POOL_STATE_PATTERNS.image,
      ),
      release: param(
        `${cap(p)}Release`,
        `PoolState${cap(p)}Release`,
        names.pools[p].release,
        props[p].release,
        `desired release id of the ${p} pool (X-Release-Id).`,
        POOL_STATE_PATTERNS.release,
      ),
      env: param(
        `${cap(p)}Env`,
        `PoolState${cap(p)}Env`,
        names.pools[p].env,
        '{}',
        `extra environment of the ${p} pool, a JSON object of strings.`,
      ),
      options: param(
        `${cap(p)}Options`,
        `PoolState${cap(p)}Options`,
        names.pools[p].options,
        '{}',
        `options of the ${p} pool (pinned secrets, health and drain times), a JSON object (core/pool-options.ts).`,
      ),
    });
    this.pools = { blue: pool('blue'), green: pool('green') };

    // Exact ARNs: never a wildcard over the stage path, which also holds the webhook SecureString.
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'CreateAndDeleteOnly',
        actions: ['ssm:PutParameter', 'ssm:DeleteParameter'],
        resources: all.map(arn),
      }),
    );
  }
}
