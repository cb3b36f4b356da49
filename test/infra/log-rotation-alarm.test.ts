// A failed log rotation reaches on-call: bluegreen-log-reopen's final line → the file the CloudWatch
// agent ships to the error log group → a metric filter → the alarm bluegreen-<stage>-log-rotation-failed
// → the stage's alarm topic (email and Slack), with the runbook's section in its description.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { logGroupNames } from '../../core/names';
import { LOG_ROTATION_FAILED_PATTERN, LOG_ROTATION_FAILURES_METRIC } from '../../lib/log-rotation-alarm';
import { REPO_ROOT } from '../../local/paths';
import { synthTemplate } from '../helpers/cdk';
import { filterPatternTerms, matchesFilterPattern } from '../helpers/filter-pattern';
import { HOST_LOG_DIR } from '../helpers/logrotate';

let template: Template;
beforeAll(() => {
  template = synthTemplate({
    stage: 'prod',
    alarmEmails: 'oncall@example.com',
    runbookUrl: 'https://wiki.example.com/RUNBOOK.md',
  });
});

const logicalId = (type: string, props: Record<string, unknown>) => {
  const ids = Object.keys(template.findResources(type, { Properties: props }));
  expect(ids).toHaveLength(1);
  return ids[0];
};

/** What bluegreen-log-reopen.sh writes, run for real with a reopen that keeps failing: the log dir's new files and stderr. */
function failedReopen(): { files: Record<string, string>; stderr: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-reopen-'));
  try {
    const nginx = path.join(dir, 'broken-nginx');
    writeFileSync(nginx, '#!/bin/sh\necho "service \\"nginx\\" is not running" >&2\nexit 1\n');
    chmodSync(nginx, 0o755);
    const logs = path.join(dir, 'logs');
    execFileSync('mkdir', [logs]);
    writeFileSync(path.join(logs, 'access.log.1'), '{}\n');
    let stderr = '';
    try {
      execFileSync('sh', [path.join(REPO_ROOT, 'userdata', 'bluegreen-log-reopen.sh'), logs], {
        env: { ...process.env, BLUEGREEN_NGINX: nginx, BLUEGREEN_REOPEN_TRIES: '2', BLUEGREEN_REOPEN_PAUSE: '0' },
        stdio: 'pipe',
      });
      throw new Error('bluegreen-log-reopen exited 0 with a reopen that fails');
    } catch (e) {
      const err = e as { status?: number; stderr?: Buffer };
      if (err.status !== 1) throw e;
      stderr = String(err.stderr);
    }
    const files = Object.fromEntries(
      readdirSync(logs)
        .filter((f) => f !== 'access.log.1')
        .map((f) => [f, readFileSync(path.join(logs, f), 'utf8')]),
    );
    return { files, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the script's final failure line matches the metric filter; its retry warnings and nginx's own errors do not", () => {
  // GIVEN the line the real script wrote after a reopen that kept failing
  const { files, stderr } = failedReopen();
  expect(Object.keys(files)).toEqual(['log-rotation-failures']);
  const lines = files['log-rotation-failures'].split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);

  // WHEN it is matched against the deployed filter pattern (CloudWatch's term semantics)
  const pattern = template.findResources('AWS::Logs::MetricFilter', {
    Properties: { MetricTransformations: [Match.objectLike({ MetricName: LOG_ROTATION_FAILURES_METRIC })] },
  });
  const [filter] = Object.values(pattern);
  expect(filter.Properties.FilterPattern).toBe(LOG_ROTATION_FAILED_PATTERN);

  // THEN it counts; what else reaches that log group does not
  expect(filterPatternTerms(LOG_ROTATION_FAILED_PATTERN)).toEqual([
    'bluegreen-logrotate: nginx did not reopen its logs',
  ]);
  expect(matchesFilterPattern(filter.Properties.FilterPattern, lines[0])).toBe(true);
  const warning = stderr.split('\n').find((l) => l.includes('try 1 of 2'))!;
  expect(warning).toBeDefined();
  expect(matchesFilterPattern(filter.Properties.FilterPattern, warning)).toBe(false);
  expect(
    matchesFilterPattern(
      filter.Properties.FilterPattern,
      '2026/11/23 17:00:00 [alert] 1#1: *3 reopen of "/var/lib/bluegreen/logs/access.log" failed (13: Permission denied)',
    ),
  ).toBe(false);
});

test('the agent ships the file the script writes to the error log group, which the filter reads', () => {
  const { files } = failedReopen();
  const agent = JSON.parse(readFileSync(path.join(REPO_ROOT, 'userdata', 'cloudwatch-agent.json'), 'utf8'));
  const entry = (agent.logs.logs_collected.files.collect_list as Array<Record<string, string>>).find(
    (f) => f.file_path === `${HOST_LOG_DIR}/${Object.keys(files)[0]}`,
  );
  expect(entry).toMatchObject({ log_group_name: '__ERROR_LOG_GROUP__' });
  // A stream of its own: nginx's error.log keeps {instance_id}.
  expect(entry!.log_stream_name).not.toBe('{instance_id}');

  const errorGroup = logicalId('AWS::Logs::LogGroup', { LogGroupName: logGroupNames('prod').error });
  template.hasResourceProperties('AWS::Logs::MetricFilter', {
    LogGroupName: { Ref: errorGroup },
    FilterPattern: LOG_ROTATION_FAILED_PATTERN,
    MetricTransformations: [
      { MetricName: LOG_ROTATION_FAILURES_METRIC, MetricNamespace: 'Bluegreen/prod/Host', MetricValue: '1' },
    ],
  });
});

test('the alarm: named like the others, one failure is enough, no data is no failure, ALARM and OK go to the alarm topic, the runbook section in its description', () => {
  const topic = { Ref: logicalId('AWS::SNS::Topic', { TopicName: 'bluegreen-prod-alarms' }) };
  const alarm = template.findResources('AWS::CloudWatch::Alarm', {
    Properties: { AlarmName: 'bluegreen-prod-log-rotation-failed' },
  });
  expect(Object.keys(alarm)).toHaveLength(1);
  const props = Object.values(alarm)[0].Properties;
  expect(props).toMatchObject({
    MetricName: LOG_ROTATION_FAILURES_METRIC,
    Namespace: 'Bluegreen/prod/Host',
    Statistic: 'Sum',
    Threshold: 1,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    EvaluationPeriods: 1,
    TreatMissingData: 'notBreaching',
    AlarmActions: [topic],
    OKActions: [topic],
  });
  expect(props.AlarmDescription).toContain('https://wiki.example.com/RUNBOOK.md#a-failed-log-rotation');
});
