/**
 * Every KServe V2 datatype through the native addon and back: an Identity
 * model per datatype, extreme values compared byte for byte. Also the TS
 * datatype table against the C++ one, and malformed BYTES tensors.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { nativeAddon } from '../dist/native/addon.js';
import type { NativeAddon, SessionInfo } from '../dist/native/addon.js';
import { countBytesElements, DATATYPES, decodeBytesTensor, encodeBytesTensor } from '../dist/tensors/datatypes.js';
import type { DataType, TypedArray } from '../dist/tensors/datatypes.js';
import type { Tensor } from '../dist/tensors/tensor.js';
import { buildModel, identityModel, node } from '../scripts/onnx-builder.mjs';
import { makeRepository, removeRepository } from './helpers/repository.js';
import { type CodedError, thrown } from './helpers/errors.js';

const bits32 = (u: number): number => new Float32Array(Uint32Array.of(u).buffer)[0]!;
const bits64 = (u: bigint): number => new Float64Array(BigUint64Array.of(u).buffer)[0]!;

/** Eight values per datatype (shape [4, 2]): its extremes, zeros and specials. */
const VALUES: Record<Exclude<DataType, 'BYTES'>, TypedArray> = {
  BOOL: Uint8Array.of(1, 0, 0, 1, 1, 1, 0, 0),
  UINT8: Uint8Array.of(0, 1, 2, 127, 128, 200, 254, 255),
  UINT16: Uint16Array.of(0, 1, 255, 256, 32767, 32768, 65534, 65535),
  UINT32: Uint32Array.of(0, 1, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1),
  UINT64: BigUint64Array.of(0n, 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 2n, 2n ** 64n - 1n),
  INT8: Int8Array.of(-128, -127, -1, 0, 1, 64, 126, 127),
  INT16: Int16Array.of(-32768, -32767, -256, -1, 0, 1, 32766, 32767),
  INT32: Int32Array.of(-(2 ** 31), -(2 ** 31) + 1, -65536, -1, 0, 1, 2 ** 31 - 2, 2 ** 31 - 1),
  INT64: BigInt64Array.of(-(2n ** 63n), -(2n ** 63n) + 1n, -(2n ** 53n) - 1n, -1n, 0n, 1n, 2n ** 53n + 1n, 2n ** 63n - 1n),
  // IEEE half bit patterns: +0, -0, 1, largest finite, smallest subnormal, +inf, -inf, a NaN with payload.
  FP16: Uint16Array.of(0x0000, 0x8000, 0x3c00, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x7e01),
  // bfloat16 bit patterns: +0, -0, 1, largest finite, smallest subnormal, +inf, -inf, a NaN.
  BF16: Uint16Array.of(0x0000, 0x8000, 0x3f80, 0x7f7f, 0x0001, 0x7f80, 0xff80, 0x7fc1),
  FP32: Float32Array.of(0, -0, 1.5, 3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45, Infinity, -Infinity),
  FP64: Float64Array.of(0, -0, Math.PI, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity),
};

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

let addon: NativeAddon;
let root: string;
const infos = new Map<DataType, SessionInfo>();
const keyOf = (dtype: DataType): string => `identity:${dtype}`;

/** onnx-builder's datatype list has no BF16: its Identity model is built from the raw proto type. */
function bf16IdentityModel(): Uint8Array {
  const type = {
    tensorType: {
      elemType: onnxProto.onnx.TensorProto.DataType.BFLOAT16,
      shape: { dim: [{ dimParam: 'N' }, { dimValue: 2 }] },
    },
  };
  return buildModel({
    graphName: 'identity_bf16',
    inputs: [{ name: 'x', type }],
    outputs: [{ name: 'y', type }],
    nodes: [node('Identity', ['x'], ['y'])],
  });
}

const ALL = Object.keys(DATATYPES) as DataType[];

