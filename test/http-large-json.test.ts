/**
 * Large JSON bodies over real sockets: decoding a large JSON request and
 * encoding a large JSON response happen in the worker pool (workers/jobs.ts),
 * so the main thread's event loop stays free while they run, and the answers
 * and errors are the same as for small bodies decoded on the main thread.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InferenceCore } from '../dist/index.js';
import { decodeInferRequest, encodeInferResponse } from '../dist/http/v2-codec.js';
import { Metrics } from '../dist/metrics/metrics.js';
import { identityModel, randomFloats } from '../scripts/onnx-builder.mjs';
import { type Listening, call, float32s, listen, metricValue, postBinary, postJson, splitBinaryResponse } from './helpers/http.js';
import { makeRepository, removeRepository } from './helpers/repository.js';

const WIDTH = 65_536;
/** 8 rows of 65 536 floats: about 6 MB of JSON each way. */
const ROWS = 8;

let repository: string;
let core: InferenceCore;
let metrics: Metrics;
let http: Listening;
let values: Float32Array;
/** The request as JSON text, encoded once before any measurement. */
let jsonBody: Buffer;

beforeAll(async () => {
  repository = await makeRepository({
    echo: { config: { max_batch_size: ROWS }, versions: { 1: identityModel('FP32', ['N', WIDTH]) } },
  });
  metrics = new Metrics({ queueDepths: () => core.queueDepths(), workerUtilization: () => core.pool.utilization });
  core = await InferenceCore.start({ modelRepository: repository, workers: 1, observer: metrics });
  http = await listen(core);
  values = randomFloats(5, ROWS * WIDTH);
  jsonBody = Buffer.from(JSON.stringify({ id: 'big', inputs: [{ name: 'x', datatype: 'FP32', shape: [ROWS, WIDTH], data: Array.from(values) }] }));
});

afterAll(async () => {
  http?.server.close();
  await core?.stop();
  await removeRepository(repository);
});

/** Element-wise equality of large arrays, without a deep-equality walk. */
const sameBytes = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const url = () => `${http.base}/v2/models/echo/infer`;

describe('a large JSON request', () => {
  it('is answered in JSON with the values sent, as its binary twin is', async () => {
    const reply = await call(url(), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: jsonBody });
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ model_name: 'echo', model_version: '1', id: 'big', outputs: [{ name: 'y', datatype: 'FP32', shape: [ROWS, WIDTH] }] });
    const data = reply.json.outputs[0].data as number[];
    expect(data).toHaveLength(values.length);
    expect(sameBytes(Float32Array.from(data), values)).toBe(true);

    const binary = splitBinaryResponse(
      await postBinary(url(), { inputs: [{ name: 'x', datatype: 'FP32', shape: [ROWS, WIDTH], parameters: { binary_data_size: values.byteLength } }], parameters: { binary_data_output: true } }, [values]),
    );
    expect(sameBytes(Float32Array.from(float32s(binary.binary.get('y') as Buffer)), values)).toBe(true);
  });

  it('leaves the event loop free: decoding and encoding it run in a worker', async () => {
    // What the same work costs when it does run on this thread.
    const started = performance.now();
    const { request } = decodeInferRequest(jsonBody, undefined, 'echo');
    const tensor = { ...(request.inputs[0] as (typeof request.inputs)[number]), name: 'y' };
    encodeInferResponse({ model_name: 'echo', model_version: '1', computeNs: 0, outputs: [tensor] }, new Set());
    const inlineMs = performance.now() - started;

    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const response = await fetch(url(), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: jsonBody });
    const bytes = await response.arrayBuffer(); // parsed only after the measurement
    delay.disable();

    expect(response.status).toBe(200);
    expect(bytes.byteLength).toBeGreaterThan(jsonBody.byteLength / 2);
    const longestBlockMs = delay.max / 1e6;
    console.log(`large JSON: longest event-loop block ${longestBlockMs.toFixed(1)} ms; the same decode + encode inline ${inlineMs.toFixed(1)} ms`);
    // On the main thread the longest block would be the whole decode or encode, about half of inlineMs each.
    expect(inlineMs, 'the work is large enough to tell').toBeGreaterThan(20);
    expect(longestBlockMs, `longest event-loop block ${longestBlockMs.toFixed(1)} ms vs ${inlineMs.toFixed(1)} ms inline`).toBeLessThan(inlineMs / 4);
  });

  it('with a mistake gets the same 400 and message as a small one', async () => {
    const bad = Array.from(values.subarray(0, WIDTH)) as unknown[];
    bad[WIDTH - 1] = 'x';
    const reply = await postJson(url(), { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: bad }] });
    expect(reply.status).toBe(400);
    expect(reply.json).toEqual({ error: `inputs[0].data[${WIDTH - 1}]: expected a number for FP32, got "x"` });

    const truncated = await call(url(), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: jsonBody.subarray(0, jsonBody.byteLength - 10) });
    expect(truncated.status).toBe(400);
    expect(truncated.json.error).toMatch(/^the request body is not valid JSON/);

    const wrongShape = await postJson(url(), { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, WIDTH], data: Array.from(values.subarray(0, WIDTH)) }] });
    expect(wrongShape.status).toBe(400);
    expect(wrongShape.json.error).toContain(`shape [2,${WIDTH}] needs ${2 * WIDTH} FP32 elements, got ${WIDTH}`);
  });

  it('counts the jobs the workers ran, by job and outcome', async () => {
    const text = (await metrics.text()).body;
    const jobs = (job: string, outcome: string, reason = '') => metricValue(text, 'weir_worker_jobs_total', { job, thread: 'worker', outcome, reason }) ?? 0;
    expect(jobs('decodeV2Json', 'success')).toBeGreaterThanOrEqual(2);
    expect(jobs('encodeV2Response', 'success')).toBeGreaterThanOrEqual(2);
    // The large bodies with a mistake failed in the worker, with the code the client saw.
    expect(jobs('decodeV2Json', 'failure', 'WEIR_INVALID_REQUEST')).toBe(1);
    expect(jobs('decodeV2Json', 'failure', 'WEIR_BAD_ARGUMENT')).toBe(1);
    expect(metricValue(text, 'weir_worker_job_duration_seconds_count', { job: 'decodeV2Json' })).toBeGreaterThanOrEqual(4);
  });
});
