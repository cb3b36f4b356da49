// The pools' app log in the stack: its group (beside nginx's, same retention, removal and
// encryption), the host role's two actions on it and nothing more, the stage's saved query, and
// the group's name in the host's /etc/bluegreen/env (which docker-compose.yml's awslogs options read).
import { Match, Template } from 'aws-cdk-lib/assertions';
import { APP_LOG_QUERY, APP_LOG_QUERY_NAME } from '../../core/insights-queries';
import { logGroupNames } from '../../core/names';
import { synthTemplate } from '../helpers/cdk';

let template: Template;
beforeAll(() => {
  template = synthTemplate({ stage: 'prod', logRetentionDays: '90' });
});

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
function logGroup(name: string): [string, Resource] {
  const found = Object.entries(template.findResources('AWS::Logs::LogGroup') as Record<string, Resource>).filter(
    ([, r]) => r.Properties.LogGroupName === name,
  );
  expect(found).toHaveLength(1);
  return found[0];
}

test("one app log group per stage, named in core, with the stage's retention, kept like nginx's groups", () => {
  const [, app] = logGroup(logGroupNames('prod').app);
  const [, access] = logGroup(logGroupNames('prod').access);
  expect(app.Properties.RetentionInDays).toBe(90);
  expect(app.DeletionPolicy).toBe('Retain');
  // The same settings as the existing groups (retention, removal, encryption: none of them names a key).
  const { LogGroupName: _a, ...appRest } = app.Properties;
  const { LogGroupName: _b, ...accessRest } = access.Properties;
  expect(appRest).toEqual(accessRest);
  expect(app.DeletionPolicy).toBe(access.DeletionPolicy);
});

test('the host role may create streams and put events in the app group, and nothing else there', () => {
  const [appId] = logGroup(logGroupNames('prod').app);
  const policies = template.findResources('AWS::IAM::Policy') as Record<
    string,
    { Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> }; Roles: unknown[] } }
  >;
  const onApp = Object.values(policies).flatMap((p) =>
    p.Properties.PolicyDocument.Statement.filter((s) =>
      JSON.stringify(s.Resource ?? s.NotResource ?? null).includes(appId),
    ).map((s) => ({
      roles: JSON.stringify(p.Properties.Roles),
      statement: s,
    })),
  );
  expect(onApp).toHaveLength(1);
  expect(onApp[0].roles).toContain('HostRole');
  expect(onApp[0].statement).toEqual({
    Sid: 'ShipAppLogs',
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: { 'Fn::GetAtt': [appId, 'Arn'] },
  });
});

test('the app log query is saved on the app group, with the text the alert links open', () => {
  const [appId] = logGroup(logGroupNames('prod').app);
  template.hasResourceProperties('AWS::Logs::QueryDefinition', {
    Name: `bluegreen/prod/${APP_LOG_QUERY_NAME}`,
    QueryString: APP_LOG_QUERY,
    LogGroupNames: [{ Ref: appId }],
  });
});

test("the host's /etc/bluegreen/env names the app group (docker-compose.yml's awslogs-group)", () => {
  const [appId] = logGroup(logGroupNames('prod').app);
  template.hasResourceProperties('AWS::EC2::Instance', {
    UserData: {
      'Fn::Base64': {
        'Fn::Join': ['', Match.arrayWith(["'\nexport APP_LOG_GROUP='", { Ref: appId }])],
      },
    },
  });
});
