/**
 * The KServe V2 HTTP front end over real sockets: health, server and model
 * metadata, readiness, config, inference in JSON and in Triton's binary
 * extension (both directions, equal results), every malformed request with
 * its status and message, and dynamic batching across concurrent HTTP
 * requests (shown by `weir serve`'s batch-size histogram).
 */
import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InferenceCore } from '../dist/index.js';
import { tabularModel } from '../scripts/build-models.mjs';
import { identityModel, randomFloats } from '../scripts/onnx-builder.mjs';
import {
  type Json,
  type Listening,
  type Reply,
  binaryBody,
  call,
  float32s,
  int64s,
  listen,
  metricValue,
  postBinary,
  postJson,
  splitBinaryResponse,
} from './helpers/http.js';
import { type Serving, startServe } from './helpers/http-serve.js';
import { EXAMPLE_REPOSITORY, makeRepository, removeRepository } from './helpers/repository.js';

const PACKAGE = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

let core: InferenceCore;
let http: Listening;
let base: string;

beforeAll(async () => {
  core = await InferenceCore.start({ modelRepository: EXAMPLE_REPOSITORY, workers: 2 });
  http = await listen(core, { maxBodyBytes: 1024 * 1024 });
  base = http.base;
});

afterAll(async () => {
  http?.server.close();
  await core?.stop();
});

/** Asserts an error reply: its status, a JSON `{error}` body, and each fragment in the message. */
function expectError(reply: Reply, status: number, ...fragments: string[]): void {
  expect({ status: reply.status, body: reply.json }).toMatchObject({ status, body: { error: expect.any(String) } });
  expect(Object.keys(reply.json as object)).toEqual(['error']);
  expect(reply.headers.get('content-type')).toBe('application/json');
  for (const fragment of fragments) expect(reply.json.error).toContain(fragment);
}

const features = (seed: number): number[] => Array.from(randomFloats(seed, 32, 2));
const tabularRequest = (rows: number[][], extra: object = {}) => ({
  inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 32], data: rows.flat() }],
  ...extra,
});
const goodRequest = () => postJson(`${base}/v2/models/tabular/infer`, tabularRequest([features(1)]));

describe('health and server metadata', () => {
  it('GET /v2/health/live → 200 {"live":true}', async () => {
    const reply = await call(`${base}/v2/health/live`);
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ live: true });
    expect(reply.headers.get('content-type')).toBe('application/json');
  });

  it('GET /v2/health/ready → 200 {"ready":true}', async () => {
    const reply = await call(`${base}/v2/health/ready`);
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ ready: true });
  });

  it('GET /v2 → name, version and the binary_tensor_data extension', async () => {
    const reply = await call(`${base}/v2`);
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ name: 'weir', version: PACKAGE.version });
    expect(reply.json.extensions).toContain('binary_tensor_data');
  });
});