beforeAll(async () => {
  addon = nativeAddon();
  const models = Object.fromEntries(ALL.map((dtype) => [
    dtype.toLowerCase(),
    { versions: { 1: dtype === 'BF16' ? bf16IdentityModel() : identityModel(dtype, ['N', 2]) } },
  ]));
  root = await makeRepository(models);
  await Promise.all(ALL.map(async (dtype) => {
    infos.set(dtype, await addon.loadSession(keyOf(dtype), join(root, dtype.toLowerCase(), '1', 'model.onnx'), {} as never));
  }));
});

afterAll(async () => {
  for (const dtype of ALL) addon.releaseSession(keyOf(dtype));
  await removeRepository(root);
});

describe('the datatype table', () => {
  it('matches native/src/dtypes.cc row for row: names, element sizes, ONNX types and TypedArrays', async () => {
    const source = await readFile(fileURLToPath(new URL('../native/src/dtypes.cc', import.meta.url)), 'utf8');
    const table = /kTable\{\{([\s\S]*?)\}\};/.exec(source)?.[1];
    expect(table, 'kTable in native/src/dtypes.cc').toBeDefined();
    const rows = [...table!.matchAll(/\{"(\w+)",\s*ONNX_TENSOR_ELEMENT_DATA_TYPE_(\w+),\s*(\d+),\s*K::k(\w+)\}/g)]
      .map(([, name, onnx, size, kind]) => ({ name, onnx: onnx!.toLowerCase(), size: Number(size), array: `${kind}Array` }));
    const declared = /std::array<DataType,\s*(\d+)>\s*kTable/.exec(source)?.[1];
    expect(rows).toHaveLength(Number(declared)); // every row was parsed

    const ts = Object.entries(DATATYPES).map(([name, spec]) => ({
      name, onnx: spec.onnx, size: spec.size, array: spec.array.name,
    }));
    expect(ts).toEqual(rows);
  });

  it('gives fixed-size datatypes a TypedArray of their element size', () => {
    for (const [name, spec] of Object.entries(DATATYPES)) {
      if (spec.size > 0) expect(spec.array.BYTES_PER_ELEMENT, name).toBe(spec.size);
    }
    expect(DATATYPES.BYTES.size).toBe(0);
  });

  it.each(ALL)('%s: ONNX Runtime describes the Identity model with it', (dtype) => {
    const info = infos.get(dtype)!;
    const expected = { type: `tensor(${DATATYPES[dtype].onnx})`, datatype: dtype, shape: [-1, 2], dimNames: ['N', ''] };
    expect(info.inputs).toEqual([{ name: 'x', ...expected }]);
    expect(info.outputs).toEqual([{ name: 'y', ...expected }]);
  });
});

