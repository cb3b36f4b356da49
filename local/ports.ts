// Port checks done before starting anything, so a taken port is one clear line, not a child's stack trace.
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

/** Asks the kernel for a free port on host. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
