// Port checks done before starting anything, so a taken port is one clear line, not a child's stack trace.
import { readFileSync } from 'node:fs';
import * as net from 'node:net';

export class PortInUseError extends Error {}

/** Resolves when host:port can be bound right now; rejects with a message naming `source`. */
export function assertPortFree(port: number, host: string, source: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'is already in use' : `cannot be bound (${err.code})`;
      reject(
        new PortInUseError(
          `port ${port} (${source}) on ${host} ${why}: stop what listens there or set ${source} to another port`,
        ),
      );
    });
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/** Binds host:port and closes it again: the port it got (0 asks the kernel), or undefined when taken. */
function tryBind(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(undefined) : reject(err),
    );
    server.listen(port, host, () => {
      const address = server.address();
      const got = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(got));
    });
  });
}

/**
 * Where free ports are looked for: below the kernel's ephemeral range (Linux:
 * /proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default). A port the kernel hands out as
 * "free" is an ephemeral one, and between this check and the pool binding it, any outgoing
 * connection on the machine (a load test's thousands) can take it as its source port: the pool
 * then dies with EADDRINUSE. Ports below the range are only ever taken by a listener.
 */
export function listenRange(rangeFile = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] | undefined {
  try {
    const low = Number(readFileSync(rangeFile, 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 12_000 ? [10_000, low] : undefined;
  } catch {
    return undefined;
  }
}

/** A port free on host right now, chosen below the ephemeral range where there is one (listenRange). */
export async function freePort(host = '127.0.0.1', random = Math.random): Promise<number> {
  const range = listenRange();
  if (range) {
    const [low, high] = range;
    for (let i = 0; i < 50; i++) {
      const got = await tryBind(low + Math.floor(random() * (high - low)), host);
      if (got !== undefined) return got;
    }
  }
  const got = await tryBind(0, host);
  if (got === undefined) throw new Error(`no free port on ${host}`);
  return got;
}
