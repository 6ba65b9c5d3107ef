/**
 * Mangled requests over real sockets. Valid requests to the example models
 * and to identity models of the datatypes they lack (JSON, Triton's binary
 * layout, gRPC's typed and raw contents, and bodies past 64 KiB, which are
 * decoded in a worker) are mutated byte by byte, as a truncated, corrupted
 * or hand-edited request would be, and sent many at once. Whatever arrives,
 * the answer is a success or the client's error (HTTP 4xx with
 * {"error": ...}; gRPC INVALID_ARGUMENT or NOT_FOUND), never a server error
 * and never silence, and the server goes on serving. Whole HTTP/2
 * connections are mangled too, frames and HPACK blocks alike: nothing a
 * client sends may take the process down. Seeded: a failure names the case
 * and what was sent. WEIR_FUZZ_SCALE=N runs N times as many cases (a deeper
 * search, by hand).
 */
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InferenceCore } from '../dist/index.js';
import { type GrpcServer, startGrpcServer } from '../dist/grpc/server.js';
import { CLIENT_PREFACE } from '../dist/grpc/h2/frames.js';
import { encodeHeaderBlock } from '../dist/grpc/h2/hpack.js';
import { huffmanEncode } from '../dist/grpc/h2/huffman.js';
import { encodeBytesTensor } from '../dist/tensors/datatypes.js';
import { identityModel } from '../scripts/onnx-builder.mjs';
import { type Json, GrpcClient, inferenceMethod, rawRequest } from './helpers/grpc.js';
import { JSON_ALPHABET, SCALE, mutate, random, runCases } from './helpers/fuzz.js';
import { Flag, FrameType, frame, grpcMessage, requestFields, settingsPayload, uint32 } from './helpers/h2-frames.js';
import { type Listening, listen } from './helpers/http.js';
import { EXAMPLE_REPOSITORY, type ModelFixture, makeRepository, removeRepository } from './helpers/repository.js';

/** The example models with small inputs (the CNN's 110 KB images would only slow the mutations down). */
const EXAMPLES = ['tabular', 'multi_io', 'no_batch', 'trees'];
/** And the datatypes the examples lack, each through a model of its own that returns its input. */
const IDENTITIES = { strings: 'BYTES', halves: 'FP16', longs: 'INT64', flags: 'BOOL', octets: 'UINT8' };
const MODELS = [...EXAMPLES, ...Object.keys(IDENTITIES)];
/** Bytes that bend protobuf's structure: field keys of wire types 0 and 2, varint continuations. */
const PROTOBUF_ALPHABET = new Uint8Array([0x00, 0x01, 0x02, 0x08, 0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32, 0x3a, 0x7f, 0x80, 0xff]);
/** Columns of `wide`: three rows of it are past both front ends' 64 KiB, so they are decoded in a worker. */
const WIDE = 8192;

let repository: string;
let core: InferenceCore;
let http: Listening;
let grpcServer: GrpcServer;
let client: GrpcClient;

/** An example model as it lies in models/, version 1 with its config. */
function example(name: string): ModelFixture {
  const config = join(EXAMPLE_REPOSITORY, name, 'config.json');
  return {
    ...(existsSync(config) && { config: JSON.parse(readFileSync(config, 'utf8')) as object }),
    versions: { 1: readFileSync(join(EXAMPLE_REPOSITORY, name, '1', 'model.onnx')) },
  };
}

beforeAll(async () => {
  repository = await makeRepository({
    ...Object.fromEntries(EXAMPLES.map((name) => [name, example(name)])),
    ...Object.fromEntries(Object.entries(IDENTITIES).map(([name, datatype]) => [name, { config: { max_batch_size: 8 }, versions: { 1: identityModel(datatype, ['N', 3]) } }])),
    wide: { config: { max_batch_size: 8 }, versions: { 1: identityModel('FP32', ['N', WIDE]) } },
  });
  core = await InferenceCore.start({ modelRepository: repository, workers: 1 });
  http = await listen(core, { maxBodyBytes: 1024 * 1024 });
  grpcServer = await startGrpcServer(core, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024 });
  client = new GrpcClient(grpcServer.port);
});

