// Parameter Store throttling, as the aws CLI and the SDK meet it: an HTTP proxy in front of moto_server
// that answers the first N matching calls with what SSM answers past its throughput (HTTP 400,
// ThrottlingException, "Rate exceeded") and passes everything else through. The caller's own retry
// (the SDK's or the CLI's retry mode and max attempts) is what is under test, so the fault sits
// below it, on the wire; a stub of the client's send() would skip the retry altogether.
import * as http from 'node:http';
import { AddressInfo } from 'node:net';

export interface ThrottleProxy {
  /** The endpoint to give the client (AWS_ENDPOINT_URL, or the SDK's endpoint). */
  endpoint: string;
  /** Calls answered ThrottlingException so far, and calls passed to moto, by operation (X-Amz-Target's). */
  throttled: Record<string, number>;
  passed: Record<string, number>;
  /** Throttle the next `n` calls of these operations (e.g. 'GetParameters'). */
  throttleNext(n: number, operations: readonly string[]): void;
  close(): Promise<void>;
}

export async function startThrottleProxy(upstream: string): Promise<ThrottleProxy> {
  const target = new URL(upstream);
  let remaining = 0;
  let matching: readonly string[] = [];
  const throttled: Record<string, number> = {};
  const passed: Record<string, number> = {};
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const operation =
        String(req.headers['x-amz-target'] ?? '')
          .split('.')
          .pop() ?? '';
      if (remaining > 0 && matching.includes(operation)) {
        remaining--;
        throttled[operation] = (throttled[operation] ?? 0) + 1;
        const body = JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' });
        res.writeHead(400, {
          'Content-Type': 'application/x-amz-json-1.1',
          'x-amzn-ErrorType': 'ThrottlingException',
          'Content-Length': Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      passed[operation] = (passed[operation] ?? 0) + 1;
      const forward = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      forward.on('error', (err) => {
        res.writeHead(502);
        res.end(err.message);
      });
      forward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    throttled,
    passed,
    throttleNext(n, operations) {
      remaining = n;
      matching = operations;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
