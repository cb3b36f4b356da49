// Each release as a line on the dashboard's request and error graphs (core/dashboard-annotations.ts):
// the lines from the records, and the body rewritten on those two graphs only, against the body the
// stack itself synthesizes.
import {
  ANNOTATED_RELEASES,
  RELEASE_GRAPH_TITLES,
  releaseAnnotations,
  withReleaseAnnotations,
} from '../../core/dashboard-annotations';
import { ReleaseRecord } from '../../core/release-record';
import { bakingRecord } from '../helpers/release';
import { synthTemplate } from '../helpers/cdk';

const T0 = Date.parse('2026-11-23T14:00:00Z');
const promotedAt = (t: number, over: Partial<ReleaseRecord>): ReleaseRecord =>
  bakingRecord(t, { steps: [{ at: new Date(t + 60_000).toISOString(), step: 'promote', ok: true }], ...over });

test('a line per release that reached users, at that moment, labelled and coloured by how it ended; the latest 20', () => {
  const records = [
    promotedAt(T0, { id: 'a', release: 'v2', state: 'rolled-back' }),
    promotedAt(T0 - 3_600_000, { id: 'b', release: 'v1', state: 'promoted' }),
    // Failed its gate: never reached users, no line.
    bakingRecord(T0 + 600_000, { id: 'c', release: 'v3', state: 'failed', steps: [] }),
  ];
  expect(releaseAnnotations(records)).toEqual([
    { value: new Date(T0 - 3_600_000 + 60_000).toISOString(), label: 'v1 promoted', color: '#2ca02c' },
    { value: new Date(T0 + 60_000).toISOString(), label: 'v2 rolled-back', color: '#d62728' },
  ]);
  const many = Array.from({ length: 30 }, (_, i) =>
    promotedAt(T0 + i * 60_000, { id: `r${i}`, release: `v${i}`, state: 'promoted' }),
  );
  const lines = releaseAnnotations(many);
  expect(lines).toHaveLength(ANNOTATED_RELEASES);
  expect(lines.at(-1)!.label).toBe('v29 promoted');
});

test("the stack's own dashboard body: the two graphs get the lines, nothing else changes", () => {
  const dashboard = Object.values(synthTemplate({ stage: 'prod' }).findResources('AWS::CloudWatch::Dashboard'))[0];
  // The body is an Fn::Join of strings and tokens: its widgets' titles are literal.
  const body = JSON.stringify(dashboard.Properties.DashboardBody);
  for (const title of Object.values(RELEASE_GRAPH_TITLES)) expect(body).toContain(`\\"title\\":\\"${title}\\"`);
  const live = JSON.stringify({
    widgets: [
      { type: 'text', properties: { markdown: '# x' } },
      { type: 'metric', properties: { title: RELEASE_GRAPH_TITLES.requests, metrics: [] } },
      {
        type: 'metric',
        properties: { title: RELEASE_GRAPH_TITLES.errors, annotations: { horizontal: [{ value: 5 }] } },
      },
      { type: 'metric', properties: { title: 'Host CPU %' } },
    ],
  });
  const lines = [{ value: '2026-11-23T14:01:00.000Z', label: 'v2 promoted' }];
  const next = JSON.parse(withReleaseAnnotations(live, lines)!);
  expect(next.widgets[1].properties.annotations).toEqual({ vertical: lines });
  expect(next.widgets[2].properties.annotations).toEqual({ horizontal: [{ value: 5 }], vertical: lines });
  expect(next.widgets[3].properties.annotations).toBeUndefined();
  expect(next.widgets[0]).toEqual({ type: 'text', properties: { markdown: '# x' } });
  // A dashboard without those graphs is not ours to rewrite.
  expect(withReleaseAnnotations(JSON.stringify({ widgets: [] }), lines)).toBeUndefined();
});
