/**
 * The HTTP front end's limits and failure paths over real sockets: bodies
 * over the size limit (declared and chunked), a full queue (503 +
 * Retry-After), a queue timeout (504), a body that stalls (408 and the
 * connection closed), clients that hang up mid-body, while queued and
 * mid-inference, and a 64 MiB response read slowly (backpressure).
 */
import http from 'node:http';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { InferenceCore } from '../dist/index.js';
import { buildModel, identityModel, node, valueInfo } from '../scripts/onnx-builder.mjs';
import { type Listening, RawClient, binaryBody, listen, postHead, postJson } from './helpers/http.js';
import { heavyRequest, heavyRowModel, runningBatchesOf, versionOne } from './helpers/http-models.js';
import { recordingObserver } from './helpers/observer.js';
import { makeRepository, removeRepository } from './helpers/repository.js';

const MIB = 1024 * 1024;
const STRICT_MAX_BODY = 64 * 1024;
const STRICT_BODY_TIMEOUT_MS = 300;

let repository: string;
let core: InferenceCore;
/** Limits large enough for the 64 MiB request. */
let big: Listening;
/** maxBodyBytes 64 KiB, bodyTimeoutMs 300. */
let strict: Listening;
const observer = recordingObserver();
const { failures, batches } = observer;

beforeAll(async () => {
  repository = await makeRepository({
    // One request per batch, one batch at a time (workers: 1), one request waiting.
    slow: { config: { max_batch_size: 1, dynamic_batching: { max_queue_size: 1 } }, versions: { 1: heavyRowModel() } },
    identity: { versions: { 1: identityModel('FP32', ['N', 'M']) } },
    twin: {
      versions: {
        1: buildModel({
          inputs: [valueInfo('x', 'FP32', ['N', 'M'])],
          outputs: [valueInfo('same', 'FP32', ['N', 'M']), valueInfo('negated', 'FP32', ['N', 'M'])],
          nodes: [node('Identity', ['x'], ['same']), node('Neg', ['x'], ['negated'])],
        }),
      },
    },
  });
  core = await InferenceCore.start({ modelRepository: repository, workers: 1, observer });
  big = await listen(core, { maxBodyBytes: 80 * MIB, bodyTimeoutMs: 30_000 });
  strict = await listen(core, { maxBodyBytes: STRICT_MAX_BODY, bodyTimeoutMs: STRICT_BODY_TIMEOUT_MS });
});

afterAll(async () => {
  big?.server.close();
  strict?.server.close();
  await core?.stop();
  if (repository) await removeRepository(repository);
});

const slowVersion = () => versionOne(core, 'slow');
const runningBatches = () => runningBatchesOf(core, 'slow');

const smallIdentity = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] };

/** The server answers a good request on each listener. */
async function expectServing(): Promise<void> {
  for (const { base } of [big, strict]) {
    const reply = await postJson(`${base}/v2/models/identity/infer`, smallIdentity);
    expect(reply.status).toBe(200);
    expect(reply.json.outputs[0].data).toEqual([1, 2, 3]);
  }
}

describe('body size limit', () => {
  it('a Content-Length over maxBodyBytes → 413 at once, the connection closed', async () => {
    const client = new RawClient(strict.port);
    client.write(postHead('/v2/models/identity/infer', { 'Content-Type': 'application/json', 'Content-Length': STRICT_MAX_BODY + 1 }));
    const response = await client.response();
    expect(response.status).toBe(413);
    expect(response.json).toEqual({ error: expect.stringContaining(`limit of ${STRICT_MAX_BODY}`) });
    expect(response.json.error).toContain(String(STRICT_MAX_BODY + 1));
    await client.closed;
    await expectServing();
  });

  it('a chunked body that grows past maxBodyBytes → 413, the connection closed', async () => {
    const client = new RawClient(strict.port);
    await client.connected;
    client.write(postHead('/v2/models/identity/infer', { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }));
    // 5 chunks of 16 KiB (80 KiB in all), no terminating chunk: the body is still growing.
    const chunk = `${(16 * 1024).toString(16)}\r\n${' '.repeat(16 * 1024)}\r\n`;
    client.write(chunk.repeat(5));
    const response = await client.response();
    expect(response.status).toBe(413);
    expect(response.json).toEqual({ error: expect.stringContaining(`limit of ${STRICT_MAX_BODY} bytes`) });
    await client.closed;
    await expectServing();
  });

  it('a chunked body under the limit is read whole', async () => {
    const client = new RawClient(strict.port);
    const body = JSON.stringify(smallIdentity);
    const half = Math.floor(body.length / 2);
    client.write(postHead('/v2/models/identity/infer', { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }));
    client.write(`${half.toString(16)}\r\n${body.slice(0, half)}\r\n`);
    client.write(`${(body.length - half).toString(16)}\r\n${body.slice(half)}\r\n0\r\n\r\n`);
    const response = await client.response();
    expect(response.status).toBe(200);
    expect(response.json.outputs[0].data).toEqual([1, 2, 3]);
    client.destroy();
  });
});

