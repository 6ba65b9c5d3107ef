/**
 * Small typed arrays carved out of larger slabs, as Node's Buffer pool does
 * for small Buffers. `new Float32Array(32)` is too large for V8 to keep on
 * its heap: each one mallocs a backing store that the garbage collector
 * then tracks and frees, which costs more than filling it. A view into a
 * slab is only an object. A slab is freed once no view of it is left.
 *
 * Views share their slab's ArrayBuffer: never transfer one (wire.ts copies
 * tensors this small into its packed buffer rather than moving them).
 */
import type { DataTypeSpec, TypedArray } from './datatypes.js';

/** Arrays up to this size come from a slab; larger ones are allocated alone. */
const SMALL_ARRAY_BYTES = 1024;
const SLAB_BYTES = 64 * 1024;

let slab = new ArrayBuffer(SLAB_BYTES);
let used = 0;

/** A zero-filled array of `length` elements; small ones are views into a slab. */
export function smallArray(type: DataTypeSpec['array'], length: number): TypedArray {
  const bytes = length * type.BYTES_PER_ELEMENT;
  if (bytes === 0 || bytes > SMALL_ARRAY_BYTES) return new type(length);
  if (used + bytes > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    used = 0;
  }
  const array = new type(slab, used, length);
  used += (bytes + 7) & ~7; // every view 8-byte aligned, as any element type needs
  return array;
}
