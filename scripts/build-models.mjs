#!/usr/bin/env node
// Builds the example model repository (Triton layout: <name>/<version>/model.onnx
// plus optional config.json). Usage: node scripts/build-models.mjs [DEST=models]
// Output is byte-for-byte reproducible: all weights come from seeded PRNGs.
// The weight/reference exports let tests compute expected outputs in plain JS.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  attr, buildModel, node, randomFloats, tensorInitializer, valueInfo,
} from './onnx-builder.mjs';

const MAX_MODEL_BYTES = 1 << 20;

// ---------------------------------------------------------------- tabular

/**
 * Weights of `tabular` version `version` (1 or 2), all row-major Float32Arrays:
 * w1 [32][16] (w1[i*16+j]: input i → hidden j), b1 [16], w2 [16][2], b2 [2].
 * Forward pass: softmax(relu(x·w1 + b1)·w2 + b2), i.e. Gemm with transB=0.
 * Small magnitudes keep the softmax away from saturation.
 */
export function tabularWeights(version) {
  const seed = 1000 * version;
  return {
    w1: randomFloats(seed + 1, 32 * 16, 0.5),
    b1: randomFloats(seed + 2, 16, 0.1),
    w2: randomFloats(seed + 3, 16 * 2, 0.5),
    b2: randomFloats(seed + 4, 2, 0.1),
  };
}

export function tabularModel(version) {
  const { w1, b1, w2, b2 } = tabularWeights(version);
  return buildModel({
    graphName: `tabular_v${version}`,
    inputs: [valueInfo('features', 'FP32', ['N', 32])],
    outputs: [valueInfo('probabilities', 'FP32', ['N', 2])],
    initializers: [
      tensorInitializer('w1', 'FP32', [32, 16], w1),
      tensorInitializer('b1', 'FP32', [16], b1),
      tensorInitializer('w2', 'FP32', [16, 2], w2),
      tensorInitializer('b2', 'FP32', [2], b2),
    ],
    nodes: [
      node('Gemm', ['features', 'w1', 'b1'], ['h']),
      node('Relu', ['h'], ['h_relu']),
      node('Gemm', ['h_relu', 'w2', 'b2'], ['logits']),
      node('Softmax', ['logits'], ['probabilities'], { axis: 1 }),
    ],
  });
}

// ---------------------------------------------------------------- multi_io

/** weighted = float(ids) * values; argmax = ArgMax(values, axis 1, keepdims) as INT64 [N,1]. */
export function multiIoModel() {
  return buildModel({
    graphName: 'multi_io',
    inputs: [valueInfo('ids', 'INT64', ['N', 4]), valueInfo('values', 'FP32', ['N', 4])],
    outputs: [valueInfo('weighted', 'FP32', ['N', 4]), valueInfo('argmax', 'INT64', ['N', 1])],
    nodes: [
      node('Cast', ['ids'], ['ids_float'], { to: 1 /* TensorProto.FLOAT */ }),
      node('Mul', ['ids_float', 'values'], ['weighted']),
      node('ArgMax', ['values'], ['argmax'], { axis: 1, keepdims: 1 }),
    ],
  });
}

// ---------------------------------------------------------------- no_batch

/** No batch dimension, rank-0 tensors: scaled = matrix * scale, total = sum(scaled). */
export function noBatchModel() {
  return buildModel({
    graphName: 'no_batch',
    inputs: [valueInfo('matrix', 'FP32', [3, 4]), valueInfo('scale', 'FP32', [])],
    outputs: [valueInfo('scaled', 'FP32', [3, 4]), valueInfo('total', 'FP32', [])],
    nodes: [
      node('Mul', ['matrix', 'scale'], ['scaled']),
      // Opset 13+: axes is an optional input; leaving it out reduces over every axis.
      node('ReduceSum', ['scaled'], ['total'], { keepdims: 0 }),
    ],
  });
}

// ---------------------------------------------------------------- cnn

/**
 * The convolution stages of `cnn`, a small VGG-style network for 32x32
 * images: each stage is Conv(3x3, pad 1) → Relu, twice, then MaxPool(2x2);
 * `[image size, channels]` per stage. About 33 M multiply-adds per image
 * (about half a millisecond on one core): its cost is compute, not the
 * gateway, which is what the benchmarks use it for.
 */
export const CNN_STAGES = [
  [32, 32],
  [16, 64],
  [8, 96],
];
const CNN_FEATURES = 96 * 4 * 4;

