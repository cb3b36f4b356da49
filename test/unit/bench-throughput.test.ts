// The pure parts of bench/throughput: reading wrk's report, merging runs, the CPU-bound ceiling.
// No load is generated here: performance is measured by the bench, never asserted in tests.
import { cpuBoundCeiling, mergeRuns, parseWrk, RunResult } from '../../bench/throughput';

// A real wrk 4.1.0 report (python http.server answering 404), trimmed of nothing.
const WRK_404 = `Running 1s test @ http://127.0.0.1:18777/nope
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.18ms    1.28ms  17.77ms   94.58%
    Req/Sec     1.85k   187.59     2.09k    72.73%
  Latency Distribution
     50%    2.00ms
     75%    2.41ms
     90%    2.91ms
     99%    6.92ms
  2029 requests in 1.10s, 1.01MB read
  Non-2xx or 3xx responses: 2029
Requests/sec:   1843.44
Transfer/sec:      0.91MB
`;

test('parseWrk reads requests, rate, p50/p99 and counts non-2xx answers as failed', () => {
  expect(parseWrk(WRK_404)).toEqual({ requests: 2029, rps: 1843.44, p50Ms: 2, p99Ms: 6.92, failed: 2029 });
});

test('parseWrk converts us/s units and adds socket errors to the failures', () => {
  const out = WRK_404.replace('50%    2.00ms', '50%  180.00us')
    .replace('99%    6.92ms', '99%    1.20s')
    .replace('  Non-2xx or 3xx responses: 2029\n', '  Socket errors: connect 0, read 3, write 1, timeout 2\n');
  expect(parseWrk(out)).toMatchObject({ p50Ms: 0.18, p99Ms: 1200, failed: 6 });
});

test('parseWrk names what is missing instead of returning NaN', () => {
  expect(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused\n')).toThrow(
    /no request count or Requests\/sec/,
  );
  expect(() => parseWrk(WRK_404.replace(/^\s*99%.*\n/m, ''))).toThrow(/no 99% latency line/);
});

const run = (rps: number, p99Ms: number, failed = 0): RunResult => ({
  requests: rps * 10,
  failed,
  rps,
  p50Ms: 1,
  p99Ms,
  nginxCpuS: rps * 10 * 40e-6,
  poolCpuS: rps * 10 * 25e-6,
});

test('mergeRuns takes medians of rates and latencies, sums of counts, CPU per 1000 requests', () => {
  const row = mergeRuns('wrk', 'nginx', 32, [run(100, 9), run(300, 1, 2), run(200, 5)]);
  expect(row).toMatchObject({ rps: 200, p99Ms: 5, requests: 6000, failed: 2 });
  expect(row.nginxCpuMsPer1k).toBeCloseTo(40);
  expect(row.poolCpuMsPer1k).toBeCloseTo(25);
  expect(row.serverCpuMsPer1k).toBeCloseTo(65);
  expect(() => mergeRuns('node', 'direct', 8, [])).toThrow(/no runs for node direct 8/);
});

test('cpuBoundCeiling: the one-process pool caps at one core, nginx + pool share the rest', () => {
  // 65 ms per 1000 requests on 2 cores: 30,769 req/s; the pool's 25 ms on its one core: 40,000.
  expect(cpuBoundCeiling({ poolCpuMsPer1k: 25, serverCpuMsPer1k: 65 }, 2)).toBeCloseTo(30769, 0);
  // A pool that needs 50 ms per 1000 is capped at 20,000 by its single core, whatever nginx does.
  expect(cpuBoundCeiling({ poolCpuMsPer1k: 50, serverCpuMsPer1k: 60 }, 2)).toBe(20000);
  expect(cpuBoundCeiling({ poolCpuMsPer1k: 0, serverCpuMsPer1k: 0 }, 2)).toBe(0);
});
