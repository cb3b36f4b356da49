// What the status commands print about a public entry, for local mode and a deployed stage alike.
import { header, httpRequest } from './http';

/** GET /version through a public entry: `200 from blue (release r1) in 3 ms`, and whether it was a 200. */
export async function describeEndpoint(url: string, timeoutMs = 5000): Promise<{ healthy: boolean; text: string }> {
  const started = Date.now();
  try {
    const res = await httpRequest(`${url}/version`, { timeoutMs, agent: false });
    const text = `${res.status} from ${header(res, 'x-app-pool') ?? 'no pool'} (release ${header(res, 'x-release-id') ?? '?'}) in ${Date.now() - started} ms`;
    return { healthy: res.status === 200, text };
  } catch (err) {
    return { healthy: false, text: `no answer: ${(err as Error).message}` };
  }
}
