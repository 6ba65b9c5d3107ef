/**
 * Splitting a batch's results back into each request's rows, along the first
 * (batch) dimension. Numeric tensors are split as views (no copy); BYTES
 * tensors, whose elements vary in length, by walking their length prefixes.
 * (Requests are joined into a batch by the wire format, workers/wire.ts.)
 */
import { DATATYPES, type TypedArray, elementCount } from '../tensors/datatypes.js';
import type { Tensor } from '../tensors/tensor.js';

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
