// What on-call looks at: the saved Logs Insights queries (the same strings `bluegreen insights`
// runs), metrics from the JSON access log, and one dashboard for the stage.
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { RELEASE_GRAPH_TITLES } from '../core/dashboard-annotations';
import { dashboardName } from '../core/names';
import { APP_LOG_QUERY, APP_LOG_QUERY_NAME, INSIGHTS_QUERIES, QueryName } from '../core/insights-queries';
import { POOLS } from '../core/pools';

export interface OperationsProps {
  readonly stage: string;
  readonly accessLogGroup: logs.ILogGroup;
  /** The pools' stdout/stderr: its saved query is the one the failing-pool alerts link to. */
  readonly appLogGroup: logs.ILogGroup;
  /** Namespace of the alert function's EMF metrics (dimension Stage). */
  readonly alertMetricsNamespace: string;
  /** Namespace of the host's CloudWatch agent metrics (dimension InstanceId). */
  readonly hostMetricsNamespace: string;
  readonly alarms: cloudwatch.IAlarm[];
  /** Fleet mode: a row for the hosts and the load balancer (FleetHosts.dashboardWidgets). */
  readonly fleetWidgets?: cloudwatch.IWidget[];
}

export class Operations extends Construct {
  public readonly queries: Record<QueryName, logs.CfnQueryDefinition>;
  /** The app log's saved query (APP_LOG_QUERY on the app log group). */
  public readonly appLogQuery: logs.CfnQueryDefinition;
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly accessMetricsNamespace: string;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const { stage } = props;
    this.accessMetricsNamespace = `Bluegreen/${stage}/Access`;
    this.queries = this.createQueries(stage, props.accessLogGroup);
    this.appLogQuery = new logs.CfnQueryDefinition(this, `Query-${APP_LOG_QUERY_NAME}`, {
      name: `bluegreen/${stage}/${APP_LOG_QUERY_NAME}`,
      queryString: APP_LOG_QUERY,
      logGroupNames: [props.appLogGroup.logGroupName],
    });
    this.addAccessMetricFilters(props.accessLogGroup);
    this.dashboard = this.createDashboard(props);
  }

  /**
   * L1 on purpose: the L2 QueryString builder would re-compose the text; these must be the exact
   * strings the CLI runs.
   */
  private createQueries(stage: string, accessLogGroup: logs.ILogGroup): Record<QueryName, logs.CfnQueryDefinition> {
    return Object.fromEntries(
      (Object.keys(INSIGHTS_QUERIES) as QueryName[]).map((name) => [
        name,
        new logs.CfnQueryDefinition(this, `Query-${name}`, {
          name: `bluegreen/${stage}/${name}`,
          queryString: INSIGHTS_QUERIES[name],
          logGroupNames: [accessLogGroup.logGroupName],
        }),
      ]),
    ) as Record<QueryName, logs.CfnQueryDefinition>;
  }

  /**
   * Metric filters on the JSON access log: requests and latency by pool, client-facing 5xx. Users'
   * requests only: a preview request (`preview` holds its pool) is a tester's, and a preview's 500s
   * must not show on the stage's error graphs, as no alert counts them either.
   */
  private addAccessMetricFilters(accessLogGroup: logs.ILogGroup): void {
    const ns = this.accessMetricsNamespace;
    const notPreview = POOLS.map((p) => logs.FilterPattern.stringValue('$.preview', '!=', p));
    for (const pool of POOLS) {
      new logs.MetricFilter(this, `Requests-${pool}`, {
        logGroup: accessLogGroup,
        filterPattern: logs.FilterPattern.all(logs.FilterPattern.stringValue('$.pool', '=', pool), ...notPreview),
        metricNamespace: ns,
        metricName: `Requests-${pool}`,
        metricValue: '1',
        defaultValue: 0,
      });
      new logs.MetricFilter(this, `Errors5xx-${pool}`, {
        logGroup: accessLogGroup,
        filterPattern: logs.FilterPattern.all(
          logs.FilterPattern.stringValue('$.pool', '=', pool),
          logs.FilterPattern.numberValue('$.status', '>=', 500),
          ...notPreview,
        ),
        metricNamespace: ns,
        metricName: `Errors5xx-${pool}`,
        metricValue: '1',
        defaultValue: 0,
      });
    }
    new logs.MetricFilter(this, 'ClientErrors5xx', {
      logGroup: accessLogGroup,
      filterPattern: logs.FilterPattern.all(logs.FilterPattern.numberValue('$.status', '>=', 500), ...notPreview),
      metricNamespace: ns,
      metricName: 'ClientErrors5xx',
      metricValue: '1',
      defaultValue: 0,
    });
    new logs.MetricFilter(this, 'RequestTime', {
      logGroup: accessLogGroup,
      filterPattern: logs.FilterPattern.all(logs.FilterPattern.exists('$.request_time'), ...notPreview),
      metricNamespace: ns,
      metricName: 'RequestTime',
      metricValue: '$.request_time',
      unit: cloudwatch.Unit.SECONDS,
    });
  }

  /** The stage's dashboard, one row at a time: the title, traffic, alerts, the host, and a fleet's row. */
  private createDashboard(props: OperationsProps): cloudwatch.Dashboard {
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: dashboardName(props.stage),
      defaultInterval: Duration.hours(3),
    });
    dashboard.addWidgets(titleWidget(props.stage));
    dashboard.addWidgets(...this.trafficWidgets(props.accessLogGroup));
    dashboard.addWidgets(...alertWidgets(props));
    dashboard.addWidgets(...deliveryWidgets(props));
    dashboard.addWidgets(...hostWidgets(props.hostMetricsNamespace));
    if (props.fleetWidgets?.length) dashboard.addWidgets(...props.fleetWidgets);
    return dashboard;
  }

  private trafficWidgets(accessLogGroup: logs.ILogGroup): cloudwatch.IWidget[] {
    const ns = this.accessMetricsNamespace;
    return [
      new cloudwatch.GraphWidget({
        title: RELEASE_GRAPH_TITLES.requests,
        left: ['blue', 'green'].map((p) => metric(ns, `Requests-${p}`).with({ label: p })),
        width: 8,
        stacked: true,
      }),
      new cloudwatch.GraphWidget({
        title: RELEASE_GRAPH_TITLES.errors,
        left: [
          ...['blue', 'green'].map((p) => metric(ns, `Errors5xx-${p}`).with({ label: p })),
          metric(ns, 'ClientErrors5xx').with({ label: 'to clients' }),
        ],
        width: 8,
      }),
      // Percentiles over every request, from the log itself (Logs Insights' pct), the same query
      // `bluegreen insights latency-percentiles` runs: no doubt about what a metric filter's
      // aggregation keeps.
      new cloudwatch.LogQueryWidget({
        title: 'Request time p50 / p99 (s)',
        logGroupNames: [accessLogGroup.logGroupName],
        queryString: INSIGHTS_QUERIES['latency-percentiles'],
        view: cloudwatch.LogQueryVisualizationType.LINE,
        width: 8,
      }),
    ];
  }
}

