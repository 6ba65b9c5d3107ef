/**
 * Compressed requests (grpc-encoding gzip or deflate, as tritonclient's
 * `compression_algorithm` sends them): read through grpc-js clients that
 * compress every message, bounded by the message limit once decompressed;
 * other encodings and corrupt or mislabelled messages are refused by name.
 * Messages are inflated off the event loop, and a stream's messages keep
 * their order behind one that is inflating. Answers go uncompressed.
 */
import http2 from 'node:http2';
import { deflateSync, gunzipSync, gzipSync } from 'node:zlib';

import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Transport, listen } from '../dist/grpc/transport.js';
import { grpcMessage, grpcMessages } from './helpers/h2-frames.js';

const MAX_MESSAGE_BYTES = 64 * 1024;
const ECHO = '/test.Echo/Echo';
const ECHO_STREAM = '/test.Echo/EchoStream';
const LARGE_MESSAGE_BYTES = 16 * 1024 * 1024;

/** grpc-js's compression algorithms (its channel option's values). */
const Compression = { deflate: 1, gzip: 2 } as const;

let transport: Transport;
let large: Transport;

beforeAll(async () => {
  transport = await listen({
    host: '127.0.0.1',
    port: 0,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    toStatus: (error) => ({ code: 13, details: String(error) }),
    methods: [{ kind: 'unary', path: ECHO, decode: (bytes) => bytes, encode: (message) => message as Uint8Array, answer: (request) => request }],
  });
  // Large messages: the limit, and what a connection may hold, fit one of LARGE_MESSAGE_BYTES.
  large = await listen({
    host: '127.0.0.1',
    port: 0,
    maxMessageBytes: LARGE_MESSAGE_BYTES,
    toStatus: (error) => ({ code: 13, details: String(error) }),
    methods: [
      {
        kind: 'bidi',
        path: ECHO_STREAM,
        decode: (bytes) => bytes,
        encode: (message) => message as Uint8Array,
        // Each message answered with its length and first byte, so a large one costs nothing to send back.
        open: (stream) => ({
          message: (request) => stream.send(Buffer.from(`${(request as Buffer).length}:${(request as Buffer)[0]}`)),
          end: () => stream.end(),
          cancelled: () => {},
        }),
      },
    ],
  });
});
afterAll(() => Promise.all([transport.close(1000), large.close(1000)]));

function echo(algorithm: number, body: Buffer): Promise<Buffer> {
  const client = new grpc.Client(`127.0.0.1:${transport.port}`, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': algorithm });
  return new Promise<Buffer>((resolve, reject) =>
    client.makeUnaryRequest(ECHO, (bytes: Buffer) => bytes, (bytes: Buffer) => bytes, body, (error, answer) => (error ? reject(error) : resolve(answer as Buffer))),
  ).finally(() => client.close());
}

/** One call by hand, with the given grpc-encoding and message bytes (prefix included): its status and message. */
async function rawCall(encoding: string, message: Buffer): Promise<{ status: string | undefined; message: string | undefined }> {
  const session = http2.connect(`http://127.0.0.1:${transport.port}`);
  try {
    const stream = session.request({ ':method': 'POST', ':path': ECHO, 'content-type': 'application/grpc', te: 'trailers', 'grpc-encoding': encoding });
    const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => {
      stream.on('response', (headers) => headers['grpc-status'] !== undefined && resolve(headers));
      stream.on('trailers', resolve);
    });
    stream.resume();
    stream.end(message);
    const headers = await trailers;
    return { status: headers['grpc-status'] as string | undefined, message: decodeURIComponent(String(headers['grpc-message'] ?? '')) };
  } finally {
    session.close();
  }
}

