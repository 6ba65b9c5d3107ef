/**
 * gRPC load benchmark: one `weir serve`, pinned to one core, measured in one
 * run with 1-row JSON over HTTP (autocannon), then the same row as raw FP32
 * over gRPC, unary ModelInfer and bidirectional ModelStreamInfer (grpc-js
 * callers, one request in flight each, spread over a few channels), the
 * load pinned to another core. Prints one JSON object: per protocol the
 * HTTP benchmark's figures (requests/s, latency, errors, server CPU per
 * request, mean batch size), gRPC's CPU per request against HTTP's, and
 * targets (see bench/lib/grpc-harness.ts). Every path is driven once,
 * unmeasured, before any is measured; then the sequence runs BENCH_ROUNDS
 * times (3) and each ratio is the median of the rounds' (the figures of the
 * first round, and each round's ratios, are printed too).
 *
 *   npm run bench:grpc                  10 s per measurement, 64 connections / callers
 *   BENCH_SECONDS=3 npm run bench:grpc  shorter (CPU time has 10 ms resolution: keep seconds, not fractions)
 *
 * Then unary again, driven by h2load (a C HTTP/2 load generator from
 * Debian's nghttp2-client, fetched once into .cache/h2load by
 * scripts/fetch-h2load.sh, or BENCH_H2LOAD=/path/to/h2load): grpc-js's
 * client stops near 5-7 k unary calls/s on its core, h2load keeps the
 * server busy; gRPC failures are counted from the server's metrics.
 *
 * Environment: as bench/http.ts (BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_ROUNDS,
 * BENCH_CONNECTIONS, BENCH_SERVER_CPUS, BENCH_CLIENT_CPUS,
 * BENCH_START_TIMEOUT_S, BENCH_WEIR_CLI), plus BENCH_GRPC_CALLERS (default:
 * BENCH_CONNECTIONS), BENCH_GRPC_CHANNELS (4) and BENCH_H2LOAD. Needs
 * `npm ci` (dist/ for Weir) and taskset; builds nothing. Weir not starting is reported as
 * {"skipped": "<why>"}, and its ratios and targets are null.
 */
import { grpcConfigFromEnv, runGrpcBenchmark } from './lib/grpc-harness.js';

const report = await runGrpcBenchmark(grpcConfigFromEnv('full'));
console.log(JSON.stringify(report, null, 2));