function metric(
  namespace: string,
  metricName: string,
  statistic = 'Sum',
  dimensionsMap?: Record<string, string>,
): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace, metricName, statistic, period: Duration.minutes(1), dimensionsMap });
}

function titleWidget(stage: string): cloudwatch.IWidget {
  return new cloudwatch.TextWidget({
    markdown: `# bluegreen ${stage}\nRequests and errors from the nginx access log; alerts from the alert function; host from the CloudWatch agent. Investigate with \`npx bluegreen insights <query> --stage ${stage}\` (RUNBOOK.md).`,
    width: 24,
    height: 2,
  });
}

function alertWidgets(props: OperationsProps): cloudwatch.IWidget[] {
  const alerts = (name: string) => metric(props.alertMetricsNamespace, name, 'Sum', { Stage: props.stage });
  return [
    new cloudwatch.GraphWidget({
      title: 'Failovers inside requests',
      left: [alerts('FailedOverRequests').with({ label: 'requests answered by the backup after a failed attempt' })],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: 'Alerts',
      left: [
        alerts('AlertsPosted').with({ label: 'posted' }),
        alerts('AlertsSuppressed').with({ label: 'suppressed' }),
        alerts('AlertsUndelivered').with({ label: 'undelivered' }),
      ],
      width: 8,
    }),
    new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: props.alarms, width: 8 }),
  ];
}

