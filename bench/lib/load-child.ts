/**
 * Runs autocannon against one server and times the server's CPU over exactly
 * the measured window. Started by load.ts as its own process, pinned to the
 * client's CPU; reads a LoadRequest as JSON on stdin and prints a LoadResult
 * as JSON on stdout. Latencies are kept exactly (autocannon's histogram
 * rounds to whole milliseconds), from 2xx responses only, as autocannon does.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

import type { LoadRequest, LoadResult } from './load.js';
import { meanBatchSize, scrapeBatchHistogram } from './metrics.js';
import { coreShare, coreTicks, processGroupCpuSeconds } from './proc.js';

interface AutocannonResult {
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
}
type Autocannon = (options: Record<string, unknown>, done: (error: Error | null, result: AutocannonResult) => void) => EventEmitter;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

function run(request: LoadRequest, seconds: number, onResponse?: (status: number, ms: number) => void) {
  return new Promise<AutocannonResult>((resolve, reject) => {
    const instance = autocannon(
      {
        url: request.url,
        method: request.method,
        headers: request.headers,
        body: Buffer.from(request.bodyBase64, 'base64'),
        connections: request.connections,
        pipelining: 1,
        duration: seconds,
        timeout: request.timeoutS,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    if (onResponse) {
      instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => onResponse(status, ms));
    }
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input) as LoadRequest;

if (request.warmupSeconds > 0) await run(request, request.warmupSeconds);

let latencies = new Float64Array(1 << 16);
let ok = 0;
let responses = 0;
const record = (status: number, ms: number) => {
  responses += 1;
  if (status < 200 || status >= 300) return;
  if (ok === latencies.length) {
    const bigger = new Float64Array(latencies.length * 2);
    bigger.set(latencies);
    latencies = bigger;
  }
  latencies[ok++] = ms;
};

const batchesBefore = await scrapeBatchHistogram(request.metricsUrl, request.model);
const serverCore = /^\d+$/.test(request.serverCpus ?? '') ? Number(request.serverCpus) : null;
const coreStart = serverCore === null ? null : coreTicks(serverCore);
const serverCpuStart = processGroupCpuSeconds(request.serverPid);
const clientCpuStart = process.cpuUsage();
const start = performance.now();
const result = await run(request, request.seconds, record);
const wallS = (performance.now() - start) / 1000;
const serverCpuS = processGroupCpuSeconds(request.serverPid) - serverCpuStart;
const coreEnd = serverCore === null ? null : coreTicks(serverCore);
const clientCpu = process.cpuUsage(clientCpuStart);
const batchesAfter = await scrapeBatchHistogram(request.metricsUrl, request.model);

const sorted = latencies.subarray(0, ok).sort();
let sum = 0;
for (const v of sorted) sum += v;
const r = (n: number, digits: number) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : null);
const output: LoadResult = {
  requests: responses,
  requests_2xx: ok,
  seconds: r(wallS, 3) as number,
  requests_per_s: r(responses / wallS, 0),
  latency_ms: {
    p50: r(percentile(sorted, 0.5), 3),
    p90: r(percentile(sorted, 0.9), 3),
    p99: r(percentile(sorted, 0.99), 3),
    mean: r(sum / ok, 3),
    max: r(sorted[ok - 1] ?? NaN, 3),
  },
  errors: {
    total: result.non2xx + result.errors,
    non_2xx: result.non2xx,
    timeouts: result.timeouts,
    socket_errors: result.errors - result.timeouts,
  },
  server_cpu_s: r(serverCpuS, 2) as number,
  cpu_us_per_request: responses > 0 ? r((serverCpuS * 1e6) / responses, 1) : null,
  server_cpu_cores: r(serverCpuS / wallS, 2) as number,
  client_cpu_cores: r((clientCpu.user + clientCpu.system) / 1e6 / wallS, 2) as number,
  server_core: coreShare(coreStart, coreEnd, wallS),
};
if (request.metricsUrl !== null) output.mean_batch_size = meanBatchSize(batchesBefore, batchesAfter);
process.stdout.write(`${JSON.stringify(output)}\n`);