describe('compressed requests', () => {
  const body = Buffer.from('weir '.repeat(2000));

  it('gzip and deflate messages are decompressed; the answer comes back whole', async () => {
    expect((await echo(Compression.gzip, body)).equals(body)).toBe(true);
    expect((await echo(Compression.deflate, body)).equals(body)).toBe(true);
  });

  it("the client's messages really arrive compressed: one that fits only compressed is refused once decompressed", async () => {
    const large = Buffer.alloc(2 * MAX_MESSAGE_BYTES, 'w');
    for (const algorithm of [Compression.gzip, Compression.deflate]) {
      await expect(echo(algorithm, large)).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/decompresses past/) });
    }
  });

  it('a message that decompresses past the limit is RESOURCE_EXHAUSTED, naming the limit', async () => {
    const bomb = gzipSync(Buffer.alloc(4 * MAX_MESSAGE_BYTES));
    expect(bomb.length).toBeLessThan(MAX_MESSAGE_BYTES);
    expect(await rawCall('gzip', grpcMessage(bomb, true))).toEqual({
      status: String(grpc.status.RESOURCE_EXHAUSTED),
      message: `a request message decompresses past the server's limit of ${MAX_MESSAGE_BYTES} bytes (--grpc-max-message-mb)`,
    });
  });

  it('corrupt, mislabelled and unsupported compression are refused by name', async () => {
    const corrupt = await rawCall('gzip', grpcMessage(Buffer.from('not gzip'), true));
    expect(corrupt.status).toBe(String(grpc.status.INTERNAL));
    expect(corrupt.message).toMatch(/^a gzip message that cannot be decompressed: /);
    // deflate bytes sent as identity: the flag says compressed, the header says not.
    expect(await rawCall('identity', grpcMessage(deflateSync(body), true))).toEqual({
      status: String(grpc.status.INTERNAL),
      message: "a compressed message, but the call's grpc-encoding is identity",
    });
    expect(await rawCall('snappy', grpcMessage(body))).toEqual({
      status: String(grpc.status.UNIMPLEMENTED),
      message: 'grpc-encoding snappy is not supported: send identity, gzip, deflate messages',
    });
  });

  it('grpc-encoding gzip with an uncompressed message (flag 0) is read as it is', async () => {
    expect(await rawCall('gzip', grpcMessage(body))).toEqual({ status: '0', message: '' });
  });
});

describe('decompression off the event loop', () => {
  /** One stream with `messages` (prefixes included) sent at once; the answers' texts, and the longest event-loop stall meanwhile. */
  async function streamCall(messages: Buffer[]): Promise<{ status: string | undefined; answers: string[]; longestStallMs: number }> {
    const session = http2.connect(`http://127.0.0.1:${large.port}`);
    let longestStallMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestStallMs = Math.max(longestStallMs, now - last);
      last = now;
    }, 1);
    try {
      const stream = session.request({ ':method': 'POST', ':path': ECHO_STREAM, 'content-type': 'application/grpc', te: 'trailers', 'grpc-encoding': 'gzip' });
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.on('trailers', resolve));
      stream.end(Buffer.concat(messages));
      const headers = await trailers;
      return { status: headers['grpc-status'] as string | undefined, answers: grpcMessages(Buffer.concat(chunks)).map(String), longestStallMs };
    } finally {
      clearInterval(ticker);
      session.close();
    }
  }

  it("a stream's messages keep their order behind a large one being inflated, compressed or not", async () => {
    const big = Buffer.alloc(LARGE_MESSAGE_BYTES - 1024, 7);
    const messages = [grpcMessage(gzipSync(big), true), grpcMessage(Buffer.from([1])), grpcMessage(gzipSync(Buffer.from([2, 2])), true), grpcMessage(Buffer.from([3, 3, 3]))];
    const { status, answers } = await streamCall(messages);
    expect(status).toBe('0');
    expect(answers).toEqual([`${big.length}:7`, '1:1', '2:2', '3:3']);
  });

  it('a large message inflates on the thread pool: the event loop keeps turning meanwhile', async () => {
    // Bytes that compress poorly, so that inflating them takes a while (~0.1 s).
    const noisy = Buffer.allocUnsafe(LARGE_MESSAGE_BYTES - 1024);
    let seed = 7;
    for (let i = 0; i < noisy.length; i++) noisy[i] = ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24) & 0x0f;
    const zipped = gzipSync(noisy, { level: 1 });
    const started = performance.now();
    gunzipSync(zipped);
    const inlineMs = performance.now() - started;
    const { status, answers, longestStallMs } = await streamCall([grpcMessage(zipped, true)]);
    expect(status).toBe('0');
    expect(answers).toEqual([`${noisy.length}:${noisy[0]}`]);
    // Inflated inline, the whole inflate would be one stall of inlineMs; here the loop turns throughout.
    expect(longestStallMs).toBeLessThan(inlineMs / 2);
  });
});
