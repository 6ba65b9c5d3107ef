/**
 * HTTP load benchmark: Weir against a naive node:http + onnxruntime-node peer
 * and a bare uWebSockets.js server (answering in its handler, and deferred to
 * the end of the event-loop turn), every server pinned to one core and
 * driven by autocannon pinned to another, all measured in one run. Prints one
 * JSON object (see bench/lib/harness.ts for what each figure means).
 *
 *   npm run bench:http                  10 s per measurement, 64 connections
 *   BENCH_SECONDS=3 npm run bench:http  shorter (CPU time has 10 ms resolution: keep seconds, not fractions)
 *
 * Environment: BENCH_SECONDS, BENCH_WARMUP_SECONDS (2), BENCH_CONNECTIONS (64),
 * BENCH_ROUNDS (3: the whole sequence three times, each ratio the median of the rounds'),
 * BENCH_RAW_SECONDS (2 per batch size), BENCH_SERVER_CPUS (0),
 * BENCH_CLIENT_CPUS (1), BENCH_START_TIMEOUT_S (60), BENCH_SERVERS
 * (comma-separated subset of weir,naive-node,uws-hello,uws-deferred). Needs `npm ci`
 * (dist/ for Weir) and taskset; builds nothing. A server that does not start
 * is reported as {"skipped": "<why>"} and its ratios and targets are null.
 */
import { configFromEnv, runHttpBenchmark } from './lib/harness.js';

const report = await runHttpBenchmark(configFromEnv('full'));
console.log(JSON.stringify(report, null, 2));
