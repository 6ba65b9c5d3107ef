// GPU check of Weir's native core: every bundled model on the CUDA provider
// against the CPU provider (same addon, same ONNX Runtime), through the addon
// and through the worker pool; the fallback rules; Run times. Writes its
// inputs and outputs to $OUT for an independent check in Python.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { nativeAddon } from '../../dist/native/addon.js';
import { WorkerPool } from '../../dist/workers/pool.js';

const OUT = process.env.OUT ?? '/tmp/gpu-out';
mkdirSync(join(OUT, 'tensors'), { recursive: true });
const report = { runtime: null, models: {}, fallback: {}, timing: {}, pool: {}, errors: [] };
const save = () => writeFileSync(join(OUT, 'gpu-check.json'), JSON.stringify(report, null, 1));
const addon = nativeAddon();
report.runtime = addon.runtime;
const opts = (executionProvider, extra = {}) => ({ intraOpThreads: 4, interOpThreads: 1, graphOptimization: 'all', executionProvider, deviceId: 0, cpuFallback: false, ...extra });

let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
function inputFor(info, rows) {
  const shape = info.shape.map((d, i) => (d >= 0 ? d : i === 0 ? rows : 2));
  const n = shape.reduce((a, b) => a * b, 1);
  const data = info.datatype === 'INT64' ? BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * 4))) : Float32Array.from({ length: n }, () => rand() * 2 - 1);
  return { name: info.name, datatype: info.datatype, shape, data };
}
function maxDiff(a, b) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(Number(a[i]) - Number(b[i])));
  return worst;
}
const dump = (file, t) => writeFileSync(join(OUT, 'tensors', file), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));

const MODELS = ['tabular/1', 'tabular/2', 'cnn/1', 'multi_io/1', 'no_batch/1'];
const manifest = [];
for (const m of MODELS) {
  const path = join('models', m, 'model.onnx');
  const entry = (report.models[m] = {});
  try {
    const cpu = await addon.loadSession(`${m}#cpu`, path, opts('cpu'));
    const cuda = await addon.loadSession(`${m}#cuda`, path, opts('cuda'));
    entry.provider = cuda.provider;
    entry.fallbackReason = cuda.fallbackReason;
    const inputs = cpu.inputs.map((info) => inputFor(info, 5));
    const a = addon.run(`${m}#cpu`, inputs);
    const b = addon.run(`${m}#cuda`, inputs);
    entry.outputs = a.outputs.map((t, i) => ({ name: t.name, shape: t.shape, datatype: t.datatype, shapeEqual: JSON.stringify(t.shape) === JSON.stringify(b.outputs[i].shape), maxAbsDiff: maxDiff(t.data, b.outputs[i].data) }));
    const tag = m.replace('/', '_');
    inputs.forEach((t, i) => dump(`${tag}.in${i}`, t));
    b.outputs.forEach((t, i) => dump(`${tag}.cuda.out${i}`, t));
    a.outputs.forEach((t, i) => dump(`${tag}.cpu.out${i}`, t));
    manifest.push({ model: m, path, inputs: inputs.map((t, i) => ({ name: t.name, datatype: t.datatype, shape: t.shape, file: `${tag}.in${i}` })), outputs: b.outputs.map((t, i) => ({ name: t.name, datatype: t.datatype, shape: t.shape, cuda: `${tag}.cuda.out${i}`, cpu: `${tag}.cpu.out${i}` })) });
  } catch (error) {
    entry.error = `${error.code ?? ''} ${error.message}`;
  }
  save();
}
writeFileSync(join(OUT, 'manifest.json'), JSON.stringify(manifest, null, 1));

// Fallback rules: a device that does not exist.
try {
  const info = await addon.loadSession('fb#on', 'models/tabular/1/model.onnx', opts('cuda', { deviceId: 99, cpuFallback: true }));
  report.fallback.withFallback = { provider: info.provider, reason: info.fallbackReason };
} catch (error) {
  report.fallback.withFallback = { error: `${error.code} ${error.message}` };
}
try {
  const info = await addon.loadSession('fb#off', 'models/tabular/1/model.onnx', opts('cuda', { deviceId: 99 }));
  report.fallback.withoutFallback = { unexpected: info.provider };
} catch (error) {
  report.fallback.withoutFallback = { code: error.code, message: error.message };
}
save();

// Run times, CNN at 1, 32 and 128 rows: median of 30 runs after 5 warm-up runs.
for (const rows of [1, 32, 128]) {
  for (const ep of ['cpu', 'cuda']) {
    const key = `cnn/1#${ep}`;
    if (report.models['cnn/1'].error) break;
    const input = [inputFor({ name: 'image', datatype: 'FP32', shape: [-1, 3, 32, 32] }, rows)];
    const times = [];
    for (let i = 0; i < 35; i++) {
      const t0 = performance.now();
      addon.run(key, input);
      if (i >= 5) times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    report.timing[`cnn_${rows}_${ep}_ms`] = +times[15].toFixed(3);
  }
}
save();

// The worker pool (what weir serve uses): concurrent batches to the CUDA session, answers equal to the direct run.
if (!report.models['cnn/1'].error) {
  const pool = new WorkerPool({ workers: 2 });
  try {
    const batches = Array.from({ length: 24 }, (_, i) => [inputFor({ name: 'image', datatype: 'FP32', shape: [-1, 3, 32, 32] }, 1 + (i % 8))]);
    const expected = batches.map((inputs) => addon.run('cnn/1#cpu', inputs).outputs[0]);
    const t0 = performance.now();
    const results = await Promise.all(batches.map((inputs) => pool.run({ sessionKey: 'cnn/1#cuda', inputs: inputs.map((t) => ({ ...t, data: t.data.slice() })) })));
    report.pool.ms = +(performance.now() - t0).toFixed(1);
    report.pool.batches = results.length;
    report.pool.maxAbsDiffVsCpu = Math.max(...results.map((r, i) => maxDiff(r.outputs[0].data, expected[i].data)));
    report.pool.shapesEqual = results.every((r, i) => JSON.stringify(r.outputs[0].shape) === JSON.stringify(expected[i].shape));
  } catch (error) {
    report.pool.error = `${error.code ?? ''} ${error.message}`;
  } finally {
    await pool.close();
  }
}
save();
console.log(JSON.stringify(report));