/** Each convolution of `cnn` as [input channels, output channels, image size], in order. */
export function cnnConvolutions() {
  let channels = 3;
  return CNN_STAGES.flatMap(([size, out]) => {
    const stage = [
      [channels, out, size],
      [out, out, size],
    ];
    channels = out;
    return stage;
  });
}

/**
 * Weights of `cnn`, row-major Float32Arrays in ONNX layouts: per convolution
 * w [out][in][3][3] (OIHW) and b [out]; then the classifier w [10][1536]
 * (Gemm transB=1, PyTorch Linear layout) and b [10]. He-uniform scaling
 * (bound sqrt(6/fan_in)); biases small.
 */
export function cnnWeights() {
  const he = (fanIn) => Math.sqrt(6 / fanIn);
  return {
    convolutions: cnnConvolutions().map(([cin, cout], i) => ({
      w: randomFloats(2001 + 2 * i, cout * cin * 9, he(cin * 9)),
      b: randomFloats(2002 + 2 * i, cout, 0.05),
    })),
    // Plain Glorot-ish bound for the classifier so the softmax stays soft.
    classifier: { w: randomFloats(2101, 10 * CNN_FEATURES, Math.sqrt(1 / CNN_FEATURES)), b: randomFloats(2102, 10, 0.05) },
  };
}

export function cnnModel() {
  const w = cnnWeights();
  const conv = { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] };
  const pool = { kernel_shape: [2, 2], strides: [2, 2] };
  const initializers = [];
  const nodes = [];
  let current = 'image';
  cnnConvolutions().forEach(([cin, cout], i) => {
    const n = i + 1;
    initializers.push(tensorInitializer(`w${n}`, 'FP32', [cout, cin, 3, 3], w.convolutions[i].w), tensorInitializer(`b${n}`, 'FP32', [cout], w.convolutions[i].b));
    nodes.push(node('Conv', [current, `w${n}`, `b${n}`], [`c${n}`], conv), node('Relu', [`c${n}`], [`r${n}`]));
    current = `r${n}`;
    if (n % 2 === 0) {
      nodes.push(node('MaxPool', [current], [`p${n}`], pool));
      current = `p${n}`;
    }
  });
  initializers.push(tensorInitializer('wc', 'FP32', [10, CNN_FEATURES], w.classifier.w), tensorInitializer('bc', 'FP32', [10], w.classifier.b));
  nodes.push(
    node('Flatten', [current], ['flat'], { axis: 1 }), // [N, 96*4*4]
    node('Gemm', ['flat', 'wc', 'bc'], ['logits'], { transB: 1 }),
    node('Softmax', ['logits'], ['probabilities'], { axis: 1 }),
  );
  return buildModel({
    graphName: 'cnn',
    inputs: [valueInfo('image', 'FP32', ['N', 3, 32, 32])],
    outputs: [valueInfo('probabilities', 'FP32', ['N', 10])],
    initializers,
    nodes,
  });
}

// ---------------------------------------------------------------- trees

// Three hand-written trees over 4 features. Branch: { f, t, yes, no } sends a
// row to `yes` when features[f] <= t (BRANCH_LEQ); leaf: { p } = P(class 1).
// Leaf hundredths end in 1, 2, 3 per tree, so a three-leaf sum never equals
// 1.5: the mean is never a 0.5 tie that float rounding could label either way.
const TREES = [
  { f: 0, t: 0.0,
    yes: { f: 1, t: 0.5, yes: { p: 0.11 }, no: { p: 0.61 } },
    no: { f: 2, t: -0.25, yes: { p: 0.31 }, no: { p: 0.91 } } },
  { f: 3, t: 0.1,
    yes: { f: 0, t: -0.5, yes: { p: 0.22 },
      no: { f: 2, t: 0.3, yes: { p: 0.42 }, no: { p: 0.82 } } },
    no: { p: 0.72 } },
  { f: 1, t: -0.2,
    yes: { p: 0.13 },
    no: { f: 3, t: 0.7, yes: { p: 0.53 }, no: { p: 0.93 } } },
];

/** Reference for `trees`: [P(0), P(1)] for one row of 4 features (mean over trees). */
export function treeProbabilities(features) {
  let p1 = 0;
  for (let n of TREES) {
    // Math.fround: the model compares against float32 thresholds.
    while (n.p === undefined) n = features[n.f] <= Math.fround(n.t) ? n.yes : n.no;
    p1 += n.p;
  }
  p1 /= TREES.length;
  return [1 - p1, p1];
}