afterAll(async () => {
  client?.close();
  await grpcServer?.close();
  http?.server.close();
  await core?.stop();
  if (repository) await removeRepository(repository);
});

interface InputSpec {
  name: string;
  datatype: string;
  shape: number[];
}

type Values = number[] | string[];

/** A valid input for `spec`: its dynamic dimensions `dynamic` long, values each datatype accepts. */
function validInput(spec: InputSpec, dynamic: number, next: () => number): { name: string; datatype: string; shape: number[]; values: Values } {
  const shape = spec.shape.map((dim) => (dim < 0 ? dynamic : dim));
  const count = shape.reduce((a, b) => a * b, 1);
  const pieces = ['a', 'é', '€', '😀', ' ', '"', '\\', '0'];
  const text = () => Array.from({ length: Math.floor(next() * 6) }, () => pieces[Math.floor(next() * pieces.length)]).join('');
  const values: Values =
    spec.datatype === 'BYTES'
      ? Array.from({ length: count }, text)
      : Array.from({ length: count }, () => {
          if (spec.datatype === 'BOOL') return next() < 0.5 ? 0 : 1;
          if (spec.datatype.startsWith('FP')) return Math.fround(next() * 4 - 2);
          return Math.floor(next() * 5);
        });
  return { name: spec.name, datatype: spec.datatype, shape, values };
}

const TYPED: Record<string, new (values: number[]) => ArrayBufferView> = {
  FP32: Float32Array,
  FP64: Float64Array,
  INT32: Int32Array,
  INT8: Int8Array,
  UINT8: Uint8Array,
  BOOL: Uint8Array,
};

/** The values as the binary extension and raw_input_contents carry them. */
function typed(datatype: string, values: Values): ArrayBufferView {
  if (datatype === 'BYTES') return encodeBytesTensor(values as string[]);
  const numbers = values as number[];
  if (datatype === 'INT64') return BigInt64Array.from(numbers, BigInt);
  if (datatype === 'FP16') return Uint16Array.from(numbers, (v) => 0x3c00 + Math.round(Math.abs(v) * 100)); // any bits are a half
  const array = TYPED[datatype];
  if (!array) throw new Error(`no seed writer for ${datatype}`);
  return new array(numbers);
}

/** Valid inputs for one request to `model`: its inputs share their dynamic (batch) dimensions. */
function validInputs(model: string, next: () => number): ReturnType<typeof validInput>[] {
  const dynamic = 1 + Math.floor(next() * 2);
  return (core.modelMetadata(model) as { inputs: InputSpec[] }).inputs.map((spec) => validInput(spec, dynamic, next));
}

/** ModelInfer with the bytes as they are: the client's serializer would refuse what is not a message. */
function sendModelInfer(bytes: Buffer): Promise<{ code: grpc.status; details: string }> {
  return new Promise((resolve) => {
    client.client.makeUnaryRequest(
      inferenceMethod.path,
      (message: Buffer) => message,
      inferenceMethod.responseDeserialize,
      bytes,
      (error: grpc.ServiceError | null) => resolve(error ? { code: error.code, details: error.details } : { code: grpc.status.OK, details: '' }),
    );
  });
}

/** A valid ModelInferRequest, serialized: typed contents or raw_input_contents. */
function seedModelInfer(next: () => number): { model: string; bytes: Buffer } {
  const model = MODELS[Math.floor(next() * MODELS.length)] as string;
  const inputs = validInputs(model, next);
  let message: Json;
  // FP16 has no typed contents field: it always goes raw.
  if (next() < 0.5 || inputs.some(({ datatype }) => datatype === 'FP16')) {
    message = rawRequest(model, inputs.map(({ values, ...input }) => ({ ...input, data: typed(input.datatype, values) })), { id: 'g' });
  } else {
    message = { model_name: model, inputs: inputs.map(({ name, datatype, shape, values }) => ({ name, datatype, shape, contents: typedContents(datatype, values) })) };
  }
  return { model, bytes: inferenceMethod.requestSerialize(message) };
}

