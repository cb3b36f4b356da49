// The release record must fit its parameter (8 KB, advanced tier) in bytes, as SSM counts them, on the
// largest fleet and whatever the release's env holds: multi-byte values and details included.
import { limit, MAX_FLEET_HOSTS } from '../../core/aws-limits';
import {
  boundEnv,
  ENV_LEFT_OUT,
  parseRecord,
  RECORD_ENV_MAX_BYTES,
  RECORD_REASON_MAX_BYTES,
  ReleaseRecord,
  ReleaseStep,
  serializeRecord,
} from '../../core/release-record';

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
const AT = '2026-11-24T10:00:00.000Z';
const host = (i: number) => `i-0${String(i).padStart(16, '0')}`;
/** Text in three scripts and an emoji: 2, 3 and 4 bytes a character. */
const WORDS = 'café Ωmega 日本語 🚀';

/** What one host's deploy puts in the record (aws-backend.ts deploy: its step= lines, then its `host` step). */
function hostSteps(id: string): ReleaseStep[] {
  const step = (name: string, detail: string): ReleaseStep => ({ at: AT, step: name, ok: true, host: id, detail });
  return [
    step('active', 'blue: green-active removed; blue is active'),
    step('reconcile', `blue: runs release v1 (bluegreen-app:local); unchanged — ${WORDS}`),
    step('pull', 'green: bluegreen-app:local built from app/'),
    step('recreate', `green: app_green recreated with release v2 ${WORDS}`),
    step('health', 'green: running, health healthy (0 failed checks in a row), GET 127.0.0.1:8082/healthz answers 200'),
    step('smoke', `green: GET 127.0.0.1:8082/version answers release v2 ${WORDS}`),
    step('reconcile', 'green: runs release v2 (bluegreen-app:local)'),
    step('canary', 'green: canary share 0%'),
    step('host', 'Run Command Success'),
  ];
}

/** A release on the largest fleet, every host's steps in it, an env of multi-byte values. */
function fleetRecord(env: Record<string, string>, reason?: string): ReleaseRecord {
  return {
    id: '20261124-100000-green-v2',
    pool: 'green',
    release: 'v2',
    env,
    previousPool: 'blue',
    previousRelease: 'v1',
    replacedRelease: 'v1',
    replacedEnv: env,
    strategy: 'all-at-once',
    canaryPercent: 0,
    bakeSeconds: 120,
    state: reason ? 'failed' : 'verifying',
    ...(reason ? { reason } : {}),
    startedAt: AT,
    updatedAt: AT,
    steps: [
      { at: AT, step: 'start', ok: true, detail: 'all-at-once, bake 120 s' },
      ...Array.from({ length: MAX_FLEET_HOSTS }, (_, i) => hostSteps(host(i))).flat(),
      { at: AT, step: 'gate', ok: true, detail: `${MAX_FLEET_HOSTS} of ${MAX_FLEET_HOSTS} hosts` },
    ],
  };
}

const multiByteEnv = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`SETTING_${i}`, `${WORDS} `.repeat(4)]));

test(`a ${MAX_FLEET_HOSTS}-host record with multi-byte env values and details fits the advanced parameter in bytes`, () => {
  const record = fleetRecord(multiByteEnv);
  const text = serializeRecord(record);
  expect(bytes(text)).toBeLessThanOrEqual(limit('advancedParameterValue'));
  const stored = parseRecord(text)!;
  expect(stored).toMatchObject({ id: record.id, state: 'verifying', pool: 'green', release: 'v2' });
  // The first step (start) and the newest stay; every value is whole characters.
  expect(stored.steps[0].step).toBe('start');
  expect(stored.steps.at(-1)).toEqual(record.steps.at(-1));
  // (JSON.stringify writes a lone surrogate, half an emoji, as an escape)
  expect(text).not.toMatch(/\\ud[89a-f][0-9a-f]{2}/i);
  expect(text).not.toContain('\uFFFD');
});

test('env and replacedEnv are bounded, in bytes: values cut on a character boundary, then keys left out and counted', () => {
  const stored = parseRecord(serializeRecord(fleetRecord(multiByteEnv)))!;
  for (const env of [stored.env, stored.replacedEnv!]) {
    expect(bytes(JSON.stringify(env))).toBeLessThanOrEqual(RECORD_ENV_MAX_BYTES);
    const kept = Object.keys(env).filter((k) => k !== ENV_LEFT_OUT);
    expect(kept.length).toBeGreaterThan(0);
    expect(env[ENV_LEFT_OUT]).toBe(`${40 - kept.length} more keys`);
    for (const k of kept)
      expect(env[k]).toMatch(new RegExp(`^${WORDS.slice(0, 4)}.*…\\[${bytes(multiByteEnv[k])} bytes\\]$`, 'u'));
  }
  // Every key kept but values cut: the marker says so, so no reader takes the summary for the env.
  const long = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`SETTING_${i}`, 'v'.repeat(200)]));
  const cut = boundEnv(long);
  expect(Object.keys(cut).filter((k) => k !== ENV_LEFT_OUT)).toEqual(Object.keys(long));
  expect(cut[ENV_LEFT_OUT]).toBe('values cut');
  expect(bytes(JSON.stringify(cut))).toBeLessThanOrEqual(RECORD_ENV_MAX_BYTES);
  // previousEnv (what a new fleet host may boot from) is bounded like the others.
  const withPrevious = parseRecord(serializeRecord({ ...fleetRecord(multiByteEnv), previousEnv: multiByteEnv }))!;
  expect(bytes(JSON.stringify(withPrevious.previousEnv))).toBeLessThanOrEqual(RECORD_ENV_MAX_BYTES);
  expect(withPrevious.previousEnv![ENV_LEFT_OUT]).toBeDefined();
  // A small env is kept as it is, and so is a record that fits.
  expect(boundEnv({ A: 'é' })).toEqual({ A: 'é' });
  const small = { ...fleetRecord({ A: 'é' }), steps: [] };
  expect(serializeRecord(small)).toBe(JSON.stringify(small));
  // A record as SSM may hold it from before (no env at all) is written as it is.
  const bare = { id: 'a', pool: 'green', state: 'failed', steps: [] } as unknown as ReleaseRecord;
  expect(serializeRecord(bare)).toBe(JSON.stringify(bare));
});

test(`a reason naming all ${MAX_FLEET_HOSTS} failed hosts is cut to its bound; the record still fits`, () => {
  const reason = `gate failed on green: ${Array.from({ length: MAX_FLEET_HOSTS }, (_, i) => `${host(i)}: step health failed (unhealthy after 60 s — ${WORDS})`).join('; ')}`;
  expect(bytes(reason)).toBeGreaterThan(RECORD_REASON_MAX_BYTES);
  const text = serializeRecord(fleetRecord(multiByteEnv, reason));
  expect(bytes(text)).toBeLessThanOrEqual(limit('advancedParameterValue'));
  const stored = parseRecord(text)!;
  expect(bytes(stored.reason!)).toBeLessThanOrEqual(RECORD_REASON_MAX_BYTES);
  expect(stored.reason).toMatch(new RegExp(`^gate failed on green: ${host(0)}.*…\\[${bytes(reason)} bytes\\]$`, 'u'));
});
