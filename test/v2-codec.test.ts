import { describe, expect, it } from 'vitest';

import { decodeInferRequest, encodeInferResponse } from '../dist/http/v2-codec.js';

/** A body in Triton's binary layout: JSON header, then each tensor's bytes; the header placed at `pad`. */
function binaryBody(json: object, tensors: ArrayBufferView[], pad = 0): { body: Uint8Array; headerLength: number } {
  const header = Buffer.from(JSON.stringify(json));
  const size = header.byteLength + tensors.reduce((n, t) => n + t.byteLength, 0);
  const backing = new Uint8Array(pad + size);
  backing.set(header, pad);
  let offset = pad + header.byteLength;
  for (const t of tensors) {
    backing.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), offset);
    offset += t.byteLength;
  }
  return { body: backing.subarray(pad), headerLength: header.byteLength };
}

describe('the V2 binary tensor extension', () => {
  const json = {
    inputs: [
      { name: 'flags', datatype: 'INT8', shape: [3], parameters: { binary_data_size: 3 } },
      { name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
    ],
  };
  const tensors = [Int8Array.of(1, -2, 3), Float32Array.of(1.5, -2.25)];

  it('reads tensors at any offset: misaligned ones are copied out, with the right values', () => {
    for (const pad of [0, 1, 2, 3, 5, 7]) {
      const { body, headerLength } = binaryBody(json, tensors, pad);
      const { request } = decodeInferRequest(body, headerLength, 'm');
      expect(Array.from(request.inputs[0]?.data as Int8Array)).toEqual([1, -2, 3]);
      expect(Array.from(request.inputs[1]?.data as Float32Array)).toEqual([1.5, -2.25]);
    }
  });

  it('views an aligned tensor in place instead of copying it', () => {
    const aligned = { inputs: [{ name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } }] };
    const header = JSON.stringify(aligned).length;
    const { body, headerLength } = binaryBody(aligned, [tensors[1] as Float32Array], (8 - (header % 8)) % 8);
    const { request } = decodeInferRequest(body, headerLength, 'm');
    expect(request.inputs[0]?.data.buffer).toBe(body.buffer);
    expect(Array.from(request.inputs[0]?.data as Float32Array)).toEqual([1.5, -2.25]);
  });

  it('copies out of a Node Buffer body too (whose slice would be a view)', () => {
    const { body, headerLength } = binaryBody(json, tensors, 1);
    const { request } = decodeInferRequest(Buffer.from(body), headerLength, 'm');
    expect(Array.from(request.inputs[1]?.data as Float32Array)).toEqual([1.5, -2.25]);
  });

  it('encodes binary outputs after the JSON, and others as JSON data', () => {
    const encoded = encodeInferResponse(
      {
        model_name: 'm',
        model_version: '1',
        computeNs: 0,
        outputs: [
          { name: 'a', datatype: 'FP32', shape: [2], data: Float32Array.of(1, 2) },
          { name: 'b', datatype: 'INT64', shape: [1], data: BigInt64Array.of(7n) },
        ],
      },
      new Set(['a']),
    );
    expect(JSON.parse(encoded.json).outputs).toEqual([
      { name: 'a', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
      { name: 'b', datatype: 'INT64', shape: [1], data: [7] },
    ]);
    // The binary output is the tensor itself, to be written after the JSON: not a copy.
    expect(encoded.binary).toHaveLength(1);
    expect(Array.from(encoded.binary[0] as Float32Array)).toEqual([1, 2]);
  });
});

describe('JSON outputs', () => {
  const encode = (outputs: Parameters<typeof encodeInferResponse>[0]['outputs'], id?: string) =>
    JSON.parse(encodeInferResponse({ model_name: 'm "quoted"', model_version: '3', computeNs: 0, outputs, ...(id !== undefined && { id }) }, new Set()).json);

  it('writes the same JSON an object graph would, for every datatype', () => {
    const outputs = [
      { name: 'f32', datatype: 'FP32', shape: [3], data: Float32Array.of(0.1, -2.5, 1e-8) },
      { name: 'f64', datatype: 'FP64', shape: [2], data: Float64Array.of(Math.PI, -0) },
      { name: 'i8', datatype: 'INT8', shape: [2], data: Int8Array.of(-128, 127) },
      { name: 'u8', datatype: 'UINT8', shape: [1], data: Uint8Array.of(255) },
      { name: 'bool', datatype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) },
      { name: 'fp16', datatype: 'FP16', shape: [1], data: Uint16Array.of(0x3c00) },
      { name: 'str', datatype: 'BYTES', shape: [1], data: Uint8Array.of(2, 0, 0, 0, 0x68, 0x69) },
    ] as const;
    const response = encode(outputs as never, 'req-1');
    expect(response).toMatchObject({ model_name: 'm "quoted"', model_version: '3', id: 'req-1' });
    expect(response.outputs).toEqual([
      { name: 'f32', datatype: 'FP32', shape: [3], data: Array.from(outputs[0].data) },
      { name: 'f64', datatype: 'FP64', shape: [2], data: [Math.PI, 0] },
      { name: 'i8', datatype: 'INT8', shape: [2], data: [-128, 127] },
      { name: 'u8', datatype: 'UINT8', shape: [1], data: [255] },
      { name: 'bool', datatype: 'BOOL', shape: [2], data: [true, false] },
      { name: 'fp16', datatype: 'FP16', shape: [1], data: [1] },
      { name: 'str', datatype: 'BYTES', shape: [1], data: ['hi'] },
    ]);
  });

  it('writes non-finite floats as null, and 64-bit integers with every digit', () => {
    const response = encode([
      { name: 'f', datatype: 'FP32', shape: [3], data: Float32Array.of(Number.NaN, Number.POSITIVE_INFINITY, 1) },
      { name: 'i', datatype: 'INT64', shape: [2], data: BigInt64Array.of(-(2n ** 63n), 7n) },
    ]);
    expect(response.outputs[0].data).toEqual([null, null, 1]);
    const raw = encodeInferResponse(
      { model_name: 'm', model_version: '1', computeNs: 0, outputs: [{ name: 'i', datatype: 'INT64', shape: [1], data: BigInt64Array.of(2n ** 62n + 1n) }] },
      new Set(),
    ).json;
    expect(raw).toContain(`"data":[${2n ** 62n + 1n}]`);
  });

  it('writes integers of every width in full, at both ends of their range', () => {
    const cases = [
      ['INT8', Int8Array.of(-128, 0, 127)],
      ['UINT8', Uint8Array.of(0, 255)],
      ['INT16', Int16Array.of(-32768, 32767)],
      ['UINT16', Uint16Array.of(0, 65535)],
      ['INT32', Int32Array.of(-(2 ** 31), 2 ** 31 - 1)],
      ['UINT32', Uint32Array.of(0, 2 ** 32 - 1)],
      ['INT64', BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n)],
      ['UINT64', BigUint64Array.of(0n, 2n ** 64n - 1n)],
    ] as const;
    for (const [datatype, data] of cases) {
      const { json } = encodeInferResponse({ model_name: 'm', model_version: '1', computeNs: 0, outputs: [{ name: 'y', datatype, shape: [data.length], data }] }, new Set());
      expect(json, datatype).toContain(`"data":[${Array.from(data as ArrayLike<number | bigint>, String).join(',')}]`);
    }
  });

  it('writes every float as String() writes it (the addon lays out the shortest digits as JavaScript does)', () => {
    const bits = new Uint32Array(2);
    const doubles = new Float64Array(bits.buffer);
    const randomDouble = () => {
      do {
        bits[0] = Math.random() * 2 ** 32;
        bits[1] = Math.random() * 2 ** 32;
      } while (!Number.isFinite(doubles[0]));
      return doubles[0] as number;
    };
    const edges = [0, -0, 1, -1, 0.1, 1e21, 1e20, 123456789012345680000, 9.999999999999999e20, 1e22, 1e-6, 1e-7, 1.5e-7, 0.000001234, 5e-324, Number.MAX_VALUE, 2 ** 53 + 2, -1e-300, 123.456, 100];
    const scaled = Array.from({ length: 20_000 }, () => (Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 60 - 30));
    const cases = [...edges, ...scaled, ...Array.from({ length: 20_000 }, randomDouble)];
    for (const data of [Float64Array.from(cases), Float32Array.from(cases.filter((v) => Number.isFinite(Math.fround(v))))]) {
      const datatype = data instanceof Float32Array ? 'FP32' : 'FP64';
      const { json } = encodeInferResponse({ model_name: 'm', model_version: '1', computeNs: 0, outputs: [{ name: 'y', datatype, shape: [data.length], data }] }, new Set());
      expect(json).toContain(`"data":[${Array.from(data, String).join(',')}]`);
    }
  });
});