describe('mangled HTTP requests', () => {

  /** A valid body for a model: JSON, or the binary layout (then with its header length). */
  function seed(next: () => number): { model: string; body: Buffer; headerLength?: number } {
    const model = MODELS[Math.floor(next() * MODELS.length)] as string;
    const inputs = validInputs(model, next);
    const id = next() < 0.5 ? { id: `req-${Math.floor(next() * 1000)}` } : {};
    if (next() < 0.5) {
      const json = { ...id, inputs: inputs.map(({ values, ...input }) => ({ ...input, data: input.datatype === 'BOOL' ? values.map(Boolean) : values })) };
      return { model, body: Buffer.from(JSON.stringify(json)) };
    }
    const tensors = inputs.map((input) => Buffer.from(rawView(typed(input.datatype, input.values))));
    const header = Buffer.from(
      JSON.stringify({
        ...id,
        inputs: inputs.map(({ name, datatype, shape }, i) => ({ name, datatype, shape, parameters: { binary_data_size: tensors[i]?.byteLength } })),
        parameters: { binary_data_output: next() < 0.5 },
      }),
    );
    return { model, body: Buffer.concat([header, ...tensors]), headerLength: header.byteLength };
  }

  /** Sends a body as a client would, with the header length when there is one. */
  function post(model: string, body: Buffer, headerLength: number | undefined): Promise<Response> {
    const headers: Record<string, string> = { 'Content-Type': headerLength === undefined ? 'application/json' : 'application/octet-stream' };
    if (headerLength !== undefined) headers['Inference-Header-Content-Length'] = String(headerLength);
    return fetch(`${http.base}/v2/models/${model}/infer`, { method: 'POST', headers, body });
  }

  it('starts from requests that are answered 200 as they are', async () => {
    const problems = await runCases(60, 8, async (index) => {
      const { model, body, headerLength } = seed(random(5_000_000 + index));
      const response = await post(model, body, headerLength);
      return response.status === 200 ? null : `${model}: HTTP ${response.status} ${await response.text()}`;
    });
    expect(problems).toEqual([]);
  }, 30_000 * SCALE);

  it('answers every one with a success or a 4xx naming the problem, and keeps serving', async () => {
    const problems = await runCases(2500 * SCALE, 16, async (index) => {
      const next = random(5_000_000 + index);
      const { model, body, headerLength } = seed(next);
      // Mostly the body; now and then the header length instead, or both.
      const mangleBody = next() < 0.85;
      const sent = mangleBody ? mutate(body, next, JSON_ALPHABET) : body;
      let declared = headerLength;
      if (headerLength !== undefined && (!mangleBody || next() < 0.2)) declared = headerLength + Math.floor(next() * 40) - 20;
      const response = await post(model, sent, declared);
      const text = Buffer.from(await response.arrayBuffer()).toString('latin1');
      const what = `case ${5_000_000 + index} (${model}, header length ${declared}): HTTP ${response.status} ${text.slice(0, 300)}\n  sent: ${JSON.stringify(sent.toString('latin1'))}`;
      if (response.status === 200) return null;
      if (![400, 404, 413].includes(response.status)) return what;
      let error: unknown;
      try {
        error = (JSON.parse(text) as { error?: unknown }).error;
      } catch {
        return `${what}\n  (the error body is not JSON)`;
      }
      return typeof error === 'string' && error.length > 0 ? null : `${what}\n  (no error message)`;
    });
    expect(problems).toEqual([]);
    const after = await fetch(`${http.base}/v2/models/tabular/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32], data: new Array(32).fill(0.5) }] }),
    });
    expect(after.status).toBe(200);
  }, 30_000 * SCALE);
});

describe('mangled gRPC requests', () => {
  const CLIENT_ERRORS = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND]);

  it('starts from requests that are answered OK as they are', async () => {
    const problems = await runCases(60, 8, async (index) => {
      const { model, bytes } = seedModelInfer(random(6_000_000 + index));
      const { code, details } = await sendModelInfer(bytes);
      return code === grpc.status.OK ? null : `${model}: ${grpc.status[code]} ${details}`;
    });
    expect(problems).toEqual([]);
  }, 30_000 * SCALE);

  it('answers every one with OK, INVALID_ARGUMENT or NOT_FOUND, and keeps serving', async () => {
    const problems = await runCases(2500 * SCALE, 16, async (index) => {
      const next = random(6_000_000 + index);
      const { model, bytes } = seedModelInfer(next);
      const sent = mutate(bytes, next, PROTOBUF_ALPHABET);
      const { code, details } = await sendModelInfer(sent);
      if (CLIENT_ERRORS.has(code) && (code === grpc.status.OK || details.length > 0)) return null;
      return `case ${6_000_000 + index} (${model}): ${grpc.status[code]} ${details.slice(0, 300)}\n  sent: ${sent.toString('hex')}`;
    });
    expect(problems).toEqual([]);
    expect((await sendModelInfer(seedModelInfer(random(1)).bytes)).code).toBe(grpc.status.OK);
  }, 30_000 * SCALE);
});

describe('mangled ModelStreamInfer messages', () => {
  it('answers each message or ends the stream with INVALID_ARGUMENT, never INTERNAL and never silence', async () => {
    const PER_STREAM = 5;
    const problems = await runCases(300 * SCALE, 8, async (index) => {
      const next = random(14_000_000 + index);
      const stream = client.rawStream();
      const sent: Buffer[] = [];
      for (let m = 0; m < PER_STREAM; m++) {
        const { bytes } = seedModelInfer(next);
        sent.push(next() < 0.2 ? mutate(bytes, next, PROTOBUF_ALPHABET) : bytes);
        stream.write(sent[m]);
      }
      stream.call.end();
      const status = await stream.status;
      const what = `case ${14_000_000 + index}: ${grpc.status[status.code]} ${status.details} after ${stream.answers.length} answers`;
      // A message that is not a ModelInferRequest at all ends the call, as gRPC does; any other is answered in the stream.
      if (status.code === grpc.status.INVALID_ARGUMENT) return status.details ? null : `${what} (no details)`;
      if (status.code !== grpc.status.OK || stream.answers.length !== PER_STREAM) return what;
      const unanswered = stream.answers.find((answer: Json) => !answer.error_message && !answer.infer_response?.outputs?.length);
      return unanswered ? `${what}: ${JSON.stringify(unanswered).slice(0, 300)}` : null;
    });
    expect(problems).toEqual([]);
  }, 30_000 * SCALE);
});

describe('mangled large requests, decoded in a worker', () => {
  const rows = (next: () => number) => Array.from({ length: 3 * WIDE }, () => Math.fround(next() * 4 - 2));
  // Case 0 of each goes unmangled and must succeed: the mutations start from a request that works.

  it('answers every JSON body past 64 KiB with a success or a 4xx naming the problem', async () => {
    const problems = await runCases(150 * SCALE, 4, async (index) => {
      const next = random(8_000_000 + index);
      const body = Buffer.from(JSON.stringify({ id: 'big', inputs: [{ name: 'x', datatype: 'FP32', shape: [3, WIDE], data: rows(next) }] }));
      const sent = index === 0 ? body : mutate(body, next, JSON_ALPHABET);
      const response = await fetch(`${http.base}/v2/models/wide/infer`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: sent });
      const text = await response.text();
      if (index === 0 && response.status !== 200) return `the unmangled body: HTTP ${response.status} ${text.slice(0, 300)}`;
      if (response.status === 200 || (response.status === 400 && (JSON.parse(text) as { error?: string }).error)) return null;
      return `case ${8_000_000 + index}: HTTP ${response.status} ${text.slice(0, 300)}`;
    });
    expect(problems).toEqual([]);
  }, 30_000 * SCALE);

  it('answers every ModelInfer past 64 KiB of typed contents with OK, INVALID_ARGUMENT or NOT_FOUND', async () => {
    const problems = await runCases(150 * SCALE, 4, async (index) => {
      const next = random(9_000_000 + index);
      const message = { model_name: 'wide', id: 'big', inputs: [{ name: 'x', datatype: 'FP32', shape: [3, WIDE], contents: { fp32_contents: rows(next) } }] };
      const bytes = inferenceMethod.requestSerialize(message);
      const sent = index === 0 ? bytes : mutate(bytes, next, PROTOBUF_ALPHABET);
      const { code, details } = await sendModelInfer(sent);
      if (index === 0 && code !== grpc.status.OK) return `the unmangled message: ${grpc.status[code]} ${details}`;
      if (code === grpc.status.OK || ((code === grpc.status.INVALID_ARGUMENT || code === grpc.status.NOT_FOUND) && details.length > 0)) return null;
      return `case ${9_000_000 + index}: ${grpc.status[code]} ${details.slice(0, 300)}`;
    });
    expect(problems).toEqual([]);
  }, 30_000 * SCALE);
});

describe('mangled HTTP/2 connections', () => {
  /** A field as a literal without indexing, both strings Huffman-coded (the encoder under test writes them plain). */
  function huffmanLiteral(name: string, value: string): Buffer {
    const string = (text: string) => {
      const coded = huffmanEncode(text);
      if (coded.length >= 127) throw new Error('a short string only');
      return Buffer.concat([Buffer.of(0x80 | coded.length), coded]);
    };
    return Buffer.concat([Buffer.of(0x00), string(name), string(value)]);
  }

  /** A connection a client might write: two ModelInfer calls, a PING, window updates, a reset. */
  function connection(next: () => number): Buffer {
    const request = (streamId: number) => {
      const block = Buffer.concat([encodeHeaderBlock(requestFields(inferenceMethod.path)), huffmanLiteral('user-agent', 'weir-fuzz'), huffmanLiteral('grpc-timeout', '5S')]);
      return [frame(FrameType.HEADERS, Flag.END_HEADERS, streamId, block), frame(FrameType.DATA, Flag.END_STREAM, streamId, grpcMessage(seedModelInfer(next).bytes))];
    };
    return Buffer.concat([
      CLIENT_PREFACE,
      frame(FrameType.SETTINGS, 0, 0, settingsPayload([[0x4, 1 << 20]])),
      frame(FrameType.SETTINGS, Flag.ACK, 0),
      ...request(1),
      frame(FrameType.WINDOW_UPDATE, 0, 0, uint32(1 << 20)),
      ...request(3),
      frame(FrameType.PING, 0, 0, Buffer.from('fuzzing!')),
      frame(FrameType.RST_STREAM, 0, 3, uint32(0x8)),
    ]);
  }

  /** Writes `bytes` on a connection of its own; waits a moment for answers, then hangs up. */
  function play(bytes: Buffer, linger: boolean): Promise<void> {
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: grpcServer.port });
      socket.on('error', () => {});
      socket.on('close', () => resolve());
      socket.on('data', () => {});
      socket.write(bytes, () => {
        if (linger) setTimeout(() => socket.destroy(), 30);
        else socket.end();
      });
      setTimeout(() => socket.destroy(), 2000).unref();
    });
  }

  it('survives every one and keeps serving', async () => {
    const alphabet = new Uint8Array([0x00, 0x01, 0x04, 0x08, 0x09, 0x3f, 0x40, 0x7f, 0x80, 0xff]);
    const problems = await runCases(1500 * SCALE, 16, async (index) => {
      const next = random(7_000_000 + index);
      const bytes = connection(next);
      // The preface is left alone now and then only: a broken one just closes the connection.
      const keep = next() < 0.9 ? CLIENT_PREFACE.length : 0;
      const sent = Buffer.concat([bytes.subarray(0, keep), mutate(bytes.subarray(keep), next, alphabet)]);
      await play(sent, next() < 0.3);
      return null;
    });
    expect(problems).toEqual([]);
    const { model, bytes } = seedModelInfer(random(1));
    expect((await client.call('ModelInfer', inferenceMethod.requestDeserialize(bytes))).model_name).toBe(model);
  }, 30_000 * SCALE);
});

/** gRPC's typed contents field for `datatype`, with the values as proto-loader takes them. */
function typedContents(datatype: string, values: Values): Json {
  const numbers = values as number[];
  switch (datatype) {
    case 'BYTES':
      return { bytes_contents: (values as string[]).map((text) => Buffer.from(text, 'utf8')) };
    case 'BOOL':
      return { bool_contents: numbers.map(Boolean) };
    case 'INT64':
      return { int64_contents: numbers.map(String) };
    case 'UINT8':
      return { uint_contents: numbers };
    case 'FP64':
      return { fp64_contents: numbers };
    default:
      return datatype.startsWith('INT') ? { int_contents: numbers } : { fp32_contents: numbers };
  }
}

function rawView(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}