// Flattens TREES into TreeEnsembleClassifier's parallel attribute arrays,
// numbering nodes in preorder within each tree (as sklearn-onnx does).
function treeAttributes() {
  const a = {
    nodes_treeids: [], nodes_nodeids: [], nodes_featureids: [], nodes_modes: [],
    nodes_values: [], nodes_truenodeids: [], nodes_falsenodeids: [],
    class_treeids: [], class_nodeids: [], class_ids: [], class_weights: [],
  };
  TREES.forEach((tree, treeId) => {
    let next = 0;
    const visit = (n) => {
      const id = next++;
      const at = a.nodes_nodeids.length;
      a.nodes_treeids.push(treeId);
      a.nodes_nodeids.push(id);
      a.nodes_featureids.push(n.f ?? 0);
      a.nodes_modes.push(n.p === undefined ? 'BRANCH_LEQ' : 'LEAF');
      a.nodes_values.push(n.t ?? 0);
      a.nodes_truenodeids.push(0);
      a.nodes_falsenodeids.push(0);
      if (n.p === undefined) {
        a.nodes_truenodeids[at] = visit(n.yes);
        a.nodes_falsenodeids[at] = visit(n.no);
      } else {
        // Binary trick (as sklearn-onnx exports binary forests): one weight per
        // leaf, P(class 1)/trees, filed under class id 0. onnxruntime then
        // writes [1-p, p] and label = p > 0.5. Weighting both classes makes it
        // label every row with p > 0 as class 1; weighting id 1 alone gives [0, p].
        a.class_treeids.push(treeId);
        a.class_nodeids.push(id);
        a.class_ids.push(0);
        a.class_weights.push(n.p / TREES.length);
      }
      return id;
    };
    visit(tree);
  });
  // Thresholds/weights can be integral (0, 1): force FLOATS so inference can't pick INTS.
  a.nodes_values = attr.floats(a.nodes_values);
  a.class_weights = attr.floats(a.class_weights);
  return a;
}

/** sklearn-style export without ZipMap: label INT64 [N], probabilities FP32 [N,2]. */
export function treesModel() {
  return buildModel({
    graphName: 'trees',
    inputs: [valueInfo('features', 'FP32', ['N', 4])],
    outputs: [valueInfo('label', 'INT64', ['N']), valueInfo('probabilities', 'FP32', ['N', 2])],
    nodes: [
      node('TreeEnsembleClassifier', ['features'], ['label', 'probabilities'], {
        ...treeAttributes(),
        classlabels_int64s: [0, 1],
        post_transform: 'NONE',
      }, 'ai.onnx.ml'),
    ],
    opsets: { '': 17, 'ai.onnx.ml': 3 },
  });
}

// ---------------------------------------------------------------- repository

/** name → { versions: { [version]: () => bytes }, config? } */
export const EXAMPLE_MODELS = {
  tabular: {
    versions: { 1: () => tabularModel(1), 2: () => tabularModel(2) },
    config: {
      max_batch_size: 128,
      dynamic_batching: {
        preferred_batch_size: [32, 64],
        max_queue_delay_microseconds: 500,
        max_queue_size: 4096,
      },
      version_policy: { all: {} },
    },
  },
  multi_io: { versions: { 1: multiIoModel } },
  no_batch: { versions: { 1: noBatchModel } },
  cnn: {
    versions: { 1: cnnModel },
    config: {
      max_batch_size: 128,
      dynamic_batching: { preferred_batch_size: [8, 32], max_queue_delay_microseconds: 1000 },
    },
  },
  trees: { versions: { 1: treesModel } },
};

/** Writes every example model (and config.json where given) under `dest`; returns the paths written. */
export async function buildExampleRepository(dest) {
  const written = [];
  for (const [name, { versions, config }] of Object.entries(EXAMPLE_MODELS)) {
    for (const [version, build] of Object.entries(versions)) {
      const bytes = build();
      if (bytes.length >= MAX_MODEL_BYTES) throw new Error(`${name}/${version}: ${bytes.length} bytes, over 1 MB`);
      const dir = join(dest, name, version);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'model.onnx'), bytes);
      written.push(join(dir, 'model.onnx'));
    }
    if (config) {
      await writeFile(join(dest, name, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
      written.push(join(dest, name, 'config.json'));
    }
  }
  return written;
}

if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const dest = process.argv[2] ?? 'models';
  for (const path of await buildExampleRepository(dest)) console.log(path);
}
