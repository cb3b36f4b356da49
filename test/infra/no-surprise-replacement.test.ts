// A stack update that changes only settings leaves the host and the pool state alone.
// Two synths that differ in alert settings, initial pool images/releases, retention
// and tags must give the same instance (logical id and properties), and must not hand the pool
// state resources anything to do. Only the host's own files (nginx/, app/, userdata/: the asset
// hashes in its user data) replace it.
import { Template } from 'aws-cdk-lib/assertions';
import { synthTemplate } from '../helpers/cdk';

const BASE = { stage: 'prod', operatorCidr: '198.51.100.7/32' };
const SETTINGS_CHANGED = {
  ...BASE,
  alertWindow: '500',
  alertMinWindow: '20',
  alertErrorRate: '0.1',
  alertCooldownSeconds: '60',
  alarmFunctionErrors: '5',
  alarmUndeliveredAlerts: '3',
  runbookUrl: 'https://wiki.example.com/RUNBOOK.md',
  logRetentionDays: '90',
  ecrKeepImages: '5',
  // initial values only: a deployed stack ignores them
  blueImage: 'ghcr.io/acme/shop:9.9.9',
  greenImage: 'ghcr.io/acme/shop:9.9.8',
  releaseBlue: 'shop-999',
  releaseGreen: 'shop-998',
  initialActivePool: 'green',
};

let base: Template;
let changed: Template;
let tagged: Template;
beforeAll(() => {
  base = synthTemplate(BASE);
  changed = synthTemplate(SETTINGS_CHANGED);
  tagged = synthTemplate(BASE, { tags: { CostCenter: 'cc-42', Owner: 'platform' } });
});

const only = (t: Template, type: string) => {
  const found = Object.entries(t.findResources(type));
  expect(found).toHaveLength(1);
  return { logicalId: found[0][0], resource: found[0][1] };
};

test('the instance keeps its logical id and every property (UserData, ImageId included) when settings change', () => {
  // GIVEN / WHEN two synths that differ only in settings and initial values
  const a = only(base, 'AWS::EC2::Instance');
  const b = only(changed, 'AWS::EC2::Instance');
  // THEN
  expect(b.logicalId).toBe(a.logicalId);
  expect(b.resource.Properties).toEqual(a.resource.Properties);
  expect(b.resource.Properties.ImageId).toBe(
    'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64',
  );
  expect(JSON.stringify(b.resource.Properties.UserData)).not.toMatch(/shop-99|9\.9\.9|ghcr\.io/);
  // and what it is launched with: no launch template (the metadata options are instance properties,
  // compared above), and the same instance profile
  expect(changed.findResources('AWS::EC2::LaunchTemplate')).toEqual({});
  expect(b.resource.Properties.MetadataOptions).toEqual({ HttpPutResponseHopLimit: 1, HttpTokens: 'required' });
  expect(only(changed, 'AWS::IAM::InstanceProfile').resource.Properties).toEqual(
    only(base, 'AWS::IAM::InstanceProfile').resource.Properties,
  );
});

test('a tag on the app changes the instance tags (an in-place update) and nothing else of it', () => {
  const a = only(base, 'AWS::EC2::Instance');
  const b = only(tagged, 'AWS::EC2::Instance');
  expect(b.logicalId).toBe(a.logicalId);
  const { Tags: tagsA, ...restA } = a.resource.Properties;
  const { Tags: tagsB, ...restB } = b.resource.Properties;
  expect(restB).toEqual(restA);
  expect(tagsB).toEqual(expect.arrayContaining([...tagsA, { Key: 'CostCenter', Value: 'cc-42' }]));
});

test('the pool state resources get no update at all from settings or tags (their properties are identical)', () => {
  const props = (t: Template) =>
    Object.fromEntries(
      Object.entries(t.findResources('Custom::CreateOnlyParameter')).map(([id, r]) => [id, r.Properties]),
    );
  expect(props(tagged)).toEqual(props(base));
  const alertsOnly = synthTemplate({
    ...BASE,
    alertWindow: '500',
    alertErrorRate: '0.1',
    runbookUrl: 'https://wiki.example.com/RUNBOOK.md',
    logRetentionDays: '90',
  });
  expect(props(alertsOnly)).toEqual(props(base));
  // active pool, maintenance, canary share, release record, and per pool image, release, env, options
  expect(Object.keys(props(base))).toHaveLength(12);
});

test('new initial values change only the Create payload, which CloudFormation sends as an Update that has no call', () => {
  // AwsCustomResource without onUpdate makes no SDK call on Update (see lib/create-only-parameter.ts,
  // and test/infra/pool-state.test.ts, which runs the handler): the live values stay.
  const a = base.findResources('Custom::CreateOnlyParameter');
  const b = changed.findResources('Custom::CreateOnlyParameter');
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  let differing = 0;
  for (const id of Object.keys(a)) {
    expect(b[id].Properties.Update).toBeUndefined();
    expect(b[id].Properties.Delete).toEqual(a[id].Properties.Delete);
    expect(b[id].Properties.ServiceToken).toEqual(a[id].Properties.ServiceToken);
    if (b[id].Properties.Create !== a[id].Properties.Create) differing++;
  }
  expect(differing).toBe(5); // active pool, two images, two releases
});

test('the host is replaced by a change of its files only: its logical id carries the user data hash', () => {
  // userDataCausesReplacement: the id ends in a hash of the user data, which holds the asset hashes.
  const { logicalId, resource } = only(base, 'AWS::EC2::Instance');
  expect(logicalId).toMatch(/^HostInstance[0-9A-F]{8}[0-9a-f]{16}$/);
  const userData = JSON.stringify(resource.Properties.UserData);
  expect(userData.match(/\/[0-9a-f]{64}\.zip/g)).toHaveLength(3); // nginx/, app/, userdata/
});
