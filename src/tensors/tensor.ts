import type { DataType, TypedArray } from './datatypes.js';

/** A named tensor: V2 datatype, shape, and its bytes in a TypedArray. */
export interface Tensor {
  name: string;
  datatype: DataType;
  shape: number[];
  data: TypedArray;
}
