// A real local HTTP server standing in for a Slack incoming webhook: records every JSON body, and
// answers with whatever status script the test sets (200 by default).
import * as http from 'node:http';
import { AddressInfo } from 'node:net';

export interface Received {
  at: number;
  body: { text?: string; attachments?: Array<{ color: string; blocks: unknown[] }> };
}

export interface SlackReceiver {
  url: string;
  received: Received[];
  /** Statuses (or 'hang') to answer the next requests with, in order; then 200. */
  script: Array<number | 'hang' | { status: number; headers: Record<string, string> }>;
  hits: number;
  close(): Promise<void>;
}

export async function startSlackReceiver(): Promise<SlackReceiver> {
  const receiver = { received: [] as Received[], script: [] as SlackReceiver['script'], hits: 0 } as SlackReceiver;
  const hanging = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      receiver.hits++;
      const step = receiver.script.shift() ?? 200;
      if (step === 'hang') {
        hanging.add(res);
        return;
      }
      const { status, headers } = typeof step === 'number' ? { status: step, headers: {} } : step;
      if (status === 200) receiver.received.push({ at: Date.now(), body: JSON.parse(data) });
      res.writeHead(status, { 'Content-Type': 'text/plain', ...headers });
      res.end(status === 200 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/XXXX`;
  receiver.close = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return receiver;
}
