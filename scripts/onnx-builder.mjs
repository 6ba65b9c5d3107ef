// A small ONNX graph builder: enough to write test and example models from
// code, so the repository carries no opaque binaries it cannot regenerate.
import { endianness } from 'node:os';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const { DataType } = onnx.TensorProto;
const AttrType = onnx.AttributeProto.AttributeType;

// raw_data is little-endian by spec; typed arrays use host order.
if (endianness() !== 'LE') throw new Error('onnx-builder assumes a little-endian host');

/** KServe V2 datatype → [ONNX TensorProto.DataType, typed array used for raw_data]. */
export const DTYPES = {
  BOOL: [DataType.BOOL, Uint8Array],
  UINT8: [DataType.UINT8, Uint8Array],
  UINT16: [DataType.UINT16, Uint16Array],
  UINT32: [DataType.UINT32, Uint32Array],
  UINT64: [DataType.UINT64, BigUint64Array],
  INT8: [DataType.INT8, Int8Array],
  INT16: [DataType.INT16, Int16Array],
  INT32: [DataType.INT32, Int32Array],
  INT64: [DataType.INT64, BigInt64Array],
  FP16: [DataType.FLOAT16, Uint16Array], // values are IEEE half bit patterns
  FP32: [DataType.FLOAT, Float32Array],
  FP64: [DataType.DOUBLE, Float64Array],
  BYTES: [DataType.STRING, null], // strings go to string_data, never raw_data
};

/** ONNX TensorProto.DataType number for a KServe V2 datatype name. */
export function onnxType(dtype) {
  const entry = DTYPES[dtype];
  if (!entry) throw new Error(`unknown datatype ${dtype}`);
  return entry[0];
}

/** mulberry32: a tiny seeded PRNG; returns () => float in [-1, 1). */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}

/** Float32Array of `count` seeded values in [-scale, scale). */
export function randomFloats(seed, count, scale = 1) {
  const rand = seededRandom(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = rand() * scale;
  return out;
}

const utf8 = (s) => new TextEncoder().encode(s);

/**
 * A TensorProto (usable as initializer or tensor attribute). `values` is a
 * typed array or a plain array; BYTES takes strings or Uint8Arrays, FP16 takes
 * half-precision bit patterns, BOOL takes booleans or 0/1.
 */
export function tensorInitializer(name, dtype, dims, values) {
  const [dataType, Typed] = DTYPES[dtype] ?? [];
  if (dataType === undefined) throw new Error(`unknown datatype ${dtype}`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`${name}: ${values.length} values for dims [${dims}]`);
  const tensor = { name, dims: [...dims], dataType };
  if (Typed === null) {
    tensor.stringData = Array.from(values, (v) => (typeof v === 'string' ? utf8(v) : v));
  } else {
    const big = Typed === BigInt64Array || Typed === BigUint64Array;
    // Always a fresh copy, so later edits to the caller's array can't change the model.
    const typed = Typed.from(values, (v) => (big ? BigInt(v) : Number(v)));
    tensor.rawData = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  }
  return tensor;
}

/** A ValueInfoProto; shape entries are numbers (fixed) or strings (symbolic), null = unknown rank. */
export function valueInfo(name, dtype, shape) {
  const tensorType = { elemType: onnxType(dtype) };
  if (shape) {
    tensorType.shape = {
      dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })),
    };
  }
  return { name, type: { tensorType } };
}

const TYPED = Symbol('attrType');
/** Explicit attribute types, for where inference would guess wrong (e.g. float 1.0 looks like an int). */
export const attr = {
  float: (value) => ({ [TYPED]: AttrType.FLOAT, value }),
  floats: (value) => ({ [TYPED]: AttrType.FLOATS, value }),
  int: (value) => ({ [TYPED]: AttrType.INT, value }),
  ints: (value) => ({ [TYPED]: AttrType.INTS, value }),
};

// Integral numbers/plain arrays become INT(S), Float32/64Arrays and non-integral
// numbers become FLOAT(S), strings STRING(S), TensorProto objects TENSOR.
function inferAttrType(value) {
  if (value instanceof Float32Array || value instanceof Float64Array) return AttrType.FLOATS;
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    const items = Array.from(value);
    if (items.length > 0 && items.every((v) => typeof v === 'string')) return AttrType.STRINGS;
    const ints = items.every((v) => typeof v === 'bigint' || Number.isInteger(v));
    return ints ? AttrType.INTS : AttrType.FLOATS;
  }
  if (typeof value === 'bigint' || Number.isInteger(value)) return AttrType.INT;
  if (typeof value === 'number') return AttrType.FLOAT;
  if (typeof value === 'string') return AttrType.STRING;
  if (value && typeof value === 'object' && 'dataType' in value) return AttrType.TENSOR;
  throw new Error(`cannot infer attribute type of ${value}`);
}

