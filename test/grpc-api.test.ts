/**
 * The KServe V2 gRPC front end over real sockets, with a client built from
 * proto/: every RPC; typed and raw inputs giving the same outputs as each
 * other and as HTTP; BYTES, INT64, FP16, BOOL and INT8; each malformed
 * request with its status and the field it names; streaming (an error in
 * the middle leaves the stream open; answers overtake each other); a
 * deadline that passes in the queue; cancelled calls; the message size
 * limit; and gRPC and HTTP requests sharing batches.
 */
import { readFileSync } from 'node:fs';

import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import type { CoreObserver } from '../dist/core/core.js';
import { InferenceCore } from '../dist/index.js';
import { type GrpcServer, startGrpcServer } from '../dist/grpc/server.js';
import { Metrics } from '../dist/metrics/metrics.js';
import { tabularModel } from '../scripts/build-models.mjs';
import { identityModel, randomFloats } from '../scripts/onnx-builder.mjs';
import { GrpcClient, type Json, expectStatus, grpcFailure, inferenceMethod, rawBytes, rawNumbers, rawOutput, rawRequest, stopServing } from './helpers/grpc.js';
import { type Listening, call, listen, metricValue, postJson } from './helpers/http.js';
import { heavyRowModel, runningBatchesOf, versionOne } from './helpers/http-models.js';
import { recordingObserver } from './helpers/observer.js';
import { EXAMPLE_REPOSITORY, makeRepository, removeRepository } from './helpers/repository.js';

const PACKAGE = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const features = (seed: number): Float32Array => randomFloats(seed, 32, 2);
const typedTabular = (rows: Float32Array[], extra: Json = {}): Json => ({
  model_name: 'tabular',
  inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 32], contents: { fp32_contents: rows.flatMap((r) => Array.from(r)) } }],
  ...extra,
});
const rawTabular = (rows: Float32Array[], extra: Json = {}): Json => {
  const data = new Float32Array(rows.length * 32);
  rows.forEach((row, i) => data.set(row, i * 32));
  return rawRequest('tabular', [{ name: 'features', datatype: 'FP32', shape: [rows.length, 32], data }], extra);
};

