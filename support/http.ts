// A minimal HTTP client over node:http: the one used by the CLI, the load generator and the tests.
import * as http from 'node:http';
import { PROBE_USER_AGENT } from '../core/pool-samples';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** True when the request went out on a kept-alive socket from an earlier request. */
  reusedSocket: boolean;
}

export interface HttpRequestOptions {
  method?: string;
  /** Total time allowed for the whole exchange; past it the request fails with ETIMEDOUT. */
  timeoutMs?: number;
  agent?: http.Agent | false;
  headers?: http.OutgoingHttpHeaders;
}

export class HttpError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly reusedSocket: boolean,
  ) {
    super(message);
  }
}

/**
 * Sockets that have carried a request. Node's `req.reusedSocket` is false when the agent hands a
 * freed socket straight to a queued request, so "reused" is tracked here instead.
 */
const usedSockets = new WeakSet<object>();

export function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpResponse> {
  const { method = 'GET', timeoutMs = 10_000, agent } = options;
  // The project's own requests (confirmations, status, health) say so: the release gate does not
  // take them as evidence that users reached a release (core/pool-samples.ts).
  const given = options.headers ?? {};
  const headers = Object.keys(given).some((k) => k.toLowerCase() === 'user-agent')
    ? given
    : { 'user-agent': PROBE_USER_AGENT, ...given };
  return new Promise((resolve, reject) => {
    let settled = false;
    let reused = false;
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        settled = true;
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          reusedSocket: reused,
        });
      });
      res.on('error', fail);
    });
    function fail(err: NodeJS.ErrnoException) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new HttpError(`${method} ${url}: ${err.message}`, err.code ?? 'EUNKNOWN', reused));
    }
    const timer = setTimeout(() => {
      const err: NodeJS.ErrnoException = new Error(`no answer within ${timeoutMs} ms`);
      err.code = 'ETIMEDOUT';
      fail(err);
      req.destroy();
    }, timeoutMs);
    req.on('socket', (socket) => {
      reused = req.reusedSocket || usedSockets.has(socket);
      usedSockets.add(socket);
    });
    req.on('error', fail);
    req.end();
  });
}

/** Reads a single-valued response header (undefined when absent). */
export function header(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}
