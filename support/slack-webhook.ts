// Delivery to a Slack incoming webhook, for the alert function and local mode's watcher: a timeout per
// attempt, retries with backoff on 429/5xx/timeouts, none on other 4xx, and an overall deadline.

export interface DeliveryOptions {
  timeoutMs: number;
  maxAttempts: number;
  baseDelayMs: number;
  /** Longest wait honoured from a Retry-After header. */
  maxDelayMs: number;
  sleep: (ms: number) => Promise<void>;
  /**
   * Epoch ms by which delivery must be over (the invocation's budget); undefined = none. No
   * attempt starts at or after it, an attempt's timeout is cut to it, and a wait (backoff or
   * Retry-After) that would end past it stops the retries: the result says `outOfTime`.
   */
  deadline?: number;
  /** The clock the deadline is measured with. */
  clock: () => number;
}

export const DEFAULT_DELIVERY: DeliveryOptions = {
  timeoutMs: 3000,
  maxAttempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 5000,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  clock: Date.now,
};

/** Below this, an attempt is not worth starting (a webhook round trip takes longer). */
export const MIN_ATTEMPT_MS = 100;

export interface DeliveryResult {
  delivered: boolean;
  attempts: number;
  /** Last HTTP status, or the error that stopped us. */
  last: string;
  /** Stopped by the deadline, not by Slack: what is left was not worth another try. */
  outOfTime?: boolean;
}

/** Posts JSON to a Slack incoming webhook. Never throws: the result says what happened. */
export async function deliver(
  url: string,
  body: unknown,
  options: Partial<DeliveryOptions> = {},
): Promise<DeliveryResult> {
  const o = { ...DEFAULT_DELIVERY, ...options };
  const left = () => (o.deadline === undefined ? Infinity : o.deadline - o.clock());
  let last = '';
  for (let attempt = 1; attempt <= o.maxAttempts; attempt++) {
    const budget = left();
    if (budget < MIN_ATTEMPT_MS) {
      return {
        delivered: false,
        attempts: attempt - 1,
        last: last || `${Math.max(0, Math.round(budget))} ms left, no attempt started`,
        outOfTime: true,
      };
    }
    const timeoutMs = Math.min(o.timeoutMs, budget);
    let retryAfterMs: number | undefined;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        signal,
      });
      await res.arrayBuffer().catch(() => undefined);
      last = `HTTP ${res.status}`;
      if (res.ok) return { delivered: true, attempts: attempt, last };
      if (res.status !== 429 && res.status < 500) return { delivered: false, attempts: attempt, last };
      const header = res.headers.get('retry-after');
      if (header && /^\d+$/.test(header)) retryAfterMs = Number(header) * 1000;
    } catch (err) {
      last = signal.aborted
        ? `timeout after ${timeoutMs} ms`
        : `error: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`;
    }
    if (attempt < o.maxAttempts) {
      const wait = Math.min(o.maxDelayMs, retryAfterMs ?? o.baseDelayMs * 2 ** (attempt - 1));
      // A wait that ends past the deadline (or leaves no room for the attempt after it) is not started.
      if (wait + MIN_ATTEMPT_MS > left()) {
        return {
          delivered: false,
          attempts: attempt,
          last: `${last}, next try in ${wait} ms but ${Math.max(0, Math.round(left()))} ms left`,
          outOfTime: true,
        };
      }
      await o.sleep(wait);
    }
  }
  return { delivered: false, attempts: o.maxAttempts, last };
}
