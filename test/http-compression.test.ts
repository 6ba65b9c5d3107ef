/**
 * Content codings over real sockets, as tritonclient.http uses them.
 * Requests (request_compression_algorithm): gzip and deflate (zlib and raw)
 * bodies give the answers the same uncompressed request gets, JSON and
 * binary tensors alike, small and large (a large JSON body is then decoded
 * in a worker, a large binary tensor moves to it); unsupported codings,
 * corrupt streams and bodies that inflate past the limit get their errors,
 * and the server keeps serving. Answers (response_compression_algorithm):
 * compressed as Accept-Encoding weighs the codings, from 1 KiB up, binary
 * tensors included; small answers and errors go as they are. A server that
 * closes waits for answers in flight, compressed ones included, up to its
 * grace.
 */
import http from 'node:http';
import { deflateRawSync, deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { COMPRESS_FROM_BYTES } from '../dist/http/respond.js';
import { InferenceCore } from '../dist/index.js';
import { identityModel } from '../scripts/onnx-builder.mjs';
import { type Listening, RawClient, type Reply, binaryBody, call, float32s, listen, postHead, splitBinaryResponse } from './helpers/http.js';
import { makeRepository, removeRepository } from './helpers/repository.js';

const MAX_BODY = 1024 * 1024;

let repository: string;
let core: InferenceCore;
let server: Listening;

beforeAll(async () => {
  repository = await makeRepository({ identity: { versions: { 1: identityModel('FP32', ['N', 'M']) } } });
  core = await InferenceCore.start({ modelRepository: repository, workers: 1 });
  server = await listen(core, { maxBodyBytes: MAX_BODY });
});

afterAll(async () => {
  server?.server.close();
  await core?.stop();
  if (repository) await removeRepository(repository);
});

const url = () => `${server.base}/v2/models/identity/infer`;
const post = (body: Buffer, headers: Record<string, string>): Promise<Reply> => call(url(), { method: 'POST', headers, body });
const values = (count: number) => Array.from({ length: count }, (_, i) => (i % 97) / 8 - 3);
const jsonRequest = (count: number) => ({ id: 'zipped', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, count], data: values(count) }] });

const CODINGS: Array<[string, (bytes: Buffer) => Buffer]> = [
  ['gzip', gzipSync],
  ['deflate', deflateSync], // the zlib format, as HTTP defines deflate and tritonclient sends it
  ['deflate', deflateRawSync], // a raw stream, as some clients send under that name
  ['X-GZIP', gzipSync],
  ['gzip, identity', gzipSync],
];

async function expectServing(): Promise<void> {
  const reply = await post(Buffer.from(JSON.stringify(jsonRequest(3))), { 'Content-Type': 'application/json' });
  expect(reply.status).toBe(200);
  expect(reply.json.outputs[0].data).toEqual(values(3));
}

describe('compressed JSON bodies', () => {
  it.each(CODINGS.map(([coding, compress], i) => [`${coding} (${compress.name})`, coding, compress, i] as const))(
    'Content-Encoding %s → the answer of the plain request',
    async (_, coding, compress) => {
      const body = Buffer.from(JSON.stringify(jsonRequest(5)));
      const reply = await post(compress(body), { 'Content-Type': 'application/json', 'Content-Encoding': coding });
      expect(reply.status, reply.text).toBe(200);
      expect(reply.json.id).toBe('zipped');
      expect(reply.json.outputs[0].data).toEqual(values(5));
    },
  );

  it('many at once (inflated a few at a time) → every answer, each its own', async () => {
    const replies = await Promise.all(
      Array.from({ length: 12 }, (_, i) => {
        const request = { id: `r${i}`, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [i, 100 - i] }] };
        return post(gzipSync(Buffer.from(JSON.stringify(request))), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
      }),
    );
    replies.forEach((reply, i) => {
      expect(reply.status, reply.text).toBe(200);
      expect(reply.json.id).toBe(`r${i}`);
      expect(reply.json.outputs[0].data).toEqual([i, 100 - i]);
    });
  });

  it('a large body (decoded in a worker once inflated) → its answer', async () => {
    const body = Buffer.from(JSON.stringify(jsonRequest(20_000)));
    expect(body.byteLength).toBeGreaterThan(64 * 1024);
    const reply = await post(gzipSync(body), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    expect(reply.status, reply.text).toBe(200);
    expect(reply.json.outputs[0].data).toEqual(Array.from(Float32Array.from(values(20_000))));
  });
});