describe('model metadata, readiness and config', () => {
  const tabularMetadata = {
    name: 'tabular',
    versions: ['2', '1'],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 32] }],
    outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 2] }],
  };

  it.each(['/v2/models/tabular', '/v2/models/tabular/versions/1', '/v2/models/tabular/versions/2'])('GET %s', async (path) => {
    const reply = await call(`${base}${path}`);
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual(tabularMetadata);
  });

  it('metadata of a model with fixed shapes and scalars (no_batch)', async () => {
    const reply = await call(`${base}/v2/models/no_batch`);
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({
      name: 'no_batch',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [
        { name: 'matrix', datatype: 'FP32', shape: [3, 4] },
        { name: 'scale', datatype: 'FP32', shape: [] },
      ],
      outputs: [
        { name: 'scaled', datatype: 'FP32', shape: [3, 4] },
        { name: 'total', datatype: 'FP32', shape: [] },
      ],
    });
  });

  it.each(['/v2/models/tabular/ready', '/v2/models/tabular/versions/1/ready', '/v2/models/cnn/ready'])('GET %s → 200 ready', async (path) => {
    const reply = await call(`${base}${path}`);
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ ready: true });
  });

  it('GET /v2/models/tabular/config → the effective config', async () => {
    const reply = await call(`${base}/v2/models/tabular/config`);
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({
      name: 'tabular',
      platform: 'onnxruntime_onnx',
      max_batch_size: 128,
      input: [{ name: 'features', data_type: 'TYPE_FP32', dims: [32] }],
      output: [{ name: 'probabilities', data_type: 'TYPE_FP32', dims: [2] }],
      dynamic_batching: { preferred_batch_size: [32, 64], max_queue_delay_microseconds: 500, max_queue_size: 4096 },
      version_policy: { all: {} },
    });
    const v1 = await call(`${base}/v2/models/tabular/versions/1/config`);
    expect(v1.status).toBe(200);
    expect(v1.json).toMatchObject({ name: 'tabular', max_batch_size: 128 });
  });

  it('GET /v2/models/no_batch/config: max_batch_size 0, full dims, no dynamic_batching', async () => {
    const reply = await call(`${base}/v2/models/no_batch/config`);
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ max_batch_size: 0, input: [{ name: 'matrix', dims: [3, 4] }, { name: 'scale', dims: [] }] });
    expect(reply.json).not.toHaveProperty('dynamic_batching');
  });

  it('a model name in percent-encoding is decoded', async () => {
    const reply = await call(`${base}/v2/models/tab%75lar`);
    expect(reply.status).toBe(200);
    expect(reply.json.name).toBe('tabular');
  });
});

