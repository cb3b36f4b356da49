// A Lambda function URL as far as this machine can have one: a loopback HTTP server that hands each
// request to the function's code as the URL would (payload format 2.0: headers lower-case, the body
// base64-encoded) and answers with what it returns.
import * as http from 'node:http';
import { AddressInfo } from 'node:net';

export interface FunctionUrlAnswer {
  statusCode: number;
  body: string;
  headers?: Record<string, string>;
}

export interface FunctionUrl {
  url: string;
  close(): Promise<void>;
}

export async function serveFunctionUrl(
  handle: (event: {
    headers: Record<string, string | undefined>;
    body: string;
    isBase64Encoded: boolean;
    requestContext: { http: { method: string } };
  }) => Promise<FunctionUrlAnswer>,
): Promise<FunctionUrl> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(',') : v]),
      );
      handle({
        headers,
        body: Buffer.concat(chunks).toString('base64'),
        isBase64Encoded: true,
        requestContext: { http: { method: req.method ?? 'GET' } },
      })
        .then((a) => {
          res.writeHead(a.statusCode, a.headers ?? {});
          res.end(a.body);
        })
        .catch((err: Error) => {
          res.writeHead(502);
          res.end(err.message);
        });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
