/**
 * Smoke run of the HTTP and gRPC benchmarks: the same harnesses as
 * bench/http.ts and bench/grpc.ts, short (BENCH_SECONDS default 2, 16
 * connections / gRPC callers; well under a minute in all). Prints the HTTP
 * JSON report with the gRPC report under `grpc` and a `smoke` block, and
 * exits 1 when any server that started answered wrongly or with errors, or a
 * figure is missing. Speed is not judged. Weir not starting is a failure only
 * with BENCH_REQUIRE_WEIR=1 (the HTTP front end is still being written); the
 * peers must always start.
 *
 *   node --import tsx bench/smoke.ts
 *   BENCH_REQUIRE_WEIR=1 node --import tsx bench/smoke.ts
 */
import { type GrpcResult, grpcConfigFromEnv, isGrpcMeasured, runGrpcBenchmark } from './lib/grpc-harness.js';
import { configFromEnv, isMeasured, runHttpBenchmark, type ServerResult } from './lib/harness.js';
import type { LoadResult } from './lib/load.js';
import { SERVERS } from './lib/servers.js';

const requireWeir = process.env.BENCH_REQUIRE_WEIR === '1';
const report = await runHttpBenchmark(configFromEnv('smoke'));
const grpcReport = await runGrpcBenchmark(grpcConfigFromEnv('smoke'));

const failures: string[] = [];
const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const missing = (where: string, figures: Record<string, unknown>) => {
  for (const [name, value] of Object.entries(figures)) if (!finite(value)) failures.push(`${where}: ${name} is missing`);
};
/** A result without figures: an error fails, and so does a skip (Weir's only when required). */
const notMeasured = (where: string, serverName: string, result: { skipped: string } | { error: string }) => {
  if (!('skipped' in result)) failures.push(`${where}: ${result.error}`);
  else if (serverName !== 'weir' || requireWeir) failures.push(`${where}: ${result.skipped}`);
};

/** The figures every load must report, by the name a failure gives them. */
function loadFigures(result: Pick<LoadResult, 'requests_per_s' | 'latency_ms' | 'cpu_us_per_request'>) {
  return {
    requests_per_s: result.requests_per_s,
    'latency_ms.p50': result.latency_ms.p50,
    'latency_ms.p90': result.latency_ms.p90,
    'latency_ms.p99': result.latency_ms.p99,
    cpu_us_per_request: result.cpu_us_per_request,
  };
}

function checkHttp(where: string, serverName: string, result: ServerResult): void {
  if (!isMeasured(result)) return notMeasured(where, serverName, result);
  if (result.probe !== 'ok') failures.push(`${where}: wrong answer to a correct request: ${result.probe}`);
  if (result.errors.total > 0) failures.push(`${where}: ${JSON.stringify(result.errors)} errors under load`);
  if (result.requests_2xx === 0) failures.push(`${where}: no successful requests`);
  missing(where, loadFigures(result));
  if (SERVERS.find((s) => s.name === serverName)?.metrics && !finite(result.mean_batch_size)) {
    failures.push(`${where}: mean_batch_size is missing (weir_batch_size_rows on /metrics)`);
  }
}

function checkGrpc(where: string, result: GrpcResult): void {
  if (!isGrpcMeasured(result)) return notMeasured(where, 'weir', result);
  if (result.probe !== 'ok') failures.push(`${where}: wrong answer to a correct request: ${result.probe}`);
  if (result.errors.total > 0 || result.errors.outside_window > 0) failures.push(`${where}: ${JSON.stringify(result.errors)} errors under load`);
  if (!result.drained) failures.push(`${where}: requests in flight were left unanswered after the window`);
  if (result.requests_ok === 0) failures.push(`${where}: no successful requests`);
  missing(where, { ...loadFigures(result), 'mean_batch_size (weir_batch_size_rows on /metrics)': result.mean_batch_size });
}

for (const [scenarioName, scenario] of Object.entries(report.scenarios)) {
  for (const [serverName, result] of Object.entries(scenario.servers)) checkHttp(`${scenarioName}/${serverName}`, serverName, result);
}
const raw = report.scenarios['cnn-binary'].raw_onnxruntime;
if (!raw || !('best' in raw) || !finite(raw.best.rows_per_s)) {
  failures.push(`cnn-binary/raw_onnxruntime: ${raw && 'error' in raw ? raw.error : 'best rows/s is missing'}`);
}

checkHttp('grpc/http_json/weir', 'weir', grpcReport.results.http_json);
checkGrpc('grpc/grpc_unary/weir', grpcReport.results.grpc_unary);
checkHttp('grpc/http_json_at_unary_rate/weir', 'weir', grpcReport.results.http_json_at_unary_rate);
checkGrpc('grpc/grpc_stream/weir', grpcReport.results.grpc_stream);
if (!('skipped' in grpcReport.server)) {
  missing('grpc/ratios', {
    grpc_unary_cpu_per_request_vs_http: grpcReport.ratios.grpc_unary_cpu_per_request_vs_http,
    grpc_unary_cpu_per_request_vs_http_at_same_rate: grpcReport.ratios.grpc_unary_cpu_per_request_vs_http_at_same_rate,
    grpc_stream_cpu_per_request_vs_http: grpcReport.ratios.grpc_stream_cpu_per_request_vs_http,
  });
}

console.log(JSON.stringify({ ...report, grpc: grpcReport, smoke: { passed: failures.length === 0, require_weir: requireWeir, failures } }, null, 2));
process.exitCode = failures.length === 0 ? 0 : 1;