describe('inference in JSON', () => {
  it('flat and nested data give the same result, which is the core API answer', async () => {
    const rows = [features(11), features(12)];
    const flat = await postJson(`${base}/v2/models/tabular/infer`, tabularRequest(rows));
    const nested = await postJson(`${base}/v2/models/tabular/infer`, {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 32], data: rows }],
    });
    expect(flat.status).toBe(200);
    expect(flat.headers.get('content-type')).toBe('application/json');
    expect(flat.json).toEqual({
      model_name: 'tabular',
      model_version: '2',
      outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [2, 2], data: expect.any(Array) }],
    });
    expect(nested.status).toBe(200);
    expect(nested.json).toEqual(flat.json);

    const direct = await core.infer({
      model: 'tabular',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 32], data: Float32Array.from(rows.flat()) }],
    });
    expect(flat.json.outputs[0].data).toEqual(Array.from(direct.outputs[0]?.data as Float32Array));
    const [a, b, c, d] = flat.json.outputs[0].data as number[];
    expect((a as number) + (b as number)).toBeCloseTo(1, 5);
    expect((c as number) + (d as number)).toBeCloseTo(1, 5);
  });

  it('echoes the request id', async () => {
    const reply = await postJson(`${base}/v2/models/tabular/infer`, tabularRequest([features(2)], { id: 'request-42' }));
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ id: 'request-42', model_name: 'tabular', model_version: '2' });
  });

  it('/versions/1 is served by version 1 (a different model), and says so', async () => {
    const request = tabularRequest([features(3)]);
    const v1 = await postJson(`${base}/v2/models/tabular/versions/1/infer`, request);
    const v2 = await postJson(`${base}/v2/models/tabular/versions/2/infer`, request);
    const latest = await postJson(`${base}/v2/models/tabular/infer`, request);
    expect(v1.status).toBe(200);
    expect(v1.json.model_version).toBe('1');
    expect(v2.json.model_version).toBe('2');
    expect(latest.json.model_version).toBe('2');
    expect(latest.json.outputs).toEqual(v2.json.outputs);
    expect(v1.json.outputs[0].data).not.toEqual(v2.json.outputs[0].data);
  });

  it('INT64 in and out (multi_io), and an `outputs` subset', async () => {
    const request = {
      inputs: [
        { name: 'ids', datatype: 'INT64', shape: [2, 4], data: [1, 2, 3, 4, -1, 0, 7, 2] },
        { name: 'values', datatype: 'FP32', shape: [2, 4], data: [0.5, 1, 2, 0.25, 3, 1, 0.5, 4] },
      ],
    };
    const all = await postJson(`${base}/v2/models/multi_io/infer`, request);
    expect(all.status).toBe(200);
    expect(all.json).toEqual({
      model_name: 'multi_io',
      model_version: '1',
      outputs: [
        { name: 'weighted', datatype: 'FP32', shape: [2, 4], data: [0.5, 2, 6, 1, -3, 0, 3.5, 8] },
        { name: 'argmax', datatype: 'INT64', shape: [2, 1], data: [2, 3] },
      ],
    });

    const subset = await postJson(`${base}/v2/models/multi_io/infer`, { ...request, outputs: [{ name: 'argmax' }] });
    expect(subset.status).toBe(200);
    expect(subset.json).toEqual({
      model_name: 'multi_io',
      model_version: '1',
      outputs: [{ name: 'argmax', datatype: 'INT64', shape: [2, 1], data: [2, 3] }],
    });
  });

  it('INT64 data may be given as decimal strings', async () => {
    const reply = await postJson(`${base}/v2/models/multi_io/infer`, {
      inputs: [
        { name: 'ids', datatype: 'INT64', shape: [1, 4], data: ['3', '-2', '0', '1'] },
        { name: 'values', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] },
      ],
      outputs: [{ name: 'weighted' }],
    });
    expect(reply.status).toBe(200);
    expect(reply.json.outputs[0].data).toEqual([3, -2, 0, 1]);
  });

  it('a scalar input and output (no_batch: scale and total have shape [])', async () => {
    const matrix = Array.from({ length: 12 }, (_, i) => i + 1);
    const reply = await postJson(`${base}/v2/models/no_batch/infer`, {
      inputs: [
        { name: 'matrix', datatype: 'FP32', shape: [3, 4], data: matrix },
        { name: 'scale', datatype: 'FP32', shape: [], data: [2] },
      ],
    });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({
      model_name: 'no_batch',
      model_version: '1',
      outputs: [
        { name: 'scaled', datatype: 'FP32', shape: [3, 4], data: matrix.map((v) => v * 2) },
        { name: 'total', datatype: 'FP32', shape: [], data: [156] },
      ],
    });
  });

  it('trees: INT64 label of rank 1 and probabilities', async () => {
    const reply = await postJson(`${base}/v2/models/trees/infer`, {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 4], data: [[-1, 0, 0, 0], [1, 1, 1, 1]] }],
    });
    expect(reply.status).toBe(200);
    expect(reply.json.model_version).toBe('1');
    expect(reply.json.outputs.map((o: Json) => [o.name, o.datatype, o.shape])).toEqual([
      ['label', 'INT64', [2]],
      ['probabilities', 'FP32', [2, 2]],
    ]);
  });
});

