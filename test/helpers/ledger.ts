// The stage's release ledger in moto_server (core/release-ledger.ts), as the hosts see it: the
// environment the stack gives them to read its head, the head written raw (a test gives the hosts
// records the CLI would never write too: junk, a cut env, a line feed in an image), and everything the
// table holds (the surfaces a secret must not reach).
import {
  AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  ServiceInputTypes,
  ServiceOutputTypes,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBClientResolvedConfig } from '@aws-sdk/client-dynamodb';
import type { AwsStub } from 'aws-sdk-client-mock';
import { parseRecord, ReleaseRecord } from '../../core/release-record';
import {
  LEDGER_HEAD_KEY,
  LEDGER_PARTITION_KEY,
  LEDGER_RECORD_ATTRIBUTE,
  LEDGER_REVISION_ATTRIBUTE,
  LEDGER_SORT_KEY,
  ledgerHeadKeyJson,
  ledgerTableName,
} from '../../core/release-ledger';
import { Moto, motoClientConfig } from './moto';

/** What the stack puts in a fleet host's /etc/bluegreen/env for its agents to read the ledger's head. */
export function ledgerHostEnv(stage: string): { LEDGER_TABLE: string; LEDGER_HEAD_KEY: string } {
  return { LEDGER_TABLE: ledgerTableName(stage), LEDGER_HEAD_KEY: ledgerHeadKeyJson() };
}

const headKey: Record<string, AttributeValue> = {
  [LEDGER_PARTITION_KEY]: { S: LEDGER_HEAD_KEY.pk },
  [LEDGER_SORT_KEY]: { S: LEDGER_HEAD_KEY.sk },
};

async function withDdb<T>(moto: Moto, fn: (ddb: DynamoDBClient) => Promise<T>): Promise<T> {
  const ddb = new DynamoDBClient(motoClientConfig(moto));
  try {
    return await fn(ddb);
  } finally {
    ddb.destroy();
  }
}

/**
 * Makes the head item hold `record` (its JSON text, as is) at the next revision, as a write of the
 * CLI or the guard leaves it; undefined deletes the head (a stage that never released). The table
 * must exist (createLedgerTable).
 */
export async function putLedgerHead(moto: Moto, stage: string, record: string | undefined): Promise<void> {
  const TableName = ledgerTableName(stage);
  await withDdb(moto, async (ddb) => {
    if (record === undefined) {
      await ddb.send(new DeleteItemCommand({ TableName, Key: headKey }));
      return;
    }
    const head = await ddb.send(new GetItemCommand({ TableName, Key: headKey, ConsistentRead: true }));
    const revision = Number(head.Item?.[LEDGER_REVISION_ATTRIBUTE]?.N ?? 0) + 1;
    await ddb.send(
      new PutItemCommand({
        TableName,
        Item: {
          ...headKey,
          [LEDGER_RECORD_ATTRIBUTE]: { S: record },
          [LEDGER_REVISION_ATTRIBUTE]: { N: String(revision) },
        },
      }),
    );
  });
}

/** The head's record text as stored (undefined: no head item, or no table). */
export async function ledgerHeadText(moto: Moto, stage: string): Promise<string | undefined> {
  return withDdb(moto, async (ddb) => {
    const head = await ddb
      .send(new GetItemCommand({ TableName: ledgerTableName(stage), Key: headKey, ConsistentRead: true }))
      .catch((err: Error) => {
        if (err.name === 'ResourceNotFoundException') return undefined;
        throw err;
      });
    return head?.Item?.[LEDGER_RECORD_ATTRIBUTE]?.S;
  });
}

/** Every item the ledger holds (the head, each release's item, every event), as stored. */
export async function ledgerItems(moto: Moto, stage: string): Promise<Array<Record<string, AttributeValue>>> {
  return withDdb(moto, async (ddb) => {
    const items: Array<Record<string, AttributeValue>> = [];
    let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await ddb.send(new ScanCommand({ TableName: ledgerTableName(stage), ExclusiveStartKey }));
      items.push(...(page.Items ?? []));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return items;
  });
}

/**
 * An in-memory DynamoDB for the ledger, for tests whose AWS is aws-sdk-client-mock: GetItem, PutItem
 * with the two conditions the ledger writes (`attribute_not_exists(#pk)`, `#rev = :rev`) and Query on
 * a partition. Returns the head's record, for assertions.
 */
export function mockLedger(ddbMock: AwsStub<ServiceInputTypes, ServiceOutputTypes, DynamoDBClientResolvedConfig>): {
  head(): ReleaseRecord | undefined;
  seed(record: ReleaseRecord): void;
} {
  const items = new Map<string, Record<string, AttributeValue>>();
  const id = (k: Record<string, AttributeValue>) => `${k[LEDGER_PARTITION_KEY].S}\u0000${k[LEDGER_SORT_KEY].S}`;
  ddbMock.on(GetItemCommand).callsFake(({ Key }) => ({ Item: items.get(id(Key)) }));
  ddbMock.on(PutItemCommand).callsFake(({ Item, ConditionExpression, ExpressionAttributeValues }) => {
    const current = items.get(id(Item));
    const failed =
      (ConditionExpression?.startsWith('attribute_not_exists') && current !== undefined) ||
      (ConditionExpression?.includes('= :rev') &&
        current?.[LEDGER_REVISION_ATTRIBUTE]?.N !== ExpressionAttributeValues[':rev'].N);
    if (failed) throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    items.set(id(Item), Item);
    return {};
  });
  ddbMock.on(QueryCommand).callsFake(({ ExpressionAttributeValues }) => ({
    Items: [...items.entries()]
      .filter(([k]) => k.startsWith(`${ExpressionAttributeValues[':pk'].S}\u0000`))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([, v]) => v),
  }));
  const headId = `${LEDGER_HEAD_KEY.pk}\u0000${LEDGER_HEAD_KEY.sk}`;
  return {
    head: () => parseRecord(items.get(headId)?.[LEDGER_RECORD_ATTRIBUTE]?.S),
    /** The head as a writer left it (revision 1). */
    seed: (record) =>
      items.set(headId, {
        [LEDGER_PARTITION_KEY]: { S: LEDGER_HEAD_KEY.pk },
        [LEDGER_SORT_KEY]: { S: LEDGER_HEAD_KEY.sk },
        [LEDGER_RECORD_ATTRIBUTE]: { S: JSON.stringify(record) },
        [LEDGER_REVISION_ATTRIBUTE]: { N: '1' },
      }),
  };
}
