/**
 * The hand-written protobuf codec of the inference messages (infer-wire.ts)
 * against proto-loader's, field for field: what it decodes equals what
 * proto-loader gives, and what it encodes proto-loader decodes to the same
 * message as its own encoding.
 */
import { describe, expect, it } from 'vitest';

import { decodeModelInferRequest, encodeModelInferResponse, encodeModelStreamInferResponse } from '../dist/grpc/infer-wire.js';
import { inferenceService } from '../dist/grpc/proto.js';

// Messages are compared whole; `any` keeps the fixtures short.
type Json = any;

const service = inferenceService() as Record<string, Json>;
const infer = service.ModelInfer;
const stream = service.ModelStreamInfer;

const floats = (values: number[]) => Buffer.from(new Float32Array(values).buffer);

const PARAMETERS = {
  flag: { bool_param: true },
  off: { bool_param: false },
  count: { int64_param: '-5' },
  huge: { int64_param: '9007199254740993' },
  lowest: { int64_param: '-9223372036854775808' },
  unsigned: { uint64_param: '18446744073709551615' },
  text: { string_param: 'ünïcode ✓' },
  empty: { string_param: '' },
  ratio: { double_param: 1.5 },
};

const REQUESTS: Record<string, Json> = {
  empty: {},
  'one raw input': { model_name: 'tabular', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [floats([1, 2, 3, 4])] },
  'every field': {
    model_name: 'multi_io',
    model_version: '2',
    id: 'req-ü-1',
    parameters: PARAMETERS,
    inputs: [
      { name: 'a', datatype: 'INT64', shape: [0, 3, '4294967296'], parameters: { binary: { bool_param: true } } },
      { name: 'b', datatype: 'BYTES', shape: ['-1'] },
    ],
    outputs: [{ name: 'y', parameters: { classification: { int64_param: 3 } } }, { name: 'z' }],
    raw_input_contents: [Buffer.alloc(0), Buffer.from([0, 0, 0, 2, 104, 105])],
  },
};

describe('decodeModelInferRequest', () => {
  for (const [name, message] of Object.entries(REQUESTS)) {
    it(`${name}: equals proto-loader's decoding`, () => {
      const bytes = infer.requestSerialize(message);
      expect(decodeModelInferRequest(bytes)).toEqual(infer.requestDeserialize(bytes));
    });
  }

  it('raw contents are views of the message, not copies', () => {
    const bytes: Buffer = infer.requestSerialize(REQUESTS['one raw input']);
    const raw = decodeModelInferRequest(bytes)?.raw_input_contents[0] as Buffer;
    expect(raw.buffer).toBe(bytes.buffer);
  });

  it('unpacked shapes and unknown fields of every wire type read as proto-loader reads them', () => {
    const input = Buffer.concat([
      Buffer.from([0x0a, 1, 0x78]), // name 'x'
      Buffer.from([0x18, 2, 0x18, 7]), // shape 2, 7 unpacked
      Buffer.from([0xf8, 0x06, 1]), // field 111, varint
    ]);
    const bytes = Buffer.concat([
      Buffer.from([0x0a, 1, 0x6d]), // model_name 'm'
      Buffer.from([0x2a, input.length]),
      input,
      Buffer.from([0x45, 1, 2, 3, 4]), // field 8, fixed32
      Buffer.from([0x49, 1, 2, 3, 4, 5, 6, 7, 8]), // field 9, fixed64
      Buffer.from([0x52, 2, 0xff, 0xff]), // field 10, bytes
    ]);
    expect(decodeModelInferRequest(bytes)).toEqual(infer.requestDeserialize(bytes));
  });

  it('a oneof given twice: the last member is the choice', () => {
    // parameters { key: 'p', value: { bool_param: true, string_param: 's' } }
    const value = Buffer.from([0x08, 1, 0x1a, 1, 0x73]);
    const entry = Buffer.concat([Buffer.from([0x0a, 1, 0x70, 0x12, value.length]), value]);
    const bytes = Buffer.concat([Buffer.from([0x22, entry.length]), entry]);
    expect(decodeModelInferRequest(bytes)).toEqual(infer.requestDeserialize(bytes));
    expect(decodeModelInferRequest(bytes)?.parameters.p).toMatchObject({ string_param: 's', parameter_choice: 'string_param' });
  });

  it('a request with typed contents is left to protobufjs (null)', () => {
    const bytes = infer.requestSerialize({ model_name: 'tabular', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [1, 2] } }] });
    expect(decodeModelInferRequest(bytes)).toBeNull();
  });

  it('malformed protobuf throws, naming what is wrong', () => {
    const bytes: Buffer = infer.requestSerialize(REQUESTS['every field']);
    for (const cut of [1, 5, 20, bytes.length - 1]) {
      expect(() => decodeModelInferRequest(bytes.subarray(0, cut))).toThrow(/ends inside a field/);
    }
    expect(() => decodeModelInferRequest(Buffer.from([0x0b]))).toThrow(/wire type 3/);
  });
});

const RESPONSE = {
  model_name: 'multi_io',
  model_version: '2',
  id: 'req-ü-1',
  parameters: PARAMETERS,
  outputs: [
    { name: 'y', datatype: 'FP32', shape: [2, 3] },
    { name: 'scalar', datatype: 'INT64', shape: [] },
  ],
  raw_output_contents: [floats([1, 2, 3, 4, 5, 6]), Buffer.alloc(0)],
};

describe('encodeModelInferResponse and encodeModelStreamInferResponse', () => {
  const sameAsProtoLoader = (method: Json, message: Json, ours: Buffer) =>
    expect(method.responseDeserialize(ours)).toEqual(method.responseDeserialize(method.responseSerialize(message)));

  it('a response with every field, empty raw contents keeping their place', () => {
    sameAsProtoLoader(infer, RESPONSE, encodeModelInferResponse(RESPONSE));
  });

  it('parameters as decoded from a request (with parameter_choice) are echoed', () => {
    const decoded = infer.requestDeserialize(infer.requestSerialize(REQUESTS['every field']));
    const response = { ...RESPONSE, parameters: decoded.parameters };
    sameAsProtoLoader(infer, response, encodeModelInferResponse(response));
    expect(infer.responseDeserialize(encodeModelInferResponse(response)).parameters).toEqual(decoded.parameters);
  });

  it('grows past its first estimate (long names) and writes megabytes of tensors', () => {
    const tensor = Buffer.alloc(3 * 1024 * 1024, 7);
    const response = { ...RESPONSE, id: 'x'.repeat(5000), raw_output_contents: [tensor, Buffer.alloc(0)] };
    const { raw_output_contents: raw, ...rest } = infer.responseDeserialize(encodeModelInferResponse(response));
    expect(rest).toEqual({ ...infer.responseDeserialize(infer.responseSerialize({ ...response, raw_output_contents: [] })), raw_output_contents: undefined });
    // Compared as bytes: a deep equality of megabytes element by element takes seconds.
    expect(raw.map((entry: Buffer) => entry.length)).toEqual([tensor.length, 0]);
    expect(tensor.equals(raw[0])).toBe(true);
  });

  it('stream answers: a response, and an error with only what the request named', () => {
    const answers = [
      { error_message: '', infer_response: RESPONSE },
      { error_message: "inputs[0].shape: expected [-1,32], got [1,31] ✗", infer_response: { model_name: 'tabular', model_version: '', id: '7' } },
    ];
    for (const answer of answers) sameAsProtoLoader(stream, answer, encodeModelStreamInferResponse(answer));
  });
});