describe("Triton's binary tensor extension", () => {
  const image = randomFloats(4242, 3 * 32 * 32, 1);
  const jsonCnn = () => ({ inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 32, 32], data: Array.from(image) }] });
  const binaryCnn = (extra: object = {}) => ({
    inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 32, 32], parameters: { binary_data_size: image.byteLength } }],
    ...extra,
  });
  let jsonProbabilities: number[];

  beforeAll(async () => {
    const reply = await postJson(`${base}/v2/models/cnn/infer`, jsonCnn());
    expect(reply.status).toBe(200);
    jsonProbabilities = reply.json.outputs[0].data as number[];
    expect(jsonProbabilities).toHaveLength(10);
  });

  it('a binary input gives exactly the probabilities of the same request in JSON', async () => {
    const reply = await postBinary(`${base}/v2/models/cnn/infer`, binaryCnn(), [image]);
    expect(reply.status).toBe(200);
    // No binary output was asked for: a plain JSON response.
    expect(reply.headers.get('inference-header-content-length')).toBeNull();
    expect(reply.json).toEqual({
      model_name: 'cnn',
      model_version: '1',
      outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 10], data: jsonProbabilities }],
    });
  });

  it('a binary output asked for per output (outputs[].parameters.binary_data)', async () => {
    const reply = await postBinary(
      `${base}/v2/models/cnn/infer`,
      binaryCnn({ outputs: [{ name: 'probabilities', parameters: { binary_data: true } }] }),
      [image],
    );
    expect(reply.status).toBe(200);
    expect(reply.headers.get('inference-header-content-length')).toMatch(/^\d+$/);
    const { json, binary } = splitBinaryResponse(reply);
    expect(json).toEqual({
      model_name: 'cnn',
      model_version: '1',
      outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 10], parameters: { binary_data_size: 40 } }],
    });
    expect(float32s(binary.get('probabilities') as Buffer)).toEqual(jsonProbabilities);
  });

  it('JSON input, binary outputs for the whole request (parameters.binary_data_output), INT64 included', async () => {
    const reply = await postJson(`${base}/v2/models/multi_io/infer`, {
      inputs: [
        { name: 'ids', datatype: 'INT64', shape: [1, 4], data: [1, 2, 3, 4] },
        { name: 'values', datatype: 'FP32', shape: [1, 4], data: [0.5, 1, 2, 0.25] },
      ],
      parameters: { binary_data_output: true },
    });
    expect(reply.status).toBe(200);
    const { json, binary } = splitBinaryResponse(reply);
    expect(json).toEqual({
      model_name: 'multi_io',
      model_version: '1',
      outputs: [
        { name: 'weighted', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } },
        { name: 'argmax', datatype: 'INT64', shape: [1, 1], parameters: { binary_data_size: 8 } },
      ],
    });
    expect(float32s(binary.get('weighted') as Buffer)).toEqual([0.5, 2, 6, 1]);
    expect(int64s(binary.get('argmax') as Buffer)).toEqual([2]);
  });

  it('binary INT64 and FP32 inputs together, one output binary and one in JSON', async () => {
    const ids = BigInt64Array.from([4n, 3n, 2n, 1n]);
    const values = Float32Array.from([1, 2, 3, 4]);
    const reply = await postBinary(
      `${base}/v2/models/multi_io/infer`,
      {
        inputs: [
          { name: 'ids', datatype: 'INT64', shape: [1, 4], parameters: { binary_data_size: 32 } },
          { name: 'values', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } },
        ],
        outputs: [{ name: 'weighted', parameters: { binary_data: true } }, { name: 'argmax' }],
      },
      [ids, values],
    );
    expect(reply.status).toBe(200);
    const { json, binary } = splitBinaryResponse(reply);
    expect(json.outputs).toEqual([
      { name: 'weighted', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } },
      { name: 'argmax', datatype: 'INT64', shape: [1, 1], data: [3] },
    ]);
    expect(float32s(binary.get('weighted') as Buffer)).toEqual([4, 6, 6, 4]);
  });

  it('binary data sizes that do not add up → 400 (too many bytes and too few)', async () => {
    const tooMany = await postBinary(`${base}/v2/models/cnn/infer`, binaryCnn(), [image, new Uint8Array(4)]);
    expectError(tooMany, 400, 'binary_data_size', `add up to ${image.byteLength} bytes`, `${image.byteLength + 4} binary bytes were sent`);
    const tooFew = await postBinary(`${base}/v2/models/cnn/infer`, binaryCnn(), [image.subarray(0, image.length - 1)]);
    expectError(tooFew, 400, 'inputs[0].parameters.binary_data_size', `${image.byteLength} bytes`, `${image.byteLength - 4} binary bytes`);
  });

  it('Inference-Header-Content-Length larger than the body → 400', async () => {
    const { body } = binaryBody(binaryCnn(), [image]);
    const reply = await postBinary(`${base}/v2/models/cnn/infer`, binaryCnn(), [image], body.byteLength + 1);
    expectError(reply, 400, 'Inference-Header-Content-Length', String(body.byteLength + 1), `${body.byteLength}-byte body`);
  });

  it('Inference-Header-Content-Length that is not a number → 400', async () => {
    const reply = await call(`${base}/v2/models/cnn/infer`, {
      method: 'POST',
      headers: { 'Inference-Header-Content-Length': 'twelve' },
      body: JSON.stringify(jsonCnn()),
    });
    expectError(reply, 400, 'Inference-Header-Content-Length');
  });
});

