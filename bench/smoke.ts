/**
 * Smoke run of the HTTP benchmark: the same harness as bench/http.ts, short
 * (BENCH_SECONDS default 2, 16 connections; well under a minute). Prints the
 * JSON report with a `smoke` block and exits 1 when any server that started
 * answered wrongly or with errors, or a figure is missing. Speed is not
 * judged. Weir not starting is a failure only with BENCH_REQUIRE_WEIR=1
 * (the HTTP front end is still being written); the peers must always start.
 *
 *   node --import tsx bench/smoke.ts
 *   BENCH_REQUIRE_WEIR=1 node --import tsx bench/smoke.ts
 */
import { configFromEnv, isMeasured, runHttpBenchmark } from './lib/harness.js';
import { SERVERS } from './lib/servers.js';

const requireWeir = process.env.BENCH_REQUIRE_WEIR === '1';
const report = await runHttpBenchmark(configFromEnv('smoke'));

const failures: string[] = [];
const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
for (const [scenarioName, scenario] of Object.entries(report.scenarios)) {
  for (const [serverName, result] of Object.entries(scenario.servers)) {
    const where = `${scenarioName}/${serverName}`;
    if ('skipped' in result) {
      if (serverName !== 'weir' || requireWeir) failures.push(`${where}: ${result.skipped}`);
      continue;
    }
    if (!isMeasured(result)) {
      failures.push(`${where}: ${result.error}`);
      continue;
    }
    if (result.probe !== 'ok') failures.push(`${where}: wrong answer to a correct request: ${result.probe}`);
    if (result.errors.total > 0) failures.push(`${where}: ${JSON.stringify(result.errors)} errors under load`);
    if (result.requests_2xx === 0) failures.push(`${where}: no successful requests`);
    const figures = {
      requests_per_s: result.requests_per_s,
      'latency_ms.p50': result.latency_ms.p50,
      'latency_ms.p90': result.latency_ms.p90,
      'latency_ms.p99': result.latency_ms.p99,
      cpu_us_per_request: result.cpu_us_per_request,
    };
    for (const [name, value] of Object.entries(figures)) if (!finite(value)) failures.push(`${where}: ${name} is missing`);
    if (SERVERS.find((s) => s.name === serverName)?.metrics && !finite(result.mean_batch_size)) {
      failures.push(`${where}: mean_batch_size is missing (weir_batch_size_rows on /metrics)`);
    }
  }
}
const raw = report.scenarios['cnn-binary'].raw_onnxruntime;
if (!raw || !('best' in raw) || !finite(raw.best.rows_per_s)) {
  failures.push(`cnn-binary/raw_onnxruntime: ${raw && 'error' in raw ? raw.error : 'best rows/s is missing'}`);
}

console.log(JSON.stringify({ ...report, smoke: { passed: failures.length === 0, require_weir: requireWeir, failures } }, null, 2));
process.exitCode = failures.length === 0 ? 0 : 1;