describe('the example models over gRPC (and HTTP for comparison)', () => {
  let core: InferenceCore;
  let grpcServer: GrpcServer;
  let http: Listening;
  let client: GrpcClient;

  beforeAll(async () => {
    core = await InferenceCore.start({ modelRepository: EXAMPLE_REPOSITORY, workers: 2 });
    grpcServer = await startGrpcServer(core, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024 });
    http = await listen(core);
    client = new GrpcClient(grpcServer.port);
  });

  afterAll(() => stopServing({ client, server: grpcServer, http, core }, removeRepository));

  describe('health, metadata, readiness and config', () => {
    it('ServerLive, ServerReady, ServerMetadata', async () => {
      expect(await client.call('ServerLive')).toEqual({ live: true });
      expect(await client.call('ServerReady')).toEqual({ ready: true });
      expect(await client.call('ServerMetadata')).toEqual({ name: 'weir', version: PACKAGE.version, extensions: ['model_configuration'] });
    });

    it('ModelMetadata equals the HTTP metadata (shapes as int64)', async () => {
      for (const [model, version] of [['tabular', ''], ['tabular', '1'], ['no_batch', ''], ['multi_io', '1']] as const) {
        const reply = await client.call('ModelMetadata', { name: model, version });
        const viaHttp = await call(`${http.base}/v2/models/${model}${version ? `/versions/${version}` : ''}`);
        const shapes = (tensors: Json[]) => tensors.map((t) => ({ ...t, shape: t.shape.map(Number) }));
        expect({ ...reply, inputs: shapes(reply.inputs), outputs: shapes(reply.outputs) }).toEqual(viaHttp.json);
      }
      const tabular = await client.call('ModelMetadata', { name: 'tabular' });
      expect(tabular).toMatchObject({ versions: ['2', '1'], platform: 'onnxruntime_onnx', inputs: [{ name: 'features', datatype: 'FP32', shape: ['-1', '32'] }] });
    });

    it('ModelReady: a model, a version; unknown ones are NOT_FOUND', async () => {
      expect(await client.call('ModelReady', { name: 'tabular' })).toEqual({ ready: true });
      expect(await client.call('ModelReady', { name: 'tabular', version: '1' })).toEqual({ ready: true });
      await expectStatus(client.call('ModelReady', { name: 'nope' }), status.NOT_FOUND, "'nope'");
      await expectStatus(client.call('ModelReady', { name: 'tabular', version: '9' }), status.NOT_FOUND, 'no version 9', '1, 2');
      await expectStatus(client.call('ModelMetadata', { name: 'nope' }), status.NOT_FOUND, "'nope'");
      await expectStatus(client.call('ModelConfig', { name: 'tabular', version: '9' }), status.NOT_FOUND, 'no version 9');
      await expectStatus(client.call('ModelReady', { name: 'tabular', version: 'latest' }), status.INVALID_ARGUMENT, "'latest'", 'positive integer');
    });

    it("ModelConfig: Triton's ModelConfig fields, runtime settings as parameters", async () => {
      const { config } = await client.call('ModelConfig', { name: 'tabular', version: '2' });
      expect(config).toMatchObject({
        name: 'tabular',
        platform: 'onnxruntime_onnx',
        backend: 'onnxruntime',
        max_batch_size: 128,
        input: [{ name: 'features', data_type: 'TYPE_FP32', dims: ['32'] }],
        output: [{ name: 'probabilities', data_type: 'TYPE_FP32', dims: ['2'] }],
        dynamic_batching: { preferred_batch_size: [32, 64], max_queue_delay_microseconds: '500', default_queue_policy: { max_queue_size: 4096 } },
        version_policy: { policy_choice: 'all', all: {} },
      });
      const viaHttp = await call(`${http.base}/v2/models/tabular/versions/2/config`);
      expect(Object.fromEntries(Object.entries(config.parameters).map(([k, v]) => [k, (v as Json).string_value]))).toEqual(
        Object.fromEntries(Object.entries(viaHttp.json.runtime as Json).map(([k, v]) => [k, String(v)])),
      );

      const noBatch = (await client.call('ModelConfig', { name: 'no_batch' })).config;
      expect(noBatch).toMatchObject({ max_batch_size: 0, dynamic_batching: null, version_policy: { policy_choice: 'latest', latest: { num_versions: 1 } } });
      expect(noBatch.input).toEqual([
        { name: 'matrix', data_type: 'TYPE_FP32', dims: ['3', '4'] },
        { name: 'scale', data_type: 'TYPE_FP32', dims: [] },
      ]);
    });

    it("RPCs of Triton's service that Weir does not serve are UNIMPLEMENTED", async () => {
      const reply = new Promise((done, fail) =>
        client.client.makeUnaryRequest('/inference.GRPCInferenceService/ModelStatistics', () => Buffer.alloc(0), (b: Buffer) => b, {}, (error, value) => (error ? fail(error) : done(value))),
      );
      await expectStatus(reply, status.UNIMPLEMENTED);
    });

    it('startGrpcServer on a port in use fails, naming it', async () => {
      await expect(startGrpcServer(core, { host: '127.0.0.1', port: grpcServer.port, maxMessageBytes: 1024 })).rejects.toThrow(`127.0.0.1:${grpcServer.port}`);
    });
  });

  describe('inference', () => {
    it('typed and raw inputs give the same outputs, equal to HTTP JSON; id and parameters come back', async () => {
      const rows = [features(11), features(12)];
      const extra = { id: 'grpc-1', parameters: { tag: { string_param: 'x' }, flag: { bool_param: true } } };
      const typed = await client.call('ModelInfer', typedTabular(rows, extra));
      const raw = await client.call('ModelInfer', rawTabular(rows, extra));
      expect(typed).toEqual({
        model_name: 'tabular',
        model_version: '2',
        id: 'grpc-1',
        parameters: { tag: { string_param: 'x', parameter_choice: 'string_param' }, flag: { bool_param: true, parameter_choice: 'bool_param' } },
        outputs: [{ name: 'probabilities', datatype: 'FP32', shape: ['2', '2'], parameters: {}, contents: null }],
        raw_output_contents: [expect.any(Buffer)],
      });
      expect(raw).toEqual(typed);
      const viaHttp = await postJson(`${http.base}/v2/models/tabular/infer`, {
        inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 32], data: rows.flatMap((r) => Array.from(r)) }],
      });
      expect(viaHttp.status).toBe(200);
      expect(rawNumbers(typed, 'probabilities', Float32Array)).toEqual(viaHttp.json.outputs[0].data);
    });

    it('model_version picks the version, and says which served', async () => {
      const v1 = await client.call('ModelInfer', rawTabular([features(3)], { model_version: '1' }));
      const v2 = await client.call('ModelInfer', rawTabular([features(3)], { model_version: '2' }));
      expect([v1.model_version, v2.model_version]).toEqual(['1', '2']);
      expect(v1.raw_output_contents[0].equals(v2.raw_output_contents[0])).toBe(false);
    });

    it('INT64 in and out (multi_io), typed and raw, and an outputs subset', async () => {
      const ids = [1, 2, 3, 4, -1, 0, 7, 2];
      const values = [0.5, 1, 2, 0.25, 3, 1, 0.5, 4];
      const typed = await client.call('ModelInfer', {
        model_name: 'multi_io',
        inputs: [
          { name: 'ids', datatype: 'INT64', shape: [2, 4], contents: { int64_contents: ids.map(String) } },
          { name: 'values', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: values } },
        ],
      });
      const raw = await client.call('ModelInfer', rawRequest('multi_io', [
        { name: 'ids', datatype: 'INT64', shape: [2, 4], data: BigInt64Array.from(ids.map(BigInt)) },
        { name: 'values', datatype: 'FP32', shape: [2, 4], data: Float32Array.from(values) },
      ]));
      for (const reply of [typed, raw]) {
        expect(reply.outputs.map((o: Json) => [o.name, o.datatype, o.shape])).toEqual([['weighted', 'FP32', ['2', '4']], ['argmax', 'INT64', ['2', '1']]]);
        expect(rawNumbers(reply, 'weighted', Float32Array)).toEqual([0.5, 2, 6, 1, -3, 0, 3.5, 8]);
        expect(rawNumbers(reply, 'argmax', BigInt64Array)).toEqual([2, 3]);
      }
      const subset = await client.call('ModelInfer', { ...rawRequest('multi_io', [
        { name: 'ids', datatype: 'INT64', shape: [1, 4], data: BigInt64Array.of(1n, 2n, 3n, 4n) },
        { name: 'values', datatype: 'FP32', shape: [1, 4], data: Float32Array.of(1, 9, 1, 1) },
      ]), outputs: [{ name: 'argmax' }] });
      expect(subset.outputs.map((o: Json) => o.name)).toEqual(['argmax']);
      expect(rawNumbers(subset, 'argmax', BigInt64Array)).toEqual([1]);
    });

    it('scalar inputs and outputs (no_batch)', async () => {
      const matrix = Array.from({ length: 12 }, (_, i) => i + 1);
      const reply = await client.call('ModelInfer', {
        model_name: 'no_batch',
        inputs: [
          { name: 'matrix', datatype: 'FP32', shape: [3, 4], contents: { fp32_contents: matrix } },
          { name: 'scale', datatype: 'FP32', shape: [], contents: { fp32_contents: [2] } },
        ],
      });
      expect(reply.outputs.map((o: Json) => o.shape)).toEqual([['3', '4'], []]);
      expect(rawNumbers(reply, 'scaled', Float32Array)).toEqual(matrix.map((v) => v * 2));
      expect(rawNumbers(reply, 'total', Float32Array)).toEqual([156]);
    });
  });

  describe('bad requests: status and a message naming the field', () => {
    const ids = { name: 'ids', datatype: 'INT64', shape: [1, 4], data: BigInt64Array.of(1n, 2n, 3n, 4n) };
    const values = { name: 'values', datatype: 'FP32', shape: [1, 4], data: Float32Array.of(1, 1, 1, 1) };
    const infer = (request: Json) => client.call('ModelInfer', request);
    const bad = (request: Json, ...fragments: string[]) => expectStatus(infer(request), status.INVALID_ARGUMENT, ...fragments);

    it('an unknown model or version → NOT_FOUND; a version that is not a number → INVALID_ARGUMENT', async () => {
      await expectStatus(infer({ ...rawTabular([features(1)]), model_name: 'nope' }), status.NOT_FOUND, "'nope'");
      await expectStatus(infer(rawTabular([features(1)], { model_version: '9' })), status.NOT_FOUND, 'no version 9', '1, 2');
      await bad(rawTabular([features(1)], { model_version: 'latest' }), "'latest'", 'positive integer');
    });

    it('raw and typed data mixed in one request', async () => {
      const request = rawRequest('multi_io', [ids, values]);
      request.inputs[1].contents = { fp32_contents: [1, 1, 1, 1] };
      await bad(request, 'inputs[1].contents', 'raw_input_contents', 'not both');
    });

    it('raw_input_contents with fewer entries than inputs', async () => {
      const request = rawRequest('multi_io', [ids, values]);
      request.raw_input_contents.pop();
      await bad(request, 'raw_input_contents', '1 entries for 2 inputs');
    });

    it('raw bytes that do not fit the shape, or the element size', async () => {
      await bad(rawRequest('multi_io', [ids, { ...values, data: Float32Array.of(1, 1, 1) }]), 'raw_input_contents[1]', '4 FP32 elements (16 bytes)', 'got 12 bytes');
      await bad(rawRequest('multi_io', [{ ...ids, data: new Uint8Array(30) }, values]), 'raw_input_contents[0]', '30 bytes', 'INT64');
    });

    it('typed contents that do not fit the shape, or in the wrong field', async () => {
      const request = typedTabular([features(1)]);
      request.inputs[0].contents.fp32_contents.length = 30;
      await bad(request, 'inputs[0].contents.fp32_contents', 'needs 32 FP32 elements', 'got 30');
      await bad({ model_name: 'tabular', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 2], contents: { int_contents: [1, 2] } }] }, 'inputs[0].contents.int_contents', 'fp32_contents');
      // BF16 has no typed field (as in Triton): raw only.
      await bad({ model_name: 'tabular', inputs: [{ name: 'x', datatype: 'BF16', shape: [1], contents: { fp32_contents: [1] } }] }, 'inputs[0].contents', 'raw_input_contents');
    });

    it('a datatype that is not V2, and one the model does not expect', async () => {
      await bad({ ...typedTabular([features(1)]), inputs: [{ ...typedTabular([features(1)]).inputs[0], datatype: 'FLOAT' }] }, 'inputs[0].datatype', 'FLOAT');
      await bad(rawRequest('tabular', [{ name: 'features', datatype: 'FP64', shape: [1, 32], data: new Float64Array(32) }]), 'inputs[0].datatype', 'expects FP32', 'FP64');
    });

    it('an unknown input, a missing input, a wrong shape, an unknown output', async () => {
      await bad(rawRequest('tabular', [{ name: 'feature', datatype: 'FP32', shape: [1, 32], data: features(1) }]), 'inputs[0].name', "'feature'");
      await bad(rawRequest('multi_io', [ids]), 'inputs', "'values'");
      await bad(rawRequest('tabular', [{ name: 'features', datatype: 'FP32', shape: [2, 16], data: features(1) }]), 'inputs[0].shape[1]', '32');
      await bad(rawTabular([features(1)], { outputs: [{ name: 'logits' }] }), 'outputs[0]', "'logits'");
    });

    it('a timeout parameter that is not int64 microseconds', async () => {
      await bad(rawTabular([features(1)], { parameters: { timeout: { string_param: '5s' } } }), 'parameters.timeout', 'microseconds');
      await bad(rawTabular([features(1)], { parameters: { timeout: { int64_param: -5 } } }), 'parameters.timeout', 'positive');
    });

    it('after all of these the server still answers', async () => {
      const reply = await infer(rawTabular([features(1)]));
      expect(reply.outputs[0].shape).toEqual(['1', '2']);
    });
  });

  describe('ModelStreamInfer', () => {
    it('answers each request; an error in the middle is an error_message and the stream stays open', async () => {
      const stream = client.stream();
      stream.write(rawTabular([features(21)], { id: 'a' }));
      stream.write(rawRequest('tabular', [{ name: 'feature', datatype: 'FP32', shape: [1, 32], data: features(22) }], { id: 'b' }));
      const first = await stream.received(2);
      const failed = first.find((answer) => answer.infer_response.id === 'b');
      expect(failed.error_message).toContain('inputs[0].name');
      expect(failed.infer_response).toMatchObject({ model_name: 'tabular', id: 'b', outputs: [] });
      // Still open: a later request is answered.
      stream.write(typedTabular([features(23)], { id: 'c' }));
      const answers = await stream.received(3);
      stream.call.end();
      expect((await stream.status).code).toBe(status.OK);
      expect(stream.answers).toHaveLength(3);

      const byId = new Map(answers.map((answer) => [answer.infer_response.id, answer]));
      for (const [id, seed] of [['a', 21], ['c', 23]] as const) {
        const answer = byId.get(id);
        expect(answer.error_message).toBe('');
        const alone = await client.call('ModelInfer', rawTabular([features(seed)]));
        expect(answer.infer_response.raw_output_contents).toEqual(alone.raw_output_contents);
        expect(answer.infer_response).toMatchObject({ model_name: 'tabular', model_version: '2', id });
      }
    });

    it('ends only after the client ends and every answer is written', async () => {
      const stream = client.stream();
      for (let i = 0; i < 6; i++) stream.write(rawTabular([features(30 + i)], { id: `r${i}` }));
      stream.call.end();
      expect((await stream.status).code).toBe(status.OK);
      expect(stream.answers.map((a) => a.infer_response.id).sort()).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
      expect(stream.answers.every((a) => a.error_message === '')).toBe(true);
    });
  });
});

