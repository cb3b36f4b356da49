// Metrics as CloudWatch Embedded Metric Format lines: no SDK call, no extra dependency. Locally the
// same counts are kept in memory for the watcher's summary.
export const METRIC_NAMES = [
  'AlertsPosted',
  'AlertsSuppressed',
  'AlertsUndelivered',
  'MalformedLines',
  'LinesEvaluated',
  'ErrorRatePercent',
  'FailedOverRequests',
  // 1 when the release guard held a release: the release-held alarm pages on it.
  'ReleasesHeld',
  // 1 when the release guard froze an irreversible release: the release-frozen alarm pages on it.
  'ReleasesFrozen',
  // A finished release's part of DORA's four figures (core/release-stats.ts releaseOutcome): the
  // dashboard's delivery row.
  'Deployments',
  'ReachedUsers',
  'ChangeFailures',
  'RestoreSeconds',
  'LeadTimeSeconds',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

const UNITS: Partial<Record<MetricName, string>> = {
  ErrorRatePercent: 'Percent',
  RestoreSeconds: 'Seconds',
  LeadTimeSeconds: 'Seconds',
};

export function emfLine(
  namespace: string,
  dimensions: Record<string, string>,
  values: Partial<Record<MetricName, number>>,
  at = Date.now(),
): string {
  const names = Object.keys(values) as MetricName[];
  return JSON.stringify({
    _aws: {
      Timestamp: at,
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: [Object.keys(dimensions)],
          Metrics: names.map((Name) => ({ Name, Unit: UNITS[Name] ?? 'Count' })),
        },
      ],
    },
    ...dimensions,
    ...values,
  });
}