describe('round trips through ONNX Runtime', () => {
  const FIXED = ALL.filter((d) => d !== 'BYTES') as Array<Exclude<DataType, 'BYTES'>>;

  it.each(FIXED)('%s: extremes come back byte for byte, in the table’s TypedArray', (dtype) => {
    const input = VALUES[dtype];
    const before = bytesOf(input).slice();
    const { outputs } = addon.run(keyOf(dtype), [{ name: 'x', datatype: dtype, shape: [4, 2], data: input }]);
    expect(outputs).toHaveLength(1);
    const [y] = outputs;
    expect(y!.name).toBe('y');
    expect(y!.datatype).toBe(dtype);
    expect(y!.shape).toEqual([4, 2]);
    expect(y!.data.constructor).toBe(DATATYPES[dtype].array);
    expect(y!.data.length).toBe(8);
    expect(bytesOf(y!.data)).toEqual(before);
    expect(bytesOf(input)).toEqual(before); // the input is not written
  });

  it.each(FIXED)('%s: an empty batch comes back empty', (dtype) => {
    const Array_ = DATATYPES[dtype].array;
    const [y] = addon.run(keyOf(dtype), [{ name: 'x', datatype: dtype, shape: [0, 2], data: new Array_(0) }]).outputs;
    expect(y!.shape).toEqual([0, 2]);
    expect(y!.data.constructor).toBe(Array_);
    expect(y!.data.length).toBe(0);
  });

  it('INT64 and UINT64 keep values beyond 2^53 exactly, as BigInts', () => {
    const [i64] = addon.run(keyOf('INT64'), [{ name: 'x', datatype: 'INT64', shape: [4, 2], data: VALUES.INT64 }]).outputs;
    expect(Array.from(i64!.data as BigInt64Array)).toEqual(Array.from(VALUES.INT64 as BigInt64Array));
    expect((i64!.data as BigInt64Array)[0]).toBe(-9223372036854775808n);
    expect((i64!.data as BigInt64Array)[7]).toBe(9223372036854775807n);
    const [u64] = addon.run(keyOf('UINT64'), [{ name: 'x', datatype: 'UINT64', shape: [4, 2], data: VALUES.UINT64 }]).outputs;
    expect((u64!.data as BigUint64Array)[7]).toBe(18446744073709551615n);
    expect((u64!.data as BigUint64Array)[3]).toBe(9007199254740993n);
  });

  it('FP32 and FP64 keep NaN (with its payload), infinities and -0', () => {
    const f32 = Float32Array.of(NaN, bits32(0x7fc00001), bits32(0xffc00000), -0, Infinity, -Infinity, 1e-45, 0);
    const f32Bytes = bytesOf(f32).slice();
    const [y32] = addon.run(keyOf('FP32'), [{ name: 'x', datatype: 'FP32', shape: [4, 2], data: f32 }]).outputs;
    const out32 = y32!.data as Float32Array;
    expect(bytesOf(out32)).toEqual(f32Bytes);
    expect(Number.isNaN(out32[0])).toBe(true);
    expect(new Uint32Array(out32.buffer)[1]).toBe(0x7fc00001);
    expect(Object.is(out32[3], -0)).toBe(true);
    expect([out32[4], out32[5]]).toEqual([Infinity, -Infinity]);

    const f64 = Float64Array.of(NaN, bits64(0x7ff8000000000001n), -0, Infinity, -Infinity, Number.EPSILON, 5e-324, -5e-324);
    const f64Bytes = bytesOf(f64).slice();
    const [y64] = addon.run(keyOf('FP64'), [{ name: 'x', datatype: 'FP64', shape: [4, 2], data: f64 }]).outputs;
    const out64 = y64!.data as Float64Array;
    expect(bytesOf(out64)).toEqual(f64Bytes);
    expect(new BigUint64Array(out64.buffer)[1]).toBe(0x7ff8000000000001n);
    expect(Object.is(out64[2], -0)).toBe(true);
    expect(out64[6]).toBe(5e-324);
  });
});

