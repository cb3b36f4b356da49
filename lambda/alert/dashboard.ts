// The releases on the stage's dashboard (core/dashboard-annotations.ts): when a release ends, the
// alert function redraws the request and error graphs' vertical lines from the ledger's latest
// releases. Stateless: a dashboard redeployed by CloudFormation gets them back with the next release.
import { CloudWatchClient, GetDashboardCommand, PutDashboardCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { ANNOTATED_RELEASES, releaseAnnotations, withReleaseAnnotations } from '../../core/dashboard-annotations';
import { LEDGER_PARTITION_KEY, LEDGER_RELEASES_PARTITION } from '../../core/release-ledger';
import type { ReleaseRecord } from '../../core/release-record';
import { recordOf } from '../../support/release-ledger';

/** The latest releases (ids begin with their start time: newest first is the sort key descending). */
async function latestReleases(ddb: DynamoDBClient, table: string): Promise<ReleaseRecord[]> {
  const page = await ddb.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': LEDGER_PARTITION_KEY },
      ExpressionAttributeValues: { ':pk': { S: LEDGER_RELEASES_PARTITION } },
      ScanIndexForward: false,
      Limit: ANNOTATED_RELEASES,
    }),
  );
  return (page.Items ?? []).flatMap((item) => {
    const r = recordOf(item);
    return r ? [r] : [];
  });
}

/** Redraws the releases on the dashboard: 'updated', or why not ('no-dashboard', 'not-ours'). */
export async function annotateReleases(
  cw: CloudWatchClient,
  ddb: DynamoDBClient,
  table: string,
  dashboard: string,
): Promise<'updated' | 'no-dashboard' | 'not-ours'> {
  const annotations = releaseAnnotations(await latestReleases(ddb, table));
  let body: string | undefined;
  try {
    body = (await cw.send(new GetDashboardCommand({ DashboardName: dashboard }))).DashboardBody;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFound' || (err as Error).name === 'DashboardNotFoundError')
      return 'no-dashboard';
    throw err;
  }
  const next = body ? withReleaseAnnotations(body, annotations) : undefined;
  if (!next) return 'not-ours';
  await cw.send(new PutDashboardCommand({ DashboardName: dashboard, DashboardBody: next }));
  return 'updated';
}