describe('identity models: BYTES, FP16, INT64 beyond 2^53, BOOL, INT8; gRPC and HTTP requests share batches', () => {
  let repository: string;
  let core: InferenceCore;
  let metrics: Metrics;
  let grpcServer: GrpcServer;
  let http: Listening;
  let client: GrpcClient;

  beforeAll(async () => {
    repository = await makeRepository({
      batched: {
        config: { max_batch_size: 8, dynamic_batching: { preferred_batch_size: [8], max_queue_delay_microseconds: 50_000 } },
        versions: { 1: tabularModel(2) },
      },
      strings: { versions: { 1: identityModel('BYTES', ['N', 'M']) } },
      half: { versions: { 1: identityModel('FP16', ['N', 'M']) } },
      wide: { versions: { 1: identityModel('INT64', ['N', 'M']) } },
      flags: { versions: { 1: identityModel('BOOL', ['N']) } },
      small: { versions: { 1: identityModel('INT8', ['N']) } },
    });
    metrics = new Metrics({ queueDepths: () => core?.queueDepths() ?? [], workerUtilization: () => 0 });
    core = await InferenceCore.start({ modelRepository: repository, workers: 2, observer: metrics });
    grpcServer = await startGrpcServer(core, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024 });
    http = await listen(core);
    client = new GrpcClient(grpcServer.port);
  });

  afterAll(() => stopServing({ client, server: grpcServer, http, core, repository }, removeRepository));

  it('BYTES: typed bytes_contents and raw length-prefixed input give the same raw output', async () => {
    const elements = ['hello', 'wörld ✓', '', 'a"quote\\'].map((s) => Buffer.from(s, 'utf8'));
    const prefixed = Buffer.concat(elements.flatMap((e) => [Buffer.from(Uint32Array.of(e.byteLength).buffer), e]));
    const typed = await client.call('ModelInfer', { model_name: 'strings', inputs: [{ name: 'x', datatype: 'BYTES', shape: [2, 2], contents: { bytes_contents: elements } }] });
    const raw = await client.call('ModelInfer', rawRequest('strings', [{ name: 'x', datatype: 'BYTES', shape: [2, 2], data: prefixed }]));
    for (const reply of [typed, raw]) {
      expect(reply.outputs).toEqual([{ name: 'y', datatype: 'BYTES', shape: ['2', '2'], parameters: {}, contents: null }]);
      expect(reply.raw_output_contents[0].equals(prefixed)).toBe(true);
    }
    const broken = rawRequest('strings', [{ name: 'x', datatype: 'BYTES', shape: [1, 1], data: Buffer.from([9, 0, 0, 0, 97]) }]);
    await expectStatus(client.call('ModelInfer', broken), status.INVALID_ARGUMENT, 'raw_input_contents[0]', 'length prefixes');
    await expectStatus(client.call('ModelInfer', rawRequest('strings', [{ name: 'x', datatype: 'BYTES', shape: [1, 2], data: prefixed.subarray(0, 9) }])), status.INVALID_ARGUMENT, 'raw_input_contents[0]', 'needs 2 BYTES elements', 'got 1');
  });

  it('FP16: fp32_contents are rounded to half precision; raw half bits pass as they are', async () => {
    const values = [1, 0.5, -2, 65504, 0.1, 1e-8];
    const bits = [0x3c00, 0x3800, 0xc000, 0x7bff, 0x2e66, 0x0000];
    const typed = await client.call('ModelInfer', { model_name: 'half', inputs: [{ name: 'x', datatype: 'FP16', shape: [2, 3], contents: { fp32_contents: values } }] });
    expect(rawNumbers(typed, 'y', Uint16Array)).toEqual(bits);
    const raw = await client.call('ModelInfer', rawRequest('half', [{ name: 'x', datatype: 'FP16', shape: [2, 3], data: Uint16Array.from(bits) }]));
    expect(rawNumbers(raw, 'y', Uint16Array)).toEqual(bits);
  });

  it('INT64 beyond 2^53 round-trips exactly (int64 as decimal strings)', async () => {
    const big = ['9007199254740993', '-9223372036854775808', '9223372036854775807'];
    const reply = await client.call('ModelInfer', { model_name: 'wide', inputs: [{ name: 'x', datatype: 'INT64', shape: [1, 3], contents: { int64_contents: big } }] });
    expect(Array.from(rawOutput(reply, 'y', BigInt64Array), String)).toEqual(big);
  });

  it('large raw inputs (moved to a worker), at every alignment within the message, come back intact', async () => {
    const values = BigInt64Array.from({ length: 10_000 }, (_, i) => BigInt(i) * 1_000_000_007n - 5n);
    // Each extra character of id shifts the raw bytes by one within the received message.
    for (const id of ['', 'a', 'ab', 'abc', 'abcd', 'abcde', 'abcdef', 'abcdefg']) {
      const reply = await client.call('ModelInfer', rawRequest('wide', [{ name: 'x', datatype: 'INT64', shape: [1, values.length], data: values }], { id }));
      expect(reply.id).toBe(id);
      expect(reply.raw_output_contents[0].equals(rawBytes(values))).toBe(true);
    }
  });

  it('BOOL (bool_contents) and INT8 (int_contents, range-checked)', async () => {
    const flags = await client.call('ModelInfer', { model_name: 'flags', inputs: [{ name: 'x', datatype: 'BOOL', shape: [3], contents: { bool_contents: [true, false, true] } }] });
    expect(rawNumbers(flags, 'y', Uint8Array)).toEqual([1, 0, 1]);
    const small = await client.call('ModelInfer', { model_name: 'small', inputs: [{ name: 'x', datatype: 'INT8', shape: [3], contents: { int_contents: [-128, 0, 127] } }] });
    expect(rawNumbers(small, 'y', Int8Array)).toEqual([-128, 0, 127]);
    await expectStatus(
      client.call('ModelInfer', { model_name: 'small', inputs: [{ name: 'x', datatype: 'INT8', shape: [2], contents: { int_contents: [1, 300] } }] }),
      status.INVALID_ARGUMENT, 'inputs[0].contents.int_contents[1]', '300', 'INT8',
    );
  });

  it('4 gRPC and 4 HTTP one-row requests at once share batches, and each gets its own answer', async () => {
    const scrape = async () => {
      const { body } = await metrics.text();
      const labels = { model: 'batched', version: '1' };
      return {
        count: metricValue(body, 'weir_batch_size_requests_count', labels) ?? 0,
        sum: metricValue(body, 'weir_batch_size_requests_sum', labels) ?? 0,
        single: metricValue(body, 'weir_batch_size_requests_bucket', { ...labels, le: '1' }) ?? 0,
        refused: metricValue(body, 'weir_requests_total', { model: 'batched', outcome: 'failure', reason: 'WEIR_DATA_SIZE_MISMATCH' }) ?? 0,
      };
    };
    const rows = Array.from({ length: 8 }, (_, i) => features(200 + i));
    const grpcRequest = (i: number) => rawRequest('batched', [{ name: 'features', datatype: 'FP32', shape: [1, 32], data: rows[i] as Float32Array }], { id: `g${i}` });
    const httpRequest = (i: number) => ({ id: `h${i}`, inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32], data: Array.from(rows[i] as Float32Array) }] });
    const url = `${http.base}/v2/models/batched/infer`;
    // Connections up first, so that all 8 requests reach the queue within its 50 ms delay.
    await Promise.all([client.call('ModelInfer', grpcRequest(0)), postJson(url, httpRequest(0))]);
    const before = await scrape();

    const grpcReplies = Promise.all([0, 1, 2, 3].map((i) => client.call('ModelInfer', grpcRequest(i))));
    const httpReplies = Promise.all([4, 5, 6, 7].map((i) => postJson(url, httpRequest(i))));
    const [viaGrpc, viaHttp] = await Promise.all([grpcReplies, httpReplies]);
    const after = await scrape();

    expect(after.sum - before.sum).toBe(8);
    // Fewer batches than requests, and some batch held more than one request (normally one batch of 8).
    expect(after.count - before.count).toBeLessThan(8);
    expect(after.single - before.single).toBeLessThan(after.count - before.count);

    const alone = async (i: number) => {
      const reply = await core.infer({ model: 'batched', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32], data: Float32Array.from(rows[i] as Float32Array) }] });
      return Array.from(reply.outputs[0]?.data as Float32Array);
    };
    for (const [i, reply] of viaGrpc.entries()) {
      expect(reply).toMatchObject({ id: `g${i}`, model_version: '1', outputs: [{ shape: ['1', '2'] }] });
      expect(rawNumbers(reply, 'probabilities', Float32Array)).toEqual(await alone(i));
    }
    for (const [k, reply] of viaHttp.entries()) {
      expect(reply.status).toBe(200);
      expect(reply.json).toMatchObject({ id: `h${k + 4}`, model_version: '1' });
      expect(reply.json.outputs[0].data).toEqual(await alone(k + 4));
    }

    // A request that cannot be decoded is counted as refused, as over HTTP.
    await expectStatus(client.call('ModelInfer', { ...grpcRequest(1), raw_input_contents: [] }), status.INVALID_ARGUMENT, 'inputs[0].contents.fp32_contents', 'needs 32');
    expect((await scrape()).refused - after.refused).toBe(1);
  });
});