describe('queue limits on a slow model (one batch at a time, max_queue_size 1)', () => {
  it('a full queue → 503 with Retry-After; the others are answered', async () => {
    const url = `${big.base}/v2/models/slow/infer`;
    const replies = await Promise.all(Array.from({ length: 4 }, () => postJson(url, heavyRequest())));
    const statuses = replies.map((r) => r.status).sort();
    // One runs, at most one waits, the rest are refused at once.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(2);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(2);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    for (const reply of replies) {
      if (reply.status === 200) {
        expect(reply.json).toMatchObject({ model_name: 'slow', model_version: '1', outputs: [{ name: 'y', shape: [1, 256] }] });
      } else {
        expect(reply.headers.get('retry-after')).toBe('1');
        expect(reply.json).toEqual({ error: expect.stringMatching(/queue of 'slow\b.*' is full/) });
      }
    }
    await vi.waitFor(() => expect(slowVersion().inflightRequests).toBe(0));
  });

  it('a request whose timeout passes while it waits behind a slow one → 504 "was not run"', async () => {
    const url = `${big.base}/v2/models/slow/infer`;
    const first = postJson(url, heavyRequest());
    await vi.waitFor(() => expect(runningBatches()).toBe(1), { timeout: 5000, interval: 5 });
    const late = await postJson(url, heavyRequest({ parameters: { timeout: 20_000 } }));
    expect(late.status).toBe(504);
    expect(late.json).toEqual({ error: expect.stringContaining('was not run') });
    // Refused at its 20 ms deadline, while the slow batch still runs (not once it ended).
    expect(runningBatches()).toBe(1);
    const answered = await first;
    expect(answered.status).toBe(200);
    expect(answered.json.outputs[0].shape).toEqual([1, 256]);
  });
});

describe('slow and vanishing clients', () => {
  it('a body that stalls → 408 after bodyTimeoutMs, the connection closed', async () => {
    const client = new RawClient(strict.port);
    await client.connected;
    const started = performance.now();
    client.write(postHead('/v2/models/identity/infer', { 'Content-Type': 'application/json', 'Content-Length': 200 }));
    client.write('{"inputs": [');
    const response = await client.response();
    const elapsed = performance.now() - started;
    expect(response.status).toBe(408);
    expect(response.json).toEqual({ error: expect.stringContaining(`within ${STRICT_BODY_TIMEOUT_MS} ms`) });
    expect(response.json.error).toContain('12 bytes received');
    expect(elapsed).toBeGreaterThanOrEqual(STRICT_BODY_TIMEOUT_MS - 10);
    expect(elapsed).toBeLessThan(STRICT_BODY_TIMEOUT_MS + 3000);
    await client.closed;
    await expectServing();
  });

  it('a client that hangs up mid-body crashes nothing', async () => {
    const client = new RawClient(strict.port);
    await client.connected;
    client.write(postHead('/v2/models/identity/infer', { 'Content-Type': 'application/json', 'Content-Length': 1000 }));
    client.write('{"inputs": [{"name": "x", ');
    client.destroy();
    await client.closed;
    await expectServing();
    // Outlive the body timeout: the abandoned request's timer must not answer a dead connection.
    await new Promise((resolve) => setTimeout(resolve, STRICT_BODY_TIMEOUT_MS + 50));
    await expectServing();
  });

  it('a client that hangs up while its request waits in the queue: the request is dropped, never run', async () => {
    const url = `${big.base}/v2/models/slow/infer`;
    const first = postJson(url, heavyRequest());
    await vi.waitFor(() => expect(runningBatches()).toBe(1), { timeout: 5000, interval: 5 });
    const batchesBefore = batches.length;
    const client = new RawClient(big.port);
    const body = JSON.stringify(heavyRequest());
    client.write(postHead('/v2/models/slow/infer', { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }) + body);
    await vi.waitFor(() => expect(slowVersion().ready?.batcher.queuedRequests).toBe(1), { timeout: 5000, interval: 5 });
    client.destroy();
    await client.closed;
    expect((await first).status).toBe(200);
    await vi.waitFor(() => expect(slowVersion().inflightRequests).toBe(0), { timeout: 10_000, interval: 10 });
    expect(failures).toContainEqual(['slow', 'WEIR_REQUEST_CANCELLED']);
    expect(batches.length - batchesBefore).toBe(1); // the first request's batch only
    await expectServing();
  });

  it('a client that hangs up mid-inference crashes nothing, and the version drains', async () => {
    const client = new RawClient(big.port);
    const body = JSON.stringify(heavyRequest());
    client.write(postHead('/v2/models/slow/infer', { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }) + body);
    await vi.waitFor(() => expect(runningBatches()).toBe(1), { timeout: 5000, interval: 5 });
    expect(slowVersion().inflightRequests).toBe(1);
    client.destroy();
    await client.closed;
    await vi.waitFor(() => expect(slowVersion().inflightRequests).toBe(0), { timeout: 10_000, interval: 10 });
    const reply = await postJson(`${big.base}/v2/models/slow/infer`, heavyRequest());
    expect(reply.status).toBe(200);
    expect(reply.json.outputs[0].shape).toEqual([1, 256]);
    await expectServing();
  });
});

