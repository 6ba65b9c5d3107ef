/**
 * The HTTP benchmark, shared by bench/http.ts (full run) and bench/smoke.ts.
 *
 * Each server in SERVERS is started pinned to the server CPU (default core 0),
 * checked with one correct request per scenario, then driven by autocannon
 * pinned to the client CPU (default core 1). Its CPU time comes from /proc
 * over exactly the measured window. All servers are up at once, and only
 * one is driven at a time: each scenario is measured on every server back
 * to back, and raw onnxruntime-node on the CNN right after, on the server CPU.
 *
 * The whole sequence runs BENCH_ROUNDS times (3 in a full run). On a shared
 * machine the load drifts between measurements, so ratios are taken within
 * each round and the report gives their median (and each round's figures).
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpus, loadavg, release } from 'node:os';

import { installCleanup } from './children.js';
import { type LoadResult, runLoad } from './load.js';
import { clockTicksPerSecond } from './proc.js';
import { type BracketedRawOrt, type RawOrtResult, bracketed, measureRawOrt } from './raw-ort.js';
import { SCENARIOS, type Scenario, type ScenarioName } from './scenarios.js';
import { PORT_PLACEHOLDERS, type RunningServer, SERVERS, type ServerSpec, startServer } from './servers.js';

export interface HarnessConfig {
  mode: 'full' | 'smoke';
  seconds: number;
  warmupSeconds: number;
  connections: number;
  rawSecondsPerBatch: number;
  serverCpus: string;
  clientCpus: string;
  startTimeoutS: number;
  /** Names of the servers to run (default: all of SERVERS). */
  servers: string[] | null;
  /** How many times the whole sequence runs; ratios are per round, reported as their median. */
  rounds: number;
}

