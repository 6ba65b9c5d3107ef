/**
 * The datatype table, mirroring native/src/dtypes.cc: V2 names, element
 * sizes, and the TypedArray that holds each type's bytes in JavaScript.
 * BYTES tensors travel as one Uint8Array in Triton's binary layout (each
 * element a 4-byte little-endian length, then its bytes).
 */

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

type TypedArrayConstructor = {
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): TypedArray;
  new (length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

export interface DataTypeSpec {
  /** Bytes per element; 0 for BYTES, whose elements vary in length. */
  readonly size: number;
  readonly array: TypedArrayConstructor;
  /** The ONNX element type name, as ONNX Runtime reports it in `tensor(...)`. */
  readonly onnx: string;
}

export const DATATYPES = {
  BOOL: { size: 1, array: Uint8Array, onnx: 'bool' },
  UINT8: { size: 1, array: Uint8Array, onnx: 'uint8' },
  UINT16: { size: 2, array: Uint16Array, onnx: 'uint16' },
  UINT32: { size: 4, array: Uint32Array, onnx: 'uint32' },
  UINT64: { size: 8, array: BigUint64Array, onnx: 'uint64' },
  INT8: { size: 1, array: Int8Array, onnx: 'int8' },
  INT16: { size: 2, array: Int16Array, onnx: 'int16' },
  INT32: { size: 4, array: Int32Array, onnx: 'int32' },
  INT64: { size: 8, array: BigInt64Array, onnx: 'int64' },
  FP16: { size: 2, array: Uint16Array, onnx: 'float16' },
  BF16: { size: 2, array: Uint16Array, onnx: 'bfloat16' },
  FP32: { size: 4, array: Float32Array, onnx: 'float' },
  FP64: { size: 8, array: Float64Array, onnx: 'double' },
  BYTES: { size: 0, array: Uint8Array, onnx: 'string' },
} as const satisfies Record<string, DataTypeSpec>;

export type DataType = keyof typeof DATATYPES;

export function isDataType(name: unknown): name is DataType {
  return typeof name === 'string' && Object.hasOwn(DATATYPES, name);
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (let d = 0; d < shape.length; d++) count *= shape[d] as number; // indexed: an iterator allocated where this was not optimized
  return count;
}

/** Each distinct ArrayBuffer behind `arrays` once, to transfer (shared memory is shared, not moved). */
export function buffersOf(arrays: readonly TypedArray[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const array of arrays) if (array.buffer instanceof ArrayBuffer) buffers.add(array.buffer);
  return [...buffers];
}

/** One array holding `parts` back to back (BYTES parts join as their bytes do). */
export function joinParts(datatype: DataType, parts: readonly TypedArray[]): TypedArray {
  const bytes = parts.reduce((sum, part) => sum + part.byteLength, 0);
  const joined = new Uint8Array(bytes);
  let offset = 0;
  for (const part of parts) {
    joined.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), offset);
    offset += part.byteLength;
  }
  const array = DATATYPES[datatype].array;
  return new array(joined.buffer, 0, bytes / array.BYTES_PER_ELEMENT);
}

/** Encodes BYTES elements into Triton's length-prefixed layout. */
export function encodeBytesTensor(elements: ReadonlyArray<string | Uint8Array>): Uint8Array {
  const encoded = elements.map((e) => (typeof e === 'string' ? Buffer.from(e, 'utf8') : e));
  const out = new Uint8Array(encoded.reduce((n, e) => n + 4 + e.byteLength, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const element of encoded) {
    view.setUint32(offset, element.byteLength, true);
    out.set(element, offset + 4);
    offset += 4 + element.byteLength;
  }
  return out;
}

/**
 * Counts the elements of a length-prefixed BYTES buffer; -1 when the
 * prefixes do not add up to exactly the buffer's length.
 */
export function countBytesElements(data: Uint8Array): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  let count = 0;
  while (offset < data.byteLength) {
    if (data.byteLength - offset < 4) return -1;
    offset += 4 + view.getUint32(offset, true);
    count += 1;
  }
  return offset === data.byteLength ? count : -1;
}

/** Decodes a length-prefixed BYTES buffer into its elements (views, not copies). */
export function decodeBytesTensor(data: Uint8Array): Uint8Array[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const elements: Uint8Array[] = [];
  let offset = 0;
  while (offset + 4 <= data.byteLength) {
    const length = view.getUint32(offset, true);
    elements.push(data.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return elements;
}
