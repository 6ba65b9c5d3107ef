/**
 * Micro-benchmark of the inference core (worker pool + native addon) against
 * raw onnxruntime-node in-process, measured in one run, printed as one JSON
 * object. Same ORT thread count on both sides: the core's workers × intra-op
 * threads equals raw onnxruntime-node's intra-op threads.
 *
 *   npm run bench:core                  BENCH_SECONDS=1.5 per measurement
 *   BENCH_SECONDS=0.2 npm run bench:core (smoke)
 *   BENCH_WORKERS, BENCH_DEPTH: workers (default: cores) and requests in flight (default 8)
 *   BENCH_ROUNDS: how many times the fixed cost at BENCH_DEPTH is measured; the median is reported (default 3)
 *
 * The fixed cost is the CPU time (main thread plus workers) the core spends
 * per batch beyond ONNX Runtime's own Run, on the tabular model at batch 1:
 * those threads' CPU time per batch (from /proc) minus ORT's Run time per
 * batch, which is calibrated alone on this thread (one ORT thread, nothing
 * competing, so wall time is CPU time). The whole process's figure, which
 * adds V8's garbage-collection helpers, is reported beside it. Inputs live in SharedArrayBuffers, so the driver copies
 * nothing per request.
 *
 * The core serves a copy of the example models whose configs turn dynamic
 * batching off, so that every request is one batch: this measures the pool
 * and the addon, not the batcher's merging of requests.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

import ort from 'onnxruntime-node';

import { InferenceCore } from '../dist/index.js';
import { nativeAddon } from '../dist/native/addon.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 1.5);
const WORKERS = Number(process.env.BENCH_WORKERS ?? availableParallelism());
const DEPTH = Number(process.env.BENCH_DEPTH ?? 8);
const ROUNDS = Math.max(1, Math.round(Number(process.env.BENCH_ROUNDS ?? 3) || 3));
const BATCHES = [1, 8, 32, 128];
const MODELS_DIR = join(import.meta.dirname, '..', 'models');

const MODELS = {
  tabular: { version: '1', input: 'features', rowShape: [32] },
  cnn: { version: '1', input: 'image', rowShape: [3, 32, 32] },
} as const;
type ModelName = keyof typeof MODELS;

/** Seeded inputs; in shared memory they reach workers without a copy or a transfer. */
function seededInput(rows: number, rowShape: readonly number[], seed: number, shared: boolean): Float32Array {
  const length = rows * rowShape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(shared ? new SharedArrayBuffer(length * 4) : new ArrayBuffer(length * 4));
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return data;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number);
}

const round = (n: number, digits = 1) => Number(n.toFixed(digits));

/** Calls `once` from `depth` concurrent lanes for SECONDS; CPU time is the whole process's. */
async function drive(depth: number, once: () => Promise<unknown>) {
  const latenciesUs: number[] = [];
  let batches = 0;
  const cpuStart = process.cpuUsage();
  const loopStart = performance.eventLoopUtilization();
  const start = performance.now();
  const end = start + SECONDS * 1000;
  const lane = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await once();
      latenciesUs.push((performance.now() - t) * 1000);
      batches += 1;
    }
  };
  await Promise.all(Array.from({ length: depth }, lane));
  const elapsedS = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const mainThread = performance.eventLoopUtilization(loopStart);
  latenciesUs.sort((a, b) => a - b);
  return {
    batches,
    batchesPerS: batches / elapsedS,
    cpuUsPerBatch: (cpu.user + cpu.system) / batches,
    mainThreadUsPerBatch: (mainThread.active * 1000) / batches,
    p50Us: percentile(latenciesUs, 0.5),
    p90Us: percentile(latenciesUs, 0.9),
    p99Us: percentile(latenciesUs, 0.99),
  };
}

