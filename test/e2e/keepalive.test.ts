// A load balancer in front of nginx (a fleet's ALB) reuses an idle keep-alive connection for up to its
// idle timeout; nginx must not close it first, or the balancer sends a request on a connection being
// closed and answers 502 with no nginx log line. Real nginx with the repo's config: one connection
// kept idle for as long as the ALB would keep it, then used again.
import * as net from 'node:net';
import { DEFAULT_PROXY_SETTINGS, loadBalancerIdleSeconds } from '../../core/proxy-settings';
import { LocalStack } from '../../local/stack';
import { startTestStack } from '../helpers/stack';

let stack: LocalStack;
afterAll(async () => {
  await stack?.stop();
});

/** One connection, like a load balancer's to its target: requests one after the other on it. */
function connection(url: string) {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  let buffer = '';
  let closedAt: number | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (buffer += d));
  socket.on('close', () => (closedAt ??= Date.now()));
  socket.on('error', () => undefined);
  const ready = new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    closedAt: () => closedAt,
    /** Sends a GET and waits for its whole answer (Content-Length), or for the connection to close. */
    async get(pathname: string): Promise<{ status?: number; closed: boolean }> {
      await ready;
      buffer = '';
      if (closedAt === undefined) socket.write(`GET ${pathname} HTTP/1.1\r\nHost: bluegreen.test\r\n\r\n`);
      for (;;) {
        const head = buffer.indexOf('\r\n\r\n');
        const length = /^content-length: (\d+)$/im.exec(buffer.slice(0, head));
        if (head >= 0 && length && buffer.length >= head + 4 + Number(length[1]))
          return { status: Number(buffer.slice(9, 12)), closed: false };
        if (closedAt !== undefined) return { closed: true };
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    destroy: () => socket.destroy(),
  };
}

test("an idle keep-alive connection outlives the load balancer's idle timeout: still open and answered after it", async () => {
  stack = await startTestStack({ activePool: 'blue' });
  // The stage's load balancer keeps an idle connection this long (the defaults, as local mode runs).
  const idleMs = loadBalancerIdleSeconds(DEFAULT_PROXY_SETTINGS) * 1000;
  const conn = connection(stack.url);
  try {
    expect(await conn.get('/version')).toEqual({ status: 200, closed: false });
    const idleFrom = Date.now();
    await new Promise((r) => setTimeout(r, idleMs + 1_000));
    const closedAfter =
      conn.closedAt() === undefined ? undefined : `${((conn.closedAt()! - idleFrom) / 1000).toFixed(1)} s`;
    expect({ closedByNginxAfter: closedAfter }).toEqual({ closedByNginxAfter: undefined });
    expect(await conn.get('/version')).toEqual({ status: 200, closed: false });
  } finally {
    conn.destroy();
  }
}, 120_000);