describe('a slow model (one batch at a time): deadlines, cancellation, answers out of order, the size limit', () => {
  const MAX_MESSAGE = 64 * 1024;
  let repository: string;
  let core: InferenceCore;
  let grpcServer: GrpcServer;
  let client: GrpcClient;
  const observer = recordingObserver();
  const { failures, batches } = observer;

  beforeAll(async () => {
    repository = await makeRepository({
      slow: { config: { max_batch_size: 1, dynamic_batching: {} }, versions: { 1: heavyRowModel() } },
      identity: { versions: { 1: identityModel('FP32', ['N', 'M']) } },
    });
    core = await InferenceCore.start({ modelRepository: repository, workers: 1, observer });
    grpcServer = await startGrpcServer(core, { host: '127.0.0.1', port: 0, maxMessageBytes: MAX_MESSAGE });
    client = new GrpcClient(grpcServer.port);
  });

  afterAll(() => stopServing({ client, server: grpcServer, core, repository }, removeRepository));

  const slowVersion = () => versionOne(core, 'slow');
  const runningBatches = () => runningBatchesOf(core, 'slow');
  const heavy = (id = '') => rawRequest('slow', [{ name: 'x', datatype: 'FP32', shape: [1, 256], data: new Float32Array(256).fill(0.25) }], { id });
  const identity = (values: number[]) => rawRequest('identity', [{ name: 'x', datatype: 'FP32', shape: [1, values.length], data: Float32Array.from(values) }]);
  const drained = () => vi.waitFor(() => expect(slowVersion().inflightRequests).toBe(0), { timeout: 10_000, interval: 10 });

  it('a deadline that passes while queued behind a slow request → DEADLINE_EXCEEDED, and it is never run', async () => {
    const first = client.call('ModelInfer', heavy());
    await vi.waitFor(() => expect(runningBatches()).toBe(1), { timeout: 5000, interval: 5 });
    const batchesBefore = batches.length;
    await expectStatus(client.call('ModelInfer', heavy(), 100), status.DEADLINE_EXCEEDED);
    // The core refused it at its deadline, while the slow batch still ran.
    await vi.waitFor(() => expect(failures).toContainEqual(['slow', 'WEIR_REQUEST_TIMEOUT']), { timeout: 2000, interval: 5 });
    expect(runningBatches()).toBe(1);
    const answered = await first;
    expect(answered.outputs[0].shape).toEqual(['1', '256']);
    await drained();
    expect(batches.length - batchesBefore).toBe(1);
  });

  it('a cancelled call leaks nothing: the request finishes in the core, the version drains', async () => {
    const { call, reply } = client.cancellable('ModelInfer', heavy());
    await vi.waitFor(() => expect(runningBatches()).toBe(1), { timeout: 5000, interval: 5 });
    expect(slowVersion().inflightRequests).toBe(1);
    call.cancel();
    expect((await grpcFailure(reply)).code).toBe(status.CANCELLED);
    await drained();
    const after = await client.call('ModelInfer', identity([1, 2, 3]));
    expect(rawNumbers(after, 'y', Float32Array)).toEqual([1, 2, 3]);
  });

  it('a call cancelled while its request waits in the queue: the request is dropped, never run', async () => {
    const first = client.call('ModelInfer', heavy());
    await vi.waitFor(() => expect(runningBatches()).toBe(1), { timeout: 5000, interval: 5 });
    const batchesBefore = batches.length;
    const { call, reply } = client.cancellable('ModelInfer', heavy());
    await vi.waitFor(() => expect(slowVersion().ready?.batcher.queuedRequests).toBe(1), { timeout: 5000, interval: 5 });
    call.cancel();
    expect((await grpcFailure(reply)).code).toBe(status.CANCELLED);
    expect((await first).outputs[0].shape).toEqual(['1', '256']);
    await drained();
    expect(failures).toContainEqual(['slow', 'WEIR_REQUEST_CANCELLED']);
    expect(batches.length - batchesBefore).toBe(1);
  });

  it('a cancelled stream leaks nothing either', async () => {
    const stream = client.stream();
    stream.write(heavy('s'));
    await vi.waitFor(() => expect(runningBatches()).toBe(1), { timeout: 5000, interval: 5 });
    stream.call.cancel();
    expect((await stream.status).code).toBe(status.CANCELLED);
    await drained();
    expect(stream.answers).toEqual([]);
  });

  it('stream requests run concurrently: a quick answer overtakes a slow one', async () => {
    const stream = client.stream();
    stream.write(heavy('slow'));
    await vi.waitFor(() => expect(runningBatches()).toBe(1), { timeout: 5000, interval: 5 });
    stream.write({ ...identity([1]), model_name: 'nope', id: 'quick' });
    stream.call.end();
    expect((await stream.status).code).toBe(status.OK);
    expect(stream.answers.map((a) => a.infer_response.id)).toEqual(['quick', 'slow']);
    expect(stream.answers[0].error_message).toContain("'nope'");
    expect(stream.answers[1].infer_response.outputs[0].shape).toEqual(['1', '256']);
  });

  it('a message over maxMessageBytes → RESOURCE_EXHAUSTED; one under it is served', async () => {
    const big = identity(Array.from({ length: MAX_MESSAGE / 4 }, (_, i) => i));
    await expectStatus(client.call('ModelInfer', big), status.RESOURCE_EXHAUSTED);
    const fits = identity(Array.from({ length: MAX_MESSAGE / 8 }, (_, i) => i));
    expect(rawNumbers(await client.call('ModelInfer', fits), 'y', Float32Array)).toHaveLength(MAX_MESSAGE / 8);
  });

  it('close() refuses new connections and lets the call in flight finish', async () => {
    const closing = await startGrpcServer(core, { host: '127.0.0.1', port: 0, maxMessageBytes: MAX_MESSAGE });
    const inFlight = new GrpcClient(closing.port);
    const reply = inFlight.call('ModelInfer', heavy('last'));
    await vi.waitFor(() => expect(runningBatches()).toBe(1), { timeout: 5000, interval: 5 });
    const closed = closing.close();
    const late = new GrpcClient(closing.port);
    await expectStatus(late.call('ServerLive', {}, 2000), status.UNAVAILABLE);
    expect(await reply).toMatchObject({ id: 'last', outputs: [{ shape: ['1', '256'] }] });
    await closed;
    inFlight.close();
    late.close();
  });
});

