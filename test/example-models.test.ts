/**
 * The example models' numbers: each model's output through InferenceCore,
 * against a reference computed here in plain TypeScript from the weights the
 * build script exports. Also: the committed models/ are exactly what the
 * build script produces.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InferenceCore, type Tensor } from '../dist/index.js';
import { buildExampleRepository, cnnConvolutions, cnnWeights, tabularWeights, treeProbabilities } from '../scripts/build-models.mjs';
import { seededRandom } from '../scripts/onnx-builder.mjs';
import { EXAMPLE_REPOSITORY } from './helpers/repository.js';

let core: InferenceCore;

beforeAll(async () => {
  core = await InferenceCore.start({ modelRepository: EXAMPLE_REPOSITORY, workers: 2 });
});

afterAll(async () => {
  await core?.stop();
});

/** `count` seeded values in [-scale, scale), as a Float32Array. */
function seededFloats(seed: number, count: number, scale = 1): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: count }, () => rand() * scale);
}

const fp32 = (name: string, shape: number[], data: Float32Array): Tensor => ({ name, datatype: 'FP32', shape, data });

function output(outputs: Tensor[], name: string): Tensor {
  const tensor = outputs.find((t) => t.name === name);
  if (!tensor) throw new Error(`no output ${name} among ${outputs.map((t) => t.name).join(', ')}`);
  return tensor;
}

function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs((actual[i] as number) - (expected[i] as number));
    if (!(diff <= worst)) {
      worst = diff;
      at = i;
    }
  }
  expect(worst, `largest difference at element ${at}: ${actual[at]} vs ${expected[at]}`).toBeLessThanOrEqual(tolerance);
}

describe('tabular (MLP)', () => {
  const ROWS = 64;
  const FEATURES = 32;
  const HIDDEN = 16;
  const CLASSES = 2;

  /** softmax(relu(x·w1 + b1)·w2 + b2), row by row, in float64. */
  function reference(version: number, x: Float32Array): Float64Array {
    const { w1, b1, w2, b2 } = tabularWeights(version);
    const rows = x.length / FEATURES;
    const out = new Float64Array(rows * CLASSES);
    for (let r = 0; r < rows; r++) {
      const hidden: number[] = [];
      for (let j = 0; j < HIDDEN; j++) {
        let sum = b1[j] as number;
        for (let i = 0; i < FEATURES; i++) sum += (x[r * FEATURES + i] as number) * (w1[i * HIDDEN + j] as number);
        hidden.push(Math.max(0, sum));
      }
      const logits: number[] = [];
      for (let k = 0; k < CLASSES; k++) {
        let sum = b2[k] as number;
        for (let j = 0; j < HIDDEN; j++) sum += (hidden[j] as number) * (w2[j * CLASSES + k] as number);
        logits.push(sum);
      }
      out.set(softmax(logits), r * CLASSES);
    }
    return out;
  }

  const rows = seededFloats(4242, ROWS * FEATURES, 2);
  const results = new Map<number, Float32Array>();

  it.each([1, 2])('version %i equals the reference forward pass for 64 random rows', async (version) => {
    // infer moves the input buffer to a worker: send a copy, keep `rows`.
    const response = await core.infer({ model: 'tabular', version, inputs: [fp32('features', [ROWS, FEATURES], rows.slice())] });
    expect(response.model_version).toBe(String(version));
    const probabilities = output(response.outputs, 'probabilities');
    expect(probabilities.datatype).toBe('FP32');
    expect(probabilities.shape).toEqual([ROWS, CLASSES]);
    const data = probabilities.data as Float32Array;
    expectClose(data, reference(version, rows), 1e-5);
    results.set(version, data);
  });

  it('versions 1 and 2 answer differently', () => {
    const v1 = results.get(1);
    const v2 = results.get(2);
    expect(v1 && v2).toBeTruthy();
    let largest = 0;
    for (let i = 0; i < (v1?.length ?? 0); i++) largest = Math.max(largest, Math.abs((v1?.[i] as number) - (v2?.[i] as number)));
    expect(largest).toBeGreaterThan(1e-2);
  });
});

