import type { DataType, TypedArray } from './datatypes.js';

/** A named tensor: V2 datatype, shape, and its bytes in a TypedArray. */
export interface Tensor {
  name: string;
  datatype: DataType;
  shape: number[];
  data: TypedArray;
}

/**
 * A shape as its own packed array of numbers, built alike by every decoder:
 * code both front ends share is then optimised for one kind of array (a
 * `slice` of a holey array stays holey, a `map` comes out packed).
 */
export function shapeFrom(dims: ArrayLike<number | string>): number[] {
  const shape: number[] = [];
  for (let i = 0; i < dims.length; i++) shape.push(Number(dims[i]));
  return shape;
}