describe('compressed binary-tensor bodies', () => {
  // Inference-Header-Content-Length counts the JSON header of the body once inflated, as Triton reads it.
  it.each([
    ['small', 6],
    ['large (the tensor moves to the worker)', 40_000],
  ])('%s → the same tensor back', async (_, count) => {
    const tensor = Float32Array.from(values(count));
    const header = {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, count], parameters: { binary_data_size: tensor.byteLength } }],
      outputs: [{ name: 'y', parameters: { binary_data: true } }],
    };
    const { body, headerLength } = binaryBody(header, [tensor]);
    const reply = await post(gzipSync(body), {
      'Content-Type': 'application/octet-stream',
      'Content-Encoding': 'gzip',
      'Inference-Header-Content-Length': String(headerLength),
    });
    expect(reply.status, reply.text).toBe(200);
    const { binary } = splitBinaryResponse(reply);
    expect(float32s(binary.get('y') as Buffer)).toEqual(Array.from(tensor));
  });
});

describe('compressed bodies that cannot be read', () => {
  it.each(['br', 'compress', 'gzip, deflate', 'zstd'])('Content-Encoding %s → 415 naming it and what is read', async (coding) => {
    const reply = await post(gzipSync(Buffer.from(JSON.stringify(jsonRequest(3)))), { 'Content-Type': 'application/json', 'Content-Encoding': coding });
    expect(reply.status).toBe(415);
    expect(reply.json.error).toContain(`'${coding}'`);
    expect(reply.json.error).toContain('expected gzip, deflate or identity');
    await expectServing();
  });

  it('a body that is not the gzip it claims → 400 naming the coding', async () => {
    const reply = await post(Buffer.from(JSON.stringify(jsonRequest(3))), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    expect(reply.status).toBe(400);
    expect(reply.json.error).toMatch(/cannot be decompressed as Content-Encoding gzip/);
    await expectServing();
  });

  it('a truncated stream → 400', async () => {
    const zipped = gzipSync(Buffer.from(JSON.stringify(jsonRequest(300))));
    const reply = await post(zipped.subarray(0, zipped.byteLength - 20), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    expect(reply.status).toBe(400);
    expect(reply.json.error).toMatch(/cannot be decompressed as Content-Encoding gzip/);
    await expectServing();
  });

  it('a small body that inflates past the body limit → 413, and no more than the limit is inflated', async () => {
    const bomb = gzipSync(Buffer.alloc(MAX_BODY * 8, 0x20)); // 8 MiB of spaces in ~8 KiB
    expect(bomb.byteLength).toBeLessThan(MAX_BODY / 16);
    const reply = await post(bomb, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    expect(reply.status).toBe(413);
    expect(reply.json.error).toBe(`the body decompresses (Content-Encoding gzip) past the limit of ${MAX_BODY} bytes`);
    await expectServing();
  });
});

/** A POST whose answer is read as sent (fetch would inflate it): status, headers and raw bytes. */
function rawPost(body: Buffer, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url(), { method: 'POST', headers: { ...headers, 'Content-Length': String(body.byteLength) } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

describe('compressed answers', () => {
  const large = Buffer.from(JSON.stringify(jsonRequest(400))); // an answer of ~3 KiB
  const expected = Array.from(Float32Array.from(values(400)));

  it.each([
    ['gzip', 'gzip', gunzipSync],
    ['deflate', 'deflate', inflateSync],
    ['gzip;q=0.5, deflate', 'deflate', inflateSync],
    ['br;q=1, *;q=0.1', 'gzip', gunzipSync],
    ['deflate;q=0.2, x-gzip;q=0.8', 'gzip', gunzipSync],
  ] as const)('Accept-Encoding %s → Content-Encoding %s', async (accept, coding, inflate) => {
    const reply = await rawPost(large, { 'Content-Type': 'application/json', 'Accept-Encoding': accept });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-encoding']).toBe(coding);
    expect(reply.headers.vary).toBe('Accept-Encoding');
    expect(reply.body.byteLength).toBeLessThan(large.byteLength / 2);
    const json = JSON.parse(inflate(reply.body).toString('utf8'));
    expect(json.id).toBe('zipped');
    expect(json.outputs[0].data).toEqual(expected);
  });

  it.each(['identity', 'gzip;q=0, deflate;q=0', 'br', ''])('Accept-Encoding %j → the answer as it is', async (accept) => {
    const reply = await rawPost(large, { 'Content-Type': 'application/json', ...(accept && { 'Accept-Encoding': accept }) });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(reply.body.toString('utf8')).outputs[0].data).toEqual(expected);
  });

  it(`an answer under ${COMPRESS_FROM_BYTES} bytes, and an error, go as they are`, async () => {
    const small = await rawPost(Buffer.from(JSON.stringify(jsonRequest(3))), { 'Content-Type': 'application/json', 'Accept-Encoding': 'gzip' });
    expect(small.status).toBe(200);
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(small.body.byteLength).toBeLessThan(COMPRESS_FROM_BYTES);
    const bad = await rawPost(Buffer.from(`{"inputs": [${' '.repeat(2000)}`), { 'Content-Type': 'application/json', 'Accept-Encoding': 'gzip' });
    expect(bad.status).toBe(400);
    expect(bad.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(bad.body.toString('utf8')).error).toBeTruthy();
  });

  it('a binary answer: the whole body compressed, Inference-Header-Content-Length counting its JSON once inflated', async () => {
    const tensor = Float32Array.from(values(4000));
    const header = {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4000], parameters: { binary_data_size: tensor.byteLength } }],
      outputs: [{ name: 'y', parameters: { binary_data: true } }],
    };
    const { body, headerLength } = binaryBody(header, [tensor]);
    const reply = await rawPost(body, {
      'Content-Type': 'application/octet-stream',
      'Inference-Header-Content-Length': String(headerLength),
      'Accept-Encoding': 'gzip',
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-encoding']).toBe('gzip');
    const plain = gunzipSync(reply.body);
    const jsonLength = Number(reply.headers['inference-header-content-length']);
    const json = JSON.parse(plain.subarray(0, jsonLength).toString('utf8'));
    expect(json.outputs[0].parameters.binary_data_size).toBe(tensor.byteLength);
    expect(float32s(plain.subarray(jsonLength))).toEqual(Array.from(tensor));
  });
});

describe('closing', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /** A raw client whose request to `port` has arrived but for the rest of its body. */
  async function halfSent(port: number, body: Buffer): Promise<RawClient> {
    const client = new RawClient(port);
    await client.connected;
    client.write(postHead('/v2/models/identity/infer', { 'Content-Type': 'application/json', 'Content-Length': body.byteLength, 'Accept-Encoding': 'gzip' }));
    client.write(body.subarray(0, 100));
    await sleep(50);
    return client;
  }

  it('close() waits for a request in flight until its compressed answer is out', async () => {
    const own = await listen(core);
    const body = Buffer.from(JSON.stringify(jsonRequest(400)));
    const client = await halfSent(own.port, body);
    let closed = false;
    const closing = own.server.close().then(() => (closed = true));
    await sleep(50);
    expect(closed).toBe(false);
    client.write(body.subarray(100));
    const response = await client.response();
    expect(response.status).toBe(200);
    expect(response.headers['content-encoding']).toBe('gzip');
    await closing;
    client.destroy();
  });

  it('close() gives up after its grace on a request that does not finish', async () => {
    const own = await listen(core);
    const client = await halfSent(own.port, Buffer.from(JSON.stringify(jsonRequest(400))));
    const started = performance.now();
    await own.server.close(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    client.destroy();
  });
});
