/**
 * Clients that hang up at random moments, many at once: mid-head, mid-body,
 * while the request waits in the queue, while its batch runs, while the
 * answer is written; over HTTP (JSON, and binary bodies in pooled shared
 * memory) and over HTTP/2 (a dropped connection, or RST_STREAM). Afterwards
 * nothing is left behind: no request counts as in flight, the server goes
 * on serving, and closing it does not wait for an exchange that will never
 * end. Seeded, like the fuzz tests.
 */
import net from 'node:net';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { InferenceCore } from '../dist/index.js';
import { type GrpcServer, startGrpcServer } from '../dist/grpc/server.js';
import { CLIENT_PREFACE } from '../dist/grpc/h2/frames.js';
import { encodeHeaderBlock } from '../dist/grpc/h2/hpack.js';
import { identityModel } from '../scripts/onnx-builder.mjs';
import { SCALE, random, runCases } from './helpers/fuzz.js';
import { inferenceMethod, rawRequest } from './helpers/grpc.js';
import { Flag, FrameType, frame, grpcMessage, requestFields, settingsPayload, uint32 } from './helpers/h2-frames.js';
import { type Listening, binaryBody, listen, postHead, postJson } from './helpers/http.js';
import { heavyRequest, heavyRowModel, versionOne } from './helpers/http-models.js';
import { recordingObserver } from './helpers/observer.js';
import { makeRepository, removeRepository } from './helpers/repository.js';

/** Columns of `wide`: one row is 8 KiB of FP32, so a binary body of it is read into pooled shared memory. */
const WIDE = 2048;
const MODELS = ['medium', 'wide'];

const observer = recordingObserver();
let repository: string;
let core: InferenceCore;
let http: Listening;
let grpcServer: GrpcServer;

beforeAll(async () => {
  repository = await makeRepository({
    // A few milliseconds a batch: long enough to hang up while it runs, or while another waits.
    medium: { config: { max_batch_size: 4, dynamic_batching: { max_queue_delay_microseconds: 500 } }, versions: { 1: heavyRowModel(40, 40) } },
    wide: { config: { max_batch_size: 8 }, versions: { 1: identityModel('FP32', ['N', WIDE]) } },
  });
  core = await InferenceCore.start({ modelRepository: repository, workers: 1, observer });
  http = await listen(core, { maxBodyBytes: 1024 * 1024 });
  grpcServer = await startGrpcServer(core, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024 });
});

afterAll(async () => {
  http?.server.close();
  await grpcServer?.close();
  await core?.stop();
  if (repository) await removeRepository(repository);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A request to one of MODELS as HTTP/1.1 bytes: JSON to `medium`, the binary layout to `wide`. */
function httpRequest(next: () => number): Buffer {
  if (next() < 0.5) {
    const body = JSON.stringify(heavyRequest());
    return Buffer.from(postHead('/v2/models/medium/infer', { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }) + body);
  }
  const { body, headerLength } = binaryBody({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDE], parameters: { binary_data_size: WIDE * 4 } }] }, [new Float32Array(WIDE).fill(0.5)]);
  const head = postHead('/v2/models/wide/infer', { 'Content-Type': 'application/octet-stream', 'Content-Length': body.byteLength, 'Inference-Header-Content-Length': headerLength });
  return Buffer.concat([Buffer.from(head), body]);
}

/** An HTTP/2 connection with one ModelInfer call to one of MODELS, ready to write. */
function grpcConnection(next: () => number): Buffer {
  const model = MODELS[Math.floor(next() * MODELS.length)] as string;
  const data = model === 'medium' ? new Float32Array(256).fill(0.25) : new Float32Array(WIDE).fill(0.5);
  const message = inferenceMethod.requestSerialize(rawRequest(model, [{ name: 'x', datatype: 'FP32', shape: [1, data.length], data }]));
  return Buffer.concat([
    CLIENT_PREFACE,
    frame(FrameType.SETTINGS, 0, 0, settingsPayload([])),
    frame(FrameType.HEADERS, Flag.END_HEADERS, 1, encodeHeaderBlock(requestFields(inferenceMethod.path))),
    frame(FrameType.DATA, Flag.END_STREAM, 1, grpcMessage(message)),
  ]);
}

/**
 * Writes `bytes` (all, or cut at a random point), waits 0-15 ms, then hangs
 * up: by destroying the socket or, when `reset` is given and everything was
 * sent, with those bytes first (an HTTP/2 RST_STREAM).
 */
async function hangUp(port: number, bytes: Buffer, next: () => number, reset?: Buffer): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.on('data', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const whole = next() < 0.6;
  socket.write(whole ? bytes : bytes.subarray(0, Math.floor(next() * bytes.length)));
  await sleep(Math.floor(next() * 16));
  if (whole && reset && next() < 0.5) {
    socket.write(reset);
    await sleep(Math.floor(next() * 4));
  }
  socket.destroy();
  await closed;
}

/**
 * Runs `count` hang-ups; checks that they caught requests both answered and
 * dropped from the queue (so the moments the test means to hit were hit),
 * then that nothing is in flight anywhere and each model still answers.
 */
async function hangUpMany(count: number, one: (index: number) => Promise<void>): Promise<void> {
  const seen = observer.failures.length;
  await runCases(count, 16, async (index) => {
    await one(index);
    return null;
  });
  await expectNothingLeft();
  const outcomes = new Set(observer.failures.slice(seen).map(([, failure]) => failure));
  expect(outcomes).toContain(null);
  expect(outcomes).toContain('WEIR_REQUEST_CANCELLED');
}

/** Nothing in flight anywhere, and each model still answers. */
async function expectNothingLeft(): Promise<void> {
  for (const model of MODELS) {
    await vi.waitFor(() => expect(versionOne(core, model).inflightRequests).toBe(0), { timeout: 10_000, interval: 10 });
  }
  expect((await postJson(`${http.base}/v2/models/medium/infer`, heavyRequest())).status).toBe(200);
}

describe('clients that hang up at random moments', () => {
  it('over HTTP/1.1 leave nothing behind', async () => {
    await hangUpMany(300 * SCALE, (index) => {
      const next = random(10_000_000 + index);
      return hangUp(http.port, httpRequest(next), next);
    });
  }, 60_000 * SCALE);

  it('over HTTP/2 leave nothing behind', async () => {
    await hangUpMany(300 * SCALE, (index) => {
      const next = random(11_000_000 + index);
      return hangUp(grpcServer.port, grpcConnection(next), next, frame(FrameType.RST_STREAM, 0, 1, uint32(0x8)));
    });
  }, 60_000 * SCALE);

  it('leave no exchange that a closing server would wait for', async () => {
    // Its own server on the same core, so that closing it ends nothing the other tests use.
    const own = await listen(core, { maxBodyBytes: 1024 * 1024 });
    await hangUpMany(200 * SCALE, (index) => {
      const next = random(12_000_000 + index);
      return hangUp(own.port, httpRequest(next), next);
    });
    const started = performance.now();
    await own.server.close(10_000);
    expect(performance.now() - started).toBeLessThan(1000);
  }, 60_000 * SCALE);
});