describe('trees (TreeEnsembleClassifier)', () => {
  const ROWS = 100;

  it('labels and probabilities equal treeProbabilities(row) for 100 rows, threshold values included', async () => {
    const features = seededFloats(777, ROWS * 4);
    // Rows that sit exactly on thresholds: BRANCH_LEQ must send them to `yes`.
    const onThresholds = [
      [0, 0.5, -0.25, 0.1],
      [-0.5, -0.2, 0.3, 0.7],
      [0, -0.2, 0.3, 0.1],
      [0.5, 0.5, -0.25, 0.7],
    ];
    onThresholds.forEach((row, i) => features.set(row, i * 4));

    // No config: the auto-completed max_batch_size is 64, so two requests.
    const split = 64;
    const [first, second] = await Promise.all([
      core.infer({ model: 'trees', inputs: [fp32('features', [split, 4], features.slice(0, split * 4))] }),
      core.infer({ model: 'trees', inputs: [fp32('features', [ROWS - split, 4], features.slice(split * 4))] }),
    ]);
    const labels = [first, second].flatMap((r) => Array.from(output(r.outputs, 'label').data as BigInt64Array));
    const probabilities = [first, second].flatMap((r) => Array.from(output(r.outputs, 'probabilities').data as Float32Array));
    expect(output(first.outputs, 'label').shape).toEqual([split]);
    expect(output(second.outputs, 'probabilities').shape).toEqual([ROWS - split, 2]);

    const expectedProbabilities: number[] = [];
    const expectedLabels: bigint[] = [];
    for (let r = 0; r < ROWS; r++) {
      const [p0, p1] = treeProbabilities(Array.from(features.subarray(r * 4, r * 4 + 4))) as [number, number];
      expectedProbabilities.push(p0, p1);
      expectedLabels.push(p1 > 0.5 ? 1n : 0n);
    }
    expect(labels).toEqual(expectedLabels);
    expectClose(probabilities, expectedProbabilities, 1e-6);
    // Both labels occur, so the comparison above means something.
    expect(new Set(labels).size).toBe(2);
  });
});

describe('multi_io', () => {
  it('weighted = ids * values and argmax over values, INT64 as BigInt64Array', async () => {
    const ROWS = 40;
    const values = seededFloats(99, ROWS * 4, 10);
    const ids = BigInt64Array.from({ length: ROWS * 4 }, (_, i) => BigInt((i * 37) % 23) - 11n);
    const response = await core.infer({
      model: 'multi_io',
      inputs: [
        { name: 'ids', datatype: 'INT64', shape: [ROWS, 4], data: ids.slice() },
        fp32('values', [ROWS, 4], values.slice()),
      ],
    });
    const weighted = output(response.outputs, 'weighted');
    const argmax = output(response.outputs, 'argmax');
    expect(weighted).toMatchObject({ datatype: 'FP32', shape: [ROWS, 4] });
    expect(argmax).toMatchObject({ datatype: 'INT64', shape: [ROWS, 1] });
    expect(argmax.data).toBeInstanceOf(BigInt64Array);

    const expectedWeighted = Array.from(values, (v, i) => Math.fround(Number(ids[i]) * v));
    expect(Array.from(weighted.data as Float32Array)).toEqual(expectedWeighted);

    const expectedArgmax: bigint[] = [];
    for (let r = 0; r < ROWS; r++) {
      const row = Array.from(values.subarray(r * 4, r * 4 + 4));
      expectedArgmax.push(BigInt(row.indexOf(Math.max(...row))));
    }
    expect(Array.from(argmax.data as BigInt64Array)).toEqual(expectedArgmax);
  });
});

describe('no_batch', () => {
  it('scaled = matrix * scale, and total = sum(scaled) as a rank-0 output', async () => {
    const matrix = seededFloats(5, 12, 3);
    const scale = 1.5;
    const response = await core.infer({
      model: 'no_batch',
      inputs: [fp32('matrix', [3, 4], matrix.slice()), fp32('scale', [], new Float32Array([scale]))],
    });
    const scaled = output(response.outputs, 'scaled');
    const total = output(response.outputs, 'total');
    expect(scaled).toMatchObject({ datatype: 'FP32', shape: [3, 4] });
    expect(Array.from(scaled.data as Float32Array)).toEqual(Array.from(matrix, (v) => Math.fround(v * scale)));
    expect(total.datatype).toBe('FP32');
    expect(total.shape).toEqual([]);
    expect(total.data.length).toBe(1);
    const sum = Array.from(scaled.data as Float32Array).reduce((a, b) => a + b, 0);
    expect(Math.abs((total.data[0] as number) - sum)).toBeLessThan(1e-4);
  });
});