describe('requests with large typed inputs are decoded in a worker', () => {
  const WIDTH = 20_000; // 80 KB of fp32_contents: past LARGE_INPUTS_BYTES
  let repository: string;
  let core: InferenceCore;
  let grpcServer: GrpcServer;
  let client: GrpcClient;
  const jobs: Array<[string, string | null]> = [];
  const threads: string[] = [];
  const observer: CoreObserver = {
    requestFinished: () => {},
    batchRan: () => {},
    jobRan: (job, thread, _seconds, failure) => {
      jobs.push([job, failure]);
      threads.push(thread);
    },
  };
  const values = Array.from(randomFloats(77, WIDTH), (v) => Math.fround(v));
  const typed = (data: number[], extra: Json = {}): Json => ({
    model_name: 'identity',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], contents: { fp32_contents: data } }],
    ...extra,
  });

  beforeAll(async () => {
    repository = await makeRepository({ identity: { versions: { 1: identityModel('FP32', ['N', 'M']) } } });
    core = await InferenceCore.start({ modelRepository: repository, workers: 1, observer });
    grpcServer = await startGrpcServer(core, { host: '127.0.0.1', port: 0, maxMessageBytes: 16 * 1024 * 1024 });
    client = new GrpcClient(grpcServer.port);
  });

  afterAll(() => stopServing({ client, server: grpcServer, core, repository }, removeRepository));

  it('unary and streamed, with the answer a raw request gets; raw requests stay on the main thread', async () => {
    const before = jobs.length;
    const answer = await client.call('ModelInfer', typed(values, { id: 'typed', parameters: { tag: { string_param: 'kept' } } }));
    expect(answer).toMatchObject({ model_name: 'identity', id: 'typed', parameters: { tag: { string_param: 'kept' } } });
    expect(rawNumbers(answer, 'y', Float32Array)).toEqual(values);
    expect(jobs.slice(before)).toEqual([['decodeModelInfer', null]]);

    const stream = client.stream();
    stream.write(typed(values, { id: 's1' }));
    stream.call.end();
    expect((await stream.status).code).toBe(status.OK);
    expect(stream.answers[0].infer_response.id).toBe('s1');
    expect(rawNumbers(stream.answers[0].infer_response, 'y', Float32Array)).toEqual(values);
    expect(jobs.slice(before)).toHaveLength(2);

    const raw = await client.call('ModelInfer', rawRequest('identity', [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: Float32Array.from(values) }]));
    expect(rawNumbers(raw, 'y', Float32Array)).toEqual(values);
    expect(jobs.slice(before)).toHaveLength(2); // raw tensors are views: nothing to hand to a worker
  });

  it('a mistake in one gets the same status and message as in a small request', async () => {
    await expectStatus(client.call('ModelInfer', typed(values.slice(1))), status.INVALID_ARGUMENT, 'inputs[0].contents.fp32_contents', `needs ${WIDTH}`, `got ${WIDTH - 1}`);
    const stream = client.stream();
    stream.write(typed(values.slice(1), { id: 'bad' }));
    stream.write(typed(values, { id: 'good' }));
    stream.call.end();
    expect((await stream.status).code).toBe(status.OK);
    const byId = new Map(stream.answers.map((a: Json) => [a.infer_response.id, a]));
    expect(jobs).toContainEqual(['decodeModelInfer', 'WEIR_DATA_SIZE_MISMATCH']); // counted as the job's failure, as HTTP's are
    expect(stream.answers).toHaveLength(2);
    // The failed answer still names its request, as for a request decoded on the main thread.
    expect(byId.get('bad')).toMatchObject({ infer_response: { model_name: 'identity', id: 'bad' } });
    expect(byId.get('bad')?.error_message).toContain(`needs ${WIDTH} FP32 elements, got ${WIDTH - 1}`);
    expect(byId.get('good')?.error_message).toBe('');
  });

  it('more large requests than the workers’ queue holds are all answered: the rest are decoded on the main thread', async () => {
    const before = threads.length;
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => client.call('ModelInfer', typed(values, { id: `many-${i}` }))));
    answers.forEach((answer, i) => {
      expect(answer.id).toBe(`many-${i}`);
      expect(rawNumbers(answer, 'y', Float32Array)).toEqual(values);
    });
    const ran = threads.slice(before);
    expect(ran).toHaveLength(40);
    expect(ran).toContain('worker');
    expect(ran).toContain('main');
  });

  it('a large request whose inputs are not valid protobuf answers on the stream with its id', async () => {
    const valid = inferenceMethod.requestSerialize({ model_name: 'identity', id: 'broken', inputs: [] }) as Buffer;
    // A top-level `inputs` field (5, length-delimited) of 70 000 bytes that are not an InferInputTensor.
    const junk = Buffer.concat([Buffer.from([0x2a, 0xf0, 0xa2, 0x04]), Buffer.alloc(70_000, 0xff)]);
    const stream = client.rawStream();
    stream.write(Buffer.concat([valid, junk]));
    stream.call.end();
    expect((await stream.status).code).toBe(status.OK);
    expect(stream.answers).toHaveLength(1);
    expect(stream.answers[0].infer_response).toMatchObject({ model_name: 'identity', id: 'broken' });
    expect(stream.answers[0].error_message).not.toBe('');
  });
});