function attribute(name, raw) {
  const explicit = raw !== null && typeof raw === 'object' && TYPED in raw;
  const type = explicit ? raw[TYPED] : inferAttrType(raw);
  const value = explicit ? raw.value : raw;
  // protobufjs takes int64 fields as JS numbers; refuse bigints that would lose precision.
  const int = (v) => {
    if (!Number.isSafeInteger(Number(v))) throw new Error(`${name}: ${v} is not a safe integer`);
    return Number(v);
  };
  switch (type) {
    case AttrType.INT: return { name, type, i: int(value) };
    case AttrType.FLOAT: return { name, type, f: value };
    case AttrType.STRING: return { name, type, s: utf8(value) };
    case AttrType.TENSOR: return { name, type, t: value };
    case AttrType.INTS: return { name, type, ints: Array.from(value, int) };
    case AttrType.FLOATS: return { name, type, floats: Array.from(value, Number) };
    case AttrType.STRINGS: return { name, type, strings: Array.from(value, utf8) };
    default: throw new Error(`unsupported attribute type ${type}`);
  }
}

/** A NodeProto; attribute types are inferred from the JS values (see `attr` to force one). */
export function node(opType, inputs, outputs, attributes = {}, domain = '') {
  return {
    opType,
    domain,
    input: [...inputs],
    output: [...outputs],
    // Sorted so the encoding never depends on object key order at call sites.
    attribute: Object.keys(attributes).sort().map((k) => attribute(k, attributes[k])),
  };
}

/**
 * Encodes a ModelProto; deterministic (no timestamps), so rebuilding yields identical bytes.
 * @param {{ graphName?: string, inputs: object[], outputs: object[], nodes: object[],
 *   initializers?: object[], opsets?: Record<string, number>, irVersion?: number, docString?: string }} spec
 * @returns {Uint8Array}
 */
export function buildModel({
  graphName = 'main',
  inputs,
  outputs,
  nodes,
  initializers = [],
  opsets = { '': 17 },
  irVersion = 8,
  docString = '',
}) {
  const model = {
    irVersion,
    producerName: 'weir',
    opsetImport: Object.entries(opsets).map(([domain, version]) => ({ domain, version })),
    graph: {
      name: graphName,
      // Unique node names help ORT's error messages point at the right node.
      node: nodes.map((n, i) => ({ name: n.name ?? `${n.opType}_${i}`, ...n })),
      initializer: initializers,
      input: inputs,
      output: outputs,
    },
  };
  if (docString) model.docString = docString;
  const problem = onnx.ModelProto.verify(model);
  if (problem) throw new Error(`invalid ModelProto: ${problem}`);
  return onnx.ModelProto.encode(model).finish();
}

/** One input `x`, one output `y` = Identity(x); round-trips any datatype. */
export function identityModel(dtype, shape) {
  return buildModel({
    graphName: `identity_${dtype.toLowerCase()}`,
    inputs: [valueInfo('x', dtype, shape)],
    outputs: [valueInfo('y', dtype, shape)],
    nodes: [node('Identity', ['x'], ['y'])],
  });
}

/**
 * A deliberately slow FP32 model, x ['N',256] → y ['N',256]: `layers` rounds of
 * MatMul + Tanh. Two 256x256 weights are reused alternately so the file stays
 * small (~0.56 MB) however deep the chain is. The default depth was measured at
 * ~0.95 s for a batch of 2000 rows with intraOpNumThreads 1 (x86-64, AVX-512,
 * onnxruntime-node 1.30; ~1.8 ms per layer); 24 layers took only ~65 ms.
 */
export const SLOW_MODEL_LAYERS = 512;
export function slowModel(layers = SLOW_MODEL_LAYERS) {
  const width = 256;
  // Weight variance 1.5/width (uniform bound sqrt(3*1.5/width)): activations settle at a
  // steady non-zero level instead of decaying towards denormals over hundreds of layers.
  const scale = Math.sqrt(4.5 / width);
  const initializers = [0, 1].map((k) =>
    tensorInitializer(`w${k}`, 'FP32', [width, width], randomFloats(7000 + k, width * width, scale)));
  const nodes = [];
  let prev = 'x';
  for (let i = 0; i < layers; i++) {
    const out = i === layers - 1 ? 'y' : `t${i}`;
    nodes.push(node('MatMul', [prev, `w${i % 2}`], [`m${i}`]), node('Tanh', [`m${i}`], [out]));
    prev = out;
  }
  return buildModel({
    graphName: 'slow',
    inputs: [valueInfo('x', 'FP32', ['N', width])],
    outputs: [valueInfo('y', 'FP32', ['N', width])],
    nodes,
    initializers,
  });
}