async function rawOrt(model: ModelName, batch: number) {
  const spec = MODELS[model];
  const session = await ort.InferenceSession.create(join(MODELS_DIR, model, spec.version, 'model.onnx'), {
    intraOpNumThreads: WORKERS,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = { [spec.input]: new ort.Tensor('float32', seededInput(batch, spec.rowShape, batch, false), [batch, ...spec.rowShape]) };
  await session.run(feeds);
  // onnxruntime-node's run blocks its thread; more lanes would only queue.
  const result = await drive(1, async () => {
    await session.run(feeds);
    return 0;
  });
  await session.release();
  return result;
}

function coreDriver(core: InferenceCore, model: ModelName, batch: number) {
  const spec = MODELS[model];
  const data = seededInput(batch, spec.rowShape, batch, true);
  return () =>
    core.infer({ model, version: spec.version, inputs: [{ name: spec.input, datatype: 'FP32', shape: [batch, ...spec.rowShape], data }] });
}

/** ORT's own Run time per batch: the addon run synchronously on this thread, alone. */
async function calibrateOrtRun(model: ModelName, batch: number): Promise<number> {
  const spec = MODELS[model];
  const addon = nativeAddon();
  const key = `bench-calibration:${model}`;
  if (!addon.sessions().some((s) => s.key === key)) {
    await addon.loadSession(key, join(MODELS_DIR, model, spec.version, 'model.onnx'), {
      intraOpThreads: 1,
      interOpThreads: 1,
      graphOptimization: 'all',
      executionProvider: 'cpu',
      deviceId: 0,
      cpuFallback: false,
    });
  }
  const inputs = [{ name: spec.input, datatype: 'FP32' as const, shape: [batch, ...spec.rowShape], data: seededInput(batch, spec.rowShape, batch, false) }];
  addon.run(key, inputs);
  let runs = 0;
  let runNs = 0;
  const end = performance.now() + SECONDS * 300;
  while (performance.now() < end) {
    runNs += addon.run(key, inputs).runNs;
    runs += 1;
  }
  return runNs / 1000 / runs;
}

/** The benchmark's models, each request its own batch (max_batch_size 128, no dynamic batching). */
async function unbatchedRepository(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weir-bench-'));
  for (const model of Object.keys(MODELS)) {
    await cp(join(MODELS_DIR, model), join(dir, model), { recursive: true });
    await writeFile(join(dir, model, 'config.json'), JSON.stringify({ max_batch_size: 128, version_policy: { all: {} } }));
  }
  return dir;
}

/** CPU time in µs of each OS thread of this process (/proc; CLK_TCK is 100 on Linux x86-64). */
function threadCpuUs(): Map<string, number> {
  const times = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      times.set(tid, ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100);
    } catch {
      // the thread ended meanwhile
    }
  }
  return times;
}

const repository = await unbatchedRepository();
// Threads that exist before the core starts are not its workers (V8's helpers, libuv's).
const threadsBeforeCore = new Set(threadCpuUs().keys());
const core = await InferenceCore.start({ modelRepository: repository, workers: WORKERS, intraOpThreads: 1 });
const results: Array<{ model: ModelName; batch: number; ratio_core_to_raw: number } & Record<string, unknown>> = [];
for (const model of Object.keys(MODELS) as ModelName[]) {
  for (const batch of BATCHES) {
    await drive(1, coreDriver(core, model, batch)).catch(() => undefined); // warm-up
    const ortRunUs = await calibrateOrtRun(model, batch);
    const raw = await rawOrt(model, batch);
    const viaCore = await drive(DEPTH, coreDriver(core, model, batch));
    results.push({
      model,
      batch,
      raw: { rows_per_s: Math.round(raw.batchesPerS * batch), p50_us: round(raw.p50Us), p99_us: round(raw.p99Us), cpu_us_per_batch: round(raw.cpuUsPerBatch) },
      core: {
        rows_per_s: Math.round(viaCore.batchesPerS * batch),
        p50_us: round(viaCore.p50Us),
        p90_us: round(viaCore.p90Us),
        p99_us: round(viaCore.p99Us),
        cpu_us_per_batch: round(viaCore.cpuUsPerBatch),
        main_thread_us_per_batch: round(viaCore.mainThreadUsPerBatch),
      },
      ort_run_us_per_batch: round(ortRunUs),
      ratio_core_to_raw: round(viaCore.batchesPerS / raw.batchesPerS, 3),
    });
  }
}

