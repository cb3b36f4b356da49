// The release ledger in the stack (lib/release-ledger.ts): one DynamoDB table per stage, in both
// modes, with the names and keys of core/release-ledger.ts, kept on delete; who may touch it. One
// promise per test, against the real app (bin/app.ts) with cdk.json's context.
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import {
  LEDGER_PARTITION_KEY,
  LEDGER_SORT_KEY,
  LEDGER_TTL_ATTRIBUTE,
  ledgerTableName,
} from '../../core/release-ledger';
import { ReleaseLedger } from '../../lib/release-ledger';
import { synthTemplate } from '../helpers/cdk';

const SINGLE = { stage: 'prod' };
const FLEET = { stage: 'prod', hosts: '3', operatorCidr: '198.51.100.7/32' };
let single: Template;
let fleet: Template;
beforeAll(() => {
  single = synthTemplate(SINGLE);
  fleet = synthTemplate(FLEET);
});

const theTable = (t: Template) => {
  const tables = Object.entries(t.findResources('AWS::DynamoDB::Table'));
  expect(tables).toHaveLength(1);
  return { id: tables[0][0], resource: tables[0][1] };
};

describe.each([
  ['single host', () => single],
  ['fleet', () => fleet],
])('%s', (_name, template) => {
  test('one table, bluegreen-<stage>-releases: pk/sk strings, on demand, point-in-time recovery, the aws/dynamodb key, TTL on expiresAt, a NEW_IMAGE stream', () => {
    const { resource } = theTable(template());
    expect(resource.Properties).toEqual({
      TableName: 'bluegreen-prod-releases',
      KeySchema: [
        { AttributeName: LEDGER_PARTITION_KEY, KeyType: 'HASH' },
        { AttributeName: LEDGER_SORT_KEY, KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      // On demand: no provisioned throughput to size or pay for idle.
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      // SSEEnabled with no key id: KMS with the AWS-managed aws/dynamodb key (not the AWS-owned default,
      // not a key of our own that would need a policy and grants).
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: LEDGER_TTL_ATTRIBUTE, Enabled: true },
      StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
    });
    expect(resource.Properties.TableName).toBe(ledgerTableName('prod'));
  });

  test('kept when the stack is deleted or the table replaced (it is the release history)', () => {
    const { resource } = theTable(template());
    expect(resource.DeletionPolicy).toBe('Retain');
    expect(resource.UpdateReplacePolicy).toBe('Retain');
  });

  test('its name is a stack output, next to the old record parameter it replaces', () => {
    const outputs = template().toJSON().Outputs as Record<string, { Value: unknown; Description: string }>;
    expect(outputs.ReleaseLedgerTable.Value).toEqual({ Ref: theTable(template()).id });
    expect(outputs.ReleaseLedgerTable.Description).toMatch(/release ledger/);
    expect(outputs.ReleaseParameter.Value).toBe('/bluegreen/prod/release');
    expect(outputs.ReleaseParameter.Description).toMatch(/nothing writes it any more/);
  });

  test('the old SSM record stays in the stack (the CLI imports it once; dropping it would delete it)', () => {
    const created = Object.values(template().findResources('Custom::CreateOnlyParameter')).map((r) =>
      JSON.stringify(r.Properties.Create),
    );
    expect(created.filter((c) => c.includes('/bluegreen/prod/release\\"'))).toHaveLength(1);
  });
});

test('who may touch the table: the alert function (read, Put, the latest releases, its stream) and, in a fleet, the hosts (GetItem of the head); no other role, no other table', () => {
  const dynamoStatements = (t: Template) =>
    Object.entries(t.findResources('AWS::IAM::Policy')).flatMap(([id, p]) =>
      (p.Properties.PolicyDocument.Statement as Array<{ Action: string | string[] }>)
        .filter((s) => JSON.stringify(s.Action).includes('dynamodb:'))
        .map((s) => [id.replace(/DefaultPolicy.*$/, ''), [s.Action].flat().join(',')]),
    );
  expect(dynamoStatements(single)).toEqual([
    ['AlertsRole', 'dynamodb:GetItem,dynamodb:PutItem'],
    ['AlertsRole', 'dynamodb:Query'],
    ['AlertsRole', 'dynamodb:ListStreams'],
    ['AlertsRole', 'dynamodb:DescribeStream,dynamodb:GetRecords,dynamodb:GetShardIterator'],
  ]);
  expect(dynamoStatements(fleet)).toEqual([
    ['FleetRole', 'dynamodb:GetItem'],
    ['AlertsRole', 'dynamodb:GetItem,dynamodb:PutItem'],
    ['AlertsRole', 'dynamodb:Query'],
    ['AlertsRole', 'dynamodb:ListStreams'],
    ['AlertsRole', 'dynamodb:DescribeStream,dynamodb:GetRecords,dynamodb:GetShardIterator'],
  ]);
  // Only this stage's table is named anywhere (a table ARN by name, or the table's own stream).
  const tableArns = [...JSON.stringify(fleet.toJSON()).matchAll(/:table\/([^"]+)"/g)].map((m) => m[1]);
  expect(new Set(tableArns)).toEqual(new Set(['bluegreen-prod-releases']));
});

describe('the construct', () => {
  const stack = () => new Stack(new App(), 'S');

  test('RETAIN unless told otherwise; its ARN by its fixed name (pseudo parameters only, as IAM and README write it)', () => {
    const deletionPolicy = (ledger: ReleaseLedger) =>
      Object.values(Template.fromStack(Stack.of(ledger)).findResources('AWS::DynamoDB::Table'))[0].DeletionPolicy;
    const s = stack();
    const ledger = new ReleaseLedger(s, 'Ledger', { stage: 'qa' });
    expect(deletionPolicy(ledger)).toBe('Retain');
    expect(
      deletionPolicy(new ReleaseLedger(stack(), 'Ledger', { stage: 'qa', removalPolicy: RemovalPolicy.DESTROY })),
    ).toBe('Delete');
    expect(ledger.tableName).toBe('bluegreen-qa-releases');
    expect(s.resolve(ledger.tableArn)).toEqual({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':dynamodb:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':table/bluegreen-qa-releases',
        ],
      ],
    });
  });

  test('a stage that makes no DynamoDB table name is refused at synth, naming it', () => {
    expect(() => new ReleaseLedger(stack(), 'Ledger', { stage: 'my stage' })).toThrow(
      /"bluegreen-my stage-releases" \(stage "my stage"\) is not a DynamoDB table name/,
    );
    expect(() => new ReleaseLedger(stack(), 'Ledger', { stage: 'x'.repeat(250) })).toThrow(/not a DynamoDB table name/);
  });
});

test('releaseHistoryDays: the retention written for the CLI to copy into each release; absent by default; whole days 30-3650 only', () => {
  const withDays = synthTemplate({ stage: 'prod', releaseHistoryDays: '400' });
  withDays.hasResourceProperties('AWS::SSM::Parameter', {
    Name: '/bluegreen/prod/release-history-days',
    Type: 'String',
    Value: '400',
  });
  expect(
    Object.values(single.findResources('AWS::SSM::Parameter')).filter(
      (p) => p.Properties.Name === '/bluegreen/prod/release-history-days',
    ),
  ).toEqual([]);
  for (const bad of ['29', '3651', '90.5', 'a year'])
    expect(() => synthTemplate({ stage: 'prod', releaseHistoryDays: bad })).toThrow(
      `context key "releaseHistoryDays" must be whole days 30-3650, got "${bad}"`,
    );
});