/** DORA's window on the dashboard, as `bluegreen history --stats` defaults to. */
export const DELIVERY_WINDOW_DAYS = 90;

/**
 * DORA's four figures over the last 90 days, from what the alert function publishes when a release
 * ends (core/release-stats.ts releaseOutcome): each widget has its own window, whatever the
 * dashboard's time range, and one value over all of it.
 */
function deliveryWidgets(props: OperationsProps): cloudwatch.IWidget[] {
  const window = {
    start: `-P${DELIVERY_WINDOW_DAYS}D`,
    setPeriodToTimeRange: true,
    width: 6,
    height: 4,
  } as const;
  const release = (name: string, statistic = 'Sum') =>
    metric(props.alertMetricsNamespace, name, statistic, { Stage: props.stage });
  return [
    new cloudwatch.SingleValueWidget({
      title: `Deployment frequency (${DELIVERY_WINDOW_DAYS} d)`,
      metrics: [
        new cloudwatch.MathExpression({
          expression: `FILL(deployments, 0) / ${DELIVERY_WINDOW_DAYS}`,
          usingMetrics: { deployments: release('Deployments') },
          label: 'promoted per day',
        }),
      ],
      ...window,
    }),
    new cloudwatch.SingleValueWidget({
      title: `Change failure rate (${DELIVERY_WINDOW_DAYS} d)`,
      metrics: [
        new cloudwatch.MathExpression({
          expression: '100 * FILL(failures, 0) / reached',
          usingMetrics: { failures: release('ChangeFailures'), reached: release('ReachedUsers') },
          label: '% of the releases that reached users',
        }),
      ],
      ...window,
    }),
    new cloudwatch.SingleValueWidget({
      title: `Time to restore, median (${DELIVERY_WINDOW_DAYS} d)`,
      metrics: [release('RestoreSeconds', 'p50').with({ label: 'seconds (rollbacks, canary aborts)' })],
      ...window,
    }),
    new cloudwatch.SingleValueWidget({
      title: `Lead time, median (${DELIVERY_WINDOW_DAYS} d)`,
      metrics: [release('LeadTimeSeconds', 'p50').with({ label: 'seconds, image pushed to promoted' })],
      ...window,
    }),
  ];
}

function hostWidgets(hostMetricsNamespace: string): cloudwatch.IWidget[] {
  const host = (metric: string, label: string) =>
    // A free-text namespace, not a {namespace,InstanceId} schema: the agent adds cpu/device/path
    // dimensions that a schema would have to list exactly.
    new cloudwatch.MathExpression({
      expression: `SEARCH('Namespace="${hostMetricsNamespace}" MetricName="${metric}"', 'Average', 300)`,
      label,
      period: Duration.minutes(5),
    });
  return [
    new cloudwatch.GraphWidget({ title: 'Host CPU %', left: [host('cpu_usage_active', 'cpu')], width: 8 }),
    new cloudwatch.GraphWidget({ title: 'Host memory %', left: [host('mem_used_percent', 'memory')], width: 8 }),
    new cloudwatch.GraphWidget({ title: 'Host disk % (/)', left: [host('disk_used_percent', 'disk')], width: 8 }),
  ];
}
