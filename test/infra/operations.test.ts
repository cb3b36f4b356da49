// Saved Logs Insights queries (the very strings the CLI runs) and the stage dashboard.
import { Match, Template } from 'aws-cdk-lib/assertions';
import { INSIGHTS_QUERIES } from '../../core/insights-queries';
import { synthTemplate } from '../helpers/cdk';

let template: Template;
beforeAll(() => {
  template = synthTemplate({ stage: 'prod' });
});

test.each(Object.entries(INSIGHTS_QUERIES))(
  'query %s is saved with the exact text the CLI runs, on the access log group',
  (name, text) => {
    template.hasResourceProperties('AWS::Logs::QueryDefinition', {
      Name: `bluegreen/prod/${name}`,
      QueryString: text,
      LogGroupNames: [{ Ref: Match.stringLikeRegexp('^LogsAccess') }],
    });
  },
);

test('the on-call questions are all there', () => {
  expect(Object.keys(INSIGHTS_QUERIES)).toEqual(
    expect.arrayContaining([
      'error-rate-by-pool',
      'failovers-inside-requests',
      'latency-by-pool',
      'top-5xx-uris',
      'traffic-by-release',
      'recent-planned-switches',
    ]),
  );
});

test("metric filters on the JSON log: requests and 5xx by pool, client 5xx, request time; users' requests only (no preview)", () => {
  const users = '($.preview != "blue") && ($.preview != "green")';
  template.hasResourceProperties('AWS::Logs::MetricFilter', {
    FilterPattern: `{ ($.pool = "blue") && ${users} }`,
    MetricTransformations: [
      Match.objectLike({ MetricName: 'Requests-blue', MetricNamespace: 'Bluegreen/prod/Access' }),
    ],
  });
  template.hasResourceProperties('AWS::Logs::MetricFilter', {
    FilterPattern: `{ ($.pool = "green") && ($.status >= 500) && ${users} }`,
    MetricTransformations: [Match.objectLike({ MetricName: 'Errors5xx-green' })],
  });
  template.hasResourceProperties('AWS::Logs::MetricFilter', {
    FilterPattern: `{ ($.status >= 500) && ${users} }`,
    MetricTransformations: [Match.objectLike({ MetricName: 'ClientErrors5xx' })],
  });
  template.hasResourceProperties('AWS::Logs::MetricFilter', {
    FilterPattern: `{ ($.request_time = "*") && ${users} }`,
    MetricTransformations: [
      Match.objectLike({ MetricName: 'RequestTime', MetricValue: '$.request_time', Unit: 'Seconds' }),
    ],
  });
});

test('the dashboard shows traffic, errors, latency, failovers, alerts, alarms and the host', () => {
  const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
  expect(dashboard.Properties.DashboardName).toBe('bluegreen-prod');
  const body = JSON.stringify(dashboard.Properties.DashboardBody);
  for (const title of [
    'Requests by pool',
    '5xx by pool, and reaching clients',
    'Request time p50 / p99 (s)',
    'Failovers inside requests',
    'Alerts',
    'Alarms',
    'Host CPU %',
    'Host memory %',
    'Host disk % (/)',
  ]) {
    expect(body).toContain(`\\"title\\":\\"${title}\\"`);
  }
  for (const metric of [
    'AlertsPosted',
    'AlertsSuppressed',
    'AlertsUndelivered',
    'FailedOverRequests',
    'mem_used_percent',
    'disk_used_percent',
    'cpu_usage_active',
  ])
    expect(body).toContain(metric);
});

test('request time percentiles come from every request: a Logs Insights widget over the access log, with the saved query', () => {
  const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
  // The body is a join of JSON text and tokens (the log group's name): tokens become a placeholder.
  const parts = dashboard.Properties.DashboardBody['Fn::Join'][1] as unknown[];
  const widgets = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('')).widgets as Array<{
    type: string;
    properties: { title?: string; query?: string };
  }>;
  const latency = widgets.find((w) => w.properties.title === 'Request time p50 / p99 (s)')!;
  expect(latency.type).toBe('log');
  expect(latency.properties.query).toBe(`SOURCE 'TOKEN' | ${INSIGHTS_QUERIES['latency-percentiles']}`);
  expect(INSIGHTS_QUERIES['latency-percentiles']).toMatch(
    /pct\(request_time, 50\).*pct\(request_time, 99\).*by bin\(1m\)/s,
  );
});

test('the CLI finds the deployment through two parameters', () => {
  template.hasResourceProperties('AWS::SSM::Parameter', { Name: '/bluegreen/prod/public-url', Type: 'String' });
  template.hasResourceProperties('AWS::SSM::Parameter', { Name: '/bluegreen/prod/instance-id', Type: 'String' });
});
