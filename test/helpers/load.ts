// Drives load against a stack while a test acts on it, with waits derived from progress.
import { LoadOptions, LoadResult, runLoad, Sample } from '../../local/load';
import { waitFor } from './stack';

export interface LoadRun {
  samples: Sample[];
  /** Resolves once `count` more requests have completed since the call. */
  after(count: number, what: string): Promise<void>;
  /** Stops sending and resolves with the run's result. */
  finish(): Promise<LoadResult>;
}

export function startLoad(options: Omit<LoadOptions, 'signal' | 'onSample'>): LoadRun {
  const controller = new AbortController();
  const samples: Sample[] = [];
  const done = runLoad({ ...options, signal: controller.signal, onSample: (s) => samples.push(s) });
  let finished = false;
  done.finally(() => (finished = true)).catch(() => undefined);
  return {
    samples,
    async after(count, what) {
      const target = samples.length + count;
      await waitFor(() => samples.length >= target || finished, `${count} requests ${what}`, 30_000);
      if (samples.length < target) throw new Error(`load ended before ${count} requests ${what}`);
    },
    finish() {
      controller.abort();
      return done;
    },
  };
}

/** Test load: moderate and bounded, so a 2-core machine runs nginx, pools and client together. */
export const TEST_LOAD = { connections: 8, ratePerSec: 400, durationMs: 20_000 } as const;

/**
 * A keep-alive client that never re-sends a request (Node's default agent, a load balancer in
 * front of nginx): what "0 failed" across flips and releases is measured with.
 */
export const STRICT_CLIENT = { retryStaleSockets: false } as const;

/**
 * Full-speed load on a Docker stage through a release: a strict client, bounded in time and count
 * (loopback only), a request given up after 5 s. A test changes what differs (`durationMs`, ...).
 */
export const FULL_SPEED_LOAD = {
  connections: 8,
  durationMs: 150_000,
  maxRequests: 1_000_000,
  requestTimeoutMs: 5_000,
  ...STRICT_CLIENT,
} as const;
