/**
 * Runs autocannon against one server and times the server's CPU over exactly
 * the measured window (window.ts). Started by load.ts as its own process,
 * pinned to the client's CPU; reads a LoadRequest as JSON on stdin and prints a LoadResult
 * as JSON on stdout. Latencies are kept exactly (autocannon's histogram
 * rounds to whole milliseconds), from 2xx responses only, as autocannon does.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

import type { LoadRequest, LoadResult } from './load.js';
import { Latencies, openWindow, round } from './window.js';

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
        ...(request.requestsPerSecond !== undefined && { overallRate: request.requestsPerSecond }),
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    if (onResponse) {
      instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => onResponse(status, ms));
    }
  });
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input) as LoadRequest;

if (request.warmupSeconds > 0) await run(request, request.warmupSeconds);

const latencies = new Latencies();
let responses = 0;
const record = (status: number, ms: number) => {
  responses += 1;
  if (status >= 200 && status < 300) latencies.record(ms);
};

const window = await openWindow(request);
const result = await run(request, request.seconds, record);
const figures = await window.close(responses);

const { seconds, mean_batch_size, ...cpu } = figures;
const output: LoadResult = {
  requests: responses,
  requests_2xx: latencies.count,
  seconds,
  requests_per_s: round(responses / seconds, 0),
  latency_ms: latencies.summary(),
  errors: {
    total: result.non2xx + result.errors,
    non_2xx: result.non2xx,
    timeouts: result.timeouts,
    socket_errors: result.errors - result.timeouts,
  },
  ...cpu,
};
if (mean_batch_size !== undefined) output.mean_batch_size = mean_batch_size;
process.stdout.write(`${JSON.stringify(output)}\n`);
