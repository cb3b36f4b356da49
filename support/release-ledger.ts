// The release ledger on DynamoDB (core/release-ledger.ts has the item shapes): the CLI's release
// backend and the alert function's guard read and write the stage's release record through it. A
// write is a PutItem of the head conditional on the revision the writer read (a single-item
// compare-and-set), then the release's own item and one event item. A lost compare is a
// RecordChanged carrying what is stored now. Why not one TransactWriteItems: DECISIONS "The release
// ledger". Reading the history (a Query) is the CLI's alone: ops/release/ledger-history.ts.
import {
  AttributeValue,
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  historyCopy,
  historyExpiresAt,
  LEDGER_HEAD_KEY,
  LEDGER_PARTITION_KEY,
  LEDGER_RECORD_ATTRIBUTE,
  LEDGER_RELEASES_PARTITION,
  LEDGER_REVISION_ATTRIBUTE,
  LEDGER_SORT_KEY,
  LEDGER_TTL_ATTRIBUTE,
  ledgerEventSortKey,
  ledgerEventsPartition,
} from '../core/release-ledger';
import { parseRecord, ReleaseRecord, serializeRecord } from '../core/release-record';
import { RecordChanged } from '../core/release-backend';

export interface ReleaseLedgerOptions {
  ddb: DynamoDBClient;
  table: string;
}

type Item = Record<string, AttributeValue>;

const key = (pk: string, sk: string): Item => ({ [LEDGER_PARTITION_KEY]: { S: pk }, [LEDGER_SORT_KEY]: { S: sk } });

/** The record an item holds, with the item's revision; undefined for a missing or unreadable item. */
export function recordOf(item: Item | undefined): ReleaseRecord | undefined {
  const record = parseRecord(item?.[LEDGER_RECORD_ATTRIBUTE]?.S);
  const revision = Number(item?.[LEDGER_REVISION_ATTRIBUTE]?.N);
  return record && { ...record, revision: Number.isInteger(revision) ? revision : undefined };
}

export class DynamoReleaseLedger {
  constructor(private readonly o: ReleaseLedgerOptions) {}

  /** The release in progress or last finished (a consistent read: the compare needs the latest). */
  async head(): Promise<ReleaseRecord | undefined> {
    const out = await this.o.ddb.send(
      new GetItemCommand({
        TableName: this.o.table,
        Key: key(LEDGER_HEAD_KEY.pk, LEDGER_HEAD_KEY.sk),
        ConsistentRead: true,
      }),
    );
    return recordOf(out.Item);
  }

  /**
   * Stores `next` as the head if the head is still `basis` (the version the writer read; undefined:
   * there must be none), with its release item and an event. Returns what was stored (its new
   * revision); throws RecordChanged when someone else wrote first.
   */
  async write(next: ReleaseRecord, basis: ReleaseRecord | undefined): Promise<ReleaseRecord> {
    const revision = (basis?.revision ?? 0) + 1;
    const stored: ReleaseRecord = { ...next, revision };
    const history = serializeRecord(historyCopy(stored));
    // The head never expires; the release's items when the record says (its historyDays).
    const expiresAt = historyExpiresAt(stored);
    const expires: Item = expiresAt === undefined ? {} : { [LEDGER_TTL_ATTRIBUTE]: { N: String(expiresAt) } };
    const body = (json: string): Item => ({
      [LEDGER_RECORD_ATTRIBUTE]: { S: json },
      [LEDGER_REVISION_ATTRIBUTE]: { N: String(revision) },
    });
    try {
      await this.o.ddb.send(
        new PutItemCommand({
          TableName: this.o.table,
          Item: { ...key(LEDGER_HEAD_KEY.pk, LEDGER_HEAD_KEY.sk), ...body(serializeRecord(stored)) },
          ...(basis === undefined
            ? {
                ConditionExpression: 'attribute_not_exists(#pk)',
                ExpressionAttributeNames: { '#pk': LEDGER_PARTITION_KEY },
              }
            : {
                ConditionExpression: '#rev = :rev',
                ExpressionAttributeNames: { '#rev': LEDGER_REVISION_ATTRIBUTE },
                ExpressionAttributeValues: { ':rev': { N: String(basis.revision ?? 0) } },
              }),
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new RecordChanged(await this.head());
      throw err;
    }
    // The head won: its history follows. Both puts are idempotent (same key, same content), and the
    // release's item is rewritten by each later version, so a write lost here is repaired by the next.
    await Promise.all(
      [
        key(LEDGER_RELEASES_PARTITION, stored.id),
        key(ledgerEventsPartition(stored.id), ledgerEventSortKey(revision)),
      ].map((k) =>
        this.o.ddb.send(new PutItemCommand({ TableName: this.o.table, Item: { ...k, ...body(history), ...expires } })),
      ),
    );
    return stored;
  }
}
