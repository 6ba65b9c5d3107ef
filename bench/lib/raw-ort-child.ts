/**
 * Raw onnxruntime-node on the CNN, in-process, one intra-op thread: rows per
 * second of sequential session.run at batch 1, 8, 32 and 128. Started by
 * raw-ort.ts pinned to the server's core; argv[2] is seconds per batch size.
 * Prints one JSON line.
 */
import { join } from 'node:path';

import ort from 'onnxruntime-node';

import type { RawOrtResult } from './raw-ort.js';

const SECONDS = Number(process.argv[2] ?? 2);
const BATCHES = [1, 8, 32, 128];
const ROW = [3, 32, 32];
const ROW_LENGTH = 3 * 32 * 32;

const session = await ort.InferenceSession.create(join(import.meta.dirname, '..', '..', 'models', 'cnn', '1', 'model.onnx'), {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});

const perBatch: RawOrtResult['per_batch'] = [];
for (const batch of BATCHES) {
  const data = new Float32Array(batch * ROW_LENGTH);
  let s = batch;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  const feeds = { image: new ort.Tensor('float32', data, [batch, ...ROW]) };
  for (let i = 0; i < 3; i++) await session.run(feeds); // warm up
  let runs = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  while (performance.now() < end) {
    await session.run(feeds);
    runs += 1;
  }
  const elapsedS = (performance.now() - start) / 1000;
  perBatch.push({ batch, rows_per_s: Math.round((runs * batch) / elapsedS), run_us: Math.round((elapsedS * 1e6) / runs) });
}
await session.release();

const best = perBatch.reduce((a, b) => (b.rows_per_s > a.rows_per_s ? b : a));
const result: RawOrtResult = { per_batch: perBatch, best: { batch: best.batch, rows_per_s: best.rows_per_s } };
process.stdout.write(`${JSON.stringify(result)}\n`);
