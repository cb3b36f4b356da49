// The release ledger's history (core/release-ledger.ts): every release, and every version of one, for
// `history` and `--stats`. The CLI's alone: the guard and the Slack function read the head only
// (support/release-ledger.ts), so only the operator's policy grants Query.
import { AttributeValue, DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { LEDGER_PARTITION_KEY, LEDGER_RELEASES_PARTITION, ledgerEventsPartition } from '../../core/release-ledger';
import type { ReleaseRecord } from '../../core/release-record';
import { recordOf } from '../../support/release-ledger';

export class LedgerHistory {
  constructor(
    private readonly ddb: DynamoDBClient,
    private readonly table: string,
  ) {}

  /** Every release's last version, oldest first (ids start with their UTC start time). */
  async releases(): Promise<ReleaseRecord[]> {
    return this.query(LEDGER_RELEASES_PARTITION);
  }

  /** Every version of one release ever written, oldest first. */
  async events(id: string): Promise<ReleaseRecord[]> {
    return this.query(ledgerEventsPartition(id));
  }

  /** One partition, page by page (DynamoDB returns at most 1 MB a page). */
  private async query(partition: string): Promise<ReleaseRecord[]> {
    const records: ReleaseRecord[] = [];
    let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.ddb.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': LEDGER_PARTITION_KEY },
          ExpressionAttributeValues: { ':pk': { S: partition } },
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) {
        const r = recordOf(item);
        if (r) records.push(r);
      }
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return records;
  }
}
