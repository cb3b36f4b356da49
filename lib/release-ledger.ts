// The stage's release ledger (DECISIONS "The release ledger (table)"): one DynamoDB table that keeps
// every release, its head (the release in progress or last finished) and each version written. Its
// name and keys are core/release-ledger.ts's: the CLI, the alert function and the hosts find it by
// name, without a lookup. The CLI and the guard write it (conditional Puts, the head's
// conditional on the revision read), the function is invoked by its stream, a fleet host reads the
// head. The SSM record parameter it replaces stays in the stack (PoolParameters): the CLI imports it
// once, and removing it from the template would delete it.
//
// A plain Table (AWS::DynamoDB::Table), not TableV2 (AWS::DynamoDB::GlobalTable): one region, no
// replicas; cdk-nag's PITR rule (AwsSolutions-DDB3) checks AWS::DynamoDB::Table only; and TableV2's
// stream grant puts dynamodb:ListStreams on the stream's ARN, which IAM never matches (ListStreams
// has no resource type in the Service Authorization Reference: "*" only).
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { parameterNames } from '../core/names';
import {
  HISTORY_DAYS_RANGE,
  LEDGER_PARTITION_KEY,
  LEDGER_SORT_KEY,
  LEDGER_TTL_ATTRIBUTE,
  ledgerTableName,
} from '../core/release-ledger';

/** DynamoDB's table name rule (3 to 255 of letters, digits, `_`, `-`, `.`). */
const TABLE_NAME_PATTERN = /^[A-Za-z0-9_.-]{3,255}$/;

export interface ReleaseLedgerProps {
  /** The stage: the table is `ledgerTableName(stage)`, bluegreen-<stage>-releases. */
  readonly stage: string;
  /**
   * The ledger is the stage's release history (who released what, when, and how it ended), and the
   * head a fleet host boots its pools from: it outlives `cdk destroy` and a table dropped from the
   * template. A retained table must be deleted (or imported, `cdk import`) before the stage is
   * deployed again: its name is fixed.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Days a release's items are kept after its start (DynamoDB TTL), written to
   * /bluegreen/<stage>/release-history-days for the CLI to copy into each release's record.
   * @default undefined: every release is kept for good (no parameter)
   */
  readonly historyDays?: number;
}

export class ReleaseLedger extends Construct {
  public readonly table: dynamodb.Table;
  /** bluegreen-<stage>-releases: what the function's LEDGER_TABLE and a host's env name. */
  public readonly tableName: string;

  constructor(scope: Construct, id: string, props: ReleaseLedgerProps) {
    super(scope, id);
    this.tableName = ledgerTableName(props.stage);
    if (!TABLE_NAME_PATTERN.test(this.tableName))
      throw new Error(
        `ReleaseLedger: "${this.tableName}" (stage "${props.stage}") is not a DynamoDB table name: 3 to 255 letters, digits, _ - .`,
      );
    this.table = new dynamodb.Table(this, 'Table', {
      tableName: this.tableName,
      partitionKey: { name: LEDGER_PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LEDGER_SORT_KEY, type: dynamodb.AttributeType.STRING },
      // On demand: a release writes a few items and the guard reads the head a few times a minute;
      // provisioned capacity would cost more idle than this table costs busy.
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      // A bad write (a script, a hand edit) is undone by restoring to a second within 35 days.
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // The account's aws/dynamodb key: KMS-encrypted, visible in CloudTrail, and no key policy to keep
      // or kms:Decrypt to grant (its policy lets the account's principals use it through DynamoDB).
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // Release and event items carry expiresAt (epoch seconds) when the writer keeps history for a
      // while only; the head never expires. The writer decides, the table only honours it.
      timeToLiveAttribute: LEDGER_TTL_ATTRIBUTE,
      // The alert function is invoked by changes of the head (lib/alerting.ts): the new image is all it reads.
      stream: dynamodb.StreamViewType.NEW_IMAGE,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    if (props.historyDays !== undefined) {
      const { min, max } = HISTORY_DAYS_RANGE;
      if (!Number.isInteger(props.historyDays) || props.historyDays < min || props.historyDays > max)
        throw new Error(`ReleaseLedger: historyDays must be whole days ${min}-${max}, got ${props.historyDays}`);
      // A plain parameter CloudFormation keeps in step with the context: the retention is the stack's
      // setting, and a release started after a change gets the new one (the ones before keep theirs).
      new ssm.StringParameter(this, 'HistoryDays', {
        parameterName: parameterNames(props.stage).releaseHistoryDays,
        stringValue: String(props.historyDays),
        description: `bluegreen ${props.stage}: days the release ledger keeps a release's items (their TTL)`,
      });
    }
  }

  /**
   * The table's ARN by its fixed name (pseudo parameters only), as IAM evaluates it and as README's
   * operator policy writes it: `arn:<partition>:dynamodb:<region>:<account>:table/bluegreen-<stage>-releases`.
   */
  public get tableArn(): string {
    return Stack.of(this).formatArn({ service: 'dynamodb', resource: 'table', resourceName: this.tableName });
  }
}
