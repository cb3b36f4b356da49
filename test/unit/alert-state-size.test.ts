// The alert function's persisted state must fit its standard SSM parameter (4 KB, in bytes) whatever
// the fleet's size: fitState drops what costs least first.
import { MAX_FLEET_HOSTS } from '../../core/aws-limits';
import { fitState, PersistedState, STATE_MAX_BYTES } from '../../lambda/alert/aws';

/** The largest fleet during a rolling update: its replaced hosts still count for a day beside the new ones. */
const STREAMS = 2 * MAX_FLEET_HOSTS;

const size = (s: PersistedState) => Buffer.byteLength(JSON.stringify(s));
const T = 1_790_000_000_000;
const host = (i: number) => `i-0${String(i).padStart(16, '0')}`;

function fleetState(hosts: number, episodes: string[] = []): PersistedState {
  const state: PersistedState = { hosts: {}, lastPosted: {}, delivered: [] };
  for (let i = 0; i < hosts; i++) {
    const id = host(i);
    state.hosts[id] = { activePool: 'blue', lastSeen: T + i * 1000, healthyStreak: 0 };
    state.lastPosted[`failover:${id}`] = T + i * 1000;
  }
  for (const id of episodes)
    state.hosts[id] = {
      ...state.hosts[id],
      episode: { since: T, from: 'blue', to: 'green', posted: true, requests: 3 },
    };
  state.delivered = Array.from({ length: 10 }, (_, i) => `failover|i-x|${T + i}`);
  return state;
}

test('a small state is saved as it is', () => {
  const state = fleetState(3);
  expect(fitState(state)).toEqual({ state, dropped: 0 });
});

test(`${STREAMS} hosts: cut to the limit; spent cooldowns go first, then quiet hosts (oldest first); hosts in an episode and delivered keys stay`, () => {
  const episodes = [host(0), host(1)];
  const state = fleetState(STREAMS, episodes);
  expect(size(state)).toBeGreaterThan(STATE_MAX_BYTES);
  // every cooldown but the last 10 hosts' has run out
  const { state: fitted, dropped } = fitState(state, T + (STREAMS - 10) * 1000);
  expect(Object.keys(fitted.lastPosted).sort()).toEqual(
    Object.keys(state.lastPosted)
      .sort()
      .slice(STREAMS - 10),
  );
  expect(size(fitted)).toBeLessThanOrEqual(STATE_MAX_BYTES);
  expect(dropped).toBeGreaterThan(0);
  // the two oldest hosts are in an episode: kept although least recently seen
  for (const id of episodes) expect(fitted.hosts[id]?.episode).toBeDefined();
  // among quiet hosts the newest survive
  const kept = Object.keys(fitted.hosts).filter((id) => !episodes.includes(id));
  expect(kept).toContain(host(STREAMS - 1));
  expect(kept).not.toContain(host(2));
  expect(fitted.delivered).toEqual(state.delivered);
  // the input is not changed
  expect(Object.keys(state.hosts)).toHaveLength(STREAMS);
});

test('every cooldown still running: the state fits all the same (running cooldowns go after quiet hosts)', () => {
  const state = fleetState(STREAMS, [host(0)]);
  const { state: fitted } = fitState(state, 0);
  expect(size(fitted)).toBeLessThanOrEqual(STATE_MAX_BYTES);
  expect(fitted.hosts[host(0)]?.episode).toBeDefined();
});