describe('bad requests: status and a message naming the field', () => {
  const infer = (model: string, body: unknown) => postJson(`${base}/v2/models/${model}/infer`, body);
  const features32 = features(5);

  it('malformed JSON → 400 "not valid JSON"', async () => {
    expectError(await infer('tabular', '{"inputs": [{"name": '), 400, 'not valid JSON');
  });

  it('an empty body → 400 "not valid JSON"', async () => {
    expectError(await call(`${base}/v2/models/tabular/infer`, { method: 'POST' }), 400, 'not valid JSON');
  });

  it('a body that is not an object → 400', async () => {
    expectError(await infer('tabular', '[1, 2]'), 400, 'expected a JSON object');
  });

  it('missing inputs → 400 naming `inputs`', async () => {
    expectError(await infer('tabular', { id: 'x' }), 400, 'inputs', 'expected an array');
  });

  it('an unknown input → 400 naming inputs[0].name and the expected inputs', async () => {
    const reply = await infer('tabular', { inputs: [{ name: 'feature', datatype: 'FP32', shape: [1, 32], data: features32 }] });
    expectError(reply, 400, 'inputs[0].name', "'feature'", 'features');
  });

  it('a missing input → 400 naming the missing one', async () => {
    const reply = await infer('multi_io', { inputs: [{ name: 'ids', datatype: 'INT64', shape: [1, 4], data: [1, 2, 3, 4] }] });
    expectError(reply, 400, 'inputs', "'values'", 'FP32');
  });

  it('the same input twice → 400', async () => {
    const input = { name: 'features', datatype: 'FP32', shape: [1, 32], data: features32 };
    expectError(await infer('tabular', { inputs: [input, input] }), 400, 'inputs[1].name', 'more than once');
  });

  it('a wrong datatype → 400 naming inputs[0].datatype and the expected one', async () => {
    const reply = await infer('tabular', { inputs: [{ name: 'features', datatype: 'FP64', shape: [1, 32], data: features32 }] });
    expectError(reply, 400, 'inputs[0].datatype', 'expects FP32', 'FP64');
  });

  it('a datatype that is not a V2 datatype → 400 naming inputs[0].datatype', async () => {
    const reply = await infer('tabular', { inputs: [{ name: 'features', datatype: 'FLOAT', shape: [1, 32], data: features32 }] });
    expectError(reply, 400, 'inputs[0].datatype', 'FLOAT');
  });

  it('a wrong shape → 400 naming inputs[0].shape[1]', async () => {
    const reply = await infer('tabular', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 31], data: features32.slice(0, 31) }] });
    expectError(reply, 400, 'inputs[0].shape[1]', '32', '31');
  });

  it('a shape of the wrong rank → 400 naming inputs[0].shape', async () => {
    const reply = await infer('tabular', { inputs: [{ name: 'features', datatype: 'FP32', shape: [32], data: features32 }] });
    expectError(reply, 400, 'inputs[0].shape', '2 dimensions');
  });

  it('a negative dimension → 400 naming inputs[0].shape', async () => {
    const reply = await infer('tabular', { inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 32], data: features32 }] });
    expectError(reply, 400, 'inputs[0].shape', 'non-negative integers');
  });

  it('a batch over max_batch_size → 400 naming inputs[0].shape[0]', async () => {
    const reply = await infer('tabular', { inputs: [{ name: 'features', datatype: 'FP32', shape: [129, 32], data: new Array(129 * 32).fill(0) }] });
    expectError(reply, 400, 'inputs[0].shape[0]', '129', 'max_batch_size 128');
  });

  it('data not holding as many elements as the shape → 400 naming inputs[0].data', async () => {
    const reply = await infer('tabular', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32], data: features32.slice(0, 30) }] });
    expectError(reply, 400, 'inputs[0].data', '32', '30');
  });

  it('a non-number in the data → 400 naming inputs[0].data[3]', async () => {
    const data: unknown[] = [...features32];
    data[3] = 'seven';
    const reply = await infer('tabular', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32], data }] });
    expectError(reply, 400, 'inputs[0].data[3]', 'a number', '"seven"');
  });

  it('a non-integer in INT64 data → 400 naming inputs[0].data[1]', async () => {
    const reply = await infer('multi_io', {
      inputs: [
        { name: 'ids', datatype: 'INT64', shape: [1, 4], data: [1, 2.5, 3, 4] },
        { name: 'values', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] },
      ],
    });
    expectError(reply, 400, 'inputs[0].data[1]', 'an integer');
  });

  it('data that is not an array and no binary_data_size → 400 naming inputs[0].data', async () => {
    expectError(await infer('tabular', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32], data: 5 }] }), 400, 'inputs[0].data');
    expectError(await infer('tabular', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32] }] }), 400, 'inputs[0].data', 'binary_data_size');
  });

  it('an unknown output → 400 naming outputs[0]', async () => {
    const reply = await infer('tabular', tabularRequest([features32], { outputs: [{ name: 'logits' }] }));
    expectError(reply, 400, 'outputs[0]', "'logits'", 'probabilities');
  });

  it('a bad timeout parameter → 400 naming parameters.timeout', async () => {
    const reply = await infer('tabular', tabularRequest([features32], { parameters: { timeout: -5 } }));
    expectError(reply, 400, 'parameters.timeout', 'microseconds');
  });

  it('an unknown model → 404 (infer, metadata, ready and config)', async () => {
    expectError(await infer('nope', tabularRequest([features32])), 404, "'nope'");
    expectError(await call(`${base}/v2/models/nope`), 404, "'nope'");
    expectError(await call(`${base}/v2/models/nope/ready`), 404, "'nope'");
    expectError(await call(`${base}/v2/models/nope/config`), 404, "'nope'");
  });

  it('an unknown version → 404 naming the versions there are', async () => {
    expectError(await infer('tabular/versions/9', tabularRequest([features32])), 404, 'no version 9', '1, 2');
    expectError(await call(`${base}/v2/models/tabular/versions/9`), 404, 'no version 9');
    expectError(await call(`${base}/v2/models/tabular/versions/9/ready`), 404, 'no version 9');
  });

  it('a version that is not a number → 400', async () => {
    expectError(await infer('tabular/versions/latest', tabularRequest([features32])), 400, "'latest'", 'positive integer');
  });

  it('an unknown route → 404 naming the method and path', async () => {
    expectError(await call(`${base}/v2/nothing/here`), 404, 'GET /v2/nothing/here');
    expectError(await call(`${base}/v1/models/tabular:predict`, { method: 'POST', body: '{}' }), 404, 'POST /v1/models/tabular:predict');
    expectError(await call(`${base}/v2/models/tabular/infer`), 404, 'GET /v2/models/tabular/infer');
  });

  it('a malformed percent-encoding in the model name or version → 400, not 500', async () => {
    // decodeURIComponent throws a URIError, which is the client's error, not WEIR_INTERNAL.
    expectError(await call(`${base}/v2/models/%E0%A4%A`), 400, 'percent-encoding');
    expectError(await call(`${base}/v2/models/%E0%A4%A/config`), 400, 'percent-encoding');
    expectError(await call(`${base}/v2/models/tabular/versions/%FF/ready`), 400, 'percent-encoding');
  });

  it('after all of these the server still answers a good request', async () => {
    const reply = await goodRequest();
    expect(reply.status).toBe(200);
    expect(reply.json.outputs[0].shape).toEqual([1, 2]);
    expect((await call(`${base}/v2/health/live`)).status).toBe(200);
  });
});

