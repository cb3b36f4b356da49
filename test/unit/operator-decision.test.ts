// A person's decision from Slack's buttons: what each button does in each state of the release, and
// the refusals, with the reason the person reads. Pure (core/operator-decision.ts).
import { decideOperatorAction, EXTEND_BAKE_MS, operatorDoneLine, OperatorRequest } from '../../core/operator-decision';
import { ReleaseRecord } from '../../core/release-record';
import { bakingRecord } from '../helpers/release';

const T0 = Date.parse('2026-11-23T14:00:00Z');
const NOW = T0 + 60_000;
const BY = '@alice (U012AB3CD) in Slack';
const req = (kind: OperatorRequest['kind'], over: Partial<OperatorRequest> = {}): OperatorRequest => ({
  kind,
  releaseId: bakingRecord(T0).id,
  by: BY,
  via: 'slack',
  now: NOW,
  ...over,
});
const baking = bakingRecord(T0);
const canary: ReleaseRecord = { ...baking, state: 'verifying', strategy: 'canary', canaryPercent: 10 };

test('Roll back now on a baking release: flip to the previous pool, rolled-back, decided by the person', () => {
  const d = decideOperatorAction(baking, 'green', req('rollback'));
  expect(d).toMatchObject({ ok: true, switch: { flip: 'blue' }, done: 'Rolled back' });
  if (!d.ok) throw new Error('refused');
  expect(d.next).toMatchObject({ state: 'rolled-back', decidedBy: BY, reason: `rolled back by ${BY}` });
  expect(d.next.finishedAt).toBe(new Date(NOW).toISOString());
  expect(d.next.steps.at(-1)).toMatchObject({ step: 'rollback', ok: true, host: 'slack' });
  // Held and promoted releases whose pool still serves roll back the same way.
  for (const state of ['held', 'promoted'] as const)
    expect(decideOperatorAction({ ...baking, state }, 'green', req('rollback'))).toMatchObject({ ok: true });
});

test('Roll back now during a canary ends the share (the canary abort); Abort does the same', () => {
  for (const kind of ['rollback', 'abort'] as const) {
    const d = decideOperatorAction(canary, 'blue', req(kind));
    expect(d).toMatchObject({ ok: true, switch: { canary: 0 } });
    if (d.ok) expect(d.next).toMatchObject({ state: 'failed', decidedBy: BY });
  }
});

test('Promote now ends a bake early, promotes a held release whose pool serves; Extend bake moves both ends', () => {
  expect(decideOperatorAction(baking, 'green', req('promote'))).toMatchObject({
    ok: true,
    next: { state: 'promoted', decidedBy: BY },
  });
  expect(decideOperatorAction({ ...baking, state: 'held' }, 'green', req('promote'))).toMatchObject({ ok: true });
  const d = decideOperatorAction(baking, 'green', req('extend-bake'));
  if (!d.ok) throw new Error(d.reason);
  const until = Date.parse(baking.bakeUntil!) + EXTEND_BAKE_MS;
  expect(d.next).toMatchObject({
    state: 'baking',
    bakeUntil: new Date(until).toISOString(),
    maxBakeUntil: new Date(until).toISOString(),
  });
  expect(d.switch).toBeUndefined();
  expect(d.done).toBe('Bake extended to 14:11 UTC');
});

test.each([
  [
    'another release is the latest',
    { ...baking, id: 'other' },
    'green',
    'rollback',
    /is not the latest release \(that is other, baking\)/,
  ],
  ['the pool no longer serves', baking, 'blue', 'rollback', /green is not the active pool any more \(blue is\)/],
  [
    'already rolled back',
    { ...baking, state: 'rolled-back' },
    'blue',
    'rollback',
    /is rolled-back: there is nothing to roll back/,
  ],
  ['irreversible', { ...baking, irreversible: true }, 'green', 'rollback', /irreversible.*fix forward/],
  ['frozen', { ...baking, state: 'frozen', irreversible: true }, 'green', 'rollback', /frozen.*fix forward/],
  [
    'not serving yet',
    { ...baking, state: 'deploying' },
    'blue',
    'rollback',
    /not serving users yet \(deploying\): Abort stops it/,
  ],
  ['abort after promotion', baking, 'green', 'abort', /past the point an abort applies.*Roll back now instead/],
  ['promote a canary', canary, 'blue', 'promote', /in its canary/],
  ['promote a failed one', { ...baking, state: 'failed' }, 'green', 'promote', /only a baking, held or frozen release/],
  ['extend a promoted one', { ...baking, state: 'promoted' }, 'green', 'extend-bake', /not baking: nothing to extend/],
] as const)('refused: %s', (_why, record, active, kind, reason) => {
  const d = decideOperatorAction(record as ReleaseRecord, active, req(kind));
  expect(d.ok).toBe(false);
  if (!d.ok) expect(d.reason).toMatch(reason);
});

test('no record at all is refused too', () => {
  expect(decideOperatorAction(undefined, 'blue', req('promote'))).toMatchObject({ ok: false });
});

test('the message line names the person and the minute', () => {
  expect(operatorDoneLine('Rolled back', '@alice', Date.parse('2026-11-23T14:02:31Z'))).toBe(
    'Rolled back by @alice at 14:02 UTC',
  );
});
