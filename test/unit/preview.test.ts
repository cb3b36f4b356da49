// Preview before promotion, the pure parts and the switch dir's writer: a preview request is never
// production evidence; the token's form; switch-pool.sh --preview (token on stdin, one file, a flip ends it).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AccessLogEntry, parseAccessLogLine } from '../../core/access-log';
import { sampleOf } from '../../core/pool-samples';
import {
  describePreviewState,
  isPreview,
  parsePreviewValue,
  PREVIEW_TOKEN_REGEXP,
  previewInstructions,
  previewFromRecord,
  previewParameterValue,
} from '../../core/preview';
import { DEFAULT_RULE_CONFIG, emptyState, evaluate, seedWindow } from '../../core/rules';
import { newPreviewToken } from '../../ops/release/preview';

const T0 = Date.parse('2026-11-22T10:00:00Z');

function entry(over: Partial<AccessLogEntry> = {}): AccessLogEntry {
  return {
    time: '2026-11-22T10:00:00+00:00',
    request_id: 'r',
    remote_addr: '127.0.0.1',
    method: 'GET',
    uri: '/version',
    status: 200,
    body_bytes_sent: 10,
    request_time: 0.001,
    upstream_addr: '10.0.0.1:3000',
    upstream_status: '200',
    upstream_response_time: '0.001',
    upstream_connect_time: '0.000',
    pool: 'blue',
    release: 'blue-1',
    active_pool: 'blue',
    primary_pool: 'blue',
    preview: '',
    ...over,
  };
}

/** A tester's request to the green preview that green failed: its 500 reached the tester. */
const failedPreview = () =>
  entry({ pool: 'green', primary_pool: 'green', preview: 'green', status: 500, upstream_status: '500' });

test('tokens: 32 base64url characters from 192 random bits, each one new', () => {
  const tokens = new Set(Array.from({ length: 200 }, () => newPreviewToken()));
  expect(tokens.size).toBe(200);
  for (const t of tokens) expect(t).toMatch(PREVIEW_TOKEN_REGEXP);
  for (const bad of [
    '',
    'a'.repeat(31),
    'a'.repeat(33),
    `${'a'.repeat(31)}.`,
    `${'a'.repeat(31)}/`,
    `${'a'.repeat(32)}\n`,
  ])
    expect(PREVIEW_TOKEN_REGEXP.test(bad)).toBe(false);
});

test('the parameter value: "<pool> <token>" or off, junk reads as off', () => {
  const token = newPreviewToken();
  expect(previewParameterValue({ pool: 'green', token })).toBe(`green ${token}`);
  expect(parsePreviewValue(`green ${token}`)).toEqual({ pool: 'green', token });
  expect(previewParameterValue(undefined)).toBe('off');
  for (const v of [undefined, 'off', `red ${token}`, `green ${token}x`, `green  ${token}`, `green ${token}\n`])
    expect(parsePreviewValue(v)).toBeUndefined();
  expect(previewInstructions('https://app.example.com/', token)).toEqual([
    `curl -H 'X-Bluegreen-Preview: ${token}' https://app.example.com/`,
    expect.stringContaining(`https://app.example.com/_bluegreen/preview?token=${token}`),
  ]);
});

test('the access log field: optional, a string when present', () => {
  const { preview, ...old } = entry();
  expect(preview).toBe('');
  expect(parseAccessLogLine(JSON.stringify(old)).ok).toBe(true);
  expect(parseAccessLogLine(JSON.stringify(entry({ preview: 'green' })))).toMatchObject({ ok: true });
  expect(parseAccessLogLine(JSON.stringify({ ...old, preview: 1 }))).toEqual({
    ok: false,
    reason: 'field preview is not a string',
  });
  expect(isPreview(entry())).toBe(false);
  expect(isPreview(old as AccessLogEntry)).toBe(false);
  expect(isPreview(failedPreview())).toBe(true);
});

