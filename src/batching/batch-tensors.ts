/**
 * Joining requests into one batch tensor and splitting the results back, along
 * the first (batch) dimension. Numeric tensors are joined with one copy each
 * and split as views (no copy); BYTES tensors, whose elements vary in length,
 * are split by walking their length prefixes.
 */
import { DATATYPES, type TypedArray, elementCount } from '../tensors/datatypes.js';
import type { Tensor } from '../tensors/tensor.js';

/** Concatenates same-named tensors (same datatype and non-batch dims) along dimension 0. */
export function concatRows(parts: readonly Tensor[]): Tensor {
  const first = parts[0] as Tensor;
  if (parts.length === 1) return first;
  const rows = parts.reduce((sum, part) => sum + (part.shape[0] as number), 0);
  const bytes = parts.reduce((sum, part) => sum + part.data.byteLength, 0);
  const joined = new Uint8Array(bytes);
  let offset = 0;
  for (const { data } of parts) {
    joined.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    offset += data.byteLength;
  }
  const array = DATATYPES[first.datatype].array;
  return {
    name: first.name,
    datatype: first.datatype,
    shape: [rows, ...first.shape.slice(1)],
    data: new array(joined.buffer, 0, bytes / (array.BYTES_PER_ELEMENT as number)),
  };
}

/** Splits a batch output into consecutive slices of `rows[i]` rows each. */
export function splitRows(tensor: Tensor, rows: readonly number[]): Tensor[] {
  if (rows.length === 1) return [tensor];
  const rowShape = tensor.shape.slice(1);
  const perRow = elementCount(rowShape);
  const slices: Tensor[] = [];
  if (tensor.datatype === 'BYTES') {
    const bytes = tensor.data as Uint8Array;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    for (const n of rows) {
      const start = offset;
      for (let e = 0; e < n * perRow; e++) offset += 4 + view.getUint32(offset, true);
      slices.push({ ...tensor, shape: [n, ...rowShape], data: bytes.subarray(start, offset) });
    }
    return slices;
  }
  let start = 0;
  for (const n of rows) {
    const end = start + n * perRow;
    slices.push({ ...tensor, shape: [n, ...rowShape], data: (tensor.data as TypedArray).subarray(start, end) as TypedArray });
    start = end;
  }
  return slices;
}