/** A positive number from environment variable `name`, or `fallback` when it is unset. */
export function envNumber(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got '${value}'`);
  return n;
}

/** Config from BENCH_* environment variables over the mode's defaults. */
export function configFromEnv(mode: 'full' | 'smoke'): HarnessConfig {
  const env = process.env;
  const smoke = mode === 'smoke';
  return {
    mode,
    seconds: envNumber('BENCH_SECONDS', smoke ? 2 : 10),
    warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', smoke ? 0.5 : 2),
    connections: envNumber('BENCH_CONNECTIONS', smoke ? 16 : 64),
    rawSecondsPerBatch: envNumber('BENCH_RAW_SECONDS', smoke ? 0.5 : 2),
    serverCpus: env.BENCH_SERVER_CPUS || '0',
    clientCpus: env.BENCH_CLIENT_CPUS || '1',
    startTimeoutS: envNumber('BENCH_START_TIMEOUT_S', 60),
    servers: env.BENCH_SERVERS ? env.BENCH_SERVERS.split(',').map((s) => s.trim()) : null,
    rounds: Math.max(1, Math.round(envNumber('BENCH_ROUNDS', smoke ? 1 : 3))),
  };
}

/** A server's figures in one scenario, or why there are none. */
export type ServerResult =
  | { skipped: string }
  | { error: string; probe?: string }
  | (LoadResult & { probe: string; ready_after_s: number });

export interface ScenarioReport {
  description: string;
  request: { method: string; path: string; headers: Record<string, string>; body_bytes: number; rows: number };
  servers: Record<string, ServerResult>;
  raw_onnxruntime?: BracketedRawOrt | { error: string };
}

export interface Report {
  bench: 'http';
  mode: 'full' | 'smoke';
  machine: Record<string, unknown>;
  config: Record<string, unknown>;
  /** The first round's figures in full. */
  scenarios: Record<ScenarioName, ScenarioReport>;
  /** Each round's ratios and headline figures (when there is more than one round). */
  rounds?: Array<{ ratios: Ratios; cpu_us_per_request: Record<string, number | null> }>;
  /** The median over rounds of each ratio. */
  ratios: Ratios;
  targets: Record<string, boolean | null>;
}

export type Ratios = Record<string, number | null>;

export const isMeasured = (r: ServerResult | undefined): r is Extract<ServerResult, { requests: number }> =>
  r !== undefined && 'requests' in r;

function packageVersion(name: string): string | null {
  try {
    return (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
  } catch {
    return null;
  }
}

/** Throws when `taskset` cannot pin to CPU list `list`. */
export function checkPinning(list: string): void {
  try {
    execFileSync('taskset', ['-c', list, 'true'], { stdio: 'pipe' });
  } catch (error) {
    const detail = error instanceof Error && 'stderr' in error ? String(error.stderr).trim() : String(error);
    throw new Error(`cannot pin to CPUs '${list}' with taskset (set BENCH_SERVER_CPUS / BENCH_CLIENT_CPUS): ${detail}`);
  }
}

/** Starts every server in `specs` (idle ones cost nothing); one that does not start is marked skipped in its scenarios. */
async function startAll(specs: readonly ServerSpec[], config: HarnessConfig, scenarios: Record<ScenarioName, ScenarioReport>): Promise<Map<string, RunningServer>> {
  const running = new Map<string, RunningServer>();
  for (const spec of specs) {
    try {
      running.set(spec.name, await startServer(spec, config.serverCpus, config.startTimeoutS));
    } catch (error) {
      const skipped = `${spec.label} did not start: ${error instanceof Error ? error.message : String(error)}`;
      for (const name of spec.scenarios) scenarios[name].servers[spec.name] = { skipped };
    }
  }
  return running;
}

/** One scenario against a running server: its probe, then the load; errors become the result. */
/** Drives `scenario` at full speed, or paced at `requestsPerSecond`. */
export async function measureHttpScenario(server: RunningServer, scenario: Scenario, config: HarnessConfig, requestsPerSecond?: number): Promise<ServerResult> {
  let probe: string;
  try {
    probe = (await scenario.probe(server.baseUrl)) ?? 'ok';
  } catch (error) {
    probe = `request failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  try {
    const load = await runLoad({
      url: server.baseUrl + scenario.path,
      method: scenario.method,
      headers: scenario.headers,
      body: scenario.body,
      connections: config.connections,
      seconds: config.seconds,
      warmupSeconds: config.warmupSeconds,
      serverPid: server.child.pid,
      serverCpus: config.serverCpus,
      metricsUrl: server.metricsUrl,
      model: scenario.model,
      cpus: config.clientCpus,
      ...(requestsPerSecond !== undefined && { requestsPerSecond }),
    });
    return { probe, ready_after_s: server.readyAfterS, ...load };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error), probe };
  }
}

/** a / b, rounded; null when either is missing or b is 0. */
export const ratio = (a: number | null | undefined, b: number | null | undefined, digits = 3): number | null =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? null : Number((a / b).toFixed(digits));
/** Whether a ratio is within its limit; null when the ratio is missing. */
export const atMost = (value: number | null, limit: number): boolean | null => (value === null ? null : value <= limit);