/** POSTs a binary body and reads nothing of the answer for a second: the socket fills and the server must wait for it to drain. */
function postReadSlowly(path: string, body: Buffer, headerLength: number): Promise<{ status: number; headers: http.IncomingHttpHeaders; received: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port: big.port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.byteLength, 'Inference-Header-Content-Length': headerLength },
      },
      (response) => {
        response.pause();
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, received: Buffer.concat(chunks) }));
        response.on('error', reject);
        setTimeout(() => response.resume(), 1000);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

describe('backpressure', () => {
  it('a 64 MiB binary response read slowly arrives complete and correct', async () => {
    const count = (64 * MIB) / 4;
    const input = new Float32Array(count);
    for (let i = 0; i < count; i++) input[i] = (i % 100_003) - 50_000.5;
    const expected = Buffer.from(input.buffer);
    const { body, headerLength } = binaryBody(
      {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, count], parameters: { binary_data_size: input.byteLength } }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      },
      [input],
    );

    const { status, headers, received } = await postReadSlowly('/v2/models/identity/infer', body, headerLength);

    expect(status).toBe(200);
    const jsonLength = Number(headers['inference-header-content-length']);
    expect(Number(headers['content-length'])).toBe(received.byteLength);
    expect(received.byteLength).toBe(jsonLength + expected.byteLength);
    expect(JSON.parse(received.subarray(0, jsonLength).toString('utf8'))).toEqual({
      model_name: 'identity',
      model_version: '1',
      outputs: [{ name: 'y', datatype: 'FP32', shape: [1, count], parameters: { binary_data_size: expected.byteLength } }],
    });
    expect(received.subarray(jsonLength).equals(expected)).toBe(true);
    await expectServing();
  });

  it('two large binary outputs read slowly arrive one after the other, each complete', async () => {
    const count = (16 * MIB) / 4;
    const input = new Float32Array(count);
    for (let i = 0; i < count; i++) input[i] = (i % 65_537) + 0.25;
    const { body, headerLength } = binaryBody(
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, count], parameters: { binary_data_size: input.byteLength } }], parameters: { binary_data_output: true } },
      [input],
    );
    const { status, headers, received } = await postReadSlowly('/v2/models/twin/infer', body, headerLength);

    expect(status).toBe(200);
    const jsonLength = Number(headers['inference-header-content-length']);
    expect(received.byteLength).toBe(jsonLength + 2 * input.byteLength);
    const { outputs } = JSON.parse(received.subarray(0, jsonLength).toString('utf8'));
    expect(outputs.map((o: { name: string }) => o.name)).toEqual(['same', 'negated']);
    const negated = Float32Array.from(input, (v) => -v);
    expect(received.subarray(jsonLength, jsonLength + input.byteLength).equals(Buffer.from(input.buffer))).toBe(true);
    expect(received.subarray(jsonLength + input.byteLength).equals(Buffer.from(negated.buffer))).toBe(true);
    await expectServing();
  });
});
