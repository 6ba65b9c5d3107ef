/**
 * Models for the HTTP tests, built from code like the examples.
 */
import type { InferenceCore } from '../../dist/core/core.js';
import type { ModelVersion } from '../../dist/repository/model-version.js';
import { buildModel, node, randomFloats, tensorInitializer, valueInfo } from '../../scripts/onnx-builder.mjs';

const WIDTH = 256;

/**
 * A slow model whose cost does not depend on the request's size: x [N,256] is
 * broadcast to [N, rows, 256], run through `layers` rounds of MatMul + Tanh
 * (like scripts/onnx-builder's slowModel), and averaged back to y [N,256]. One
 * row costs rows × layers row-layers: 1000 × 480 takes about 0.4-0.5 s on one
 * 2-core machine, so a batch of one is slow while the request stays tiny.
 * (slowModel itself is ['N',256] → ['N',256]; with max_batch_size 1 a batch
 * of it is one row, which is fast whatever its depth.)
 */
export function heavyRowModel(rows = 1000, layers = 480): Uint8Array {
  const scale = Math.sqrt(4.5 / WIDTH);
  const initializers = [0, 1].map((k) => tensorInitializer(`w${k}`, 'FP32', [WIDTH, WIDTH], randomFloats(7000 + k, WIDTH * WIDTH, scale)));
  initializers.push(tensorInitializer('axes', 'INT64', [1], [1]), tensorInitializer('expand', 'INT64', [3], [1, rows, 1]));
  const nodes = [node('Unsqueeze', ['x', 'axes'], ['u']), node('Expand', ['u', 'expand'], ['t'])];
  let previous = 't';
  for (let i = 0; i < layers; i++) {
    nodes.push(node('MatMul', [previous, `w${i % 2}`], [`m${i}`]), node('Tanh', [`m${i}`], [`t${i}`]));
    previous = `t${i}`;
  }
  // Opset 17: ReduceMean still takes its axes as an attribute.
  nodes.push(node('ReduceMean', [previous], ['y'], { axes: [1], keepdims: 0 }));
  return buildModel({
    graphName: 'heavy_row',
    inputs: [valueInfo('x', 'FP32', ['N', WIDTH])],
    outputs: [valueInfo('y', 'FP32', ['N', WIDTH])],
    nodes,
    initializers,
  });
}

/** A one-row request for heavyRowModel, as V2 JSON. */
export function heavyRequest(extra: object = {}): object {
  return { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: new Array<number>(WIDTH).fill(0.25) }], ...extra };
}

/** Version 1 of `model` in the core's repository, to watch its queue and requests in flight. */
export function versionOne(core: InferenceCore, model: string): ModelVersion {
  const version = core.repository.model(model)?.versions.get(1);
  if (!version) throw new Error(`${model} version 1 is not loaded`);
  return version;
}

/** Batches `model` version 1 is running now (-1 when it is not READY). */
export function runningBatchesOf(core: InferenceCore, model: string): number {
  return versionOne(core, model).ready?.batcher.runningBatches ?? -1;
}