/** The machine and the versions that matter, for a report. */
export function machineInfo(packages: string[] = ['onnxruntime-node', 'autocannon']): Record<string, unknown> {
  const versions = Object.fromEntries(packages.map((name) => [name.replace(/^@[^/]+\//, '').replace(/-/g, '_'), packageVersion(name)]));
  return {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    kernel: release(),
    node: process.version,
    ...versions,
    clk_tck: clockTicksPerSecond(),
    loadavg_at_start: loadavg().map((v) => Number(v.toFixed(2))),
  };
}

/**
 * One round: every server started at once, then each scenario measured on
 * each server back to back (the servers' order turning from round to round),
 * raw onnxruntime-node right before and right after the CNN's servers
 * (raw-ort.ts: the two runs bracket them). Measurements that are
 * compared lie seconds apart, not a whole server's run: the machine drifts.
 */
async function runRound(servers: readonly ServerSpec[], config: HarnessConfig, round: number): Promise<Record<ScenarioName, ScenarioReport>> {
  const scenarios = {} as Record<ScenarioName, ScenarioReport>;
  for (const scenario of Object.values(SCENARIOS)) {
    scenarios[scenario.name] = {
      description: scenario.description,
      request: { method: scenario.method, path: scenario.path, headers: scenario.headers, body_bytes: scenario.body.length, rows: scenario.rows },
      servers: {},
    };
  }
  const running = await startAll(servers, config, scenarios);
  const order = servers.map((_, i) => servers[(i + round) % servers.length] as ServerSpec);
  try {
    for (const scenario of Object.values(SCENARIOS)) {
      const measureServers = async () => {
        for (const spec of order) {
          const server = running.get(spec.name);
          if (server && spec.scenarios.includes(scenario.name)) {
            scenarios[scenario.name].servers[spec.name] = await measureHttpScenario(server, scenario, config);
          }
        }
      };
      if (scenario.name === 'cnn-binary') scenarios[scenario.name].raw_onnxruntime = await rawAround(measureServers, config);
      else await measureServers();
    }
  } finally {
    await Promise.all([...running.values()].map((server) => server.stop()));
  }
  return scenarios;
}

/** Raw onnxruntime-node just before and just after `measureServers` (which runs either way); a failed run becomes the result. */
async function rawAround(measureServers: () => Promise<void>, config: HarnessConfig): Promise<BracketedRawOrt | { error: string }> {
  const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));
  let before: RawOrtResult | { error: string };
  try {
    before = await measureRawOrt(config.rawSecondsPerBatch, config.serverCpus);
  } catch (error) {
    before = { error: errorText(error) };
  }
  await measureServers();
  if ('error' in before) return before;
  try {
    return bracketed(before, await measureRawOrt(config.rawSecondsPerBatch, config.serverCpus));
  } catch (error) {
    return { error: errorText(error) };
  }
}

/** One round's ratios, each measured within that round. */
function ratiosOf(scenarios: Record<ScenarioName, ScenarioReport>): Ratios {
  const tabular = scenarios['tabular-json'].servers;
  const weir = isMeasured(tabular.weir) ? tabular.weir : undefined;
  const naive = isMeasured(tabular['naive-node']) ? tabular['naive-node'] : undefined;
  const uws = isMeasured(tabular['uws-hello']) ? tabular['uws-hello'] : undefined;
  const deferred = isMeasured(tabular['uws-deferred']) ? tabular['uws-deferred'] : undefined;
  const cnnWeirEntry = scenarios['cnn-binary'].servers.weir;
  const cnnWeir = isMeasured(cnnWeirEntry) ? cnnWeirEntry : undefined;
  const raw = scenarios['cnn-binary'].raw_onnxruntime;
  const bestRaw = raw && 'best' in raw ? raw.best.rows_per_s : null;
  const cnnRowsPerS = cnnWeir ? (cnnWeir.requests_2xx * SCENARIOS['cnn-binary'].rows) / cnnWeir.seconds : null;
  return {
    tabular_weir_cpu_per_request_vs_naive_node: ratio(weir?.cpu_us_per_request, naive?.cpu_us_per_request),
    tabular_weir_cpu_per_request_vs_uws_hello: ratio(weir?.cpu_us_per_request, uws?.cpu_us_per_request),
    tabular_weir_p99_vs_naive_node: ratio(weir?.latency_ms.p99, naive?.latency_ms.p99),
    tabular_weir_requests_per_s_vs_naive_node: ratio(weir?.requests_per_s, naive?.requests_per_s),
    tabular_naive_node_cpu_per_request_vs_uws_hello: ratio(naive?.cpu_us_per_request, uws?.cpu_us_per_request),
    // Reported, not judged: how much of Weir's cost over the floor is answering after the handler at all.
    tabular_weir_cpu_per_request_vs_uws_deferred: ratio(weir?.cpu_us_per_request, deferred?.cpu_us_per_request),
    tabular_uws_deferred_cpu_per_request_vs_uws_hello: ratio(deferred?.cpu_us_per_request, uws?.cpu_us_per_request),
    cnn_weir_rows_per_s: cnnRowsPerS === null ? null : Math.round(cnnRowsPerS),
    cnn_best_raw_rows_per_s: bestRaw,
    cnn_weir_vs_best_raw: ratio(cnnRowsPerS, bestRaw),
  };
}

/** Each ratio's median over the rounds that have it (null when none does). */
export function medianRatios(rounds: readonly Ratios[]): Ratios {
  const names = Object.keys(rounds[0] ?? {});
  return Object.fromEntries(
    names.map((name) => {
      const values = rounds.map((r) => r[name]).filter((v): v is number => typeof v === 'number').sort((a, b) => a - b);
      if (values.length === 0) return [name, null];
      const middle = values.length / 2;
      const median = values.length % 2 === 1 ? (values[Math.floor(middle)] as number) : ((values[middle - 1] as number) + (values[middle] as number)) / 2;
      return [name, Number(median.toFixed(3))];
    }),
  );
}

export async function runHttpBenchmark(config: HarnessConfig): Promise<Report> {
  installCleanup();
  checkPinning(config.serverCpus);
  checkPinning(config.clientCpus);
  const machine = machineInfo();
  const servers = SERVERS.filter((s) => config.servers === null || config.servers.includes(s.name));

  const rounds: Array<Record<ScenarioName, ScenarioReport>> = [];
  for (let round = 0; round < config.rounds; round++) rounds.push(await runRound(servers, config, round));
  const roundRatios = rounds.map(ratiosOf);
  const ratios = medianRatios(roundRatios);
  const scenarios = rounds[0] as Record<ScenarioName, ScenarioReport>;

  // Errors count in every round (a round whose load failed is a failure; null only if Weir never ran); speed targets use the median ratios.
  const zeroErrors = (name: ScenarioName) => {
    const results = rounds.map((r) => r[name].servers.weir);
    if (results.every((r) => r === undefined || 'skipped' in r)) return null;
    return results.every((r) => isMeasured(r) && r.errors.total === 0 && r.probe === 'ok');
  };
  const targets = {
    tabular_weir_cpu_per_request_at_most_one_third_of_naive_node: atMost(ratios.tabular_weir_cpu_per_request_vs_naive_node ?? null, 1 / 3),
    tabular_weir_cpu_per_request_at_most_1_6x_uws_hello: atMost(ratios.tabular_weir_cpu_per_request_vs_uws_hello ?? null, 1.6),
    tabular_weir_zero_errors: zeroErrors('tabular-json'),
    tabular_weir_p99_at_most_naive_node: atMost(ratios.tabular_weir_p99_vs_naive_node ?? null, 1),
    cnn_weir_zero_errors: zeroErrors('cnn-binary'),
    cnn_weir_at_least_85pct_of_best_raw: ratios.cnn_weir_vs_best_raw === null || ratios.cnn_weir_vs_best_raw === undefined ? null : ratios.cnn_weir_vs_best_raw >= 0.85,
  };
  const perRound =
    rounds.length > 1
      ? rounds.map((round, i) => ({
          ratios: roundRatios[i] as Ratios,
          cpu_us_per_request: Object.fromEntries(
            Object.entries(round['tabular-json'].servers).map(([name, r]) => [name, isMeasured(r) ? r.cpu_us_per_request : null]),
          ),
        }))
      : undefined;

  return {
    bench: 'http',
    mode: config.mode,
    machine,
    config: {
      seconds: config.seconds,
      warmup_seconds: config.warmupSeconds,
      connections: config.connections,
      pipelining: 1,
      server_cpus: config.serverCpus,
      client_cpus: config.clientCpus,
      raw_onnxruntime: {
        seconds_per_batch: config.rawSecondsPerBatch,
        intra_op_threads: 1,
        batches: [1, 8, 32, 128],
        reference: 'per batch size, the mean of a run just before and one just after the CNN servers; best = the batch size with the highest mean',
      },
      rounds: config.rounds,
      servers: servers.map((s) => ({ name: s.name, command: s.command(PORT_PLACEHOLDERS).join(' '), scenarios: s.scenarios })),
      cpu_time:
        'server process group utime+stime from /proc/<pid>/stat over the measured window; cpu_us_per_request = that / responses; ' +
        'main_thread_cpu_us_per_request: the same of the main thread alone (/proc/<pid>/task/<pid>/stat)',
    },
    scenarios,
    ...(perRound && { rounds: perRound }),
    ratios,
    targets,
  };
}