describe('BYTES', () => {
  const run = (data: Uint8Array, shape: number[]): Tensor =>
    addon.run(keyOf('BYTES'), [{ name: 'x', datatype: 'BYTES', shape, data }]).outputs[0]!;
  const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

  it('round-trips NUL bytes, empty elements, non-ASCII UTF-8 and non-UTF-8 bytes', () => {
    const elements = ['a\0b', '', 'héllo ✓ 日本語 🎉', Uint8Array.of(0xff, 0x00, 0xfe), '\0', 'x'.repeat(1000), '', 'end'];
    const data = encodeBytesTensor(elements);
    const before = data.slice();
    const y = run(data, [4, 2]);
    expect(y.datatype).toBe('BYTES');
    expect(y.shape).toEqual([4, 2]);
    expect(y.data).toBeInstanceOf(Uint8Array);
    expect(y.data).toEqual(before); // the same length-prefixed layout
    const decoded = decodeBytesTensor(y.data as Uint8Array);
    expect(decoded).toEqual(elements.map((e) => (typeof e === 'string' ? utf8(e) : e)));
    expect(new TextDecoder().decode(decoded[2])).toBe('héllo ✓ 日本語 🎉');
    expect(Array.from(decoded[0]!)).toEqual([0x61, 0x00, 0x62]);
  });

  it('round-trips a tensor of empty elements only, and an empty batch', () => {
    const empties = run(encodeBytesTensor(['', '']), [1, 2]);
    expect(empties.shape).toEqual([1, 2]);
    expect(empties.data).toEqual(new Uint8Array(8));
    const none = run(new Uint8Array(0), [0, 2]);
    expect(none.shape).toEqual([0, 2]);
    expect(none.data).toBeInstanceOf(Uint8Array);
    expect(none.data.length).toBe(0);
  });

  it('reads a BYTES view from its offset within a larger buffer', () => {
    const payload = encodeBytesTensor(['p', 'q']);
    const larger = new Uint8Array(payload.length + 7).fill(0xee);
    larger.set(payload, 3);
    const y = run(larger.subarray(3, 3 + payload.length), [1, 2]);
    expect(decodeBytesTensor(y.data as Uint8Array).map((e) => new TextDecoder().decode(e))).toEqual(['p', 'q']);
  });

  const four = encodeBytesTensor(['ab', 'c', '', 'def']);
  const malformed: Array<[string, Uint8Array]> = [
    // The first prefix says 200 bytes; 2 follow.
    ['a length prefix past the end', Uint8Array.of(200, 0, 0, 0, 0x61, 0x62)],
    ['a prefix cut short', four.subarray(0, four.length - 5)],
    ['bytes after the last element', Uint8Array.of(...four, 0x00)],
    ['fewer elements than the shape', encodeBytesTensor(['a', 'b', 'c'])],
    ['more elements than the shape', encodeBytesTensor(['a', 'b', 'c', 'd', 'e'])],
    ['a length prefix of 2^32 - 1', Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 2, 3)],
  ];

  it.each(malformed)('refuses %s with WEIR_BAD_TENSOR naming the input', (_what, data) => {
    const error = thrown(() => run(data, [2, 2]));
    expect(error.code).toBe('WEIR_BAD_TENSOR');
    // Names the input: by name ('x'), or by position and field (inputs[0].data).
    expect(error.message).toMatch(/'x'|inputs\[0\]\.data/);
    expect(error.message).toContain('BYTES');
  });

  it.each(malformed.slice(0, 3).concat([malformed[5]!]))('countBytesElements also refuses %s', (_what, data) => {
    expect(countBytesElements(data)).toBe(-1);
  });

  // ASan reserves terabytes of shadow address space: no address-space limit can hold it (npm run check:sanitizers).
  it.skipIf(Boolean(process.env.WEIR_SANITIZE))('refuses a shape that claims more elements than the bytes could hold, before allocating them', async () => {
    // Each BYTES element takes at least its 4-byte prefix, so 4 bytes hold at most one element. A shape of
    // 2^31 - 1 elements must be refused from the byte count, not by first asking ONNX Runtime for 2^31
    // strings (64 GB). Run in a child process under a 4 GB address-space limit, so that a broken check
    // fails this test instead of exhausting the machine's memory.
    const script = join(root, 'huge-bytes-shape.mjs');
    await writeFile(script, `
      const { nativeAddon } = await import(${JSON.stringify(new URL('../dist/native/addon.js', import.meta.url).href)});
      const addon = nativeAddon();
      await addon.loadSession('bytes', process.argv[2], {});
      try {
        addon.run('bytes', [{ name: 'x', datatype: 'BYTES', shape: [2 ** 31 - 1], data: Uint8Array.of(1, 0, 0, 0, 0x61) }]);
        console.log(JSON.stringify({ code: null }));
      } catch (error) {
        console.log(JSON.stringify({ code: error.code, message: error.message }));
      }
    `);
    const model = join(root, 'bytes_any', 'model.onnx');
    await mkdir(join(root, 'bytes_any'), { recursive: true });
    await writeFile(model, identityModel('BYTES', null));
    const { stdout } = await promisify(execFile)(
      '/bin/sh', ['-c', 'ulimit -v 4194304 && exec "$0" "$@"', process.execPath, script, model],
      { timeout: 20_000 },
    );
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as CodedError;
    expect(result.code).toBe('WEIR_BAD_TENSOR');
    expect(result.message).toMatch(/'x'|inputs\[0\]\.data/);
  });
});
