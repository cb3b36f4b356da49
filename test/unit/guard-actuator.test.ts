// The one step both guards (the alert function, local mode's watcher) carry a decision out with:
// switch first, then write the record, and only if it is still the version the decision was made on.
import { actOnGuard, GuardPorts } from '../../core/guard-actuator';
import { GuardAction } from '../../core/release-guard';
import { ReleaseRecord } from '../../core/release-record';
import { RecordChanged, sameRecordVersion } from '../../core/release-backend';
import { bakingRecord } from '../helpers/release';

const T0 = Date.parse('2026-11-23T14:00:00Z');
const NOW = T0 + 90_000;
const FIGURES = { requests: 100, failed: 20, rate: 0.2, usersSaw5xx: 0 };
const ROLLBACK: GuardAction = { action: 'rollback', reason: 'green failed 20 of 100', figures: FIGURES };

/** In-memory ports; `changeOnSwitch` is what another writer puts in the record during the switch. */
function ports(record: ReleaseRecord, opts: { switchOk?: boolean; changeOnSwitch?: ReleaseRecord } = {}) {
  const calls: string[] = [];
  let stored: ReleaseRecord | undefined = record;
  const switched = async (what: string) => {
    calls.push(what);
    if (opts.changeOnSwitch) stored = opts.changeOnSwitch;
    return opts.switchOk === false ? { ok: false, detail: 'exit 1' } : { ok: true, detail: `did ${what}` };
  };
  const p: GuardPorts = {
    flip: (pool) => switched(`flip ${pool}`),
    setCanary: (percent) => switched(`canary ${percent}`),
    // The conditional write: the compare and the write are one step (the ledger's transaction).
    writeRecord: async (next, basis) => {
      if (!sameRecordVersion(stored, basis)) {
        calls.push('write refused');
        throw new RecordChanged(stored);
      }
      calls.push(`write ${next.state}`);
      stored = { ...next, revision: (basis.revision ?? 0) + 1 };
      return stored;
    },
  };
  return { p, calls, stored: () => stored };
}

test('rollback: flips to the previous pool, then writes rolled-back on the version it judged', async () => {
  // GIVEN a baking release
  const record = bakingRecord(T0);
  const { p, calls, stored } = ports(record);
  // WHEN the guard rolls it back
  const outcome = await actOnGuard(record, ROLLBACK, NOW, 'alert-function', p);
  // THEN
  expect(calls).toEqual(['flip blue', 'write rolled-back']);
  expect(outcome).toMatchObject({ kind: 'written', action: 'rollback', detail: 'did flip blue' });
  expect(stored()).toMatchObject({ state: 'rolled-back', reason: 'green failed 20 of 100' });
  expect(stored()!.steps.at(-1)).toMatchObject({ step: 'rollback', host: 'alert-function' });
});

test('abort-canary: the share goes to 0 before the record says failed', async () => {
  const record = bakingRecord(T0, { state: 'verifying', strategy: 'canary', canaryPercent: 10 });
  const { p, calls } = ports(record);
  const outcome = await actOnGuard(
    record,
    { action: 'abort-canary', reason: 'canary failing', figures: FIGURES },
    NOW,
    'local-watcher',
    p,
  );
  expect(calls).toEqual(['canary 0', 'write failed']);
  expect(outcome.kind).toBe('written');
});

test('promote: no switch, only the compare and the write', async () => {
  const record = bakingRecord(T0);
  const { p, calls } = ports(record);
  await actOnGuard(record, { action: 'promote', figures: FIGURES }, NOW, 'guard', p);
  expect(calls).toEqual(['write promoted']);
});

test('a failed switch writes nothing: the decision stands for the next evaluation', async () => {
  const record = bakingRecord(T0);
  const { p, calls, stored } = ports(record, { switchOk: false });
  const outcome = await actOnGuard(record, ROLLBACK, NOW, 'local-watcher', p);
  expect(outcome).toEqual({ kind: 'switch-failed', action: 'rollback', detail: 'exit 1' });
  expect(calls).toEqual(['flip blue']);
  expect(stored()).toBe(record);
});

test.each([
  ['the CLI cancelled it', { state: 'failed' as const, reason: 'cancelled by the operator' }],
  ['the CLI wrote it again (refresh)', { updatedAt: new Date(T0 + 60_000).toISOString() }],
  ['a new release replaced it', { id: '20261123-140200-blue-v3' }],
])('a record changed during the switch (%s) is not overwritten', async (_why, change) => {
  const record = bakingRecord(T0);
  const theirs = { ...record, ...change };
  const { p, calls, stored } = ports(record, { changeOnSwitch: theirs });
  const outcome = await actOnGuard(record, ROLLBACK, NOW, 'alert-function', p);
  expect(outcome).toMatchObject({ kind: 'record-changed', action: 'rollback', current: theirs });
  expect(calls).toEqual(['flip blue', 'write refused']);
  expect(stored()).toBe(theirs);
});

test('none does nothing at all', async () => {
  const record = bakingRecord(T0);
  const { p, calls } = ports(record);
  expect(await actOnGuard(record, { action: 'none' }, NOW, 'guard', p)).toEqual({ kind: 'nothing' });
  expect(calls).toEqual([]);
});