describe('a temp repository served by `weir serve`: BYTES, and dynamic batching across HTTP requests', () => {
  let repository: string;
  let serving: Serving;
  const QUEUE_DELAY_US = 50_000;
  /** Floats per row of `wide`: 3 rows make a 96 KiB binary body, read into shared memory. */
  const WIDE = 8192;

  beforeAll(async () => {
    repository = await makeRepository({
      batched: {
        config: { max_batch_size: 8, dynamic_batching: { preferred_batch_size: [8], max_queue_delay_microseconds: QUEUE_DELAY_US } },
        versions: { 1: tabularModel(2) },
      },
      strings: { versions: { 1: identityModel('BYTES', ['N', 'M']) } },
      wide: {
        config: { max_batch_size: 8, dynamic_batching: { preferred_batch_size: [7], max_queue_delay_microseconds: QUEUE_DELAY_US } },
        versions: { 1: identityModel('FP32', ['N', WIDE]) },
      },
    });
    serving = await startServe(['--model-repository', repository, '--host', '127.0.0.1', '--http-port', '0', '--grpc-port', '0', '--metrics-port', '0', '--workers', '2']);
  });

  afterAll(async () => {
    if (serving) {
      serving.weir.child.kill('SIGTERM');
      await serving.weir.exited;
    }
    if (repository) await removeRepository(repository);
  });

  it('BYTES in and out as strings (JSON)', async () => {
    const strings = ['hello', 'wörld ✓', '', 'a"quote\\'];
    const reply = await postJson(`${serving.base}/v2/models/strings/infer`, {
      inputs: [{ name: 'x', datatype: 'BYTES', shape: [2, 2], data: [strings.slice(0, 2), strings.slice(2)] }],
    });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({
      model_name: 'strings',
      model_version: '1',
      outputs: [{ name: 'y', datatype: 'BYTES', shape: [2, 2], data: strings }],
    });
  });

  it('BYTES as binary, both ways (4-byte length prefixes)', async () => {
    const elements = ['abc', '', 'ünï'].map((s) => Buffer.from(s, 'utf8'));
    const raw = Buffer.concat(elements.flatMap((e) => [Buffer.from(Uint32Array.of(e.byteLength).buffer), e]));
    const reply = await postBinary(
      `${serving.base}/v2/models/strings/infer`,
      {
        inputs: [{ name: 'x', datatype: 'BYTES', shape: [1, 3], parameters: { binary_data_size: raw.byteLength } }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      },
      [raw],
    );
    expect(reply.status).toBe(200);
    const { json, binary } = splitBinaryResponse(reply);
    expect(json.outputs).toEqual([{ name: 'y', datatype: 'BYTES', shape: [1, 3], parameters: { binary_data_size: raw.byteLength } }]);
    expect(binary.get('y')?.equals(raw)).toBe(true);
  });

  it('a BYTES element that is not a string → 400 naming inputs[0].data[1]', async () => {
    const reply = await postJson(`${serving.base}/v2/models/strings/infer`, { inputs: [{ name: 'x', datatype: 'BYTES', shape: [1, 2], data: ['a', 5] }] });
    expectError(reply, 400, 'inputs[0].data[1]', 'a string');
  });

  it('8 concurrent one-row requests form one batch; each answer equals the same request alone', async () => {
    const metrics = async () => {
      const reply = await call(`http://127.0.0.1:${serving.metricsPort}/metrics`);
      expect(reply.status).toBe(200);
      const labels = { model: 'batched', version: '1' };
      return {
        count: metricValue(reply.text, 'weir_batch_size_rows_count', labels) ?? 0,
        sum: metricValue(reply.text, 'weir_batch_size_rows_sum', labels) ?? 0,
        le1: metricValue(reply.text, 'weir_batch_size_rows_bucket', { ...labels, le: '1' }) ?? 0,
        le4: metricValue(reply.text, 'weir_batch_size_rows_bucket', { ...labels, le: '4' }) ?? 0,
      };
    };
    expect(serving.metricsPort).not.toBeNull();
    const before = await metrics();
    expect(before).toEqual({ count: 0, sum: 0, le1: 0, le4: 0 });

    const url = `${serving.base}/v2/models/batched/infer`;
    const requests = Array.from({ length: 8 }, (_, i) => tabularRequest([features(100 + i)], { id: `row-${i}` }));
    const together = await Promise.all(requests.map((request) => postJson(url, request)));
    for (const [i, reply] of together.entries()) {
      expect(reply.status).toBe(200);
      expect(reply.json).toMatchObject({ id: `row-${i}`, model_version: '1', outputs: [{ name: 'probabilities', shape: [1, 2] }] });
    }

    const batched = await metrics();
    expect(batched.sum).toBe(8);
    // At least one batch held more than 4 of the 8 rows (normally: one batch of 8).
    expect(batched.count).toBeLessThan(8);
    expect(batched.le4).toBeLessThan(batched.count);

    for (const [i, request] of requests.entries()) {
      const alone = await postJson(url, request);
      expect(alone.status).toBe(200);
      expect(alone.json.outputs).toEqual(together[i]?.json.outputs);
    }
    const after = await metrics();
    expect(after.count - batched.count).toBe(8);
    expect(after.le1 - batched.le1).toBe(8);
  });

  it('large binary requests (shared memory) and a small one share a batch; each gets back exactly its own rows', async () => {
    const url = `${serving.base}/v2/models/wide/infer`;
    const rows = [3, 1, 3];
    const tensors = rows.map((n, i) => randomFloats(300 + i, n * WIDE, 1));
    const replies = await Promise.all(
      tensors.map((data, i) =>
        postBinary(
          url,
          { inputs: [{ name: 'x', datatype: 'FP32', shape: [rows[i], WIDE], parameters: { binary_data_size: data.byteLength } }], parameters: { binary_data_output: true } },
          [data],
        ),
      ),
    );
    for (const [i, reply] of replies.entries()) {
      expect(reply.status).toBe(200);
      const { json, binary } = splitBinaryResponse(reply);
      expect(json.outputs[0].shape).toEqual([rows[i], WIDE]);
      expect(Buffer.compare(binary.get('y') as Buffer, Buffer.from(tensors[i]!.buffer))).toBe(0);
    }
    const text = (await call(`http://127.0.0.1:${serving.metricsPort}/metrics`)).text;
    const labels = { model: 'wide', version: '1' };
    expect(metricValue(text, 'weir_batch_size_requests_sum', labels)).toBe(3);
    expect(metricValue(text, 'weir_batch_size_requests_count', labels)).toBe(1);
  });

  it('pooled request buffers are reused only after their request is answered: 3 rounds of 16 concurrent requests each get their own rows back', async () => {
    const url = `${serving.base}/v2/models/wide/infer`;
    for (let round = 0; round < 3; round++) {
      const tensors = Array.from({ length: 16 }, (_, i) => randomFloats(1000 * round + i, WIDE, 1));
      const replies = await Promise.all(
        tensors.map((data) =>
          postBinary(url, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDE], parameters: { binary_data_size: data.byteLength } }], parameters: { binary_data_output: true } }, [data]),
        ),
      );
      for (const [i, reply] of replies.entries()) {
        expect(reply.status).toBe(200);
        expect(Buffer.compare(splitBinaryResponse(reply).binary.get('y') as Buffer, Buffer.from(tensors[i]!.buffer)), `round ${round}, request ${i}`).toBe(0);
      }
    }
  });
});
