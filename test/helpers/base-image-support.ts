// When each release line of the base images stops getting fixes: the one table
// test/infra/base-images.test.ts checks the project's images against (README: how to bump the base
// images). A line missing here fails the test until its date is added from the source named.

export interface SupportTable {
  /** Where the dates come from (re-read it when adding a line). */
  source: string;
  /** Release line → last day it gets fixes (YYYY-MM-DD). */
  lines: Record<string, string>;
  /** The lines a project image may use at all (LTS / stable), beyond being still supported. */
  preferred: (line: string) => boolean;
  preferredWhat: string;
}

export const BASE_IMAGE_SUPPORT: Record<'node' | 'nginx', SupportTable> = {
  node: {
    // nodejs/Release README and schedule.json ("end"), also https://nodejs.org/en/about/previous-releases.
    source: 'https://github.com/nodejs/Release#release-schedule (schedule.json, "end")',
    lines: {
      '18': '2025-04-30',
      '20': '2026-04-30',
      '21': '2024-06-01',
      '22': '2027-04-30',
      '23': '2025-06-01',
      '24': '2028-04-30',
      '25': '2026-06-01',
      '26': '2029-04-30',
    },
    // Odd lines up to 25 never become LTS; from 27 on every line does (the 2026 schedule change).
    preferred: (line) => Number(line) >= 27 || Number(line) % 2 === 0,
    preferredWhat: 'an LTS line (even up to 26)',
  },
  nginx: {
    // nginx.org supports the current stable (even minor) and mainline (odd) lines only: a stable line
    // ends when the next one is released (each April), a mainline when it becomes that stable.
    // 1.28.0 came out 2025-04-23, 1.30.0 on 2026-04-14 (nginx.org news, CHANGES-1.30). 1.30's date is
    // the expected release of 1.32.0: this test then asks for the bump.
    source: 'https://nginx.org/en/download.html and https://nginx.org/ (news: nginx-1.x.0 stable version released)',
    lines: {
      '1.24': '2024-04-23',
      '1.25': '2024-04-23',
      '1.26': '2025-04-23',
      '1.27': '2025-04-23',
      '1.28': '2026-04-14',
      '1.29': '2026-04-14',
      '1.30': '2027-04-30',
    },
    preferred: (line) => Number(line.split('.')[1]) % 2 === 0,
    preferredWhat: 'a stable line (even minor version)',
  },
};

/**
 * The Lambda runtimes the stacks use → the day AWS deprecates them (no more security patches; creating
 * functions on it is blocked about a month later, updating them two). The runtime's end is a date
 * like a base image's, so it is judged here, not by cfn-lint's own date rules (E2531/E2533/W2531),
 * which read the calendar inside a test that must not.
 */
export const LAMBDA_RUNTIME_SUPPORT = {
  source: 'https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html ("Supported runtimes", Deprecation date)',
  lines: {
    'nodejs20.x': '2026-04-30',
    'nodejs22.x': '2027-04-30',
    'nodejs24.x': '2028-04-30',
  } as Record<string, string>,
};

/** How long before a line's end of support the check starts to warn (the time to plan a bump). */
export const SUPPORT_WARN_DAYS = 60;

export type SupportVerdict = { verdict: 'supported' } | { verdict: 'ending'; daysLeft: number } | { verdict: 'ended' };

/**
 * A line ending on `end` (YYYY-MM-DD, its last day of fixes), judged on `today` (YYYY-MM-DD):
 * supported, ending within SUPPORT_WARN_DAYS (a warning, not a failure), or ended.
 */
export function supportVerdict(end: string, today: string): SupportVerdict {
  const daysLeft = Math.round((Date.parse(`${end}T00:00:00Z`) - Date.parse(`${today}T00:00:00Z`)) / 86_400_000);
  if (Number.isNaN(daysLeft)) throw new Error(`not a date: ${Number.isNaN(Date.parse(end)) ? end : today}`);
  if (daysLeft < 0) return { verdict: 'ended' };
  if (daysLeft <= SUPPORT_WARN_DAYS) return { verdict: 'ending', daysLeft };
  return { verdict: 'supported' };
}