test('a failing preview request is no failure of the stage and no evidence for the guard', () => {
  expect(sampleOf(failedPreview(), T0, 'h')).toBeUndefined();
  expect(sampleOf(entry({ pool: 'green', primary_pool: 'green', preview: 'green' }), T0, 'h')).toBeUndefined();
  const options = { config: DEFAULT_RULE_CONFIG, maintenance: false };
  const inputs = Array.from({ length: 50 }, (_, i) => ({ entry: failedPreview(), host: 'h', at: T0 + i }));
  const { state, decisions } = evaluate(emptyState(), inputs, options);
  expect(decisions).toEqual([]);
  expect(state.window).toEqual([]);
  expect(state.samples).toEqual({ blue: [], green: [] });
  // The same requests without the mark: users see errors.
  const unmarked = inputs.map((i) => ({ ...i, entry: { ...i.entry, preview: '' } }));
  expect(evaluate(emptyState(), unmarked, options).decisions.map((d) => d.kind)).toContain('users_see_errors');
  // A cold start's rebuild leaves them out too.
  const seeded = seedWindow(emptyState(), [entry(), failedPreview(), entry()], DEFAULT_RULE_CONFIG, ['a', 'b', 'c']);
  expect(seeded.window).toHaveLength(2);
  expect(seeded.window.every((w) => !w.bad)).toBe(true);
  expect(seeded.samples?.green).toEqual([]);
  expect(seeded.samples?.blue).toHaveLength(2);
});

describe('switch-pool.sh --preview', () => {
  const script = path.join(__dirname, '../../nginx/switch-pool.sh');
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'bluegreen-preview-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const run = (args: string[], input?: string) =>
    spawnSync('sh', [script, ...args], { env: { ...process.env, SWITCH_DIR: dir }, input, encoding: 'utf8' });
  const files = () => readdirSync(dir).filter((n) => n.startsWith('preview.'));

  test('one file per preview, the token from stdin; a new one replaces the old', () => {
    const [a, b] = [newPreviewToken(), newPreviewToken()];
    expect(run(['--preview', 'green'], `${a}\n`).status).toBe(0);
    expect(files()).toEqual([`preview.green.${a}`]);
    expect(run(['--preview', 'green'], b).status).toBe(0);
    expect(files()).toEqual([`preview.green.${b}`]);
    expect(run(['--preview', 'off']).stdout).toMatch(/preview is off/);
    expect(files()).toEqual([]);
  });

  test('refused, nothing changed: the active pool, no token, a bad token, a second line, bad arguments', () => {
    const t = newPreviewToken();
    for (const [args, input] of [
      [['--preview', 'blue'], t],
      [['--preview', 'green'], ''],
      [['--preview', 'green'], `../${t.slice(3)}`],
      [['--preview', 'green'], `${t}x`],
      [['--preview', 'green'], `${t}\n${t}`],
      [['--preview', 'green', t], t],
      [['--preview', 'red'], t],
      [['--preview', 'off', 'red'], undefined],
      [['--preview'], t],
    ] as Array<[string[], string | undefined]>) {
      const r = run(args, input);
      expect({ args, status: r.status, files: files() }).toEqual({ args, status: 2, files: [] });
      expect(r.stderr).toMatch(/nothing changed/);
    }
  });

  test('a flip to the previewed pool ends its preview; off <pool> ends only that one', () => {
    const t = newPreviewToken();
    expect(run(['--preview', 'green'], t).status).toBe(0);
    expect(run(['--preview', 'off', 'blue']).stdout).toMatch(/no preview of blue/);
    expect(files()).toHaveLength(1);
    expect(run(['green']).status).toBe(0);
    expect(files()).toEqual([]);
    expect(run(['--preview', 'blue'], t).status).toBe(0);
    expect(run(['blue']).status).toBe(0);
    expect(files()).toEqual([]);
  });
});

test("status's preview row: on while the release that opened it waits (deployed, or in its canary), never the token", () => {
  const base = { pool: 'green' as const, id: '20261207-050000-green-v2', preview: true };
  expect(previewFromRecord({ ...base, state: 'deployed' })).toEqual({ pool: 'green', release: base.id });
  expect(previewFromRecord({ ...base, state: 'verifying' })).toEqual({ pool: 'green', release: base.id });
  for (const state of ['promoted', 'failed', 'rolled-back', 'held', 'frozen'])
    expect(previewFromRecord({ ...base, state })).toBeUndefined();
  expect(previewFromRecord({ ...base, preview: undefined, state: 'deployed' })).toBeUndefined();
  expect(previewFromRecord(undefined)).toBeUndefined();
  expect(describePreviewState('green', base.id)).toMatch(
    /^on: requests carrying 20261207-050000-green-v2's token go to green only/,
  );
  expect(describePreviewState(undefined)).toBe('none');
});
