/**
 * Tensor data in the V2 JSON encoding: `data` is a flat or nested array of
 * numbers (booleans for BOOL, strings for BYTES), in row-major order. These
 * convert it to and from the TypedArray a Tensor holds.
 */
import { WeirError } from '../errors.js';
import { nativeAddon } from '../native/addon.js';
import { DATATYPES, type DataType, type TypedArray, decodeBytesTensor, encodeBytesTensor } from './datatypes.js';
import { smallArray } from './small-arrays.js';

const float32 = new Float32Array(1);
const bits32 = new Uint32Array(float32.buffer);

/** IEEE half-precision bits of a number (round to nearest even). */
export function toFloat16Bits(value: number): number {
  float32[0] = value;
  const x = bits32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // Inf, NaN
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    return sign | (half + (rest > midpoint || (rest === midpoint && half & 1) ? 1 : 0));
  }
  const rounded = (mantissa >>> 13) + ((mantissa & 0x1fff) > 0x1000 || ((mantissa & 0x1fff) === 0x1000 && (mantissa >>> 13) & 1) ? 1 : 0);
  if (rounded === 0x400) e += 1;
  return e >= 0x1f ? sign | 0x7c00 : sign | (e << 10) | (rounded & 0x3ff);
}

export function fromFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function toBFloat16Bits(value: number): number {
  float32[0] = value;
  const x = bits32[0] as number;
  if (Number.isNaN(value)) return 0x7fc0;
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

function fromBFloat16Bits(bits: number): number {
  bits32[0] = bits << 16;
  return float32[0] as number;
}

function flatten(values: unknown[], out: unknown[]): unknown[] {
  for (const value of values) {
    if (Array.isArray(value)) flatten(value, out);
    else out.push(value);
  }
  return out;
}

function wrongValue(field: string, datatype: DataType, value: unknown, i: number, expected: string): never {
  throw new WeirError('WEIR_BAD_ARGUMENT', `${field}[${i}]: expected ${expected} for ${datatype}, got ${JSON.stringify(value) ?? 'undefined'}`);
}

/** `data` of a JSON tensor as the TypedArray of its datatype; `field` names it in errors. */
export function fromJsonData(datatype: DataType, data: unknown, field: string): TypedArray {
  if (!Array.isArray(data)) {
    throw new WeirError('WEIR_BAD_ARGUMENT', `${field}: expected an array of ${datatype} values`);
  }
  const flat = data.some(Array.isArray) ? flatten(data, []) : data;
  switch (datatype) {
    case 'BYTES':
      return encodeBytesTensor(flat.map((v, i) => (typeof v === 'string' ? v : wrongValue(field, datatype, v, i, 'a string'))));
    case 'BOOL':
      return Uint8Array.from(flat, (v, i) => (typeof v === 'boolean' ? Number(v) : wrongValue(field, datatype, v, i, 'true or false')));
    case 'INT64':
    case 'UINT64': {
      const array = datatype === 'INT64' ? new BigInt64Array(flat.length) : new BigUint64Array(flat.length);
      flat.forEach((v, i) => {
        if (!(typeof v === 'number' && Number.isInteger(v)) && !(typeof v === 'string' && /^-?\d+$/.test(v))) wrongValue(field, datatype, v, i, 'an integer');
        array[i] = BigInt(v as number | string);
      });
      return array;
    }
    case 'FP16':
    case 'BF16': {
      const convert = datatype === 'FP16' ? toFloat16Bits : toBFloat16Bits;
      return Uint16Array.from(flat, (v, i) => (typeof v === 'number' ? convert(v) : wrongValue(field, datatype, v, i, 'a number')));
    }
    default: {
      const array = new DATATYPES[datatype].array(flat.length);
      for (let i = 0; i < flat.length; i++) {
        const v = flat[i];
        if (typeof v !== 'number') wrongValue(field, datatype, v, i, 'a number');
        (array as Float64Array)[i] = v as number;
      }
      return array;
    }
  }
}

/**
 * `data` that arrived as numbers parsed already (src/http/v2-json.ts), flat,
 * as the TypedArray of its datatype: the same values and errors as
 * `fromJsonData` on the same numbers. Always a copy (a small one into a
 * shared slab, small-arrays.ts).
 */
export function fromJsonNumbers(datatype: DataType, numbers: Float64Array, field: string): TypedArray {
  switch (datatype) {
    case 'BYTES':
    case 'BOOL':
    case 'INT64':
    case 'UINT64':
    case 'FP16':
    case 'BF16':
      return fromJsonData(datatype, Array.from(numbers), field);
    default: {
      // Each element converts as an assignment would (ToInt32, rounding to float, ...).
      const array = smallArray(DATATYPES[datatype].array, numbers.length) as Float64Array;
      array.set(numbers);
      return array;
    }
  }
}

/** A tensor's data as a flat JSON array (numbers, booleans or strings). */
export function toJsonData(datatype: DataType, data: TypedArray): Array<number | boolean | string> {
  switch (datatype) {
    case 'BYTES':
      return decodeBytesTensor(data as Uint8Array).map((bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    case 'BOOL':
      return Array.from(data as Uint8Array, (v) => v !== 0);
    case 'INT64':
    case 'UINT64':
      return Array.from(data as BigInt64Array, Number);
    case 'FP16':
      return Array.from(data as Uint16Array, fromFloat16Bits);
    case 'BF16':
      return Array.from(data as Uint16Array, fromBFloat16Bits);
    default:
      return Array.from(data as Float32Array);
  }
}

/**
 * `toJsonData` already as JSON text. Integer and float data is written by
 * the addon, without an array of numbers in between, each number as
 * String() writes it (json_format.h: several times faster than V8 for
 * floats); floats that are not finite fall back to JSON.stringify, which
 * writes them as null.
 */
export function toJsonText(datatype: DataType, data: TypedArray): string {
  switch (datatype) {
    case 'BYTES':
    case 'BOOL':
    case 'FP16':
    case 'BF16':
      return JSON.stringify(toJsonData(datatype, data));
    default:
      return nativeAddon().jsonNumbers(data) ?? JSON.stringify(toJsonData(datatype, data));
  }
}
