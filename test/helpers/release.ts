// A release record as the CLI writes it for a release baking on green (blue active before, v1 → v2):
// the shape the guard, the events and the runtimes are tested against.
import { ReleaseRecord } from '../../core/release-record';

const iso = (ms: number) => new Date(ms).toISOString();

/** Started at `startedAt` (epoch ms), last written 20 s later, baking until 80 s after the start. */
export function bakingRecord(startedAt: number, over: Partial<ReleaseRecord> = {}): ReleaseRecord {
  return {
    id: `${iso(startedAt).slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}-green-v2`,
    pool: 'green',
    release: 'v2',
    env: {},
    previousPool: 'blue',
    previousRelease: 'v1',
    replacedRelease: 'v0',
    strategy: 'all-at-once',
    canaryPercent: 0,
    bakeSeconds: 60,
    state: 'baking',
    startedAt: iso(startedAt),
    updatedAt: iso(startedAt + 20_000),
    bakeUntil: iso(startedAt + 80_000),
    steps: [{ at: iso(startedAt), step: 'start', ok: true, host: 'local' }],
    ...over,
  };
}
