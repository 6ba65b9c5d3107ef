/**
 * An input tensor's data as the gRPC request carries it, turned into the
 * TypedArray the core takes: either typed protobuf values (`contents`, one
 * repeated field per family of datatypes, as in Triton) or the raw
 * little-endian bytes of `raw_input_contents`. Raw bytes are not converted:
 * they are viewed in place when their offset suits the element size, else
 * copied once. Element counts are checked here, where the field is known,
 * so that an error names `inputs[0].contents.fp32_contents` or
 * `raw_input_contents[0]` rather than a field the client never sent.
 */
import { WeirError } from '../errors.js';
import { DATATYPES, type DataType, type TypedArray, countBytesElements, elementCount, encodeBytesTensor } from '../tensors/datatypes.js';
import { toFloat16Bits } from '../tensors/json-data.js';
import type { InferTensorContents } from './messages.js';

type ContentsField = keyof InferTensorContents;

/** The `contents` field each datatype's values travel in; BF16 has none (raw only, as in Triton). */
export const CONTENTS_FIELD: Readonly<Record<DataType, ContentsField | null>> = {
  BOOL: 'bool_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  FP16: 'fp32_contents',
  BF16: null,
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

const CONTENTS_FIELDS = Object.keys({
  bool_contents: 0, int_contents: 0, int64_contents: 0, uint_contents: 0, uint64_contents: 0, fp32_contents: 0, fp64_contents: 0, bytes_contents: 0,
} satisfies Record<ContentsField, 0>) as ContentsField[];

/** Value ranges of the types narrower than the int32/uint32 fields that carry them. */
const NARROW_RANGE: Partial<Record<DataType, [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  UINT8: [0, 255],
  UINT16: [0, 65535],
};

const invalid = (message: string): never => {
  throw new WeirError('WEIR_INVALID_REQUEST', message);
};

/** Whether the client put any value in `contents`. */
export function hasContents(contents: InferTensorContents | null): boolean {
  return contents !== null && CONTENTS_FIELDS.some((field) => contents[field].length > 0);
}

function checkCount(actual: number, shape: readonly number[], datatype: DataType, field: string): void {
  const expected = elementCount(shape);
  if (actual !== expected) {
    throw new WeirError('WEIR_DATA_SIZE_MISMATCH', `${field}: shape [${shape.join(',')}] needs ${expected} ${datatype} elements, got ${actual}`);
  }
}

/** `contents` (of input `field`, e.g. `inputs[0]`) as the datatype's TypedArray. */
export function fromContents(datatype: DataType, shape: readonly number[], contents: InferTensorContents | null, field: string): TypedArray {
  const expectedField = CONTENTS_FIELD[datatype];
  if (expectedField === null) invalid(`${field}.contents: ${datatype} has no typed contents field; send it in raw_input_contents`);
  for (const other of CONTENTS_FIELDS) {
    if (other !== expectedField && contents !== null && contents[other].length > 0) {
      invalid(`${field}.contents.${other}: ${datatype} values go in ${expectedField}`);
    }
  }
  const where = `${field}.contents.${expectedField as ContentsField}`;
  const values = contents === null ? [] : contents[expectedField as ContentsField];
  checkCount(values.length, shape, datatype, where);
  switch (datatype) {
    case 'BOOL':
      return Uint8Array.from(values as boolean[], (v) => (v ? 1 : 0));
    case 'INT64':
      return BigInt64Array.from(values as string[], BigInt);
    case 'UINT64':
      return BigUint64Array.from(values as string[], BigInt);
    case 'FP16':
      return Uint16Array.from(values as number[], toFloat16Bits);
    case 'BYTES':
      return encodeBytesTensor(values as Buffer[]);
    default: {
      const range = NARROW_RANGE[datatype];
      if (range) {
        const numbers = values as number[];
        const bad = numbers.findIndex((v) => v < range[0] || v > range[1]);
        if (bad >= 0) invalid(`${where}[${bad}]: ${numbers[bad]} is out of ${datatype}'s range ${range[0]}..${range[1]}`);
      }
      const array = new DATATYPES[datatype].array(values.length);
      (array as Float64Array).set(values as number[]);
      return array;
    }
  }
}

const rawField = (index: number) => `raw_input_contents[${index}]`;

/**
 * raw_input_contents[index] as the datatype's TypedArray: a view when
 * aligned, else one copy. (The index, not the field's name, is passed: the
 * name is only built for an error.)
 */
export function fromRawContents(datatype: DataType, shape: readonly number[], raw: Buffer, index: number): TypedArray {
  const { size, array } = DATATYPES[datatype];
  if (datatype === 'BYTES') {
    const count = countBytesElements(raw);
    if (count === -1) {
      throw new WeirError('WEIR_DATA_SIZE_MISMATCH', `${rawField(index)}: the BYTES elements' 4-byte length prefixes do not add up to its ${raw.byteLength} bytes`);
    }
    checkCount(count, shape, datatype, rawField(index));
    return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  }
  if (raw.byteLength % size !== 0) {
    throw new WeirError('WEIR_DATA_SIZE_MISMATCH', `${rawField(index)}: ${raw.byteLength} bytes is not a whole number of ${datatype} elements (${size} bytes each)`);
  }
  const count = raw.byteLength / size;
  const expected = elementCount(shape);
  if (count !== expected) {
    throw new WeirError('WEIR_DATA_SIZE_MISMATCH', `${rawField(index)}: shape [${shape.join(',')}] needs ${expected} ${datatype} elements (${expected * size} bytes), got ${raw.byteLength} bytes`);
  }
  if (raw.byteOffset % size === 0) return new array(raw.buffer as ArrayBuffer, raw.byteOffset, count);
  // Uint8Array's slice copies (a Buffer's would be a view).
  return new array(Uint8Array.prototype.slice.call(raw).buffer, 0, count);
}
