// Preview before promotion (DECISIONS "Preview a release"): while a release is deployed and not yet
// promoted, a request carrying the release's preview token goes to the new (idle) pool only, with no
// fallback to the active pool. The token's form, where a request carries it, and the parameter's
// value; nginx.conf's maps and switch-pool.sh hold the same pattern (tests hold them to this one).
import { AccessLogEntry } from './access-log';
import { Pool } from './pools';

/** Random bytes in a token: 192 bits, 32 characters of base64url (no padding). */
export const PREVIEW_TOKEN_BYTES = 24;
/**
 * A token: exactly 32 base64url characters. It becomes part of a file name nginx checks per
 * request, so nothing else (no dot, slash, percent sign) may reach the check (nginx.conf's maps).
 */
export const PREVIEW_TOKEN_PATTERN = '^[A-Za-z0-9_-]{32}$';
export const PREVIEW_TOKEN_REGEXP = new RegExp(PREVIEW_TOKEN_PATTERN);
/** The request header that carries a token. */
export const PREVIEW_HEADER = 'X-Bluegreen-Preview';
/** The cookie /_bluegreen/preview?token=… sets (HttpOnly, SameSite=Lax, Secure over https). */
export const PREVIEW_COOKIE = 'bluegreen_preview';
/** The public path that turns a valid token into the cookie (302 to /) or answers 403. */
export const PREVIEW_PATH = '/_bluegreen/preview';
/** The preview parameter's value when no preview is on (a SecureString cannot be empty). */
export const PREVIEW_OFF = 'off';

/** bluegreen-apply's arguments for "apply the preview parameter, nothing else". */
export const PREVIEW_APPLY_ARGS: readonly string[] = ['--preview'];

/** The preview parameter's value: `<pool> <token>`, or `off`. */
export function previewParameterValue(preview: { pool: Pool; token: string } | undefined): string {
  return preview ? `${preview.pool} ${preview.token}` : PREVIEW_OFF;
}

/** The preview parameter's value read back; undefined for `off`, a missing value or junk. */
export function parsePreviewValue(value: string | undefined): { pool: Pool; token: string } | undefined {
  const m = /^(blue|green) (\S+)$/.exec(value ?? '');
  if (!m || !PREVIEW_TOKEN_REGEXP.test(m[2])) return undefined;
  return { pool: m[1] as Pool, token: m[2] };
}

/** How a tester reaches the preview: the header form and the cookie URL (printed by the CLI). */
export function previewInstructions(url: string | undefined, token: string): string[] {
  const base = (url ?? 'http://<public entry>').replace(/\/+$/, '');
  return [
    `curl -H '${PREVIEW_HEADER}: ${token}' ${base}/`,
    `${base}${PREVIEW_PATH}?token=${token}  (a browser: sets the preview cookie, then every request goes to the new pool)`,
  ];
}

/**
 * A request a tester sent to the preview (the access log's `preview` names the pool it went to): no
 * production traffic, so never a failure of the stage nor evidence for a release's guard.
 */
export function isPreview(entry: Pick<AccessLogEntry, 'preview'>): boolean {
  return entry.preview !== undefined && entry.preview !== '';
}

/**
 * `status`'s preview row: the pool a preview routes to (the switch dir locally; on a stage, the last
 * release's record, which says a preview was opened, never its token), or none.
 */
export function describePreviewState(pool: Pool | undefined, release?: string): string {
  return pool
    ? `on: requests carrying ${release ? `${release}'s` : "the release's"} token go to ${pool} only (the release printed it); ends at its promotion or the next release`
    : 'none';
}

/** From a stage's record: a preview is on while the release that opened it waits (deployed, or in its canary). */
export function previewFromRecord(
  record: { preview?: boolean; state: string; pool: Pool; id: string } | undefined,
): { pool: Pool; release: string } | undefined {
  return record?.preview && (record.state === 'deployed' || record.state === 'verifying')
    ? { pool: record.pool, release: record.id }
    : undefined;
}
