/**
 * gRPC load benchmark: one `weir serve`, pinned to one core, measured in one
 * run with 1-row JSON over HTTP (autocannon), then the same row as raw FP32
 * over gRPC, unary ModelInfer and bidirectional ModelStreamInfer (grpc-js
 * callers, one request in flight each, spread over a few channels), the
 * load pinned to another core. Prints one JSON object: per protocol the
 * HTTP benchmark's figures (requests/s, latency, errors, server CPU per
 * request, mean batch size), gRPC's CPU per request against HTTP's, and
 * targets (see bench/lib/grpc-harness.ts).
 *
 *   npm run bench:grpc                  10 s per measurement, 64 connections / callers
 *   BENCH_SECONDS=3 npm run bench:grpc  shorter (CPU time has 10 ms resolution: keep seconds, not fractions)
 *
 * Environment: as bench/http.ts (BENCH_SECONDS, BENCH_WARMUP_SECONDS,
 * BENCH_CONNECTIONS, BENCH_SERVER_CPUS, BENCH_CLIENT_CPUS,
 * BENCH_START_TIMEOUT_S, BENCH_WEIR_CLI), plus BENCH_GRPC_CALLERS (default:
 * BENCH_CONNECTIONS) and BENCH_GRPC_CHANNELS (4). Needs `npm ci` (dist/ for
 * Weir) and taskset; builds nothing. Weir not starting is reported as
 * {"skipped": "<why>"}, and its ratios and targets are null.
 */
import { grpcConfigFromEnv, runGrpcBenchmark } from './lib/grpc-harness.js';

const report = await runGrpcBenchmark(grpcConfigFromEnv('full'));
console.log(JSON.stringify(report, null, 2));
