// Each release as a vertical line on the dashboard's request and error graphs: the alert function
// rewrites those two widgets' annotations from the ledger's latest releases when a release ends.
// Pure: the dashboard body (CloudWatch's JSON) and the records in, the body out.
import type { ReleaseRecord } from './release-record';
import { reachedUsersAt } from './release-stats';

/** The graphs that carry the releases (lib/operations.ts titles them with these). */
export const RELEASE_GRAPH_TITLES = {
  requests: 'Requests by pool',
  errors: '5xx by pool, and reaching clients',
} as const;

/** How many releases the graphs show: the latest ones (a line per release stays readable). */
export const ANNOTATED_RELEASES = 20;

/** Colours by how a release ended (CloudWatch takes #rrggbb). */
const COLOURS: Partial<Record<ReleaseRecord['state'], string>> = {
  promoted: '#2ca02c',
  'rolled-back': '#d62728',
  frozen: '#9467bd',
  held: '#ff7f0e',
  failed: '#7f7f7f',
};

export interface VerticalAnnotation {
  value: string;
  label: string;
  color?: string;
}

/**
 * One line per release that reached users (its canary or its promotion), at that moment, labelled
 * with the release and how it ended; the latest ANNOTATED_RELEASES, oldest first.
 */
export function releaseAnnotations(records: readonly ReleaseRecord[]): VerticalAnnotation[] {
  return records
    .flatMap((r) => {
      const at = reachedUsersAt(r);
      if (at === undefined) return [];
      const colour = COLOURS[r.state];
      return [
        {
          at,
          annotation: {
            value: new Date(at).toISOString(),
            label: `${r.release} ${r.state}`,
            ...(colour ? { color: colour } : {}),
          },
        },
      ];
    })
    .sort((a, b) => a.at - b.at)
    .slice(-ANNOTATED_RELEASES)
    .map((x) => x.annotation);
}

interface DashboardBody {
  widgets?: Array<{ properties?: { title?: string; annotations?: Record<string, unknown> } }>;
}

/**
 * The dashboard body with the release graphs' vertical annotations replaced by `annotations` (their
 * horizontal ones kept); undefined when the body has neither graph (a dashboard not ours).
 */
export function withReleaseAnnotations(body: string, annotations: readonly VerticalAnnotation[]): string | undefined {
  const parsed = JSON.parse(body) as DashboardBody;
  const titles: readonly string[] = Object.values(RELEASE_GRAPH_TITLES);
  let found = false;
  for (const widget of parsed.widgets ?? []) {
    const p = widget.properties;
    if (!p?.title || !titles.includes(p.title)) continue;
    found = true;
    p.annotations = { ...p.annotations, vertical: [...annotations] };
  }
  return found ? JSON.stringify(parsed) : undefined;
}
