// Load generator for `check`, the e2e tests and bench/: N concurrent keep-alive clients, bounded in
// time and count, one sample per request. Loopback or an operator-given URL only.
import * as http from 'node:http';
import { HttpError, httpRequest } from '../support/http';
import { LOAD_USER_AGENT, percentileOfSorted } from '../core/pool-samples';

/** Load is traffic the release gate takes as evidence (the project's other requests are probes). */
const LOAD_HEADERS = { 'user-agent': LOAD_USER_AGENT };

export interface LoadOptions {
  url: string;
  /** Concurrent clients, each with its own kept-alive connection. */
  connections: number;
  durationMs: number;
  /** Total requests per second across all clients; omit for full speed. */
  ratePerSec?: number;
  /** Hard cap on requests, whatever the duration. */
  maxRequests?: number;
  /** Client-side limit for one request; a request past it counts as failed. */
  requestTimeoutMs?: number;
  keepAlive?: boolean;
  /**
   * true (default): a request that went out on a kept-alive socket the server had just closed is
   * re-sent once on a fresh connection, as browsers and curl do. false: it counts as failed, as
   * for a client that never re-sends (Node's default agent, a load balancer in front of nginx):
   * the client that "0 failed" across flips and releases is measured with.
   */
  retryStaleSockets?: boolean;
  /** More request headers (e.g. a preview token: a tester's load); the user agent stays the load's. */
  headers?: Record<string, string>;
  /** Ends the run early (a test that has seen what it waited for). */
  signal?: AbortSignal;
  /** Called after every request, so a caller can act while load runs (start chaos, flip). */
  onSample?: (sample: Sample, all: readonly Sample[]) => void;
}

export interface Sample {
  /** ms from the start of the run to when the request was sent. */
  sentAt: number;
  latencyMs: number;
  /** 0 when no HTTP answer came (connection error, client timeout). */
  status: number;
  pool: string | null;
  error?: string;
}

export interface LoadResult {
  startedAt: number;
  durationMs: number;
  samples: Sample[];
  /**
   * Requests re-sent because a kept-alive socket was closed by the server just as the request
   * went out (no byte of answer). Safe for idempotent requests (RFC 9110 §9.2.2), what browsers do,
   * and what Node documents for `req.reusedSocket`; counted so it is never hidden. Always 0 with
   * retryStaleSockets: false (those requests are failed samples instead).
   */
  staleSocketRetries: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const headers = { ...options.headers, ...LOAD_HEADERS };
  const {
    url,
    connections,
    durationMs,
    ratePerSec,
    maxRequests = Number.POSITIVE_INFINITY,
    requestTimeoutMs = 15_000,
    keepAlive = true,
    retryStaleSockets = true,
    signal,
    onSample,
  } = options;
  const agent = new http.Agent({ keepAlive, maxSockets: connections });
  const samples: Sample[] = [];
  const startedAt = Date.now();
  const deadline = startedAt + durationMs;
  let issued = 0;
  let staleSocketRetries = 0;
  // With a rate, client i sends at startedAt + (i + k * connections) / rate: evenly spread.
  const intervalMs = ratePerSec ? (1000 * connections) / ratePerSec : 0;

  const more = () => Date.now() < deadline && issued < maxRequests && !signal?.aborted;

  async function client(index: number) {
    let next = startedAt + (intervalMs ? (index * 1000) / (ratePerSec as number) : 0);
    while (more()) {
      if (intervalMs) {
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        next += intervalMs;
        if (!more()) break;
      }
      issued++;
      const sample = await one();
      samples.push(sample);
      onSample?.(sample, samples);
    }
  }

  async function one(): Promise<Sample> {
    const sent = Date.now();
    const answered = (res: { status: number; headers: http.IncomingHttpHeaders }): Sample => ({
      sentAt: sent - startedAt,
      latencyMs: Date.now() - sent,
      status: res.status,
      pool: (res.headers['x-app-pool'] as string | undefined) ?? null,
    });
    try {
      return answered(await httpRequest(url, { agent, timeoutMs: requestTimeoutMs, headers }));
    } catch (err) {
      const e = err as HttpError;
      if (retryStaleSockets && e.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) {
        // Once, on a fresh connection: another idle socket may be closing for the same reason.
        staleSocketRetries++;
        try {
          return answered(await httpRequest(url, { agent: false, timeoutMs: requestTimeoutMs, headers }));
        } catch (retryErr) {
          return failed((retryErr as HttpError).code);
        }
      }
      return failed(e.code);
    }

    function failed(code: string | undefined): Sample {
      return {
        sentAt: sent - startedAt,
        latencyMs: Date.now() - sent,
        status: 0,
        pool: null,
        error: code ?? 'EUNKNOWN',
      };
    }
  }

  try {
    await Promise.all(Array.from({ length: connections }, (_, i) => client(i)));
  } finally {
    agent.destroy();
  }
  return { startedAt, durationMs: Date.now() - startedAt, samples, staleSocketRetries };
}

export interface LoadSummary {
  requests: number;
  failed: number;
  /** Failed answers grouped by status (0 = no answer) or client error code. */
  failures: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  byPool: Record<string, number>;
  requestsPerSec: number;
}

/** The nearest-rank percentile of `sorted` (ascending); 0 for none. */
export function percentile(sorted: number[], p: number): number {
  return percentileOfSorted(sorted, p) ?? 0;
}

/** Any answer other than 200 is a failed request: the user asked for a page and did not get it. */
export function summarize(samples: Sample[], durationMs: number): LoadSummary {
  const latencies = samples.map((s) => s.latencyMs).sort((a, b) => a - b);
  const failures: Record<string, number> = {};
  const byPool: Record<string, number> = {};
  for (const s of samples) {
    if (s.status !== 200) {
      const key = s.error ?? String(s.status);
      failures[key] = (failures[key] ?? 0) + 1;
    }
    if (s.pool) byPool[s.pool] = (byPool[s.pool] ?? 0) + 1;
  }
  return {
    requests: samples.length,
    failed: samples.filter((s) => s.status !== 200).length,
    failures,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length ? latencies[latencies.length - 1] : 0,
    byPool,
    requestsPerSec: durationMs > 0 ? (samples.length * 1000) / durationMs : 0,
  };
}