describe('cnn', () => {
  /** Each convolution Conv(3x3, pad 1) → Relu, a MaxPool(2x2) after every second one, Flatten, Gemm(transB) → Softmax, in float64. */
  function reference(image: Float32Array): number[] {
    const w = cnnWeights();
    const convRelu = (input: Float64Array, cin: number, size: number, weights: Float32Array, bias: Float32Array, cout: number) => {
      const out = new Float64Array(cout * size * size);
      for (let o = 0; o < cout; o++) {
        for (let y = 0; y < size; y++) {
          for (let xx = 0; xx < size; xx++) {
            let sum = bias[o] as number;
            for (let c = 0; c < cin; c++) {
              for (let ky = 0; ky < 3; ky++) {
                const iy = y + ky - 1;
                if (iy < 0 || iy >= size) continue;
                for (let kx = 0; kx < 3; kx++) {
                  const ix = xx + kx - 1;
                  if (ix < 0 || ix >= size) continue;
                  sum += (input[(c * size + iy) * size + ix] as number) * (weights[((o * cin + c) * 3 + ky) * 3 + kx] as number);
                }
              }
            }
            out[(o * size + y) * size + xx] = Math.max(0, sum);
          }
        }
      }
      return out;
    };
    const maxPool = (input: Float64Array, channels: number, size: number) => {
      const half = size / 2;
      const pooled = new Float64Array(channels * half * half);
      for (let o = 0; o < channels; o++) {
        for (let y = 0; y < half; y++) {
          for (let xx = 0; xx < half; xx++) {
            const at = (dy: number, dx: number) => input[(o * size + 2 * y + dy) * size + 2 * xx + dx] as number;
            pooled[(o * half + y) * half + xx] = Math.max(at(0, 0), at(0, 1), at(1, 0), at(1, 1));
          }
        }
      }
      return pooled;
    };
    let features = Float64Array.from(image);
    (cnnConvolutions() as Array<[number, number, number]>).forEach(([cin, cout, size], i) => {
      const { w: weights, b: bias } = w.convolutions[i] as { w: Float32Array; b: Float32Array };
      features = convRelu(features, cin, size, weights, bias, cout);
      if (i % 2 === 1) features = maxPool(features, cout, size);
    });
    const logits: number[] = [];
    for (let k = 0; k < 10; k++) {
      let sum = w.classifier.b[k] as number;
      for (let i = 0; i < features.length; i++) sum += (features[i] as number) * (w.classifier.w[k * features.length + i] as number);
      logits.push(sum);
    }
    return softmax(logits);
  }

  it('gives [N,10] probabilities, each row summing to 1, equal to a reference forward pass', async () => {
    const N = 3;
    const images = seededFloats(31337, N * 3 * 32 * 32);
    const response = await core.infer({ model: 'cnn', inputs: [fp32('image', [N, 3, 32, 32], images.slice())] });
    const probabilities = output(response.outputs, 'probabilities');
    expect(probabilities).toMatchObject({ datatype: 'FP32', shape: [N, 10] });
    const data = probabilities.data as Float32Array;
    for (let r = 0; r < N; r++) {
      const row = Array.from(data.subarray(r * 10, r * 10 + 10));
      expect(row.every((p) => p > 0 && p < 1)).toBe(true);
      expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
    }
    const expected = Array.from({ length: N }, (_, r) => reference(images.subarray(r * 3072, (r + 1) * 3072))).flat();
    expectClose(data, expected, 1e-4);
  });
});

describe('the example repository build', () => {
  async function filesUnder(dir: string): Promise<string[]> {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => relative(dir, join(e.parentPath, e.name)))
      .sort();
  }

  async function digests(dir: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const file of await filesUnder(dir)) {
      out[file] = createHash('sha256').update(await readFile(join(dir, file))).digest('hex');
    }
    return out;
  }

  it('is reproducible: a fresh build is byte-identical to the committed models/, every .onnx under 1 MB', async () => {
    const dest = await mkdtemp(join(tmpdir(), 'weir-models-'));
    try {
      const written = await buildExampleRepository(dest);
      const built = await digests(dest);
      expect(Object.keys(built).sort()).toEqual(written.map((path: string) => relative(dest, path)).sort());
      expect(await digests(EXAMPLE_REPOSITORY)).toEqual(built);

      const onnxFiles = Object.keys(built).filter((f) => f.endsWith('.onnx'));
      expect(onnxFiles).toHaveLength(6);
      for (const file of onnxFiles) {
        const { length } = await readFile(join(dest, file));
        expect(length, file).toBeLessThan(1 << 20);
        expect(length, file).toBeGreaterThan(0);
      }
    } finally {
      await rm(dest, { recursive: true, force: true });
    }
  });
});