// The fixed cost, with one request in flight (nothing to amortise) and under load:
// of the main thread plus the workers (the definition), and of the
// whole process (which adds V8's garbage-collection helper threads).
const tabularRunUs = await calibrateOrtRun('tabular', 1);
type FixedCost = Awaited<ReturnType<typeof fixedCost>>;

/** The item whose `key` is the median (the lower middle one for an even count). */
function medianBy<T>(items: readonly T[], key: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)] as T;
}

const fixedCost = async (depth: number) => {
  const before = threadCpuUs();
  const run = await drive(depth, coreDriver(core, 'tabular', 1));
  const spent = (tids: string[]) => tids.reduce((sum, tid) => sum + (after.get(tid) ?? 0) - (before.get(tid) ?? 0), 0) / run.batches;
  const after = threadCpuUs();
  const main = String(process.pid);
  const workers = [...after.keys()].filter((tid) => !threadsBeforeCore.has(tid));
  const others = [...after.keys()].filter((tid) => tid !== main && threadsBeforeCore.has(tid));
  return {
    main_thread_plus_workers: round(spent([main, ...workers]) - tabularRunUs),
    process: round(run.cpuUsPerBatch - tabularRunUs),
    main_thread: round(spent([main])),
    workers_beyond_ort: round(spent(workers) - tabularRunUs),
    other_threads: round(spent(others)),
  };
};
const fixedSequential = await fixedCost(1);
// The target's figure, measured ROUNDS times: this machine's load drifts, so the median decides.
const loadedRounds: FixedCost[] = [];
for (let round = 0; round < ROUNDS; round++) loadedRounds.push(await fixedCost(DEPTH));
const fixedLoaded = medianBy(loadedRounds, (cost) => cost.main_thread_plus_workers);
const fixedLoadedProcess = medianBy(loadedRounds, (cost) => cost.process).process;
const fixedHeavy = await fixedCost(4 * DEPTH);
await core.stop();
await rm(repository, { recursive: true, force: true });

const ratioOf = (model: ModelName, batch: number) => results.find((r) => r.model === model && r.batch === batch)?.ratio_core_to_raw ?? 0;
console.log(
  JSON.stringify(
    {
      bench: 'core',
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, onnxruntime: core.serverMetadata().onnxruntime },
      config: { seconds_per_measurement: SECONDS, workers: WORKERS, core_intra_op_threads: 1, raw_intra_op_threads: WORKERS, depth: DEPTH },
      results,
      fixed_cost_us_per_batch: {
        in_flight_1: fixedSequential,
        [`in_flight_${DEPTH}`]: fixedLoaded,
        [`in_flight_${DEPTH}_rounds`]: loadedRounds.map((cost) => cost.main_thread_plus_workers),
        [`in_flight_${4 * DEPTH}`]: fixedHeavy,
      },
      targets: {
        [`fixed_cost_main_plus_workers_at_most_25us_with_${DEPTH}_in_flight`]: fixedLoaded.main_thread_plus_workers <= 25,
        [`fixed_cost_whole_process_at_most_25us_with_${DEPTH}_in_flight`]: fixedLoadedProcess <= 25,
        tabular_batch128_at_least_85pct_of_raw: ratioOf('tabular', 128) >= 0.85,
        cnn_batch8_at_least_85pct_of_raw: ratioOf('cnn', 8) >= 0.85,
      },
    },
    null,
    2,
  ),
);
