/**
 * The gRPC transport (src/grpc/h2, call.ts, transport.ts) over real sockets,
 * with methods of its own that echo bytes: gRPC over HTTP/2 as node:http2
 * speaks it (headers, messages, trailers, the refusals: 405, 415,
 * UNIMPLEMENTED, INTERNAL, INVALID_ARGUMENT, grpc-message's encoding); raw
 * frames (preface, SETTINGS, PING, frame size, CONTINUATION, padding, HPACK
 * errors and the table kept in step, stream ids, resets, the stream limit,
 * floods); flow control both ways; deadlines; graceful close in two
 * steps (GOAWAY and PING, then the final GOAWAY); idle connections and the
 * cap on connections; and the message size limit.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { gzipSync } from 'node:zlib';

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import type { CallStatus } from '../dist/grpc/call.js';
import { type Method, type ServerStream, type Transport, listen } from '../dist/grpc/transport.js';
import { H2Connection } from '../dist/grpc/h2/connection.js';
import { H2Error, Setting } from '../dist/grpc/h2/frames.js';
import { encodeHeaderBlock } from '../dist/grpc/h2/hpack.js';
import {
  Changes,
  Flag,
  FrameType,
  H2TestClient,
  frame,
  grpcMessage,
  grpcMessages,
  indexedField,
  indexedLiteral,
  padded,
  requestFields,
  settingsPayload,
  uint32,
} from './helpers/h2-frames.js';

const MAX_MESSAGE_BYTES = 2 * 1024 * 1024;
const identity = { decode: (bytes: Buffer) => bytes, encode: (message: unknown) => message as Uint8Array };

/** A method's error: its gRPC code travels with it, as toStatus reads it. */
class StatusError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface ObservedStream {
  stream: ServerStream;
  /** Messages received (only the Bidi method counts them). */
  received: number;
  cancelled: boolean;
}

/** What the test methods saw, for the tests to await. */
class Observed {
  /** Unary calls to Pending, each answered when the test says. */
  readonly pending: Array<{ request: Buffer; answer(response: Buffer): void }> = [];
  /** Bidi calls opened and the ones cancelled, by order of opening. */
  readonly streams: ObservedStream[] = [];
  private readonly changes = new Changes();

  /** A bidi method's call has opened: recorded, for the tests to find. */
  opened(stream: ServerStream): ObservedStream {
    const seen = { stream, received: 0, cancelled: false };
    this.streams.push(seen);
    this.changed();
    return seen;
  }

  /** The call `seen` was cancelled. */
  cancelled(seen: ObservedStream): void {
    seen.cancelled = true;
    this.changed();
  }

  /** The methods call this at each change, for `until` to check again. */
  changed(): void {
    this.changes.changed();
  }

  until<T>(check: () => T | undefined | false, timeoutMs = 3000): Promise<T> {
    return this.changes.until(check, timeoutMs, () => `the methods did not reach the awaited state in ${timeoutMs} ms`);
  }
}

function testMethods(observed: Observed): Method[] {
  return [
    { kind: 'unary', path: '/test.Echo/Unary', ...identity, answer: (request) => request },
    {
      kind: 'unary',
      path: '/test.Echo/Pending',
      ...identity,
      answer: (request) =>
        new Promise((answer) => {
          observed.pending.push({ request: request as Buffer, answer });
          observed.changed();
        }),
    },
    {
      kind: 'unary',
      path: '/test.Echo/Fail',
      ...identity,
      answer: (request) => {
        throw new StatusError(9, (request as Buffer).toString('utf8'));
      },
    },
    { kind: 'unary', path: '/test.Echo/Big', ...identity, answer: (request) => Buffer.alloc((request as Buffer).readUInt32BE(0), 7) },
    {
      // Echoes each message; ends when the client does.
      kind: 'bidi',
      path: '/test.Echo/Bidi',
      ...identity,
      open: (stream) => {
        const seen = observed.opened(stream);
        return {
          message: (request) => {
            seen.received++;
            stream.send(request);
            observed.changed();
          },
          end: () => stream.end(),
          cancelled: () => observed.cancelled(seen),
        };
      },
    },
    {
      // Answers later with what its encode refuses.
      kind: 'unary',
      path: '/test.Echo/Unencodable',
      decode: identity.decode,
      encode: () => {
        throw new StatusError(3, 'the answer cannot be encoded');
      },
      answer: async (request) => request,
    },
    {
      kind: 'bidi',
      path: '/test.Echo/Unopenable',
      ...identity,
      open: () => {
        throw new StatusError(5, 'nothing to open');
      },
    },
    {
      // Echoes, but throws on the message 'throw', and at the client's end.
      kind: 'bidi',
      path: '/test.Echo/Throwing',
      ...identity,
      open: (stream) => {
        const seen = observed.opened(stream);
        return {
          message: (request) => {
            if ((request as Buffer).toString() === 'throw') throw new StatusError(9, 'the handler threw');
            stream.send(request);
          },
          end: () => {
            throw new StatusError(10, 'the handler threw at the end');
          },
          cancelled: () => observed.cancelled(seen),
        };
      },
    },
    {
      // Counts the bytes it is sent; answers the total (8 bytes) when the client ends.
      kind: 'bidi',
      path: '/test.Echo/Sink',
      ...identity,
      open: (stream) => {
        let total = 0;
        return {
          message: (request) => (total += (request as Buffer).length),
          end: () => {
            const answer = Buffer.alloc(8);
            answer.writeBigUInt64BE(BigInt(total));
            stream.send(answer);
            stream.end();
          },
          cancelled: () => {},
        };
      },
    },
  ];
}

const toStatus = (error: unknown): CallStatus =>
  error instanceof StatusError ? { code: error.code, details: error.message } : { code: 2, details: String((error as Error).message) };

interface Serving {
  transport: Transport;
  observed: Observed;
}

async function serve(options: { maxConcurrentStreams?: number; maxHeaderListBytes?: number; maxConnections?: number; idleTimeoutMs?: number } = {}): Promise<Serving> {
  const observed = new Observed();
  const transport = await listen({ host: '127.0.0.1', port: 0, maxMessageBytes: MAX_MESSAGE_BYTES, methods: testMethods(observed), toStatus, ...options });
  return { transport, observed };
}

/**
 * For the describe block it is called in: one server for its tests (closed
 * after them), and `connect` for raw clients, each closed after its test so a
 * failing test leaves no socket behind.
 */
function serveRawClients() {
  let serving: Serving | undefined;
  const clients: H2TestClient[] = [];
  const started = (): Serving => {
    if (!serving) throw new Error('the server starts in beforeAll: use it inside a test');
    return serving;
  };

  beforeAll(async () => {
    serving = await serve();
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });

  afterAll(() => serving?.transport.close(1000));

  return {
    get serving(): Serving {
      return started();
    },
    /** A raw client of this block's server (or of another server's `port`). */
    async connect(options?: Parameters<typeof H2TestClient.connect>[1], port = started().transport.port): Promise<H2TestClient> {
      const client = await H2TestClient.connect(port, options);
      clients.push(client);
      return client;
    },
  };
}

// --- node:http2 as a gRPC client -------------------------------------------

interface H2Reply {
  headers: http2.IncomingHttpHeaders;
  data: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
}

/** One request on `session`; resolves when the stream has closed. */
function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Uint8Array | Uint8Array[]): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const request = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    request.on('response', (received) => (responseHeaders = received));
    request.on('trailers', (received) => (trailers = received));
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('error', reject);
    request.on('close', () => resolve({ headers: responseHeaders, data: Buffer.concat(chunks), trailers }));
    if (body !== undefined) {
      for (const part of Array.isArray(body) ? body : [body]) request.write(part);
      request.end();
    }
  });
}

const grpcHeaders = (path: string, extra: http2.OutgoingHttpHeaders = {}): http2.OutgoingHttpHeaders => ({
  ':method': 'POST',
  ':path': path,
  'content-type': 'application/grpc',
  te: 'trailers',
  ...extra,
});

/** The status of a reply: from the trailers, or the headers of a trailers-only reply. */
const statusOf = (reply: H2Reply) => {
  const where = reply.trailers ?? reply.headers;
  return { code: Number(where['grpc-status']), message: where['grpc-message'] as string | undefined };
};

describe('gRPC over HTTP/2, from node:http2', () => {
  let serving: Serving;
  let session: http2.ClientHttp2Session;

  beforeAll(async () => {
    serving = await serve();
    session = http2.connect(`http://127.0.0.1:${serving.transport.port}`);
  });

  afterAll(async () => {
    session.close();
    await serving.transport.close(1000);
  });

  it('answers a unary call with headers, the message and trailers', async () => {
    const reply = await h2Request(session, grpcHeaders('/test.Echo/Unary'), grpcMessage(Buffer.from('hello')));
    expect(reply.headers[':status']).toBe(200);
    expect(reply.headers['content-type']).toBe('application/grpc');
    expect(grpcMessages(reply.data)).toEqual([Buffer.from('hello')]);
    expect(reply.trailers?.['grpc-status']).toBe('0');
  });

  it('answers 405 to a GET and 415 to a request that is not application/grpc', async () => {
    const get = await h2Request(session, { ':method': 'GET', ':path': '/test.Echo/Unary' });
    expect(get.headers[':status']).toBe(405);
    const json = await h2Request(session, grpcHeaders('/test.Echo/Unary', { 'content-type': 'application/json' }), Buffer.from('{}'));
    expect(json.headers[':status']).toBe(415);
  });

  it('refuses an unknown method and an unsupported grpc-encoding as UNIMPLEMENTED', async () => {
    const unknown = await h2Request(session, grpcHeaders('/test.Echo/Nothing'), grpcMessage(Buffer.alloc(0)));
    expect(unknown.headers[':status']).toBe(200);
    expect(statusOf(unknown)).toEqual({ code: 12, message: expect.stringContaining('/test.Echo/Nothing') });

    const snappy = await h2Request(session, grpcHeaders('/test.Echo/Unary', { 'grpc-encoding': 'snappy' }), grpcMessage(Buffer.from('x')));
    expect(statusOf(snappy)).toEqual({ code: 12, message: expect.stringContaining('snappy') });
  });

  it('refuses a compressed message as INTERNAL and a malformed grpc-timeout as INVALID_ARGUMENT', async () => {
    const compressed = await h2Request(session, grpcHeaders('/test.Echo/Unary'), grpcMessage(Buffer.from('x'), true));
    expect(statusOf(compressed)).toEqual({ code: 13, message: expect.stringContaining('compressed') });

    for (const timeout of ['soon', '5', '123456789S', '10x', '-1S']) {
      const reply = await h2Request(session, grpcHeaders('/test.Echo/Unary', { 'grpc-timeout': timeout }), grpcMessage(Buffer.from('x')));
      expect(statusOf(reply)).toEqual({ code: 3, message: expect.stringContaining(`grpc-timeout '${timeout}'`) });
    }
    const wellFormed = await h2Request(session, grpcHeaders('/test.Echo/Unary', { 'grpc-timeout': '99999999m' }), grpcMessage(Buffer.from('x')));
    expect(statusOf(wellFormed).code).toBe(0);
  });

  it('percent-encodes grpc-message outside printable ASCII, and % itself', async () => {
    const details = 'café 100% ✓ done';
    const reply = await h2Request(session, grpcHeaders('/test.Echo/Fail'), grpcMessage(Buffer.from(details)));
    const status = statusOf(reply);
    expect(status.code).toBe(9);
    expect(status.message).toBe('caf%C3%A9 100%25 %E2%9C%93 done');
    expect(decodeURIComponent(status.message as string)).toBe(details);
  });

  it('cuts a long grpc-message to 2048 characters once encoded, between characters, never inside one', async () => {
    const details = `${'x'.repeat(2045)}é and more`;
    const reply = await h2Request(session, grpcHeaders('/test.Echo/Fail'), grpcMessage(Buffer.from(details)));
    // 'é' encodes to 6 characters (%C3%A9): past 2048 whole, so it is left out whole.
    expect(statusOf(reply).message).toBe('x'.repeat(2045));
    const encodedOnly = await h2Request(session, grpcHeaders('/test.Echo/Fail'), grpcMessage(Buffer.from('✓'.repeat(1000))));
    const message = statusOf(encodedOnly).message as string;
    expect(message.length).toBeLessThanOrEqual(2048);
    expect(decodeURIComponent(message)).toBe('✓'.repeat(227)); // 9 characters each (%E2%9C%93)
  });

  it("turns what a method's code throws into the call's status: an answer encode refuses, a stream handler's throw", async () => {
    const unencodable = await h2Request(session, grpcHeaders('/test.Echo/Unencodable'), grpcMessage(Buffer.from('x')));
    expect(statusOf(unencodable)).toEqual({ code: 3, message: 'the answer cannot be encoded' });
    const unopenable = await h2Request(session, grpcHeaders('/test.Echo/Unopenable'), grpcMessage(Buffer.from('x')));
    expect(statusOf(unopenable)).toEqual({ code: 5, message: 'nothing to open' });

    const throwing = await h2Request(session, grpcHeaders('/test.Echo/Throwing'), [grpcMessage(Buffer.from('ok')), grpcMessage(Buffer.from('throw'))]);
    expect(grpcMessages(throwing.data)).toEqual([Buffer.from('ok')]);
    expect(statusOf(throwing)).toEqual({ code: 9, message: 'the handler threw' });
    expect(serving.observed.streams.at(-1)?.cancelled).toBe(true);
    const atEnd = await h2Request(session, grpcHeaders('/test.Echo/Throwing'), grpcMessage(Buffer.from('ok')));
    expect(statusOf(atEnd)).toEqual({ code: 10, message: 'the handler threw at the end' });
    // The connection serves on.
    expect(statusOf(await h2Request(session, grpcHeaders('/test.Echo/Unary'), grpcMessage(Buffer.from('x')))).code).toBe(0);
  });

  // Without the server's WINDOW_UPDATEs the client would stall at its 4 MB window: the timeout is the failure.
  it('reads a 10 MB request stream: its WINDOW_UPDATEs keep the client sending', { timeout: 10_000 }, async () => {
    const chunk = Buffer.alloc(1024 * 1024, 1);
    const reply = await h2Request(session, grpcHeaders('/test.Echo/Sink'), Array.from({ length: 10 }, () => grpcMessage(chunk)));
    expect(statusOf(reply).code).toBe(0);
    expect(grpcMessages(reply.data)[0]?.readBigUInt64BE(0)).toBe(10n * BigInt(chunk.length));
  });
});

// --- raw frames ---------------------------------------------------------------

describe('HTTP/2 frames', () => {
  const server = serveRawClients();
  const { connect } = server;

  it('closes the socket on a bad preface: an HTTP/1.1 request, even a short one', async () => {
    const http1 = await connect({ preface: false });
    http1.send(Buffer.from('POST /test.Echo/Unary HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n'));
    await http1.whenClosed();

    const short = await connect({ preface: false });
    short.send(Buffer.from('GET / HTTP/1.1\r\n\r\n')); // shorter than the preface
    await short.whenClosed();
  });

  it('acknowledges SETTINGS and answers PING with the same 8 bytes', async () => {
    const client = await connect();
    const settings = client.serverSettings();
    expect(settings?.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(1000);
    expect(settings?.get(Setting.ENABLE_PUSH)).toBe(0);
    await client.until(() => client.frames.some((f) => f.type === FrameType.SETTINGS && f.flags & Flag.ACK && f.payload.length === 0));

    const payload = Buffer.from('12345678');
    client.send(frame(FrameType.PING, 0, 0, payload));
    const ack = await client.until(() => client.frames.find((f) => f.type === FrameType.PING && f.flags & Flag.ACK));
    expect(ack.payload).toEqual(payload);
    expect(ack.streamId).toBe(0);
    // A PING ACK is not answered.
    client.send(frame(FrameType.PING, Flag.ACK, 0, payload));
    await client.roundTrip();
    expect(client.frames.filter((f) => f.type === FrameType.PING && f.payload.equals(payload))).toHaveLength(1);
  });

  it('fails a frame past the max frame size it advertised with FRAME_SIZE_ERROR', async () => {
    const client = await connect();
    const maxFrame = client.serverSettings()?.get(Setting.MAX_FRAME_SIZE) as number;
    expect(maxFrame).toBeGreaterThanOrEqual(16_384);
    client.headers(1, requestFields('/test.Echo/Unary'));
    // Only the header: the server must not wait for a payload it will refuse.
    const header = frame(FrameType.DATA, 0, 1).subarray(0, 9);
    header.writeUIntBE(maxFrame + 1, 0, 3);
    client.send(header);
    expect(await client.until(() => client.goAway())).toMatchObject({ code: H2Error.FRAME_SIZE_ERROR, lastStreamId: 1 });
    await client.whenClosed();
  });

  it('reads a header block split over HEADERS and CONTINUATION frames', async () => {
    const client = await connect();
    const block = encodeHeaderBlock(requestFields('/test.Echo/Unary', [['x-padding', 'p'.repeat(100)]]));
    client.send(
      frame(FrameType.HEADERS, 0, 1, block.subarray(0, 10)),
      frame(FrameType.CONTINUATION, 0, 1, block.subarray(10, 50)),
      frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(50)),
    );
    client.data(1, grpcMessage(Buffer.from('split')), true);
    const reply = await client.response(1);
    expect(grpcMessages(reply.data)).toEqual([Buffer.from('split')]);
    expect(reply.headers[1]).toEqual({ 'grpc-status': '0' });
  });

  it('fails a frame inside a header block with PROTOCOL_ERROR', async () => {
    const client = await connect();
    const block = encodeHeaderBlock(requestFields('/test.Echo/Unary'));
    client.send(frame(FrameType.HEADERS, 0, 1, block.subarray(0, 10)), frame(FrameType.PING, 0, 0, Buffer.alloc(8)));
    expect(await client.until(() => client.goAway())).toMatchObject({ code: H2Error.PROTOCOL_ERROR });
    await client.whenClosed();

    // A CONTINUATION of another stream's block, too.
    const other = await connect();
    other.send(frame(FrameType.HEADERS, 0, 1, block.subarray(0, 10)), frame(FrameType.CONTINUATION, Flag.END_HEADERS, 3, block.subarray(10)));
    expect(await other.until(() => other.goAway())).toMatchObject({ code: H2Error.PROTOCOL_ERROR });
  });

  it('refuses a header block past its size limit, in one frame or in many empty CONTINUATIONs', async () => {
    const big = await connect();
    big.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.concat([encodeHeaderBlock(requestFields('/test.Echo/Unary')), Buffer.alloc(300 * 1024)])));
    expect(await big.until(() => big.goAway())).toMatchObject({ code: H2Error.ENHANCE_YOUR_CALM });

    // Empty CONTINUATIONs add nothing to the block, but each costs the server a frame.
    const flood = await connect();
    const empty = frame(FrameType.CONTINUATION, 0, 1);
    flood.send(frame(FrameType.HEADERS, 0, 1, encodeHeaderBlock(requestFields('/test.Echo/Unary'))), ...Array.from({ length: 40_000 }, () => empty));
    expect(await flood.until(() => flood.goAway())).toMatchObject({ code: H2Error.ENHANCE_YOUR_CALM });
  });

  it('fails a corrupt HPACK block with COMPRESSION_ERROR', async () => {
    const client = await connect();
    // Index 0 is no entry; then an index past both tables.
    client.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x83, 0x80])));
    expect(await client.until(() => client.goAway())).toMatchObject({ code: H2Error.COMPRESSION_ERROR });
    const past = await connect();
    past.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x83, 0xff, 0x10])));
    expect(await past.until(() => past.goAway())).toMatchObject({ code: H2Error.COMPRESSION_ERROR });
  });

  it('reads padded HEADERS (with priority fields) and padded DATA', async () => {
    const client = await connect();
    const block = encodeHeaderBlock(requestFields('/test.Echo/Unary'));
    const priority = Buffer.from([0, 0, 0, 0, 16]); // depends on stream 0, weight 17
    client.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED | Flag.PRIORITY, 1, padded(Buffer.concat([priority, block]), 20)));
    const message = grpcMessage(Buffer.from('padded'));
    client.send(frame(FrameType.DATA, Flag.PADDED, 1, padded(message.subarray(0, 3), 255)));
    client.send(frame(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 1, padded(message.subarray(3), 0)));
    const reply = await client.response(1);
    expect(grpcMessages(reply.data)).toEqual([Buffer.from('padded')]);
    expect(reply.headers[1]?.['grpc-status']).toBe('0');

    // Padding as long as its frame is a PROTOCOL_ERROR.
    client.headers(3, requestFields('/test.Echo/Unary'));
    client.send(frame(FrameType.DATA, Flag.PADDED, 3, Buffer.from([4, 0, 0, 0])));
    expect(await client.until(() => client.goAway())).toMatchObject({ code: H2Error.PROTOCOL_ERROR });
  });

  it('fails an even stream id with PROTOCOL_ERROR, first or after odd ones', async () => {
    const client = await connect();
    client.headers(2, requestFields('/test.Echo/Unary'));
    expect(await client.until(() => client.goAway())).toMatchObject({ code: H2Error.PROTOCOL_ERROR });

    const later = await connect();
    later.request(5, '/test.Echo/Unary', Buffer.from('x'));
    await later.response(5);
    later.headers(2, requestFields('/test.Echo/Unary'));
    expect(await later.until(() => later.goAway())).toMatchObject({ code: H2Error.PROTOCOL_ERROR, lastStreamId: 5 });
  });

  it('assembles a message split over DATA frames, and several messages in one frame, on a bidi stream', async () => {
    const client = await connect();
    client.headers(1, requestFields('/test.Echo/Bidi'));
    const long = grpcMessage(Buffer.alloc(40_000, 3));
    // The prefix itself split, then the body in uneven pieces.
    for (const [from, to] of [
      [0, 2],
      [2, 4],
      [4, 100],
      [100, 30_000],
      [30_000, long.length],
    ] as const) {
      client.data(1, long.subarray(from, to));
    }
    const three = Buffer.concat([grpcMessage(Buffer.from('one')), grpcMessage(Buffer.alloc(0)), grpcMessage(Buffer.from('three'))]);
    client.data(1, three);
    await client.until(() => {
      const data = client.stream(1).data;
      try {
        return grpcMessages(data).length === 4;
      } catch {
        return false; // a message still arriving
      }
    });
    client.headers(1, [['x-client-trailer', 'done']], true); // the client's trailers end its side
    const reply = await client.response(1);
    expect(grpcMessages(reply.data)).toEqual([Buffer.alloc(40_000, 3), Buffer.from('one'), Buffer.alloc(0), Buffer.from('three')]);
    expect(reply.headers).toEqual([expect.objectContaining({ ':status': '200' }), { 'grpc-status': '0' }]);
  });

  it('answers an empty unary message', async () => {
    const client = await connect();
    client.request(1, '/test.Echo/Unary', Buffer.alloc(0));
    const reply = await client.response(1);
    expect(reply.data).toEqual(Buffer.from([0, 0, 0, 0, 0]));
    expect(reply.headers[1]?.['grpc-status']).toBe('0');
  });

  it('refuses a unary request of no message, of two, or ending inside one', async () => {
    const client = await connect();
    client.headers(1, requestFields('/test.Echo/Unary'), true);
    client.headers(3, requestFields('/test.Echo/Unary'));
    client.data(3, Buffer.concat([grpcMessage(Buffer.from('a')), grpcMessage(Buffer.from('b'))]), true);
    client.headers(5, requestFields('/test.Echo/Unary'));
    client.data(5, grpcMessage(Buffer.from('cut short')).subarray(0, 8), true);
    expect((await client.response(1)).headers[0]).toMatchObject({ 'grpc-status': '12', 'grpc-message': expect.stringContaining('none arrived') });
    expect((await client.response(3)).headers[0]).toMatchObject({ 'grpc-status': '12', 'grpc-message': expect.stringContaining('a second arrived') });
    expect((await client.response(5)).headers[0]).toMatchObject({ 'grpc-status': '13', 'grpc-message': expect.stringContaining('ended inside a message') });
  });

  it('cancels a call the client resets: a bidi handler hears of it, a unary answer is never written', async () => {
    const { observed } = server.serving;
    const client = await connect();
    client.headers(1, requestFields('/test.Echo/Bidi'));
    client.data(1, grpcMessage(Buffer.from('a')));
    await client.until(() => client.stream(1).data.length === 6);
    const bidi = observed.streams.at(-1);
    client.send(frame(FrameType.RST_STREAM, 0, 1, uint32(H2Error.CANCEL)));
    await observed.until(() => bidi?.cancelled);
    expect(bidi?.stream.open).toBe(false);

    const before = observed.pending.length;
    client.request(3, '/test.Echo/Pending', Buffer.from('later'));
    await observed.until(() => observed.pending.length > before);
    client.send(frame(FrameType.RST_STREAM, 0, 3, uint32(H2Error.CANCEL)));
    await client.roundTrip(); // the reset has been read
    observed.pending.at(-1)?.answer(Buffer.from('too late'));
    await client.roundTrip();
    expect(client.stream(3).frames).toEqual([]);
    expect(client.goAway()).toBeUndefined();
  });

  it('refuses streams past its concurrency limit with REFUSED_STREAM; a finished one frees its place', async () => {
    const limited = await serve({ maxConcurrentStreams: 2 });
    try {
      const client = await connect({}, limited.transport.port);
      expect(client.serverSettings()?.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(2);
      client.request(1, '/test.Echo/Pending', Buffer.from('1'));
      client.request(3, '/test.Echo/Pending', Buffer.from('3'));
      client.request(5, '/test.Echo/Pending', Buffer.from('5'));
      expect((await client.response(5)).reset).toBe(H2Error.REFUSED_STREAM);
      await limited.observed.until(() => limited.observed.pending.length === 2);

      limited.observed.pending[0]?.answer(Buffer.from('one'));
      expect((await client.response(1)).headers[1]?.['grpc-status']).toBe('0');
      client.request(7, '/test.Echo/Unary', Buffer.from('7'));
      expect(grpcMessages((await client.response(7)).data)).toEqual([Buffer.from('7')]);
      limited.observed.pending[1]?.answer(Buffer.from('three'));
      await client.response(3);
    } finally {
      await limited.transport.close(100);
    }
  });

  it('answers a header list past its limit RESOURCE_EXHAUSTED, its HPACK table still in step', async () => {
    const client = await connect();
    const limit = client.serverSettings()?.get(Setting.MAX_HEADER_LIST_SIZE) as number;
    // The first block adds :path to the table, then passes the limit.
    const [method, scheme, , ...rest] = requestFields('/test.Echo/Unary');
    const first = Buffer.concat([
      encodeHeaderBlock([method!, scheme!]),
      indexedLiteral(':path', '/test.Echo/Unary'),
      encodeHeaderBlock([...rest, ['x-big', 'b'.repeat(limit)]]),
    ]);
    client.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, first));
    client.data(1, grpcMessage(Buffer.from('one')), true);
    const refused = await client.response(1);
    expect(refused.headers).toHaveLength(1);
    expect(refused.headers[0]).toMatchObject({ ':status': '200', 'grpc-status': '8', 'grpc-message': expect.stringContaining(String(limit)) });

    // The second names :path by its dynamic index (62): only a table in step reads it.
    const second = Buffer.concat([encodeHeaderBlock([method!, scheme!]), indexedField(62), encodeHeaderBlock(rest)]);
    client.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 3, second));
    client.data(3, grpcMessage(Buffer.from('two')), true);
    const reply = await client.response(3);
    expect(grpcMessages(reply.data)).toEqual([Buffer.from('two')]);
    expect(client.goAway()).toBeUndefined();
  });

  it('answers a trailers-only error without resetting a stream the client has ended, and resets one it has not', async () => {
    const client = await connect();
    client.headers(1, [[':method', 'GET'], ...requestFields('/test.Echo/Unary').slice(1)], true);
    client.headers(3, requestFields('/test.Echo/Nothing'), true);
    client.headers(5, requestFields('/test.Echo/Unary'));
    client.data(5, grpcMessage(Buffer.from('x'), true), true); // refused (compressed) on the frame that ends the stream
    expect((await client.response(1)).headers[0]?.[':status']).toBe('405');
    expect((await client.response(3)).headers[0]?.['grpc-status']).toBe('12');
    expect((await client.response(5)).headers[0]?.['grpc-status']).toBe('13');
    // Refused on its headers while the client is still sending: it is told to stop (RFC 9113 section 8.1).
    client.headers(7, requestFields('/test.Echo/Nothing'));
    await client.until(() => client.stream(7).reset !== undefined);
    await client.roundTrip();
    expect(client.frames.filter((f) => f.type === FrameType.RST_STREAM).map((f) => [f.streamId, f.payload.readUInt32BE(0)])).toEqual([[7, H2Error.NO_ERROR]]);
  });

  it('fails a control-frame flood with ENHANCE_YOUR_CALM: PINGs, or streams opened and reset at once', async () => {
    const client = await connect();
    const ping = frame(FrameType.PING, 0, 0, Buffer.alloc(8));
    client.send(...Array.from({ length: 3000 }, () => ping));
    expect(await client.until(() => client.goAway())).toMatchObject({ code: H2Error.ENHANCE_YOUR_CALM });
    await client.whenClosed();

    // The "rapid reset" attack: each stream costs the server a call, the client nothing.
    const resets = await connect();
    const block = encodeHeaderBlock(requestFields('/test.Echo/Unary'));
    const rapid = Array.from({ length: 3000 }, (_, i) => [frame(FrameType.HEADERS, Flag.END_HEADERS, 2 * i + 1, block), frame(FrameType.RST_STREAM, 0, 2 * i + 1, uint32(H2Error.CANCEL))]);
    resets.send(...rapid.flat());
    expect(await resets.until(() => resets.goAway())).toMatchObject({ code: H2Error.ENHANCE_YOUR_CALM });
  });

  it('lets a client cancel as many calls it has sent as it likes (deadlines passing under load): only early resets count', async () => {
    const client = await connect();
    const block = encodeHeaderBlock(requestFields('/test.Echo/Pending'));
    const { observed } = server.serving;
    const before = observed.pending.length;
    // 3000 whole requests, each cancelled after it was sent: more than the 2000 a second early resets may be.
    const cancelled = Array.from({ length: 3000 }, (_, i) => [
      frame(FrameType.HEADERS, Flag.END_HEADERS, 2 * i + 1, block),
      frame(FrameType.DATA, Flag.END_STREAM, 2 * i + 1, grpcMessage(Buffer.from('x'))),
      frame(FrameType.RST_STREAM, 0, 2 * i + 1, uint32(H2Error.CANCEL)),
    ]);
    client.send(...cancelled.flat());
    await client.roundTrip();
    expect(client.goAway()).toBeUndefined();
    expect(observed.pending.length - before).toBe(3000);
    client.request(6001, '/test.Echo/Unary', Buffer.from('still served'));
    expect(grpcMessages((await client.response(6001)).data)[0]?.toString()).toBe('still served');
  });

  it('closes a connection that has not sent the whole preface within 10 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const socket = net.connect({ host: '127.0.0.1', port: server.serving.transport.port });
      socket.on('error', () => {});
      const closed = new Promise((resolve) => socket.once('close', resolve));
      // The server's SETTINGS: its side of the connection (and its timer) exists.
      await new Promise((resolve) => socket.once('data', resolve));
      socket.write('PRI * HTTP/2.0\r\n'); // half a preface, then nothing
      vi.advanceTimersByTime(9_999);
      await new Promise((resolve) => setImmediate(resolve));
      expect(socket.destroyed).toBe(false);
      vi.advanceTimersByTime(1);
      vi.useRealTimers();
      await expect(Promise.race([closed.then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, 2000, 'still open'))])).resolves.toBe('closed');
    } finally {
      vi.useRealTimers();
    }
  });

  it('counts the control-frame budget over a second from the first frame, not a clock-aligned second', async () => {
    const pings = (count: number) => Array.from({ length: count }, (_, i) => frame(FrameType.PING, 0, 0, Buffer.from(`${i}`.padStart(8, '0'))));
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      vi.advanceTimersByTime((1500 - (performance.now() % 1000)) % 1000); // half past a second
      // Two bursts 0.9 s apart, across a second's boundary: one flood.
      const straddling = await connect();
      straddling.send(...pings(1500));
      await straddling.roundTrip();
      vi.advanceTimersByTime(900);
      straddling.send(...pings(1500));
      expect(await straddling.until(() => straddling.goAway())).toMatchObject({ code: H2Error.ENHANCE_YOUR_CALM });

      // A second later the budget is whole again.
      const paced = await connect();
      paced.send(...pings(1500));
      await paced.roundTrip();
      vi.advanceTimersByTime(1000);
      paced.send(...pings(1500));
      await paced.roundTrip();
      expect(paced.goAway()).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});

// --- flow control ---------------------------------------------------------------

describe('flow control', () => {
  const server = serveRawClients();

  it("sends a large answer only as the client's stream and connection windows allow, trailers last", async () => {
    const client = await server.connect({ settings: [[Setting.INITIAL_WINDOW_SIZE, 100]] });
    const body = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = i % 251;
    const total = body.length + 5;
    const message = grpcMessage(body);
    client.headers(1, requestFields('/test.Echo/Unary'));
    client.data(1, message, true);

    const received = () => client.dataReceived(1);
    // What the client has granted so far; each step waits for exactly that much, then checks (after a round trip) that nothing more came.
    let grantedStream = 100;
    let grantedConnection = 65_535;
    const step = async () => {
      const allowed = Math.min(total, grantedStream, grantedConnection);
      await client.until(() => received() >= allowed);
      await client.roundTrip();
      expect(received()).toBe(allowed);
      expect(client.stream(1).headers).toHaveLength(1); // no trailers before the last DATA
    };

    await step(); // 100 bytes: the initial stream window
    client.send(frame(FrameType.WINDOW_UPDATE, 0, 1, uint32(1000)));
    grantedStream += 1000;
    await step();
    // The initial window lowered mid-stream: the stream's window goes negative (-50), and an update must make up for it.
    client.send(frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.INITIAL_WINDOW_SIZE, 50]])));
    grantedStream -= 50;
    client.send(frame(FrameType.WINDOW_UPDATE, 0, 1, uint32(1050)));
    grantedStream += 1050;
    await step();
    // Raised mid-stream: the difference is granted at once.
    client.send(frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.INITIAL_WINDOW_SIZE, 30_050]])));
    grantedStream += 30_000;
    await step();
    // A stream window far larger: now the connection's window (65,535 so far) holds the answer back.
    client.send(frame(FrameType.WINDOW_UPDATE, 0, 1, uint32(8 * 1024 * 1024)));
    grantedStream += 8 * 1024 * 1024;
    await step();
    expect(received()).toBe(65_535);
    while (grantedConnection < total) {
      client.send(frame(FrameType.WINDOW_UPDATE, 0, 0, uint32(300_000)));
      grantedConnection += 300_000;
      if (grantedConnection < total) await step();
    }
    const reply = await client.response(1);
    expect(reply.data.equals(message)).toBe(true); // (toEqual compares a megabyte slowly)
    for (const data of reply.dataFrames) expect(data.payload.length).toBeLessThanOrEqual(16_384);
    const trailersAt = reply.frames.findIndex((f) => f.type === FrameType.HEADERS && f.fields?.['grpc-status'] === '0');
    expect(trailersAt).toBe(reply.frames.length - 1);
    expect((reply.frames[trailersAt]?.flags ?? 0) & Flag.END_STREAM).toBeTruthy();
  });
});

// --- deadlines ----------------------------------------------------------------------

describe('deadlines', () => {
  const server = serveRawClients();

  it('answers DEADLINE_EXCEEDED when grpc-timeout passes, and drops the late answer', async () => {
    const client = await server.connect();
    const started = performance.now();
    client.request(1, '/test.Echo/Pending', Buffer.from('slow'), [['grpc-timeout', '50m']]);
    const reply = await client.response(1);
    const elapsed = performance.now() - started;
    expect(reply.headers).toEqual([expect.objectContaining({ ':status': '200', 'grpc-status': '4' })]);
    expect(elapsed).toBeGreaterThanOrEqual(45);
    expect(elapsed).toBeLessThan(200);

    server.serving.observed.pending.at(-1)?.answer(Buffer.from('late'));
    await client.roundTrip();
    expect(client.stream(1).frames).toHaveLength(1);
  });

  it('cancels a bidi stream whose deadline passes', async () => {
    const { observed } = server.serving;
    const client = await server.connect();
    client.headers(1, requestFields('/test.Echo/Bidi', [['grpc-timeout', '30m']]));
    client.data(1, grpcMessage(Buffer.from('x')));
    const reply = await client.response(1);
    expect(reply.headers[1]?.['grpc-status']).toBe('4');
    await observed.until(() => observed.streams.at(-1)?.cancelled);
  });
});

// --- graceful close -----------------------------------------------------------------

describe('graceful close', () => {
  const MAX_STREAM_ID = 2 ** 31 - 1;
  const goodbye = { code: H2Error.NO_ERROR, reason: expect.any(String) };

  /** The close's first step: GOAWAY naming every stream id, then the PING whose ACK ends the step. */
  async function announced(client: H2TestClient) {
    const ping = await client.until(() => client.serverPings()[0]);
    expect(client.goAways()).toEqual([{ lastStreamId: MAX_STREAM_ID, ...goodbye }]);
    expect(client.frames.findIndex((f) => f.type === FrameType.GOAWAY)).toBeLessThan(client.frames.indexOf(ping));
    return ping;
  }

  /**
   * Runs `test` with a server of its own (closing it is what each test does)
   * and a raw client of it; the client is closed and real timers are back
   * afterwards, even when the test fails.
   */
  async function withOwnServer(test: (serving: Serving, client: H2TestClient) => Promise<void>): Promise<void> {
    const serving = await serve();
    const client = await H2TestClient.connect(serving.transport.port);
    try {
      await test(serving, client);
    } finally {
      vi.useRealTimers();
      client.close();
    }
  }

  it('announces the close, serves the streams sent before the PING is acknowledged, then names the last one and refuses the rest; a call in flight finishes', () =>
    withOwnServer(async ({ transport, observed }, client) => {
      client.headers(1, requestFields('/test.Echo/Bidi'));
      client.data(1, grpcMessage(Buffer.from('before')));
      await client.until(() => client.stream(1).data.length > 0);

      let closed = false;
      const closing = transport.close(5000).then(() => (closed = true));
      const ping = await announced(client);
      await expect(
        new Promise((resolve, reject) => net.connect({ host: '127.0.0.1', port: transport.port }).on('connect', resolve).on('error', reject)),
      ).rejects.toMatchObject({ code: 'ECONNREFUSED' });

      // Sent before the client saw the GOAWAY, as far as the server can tell: served.
      client.request(3, '/test.Echo/Unary', Buffer.from('on its way'));
      expect(grpcMessages((await client.response(3)).data)).toEqual([Buffer.from('on its way')]);
      // The ACK of another PING (a keepalive's) does not end the first step.
      client.send(frame(FrameType.PING, Flag.ACK, 0, Buffer.from('keepaliv')));
      await client.roundTrip();
      expect(client.goAways()).toHaveLength(1);

      client.send(frame(FrameType.PING, Flag.ACK, 0, ping.payload));
      expect(await client.until(() => client.goAways()[1])).toEqual({ lastStreamId: 3, ...goodbye });
      client.request(5, '/test.Echo/Unary', Buffer.from('new'));
      expect((await client.response(5)).reset).toBe(H2Error.REFUSED_STREAM);

      client.data(1, grpcMessage(Buffer.from('after')));
      await client.until(() => grpcMessages(client.stream(1).data).length === 2);
      expect(closed).toBe(false);
      client.data(1, Buffer.alloc(0), true);
      const reply = await client.response(1);
      expect(grpcMessages(reply.data)).toEqual([Buffer.from('before'), Buffer.from('after')]);
      expect(reply.headers[1]).toEqual({ 'grpc-status': '0' });
      await client.whenClosed();
      await closing;
      expect(observed.streams[0]?.cancelled).toBe(false);
      expect(client.goAways()).toHaveLength(2);
    }));

  // Fake setTimeout only: the sockets and the client's frames stay real.
  it('sends the final GOAWAY after a bounded wait when the PING is never acknowledged, then ends the idle connection', () =>
    withOwnServer(async ({ transport }, client) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const closing = transport.close(5000);
      await announced(client);
      client.request(1, '/test.Echo/Unary', Buffer.from('late'));
      expect(grpcMessages((await client.response(1)).data)).toEqual([Buffer.from('late')]);
      await vi.advanceTimersByTimeAsync(999);
      await client.roundTrip();
      expect(client.goAways()).toHaveLength(1);
      expect(client.closed).toBe(false); // idle, but streams may still be on their way

      await vi.advanceTimersByTimeAsync(1);
      expect(await client.until(() => client.goAways()[1])).toEqual({ lastStreamId: 1, ...goodbye });
      await client.whenClosed();
      await closing;
    }));

  it('cuts off a stream that never ends once graceMs has passed', () =>
    withOwnServer(async ({ transport, observed }, client) => {
      client.headers(1, requestFields('/test.Echo/Bidi'));
      client.data(1, grpcMessage(Buffer.from('forever')));
      await client.until(() => client.stream(1).data.length > 0);
      const started = performance.now();
      await transport.close(100);
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(95);
      expect(elapsed).toBeLessThan(1000);
      expect(observed.streams[0]?.cancelled).toBe(true);
      await client.whenClosed();
      expect(client.goAway()?.code).toBe(H2Error.NO_ERROR);
    }));

  it('cut off before the PING is acknowledged: no final GOAWAY, and its wait is cleared', () =>
    withOwnServer(async ({ transport }, client) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      client.headers(1, requestFields('/test.Echo/Bidi'));
      const closing = transport.close(100);
      await announced(client);
      await vi.advanceTimersByTimeAsync(100);
      await client.whenClosed();
      await closing;
      expect(vi.getTimerCount()).toBe(0);
      expect(client.goAways()).toHaveLength(1);
    }));

  it('a connection error before the PING is acknowledged ends the connection there: no final GOAWAY', () =>
    withOwnServer(async ({ transport }, client) => {
      client.headers(1, requestFields('/test.Echo/Bidi'));
      const closing = transport.close(5000);
      const ping = await announced(client);
      client.send(frame(FrameType.PUSH_PROMISE, 0, 1, Buffer.alloc(4)), frame(FrameType.PING, Flag.ACK, 0, ping.payload));
      await client.whenClosed();
      await closing;
      expect(client.goAways()).toEqual([
        { lastStreamId: MAX_STREAM_ID, ...goodbye },
        { lastStreamId: 1, code: H2Error.PROTOCOL_ERROR, reason: expect.any(String) },
      ]);
    }));

  it('closes a connection on a fault of its own (INTERNAL_ERROR) without taking the process down', async () => {
    const server = net.createServer((socket) => {
      new H2Connection(socket, {
        maxConcurrentStreams: 10,
        maxHeaderListBytes: 16_384,
        idleTimeoutMs: 60_000,
        onStream: () => {
          throw new TypeError('a bug in the owner');
        },
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = await H2TestClient.connect((server.address() as net.AddressInfo).port);
    try {
      client.headers(1, requestFields('/test.Echo/Unary'));
      await client.whenClosed();
      expect(client.goAways()).toEqual([{ lastStreamId: 1, code: H2Error.INTERNAL_ERROR, reason: 'internal error: a bug in the owner' }]);
    } finally {
      client.close();
      server.close();
    }
  });

  it('goAway() twice announces the close once', async () => {
    const connections: H2Connection[] = [];
    const server = net.createServer((socket) => {
      connections.push(new H2Connection(socket, { maxConcurrentStreams: 10, maxHeaderListBytes: 16_384, idleTimeoutMs: 60_000, onStream: () => ({ data() {}, end() {}, reset() {} }) }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = await H2TestClient.connect((server.address() as net.AddressInfo).port);
    try {
      connections[0]?.goAway();
      connections[0]?.goAway();
      const ping = await announced(client);
      await client.roundTrip();
      expect(client.serverPings()).toHaveLength(1);
      client.send(frame(FrameType.PING, Flag.ACK, 0, ping.payload));
      await client.whenClosed();
      connections[0]?.goAway();
      expect(client.goAways()).toEqual([
        { lastStreamId: MAX_STREAM_ID, ...goodbye },
        { lastStreamId: 0, ...goodbye },
      ]);
    } finally {
      client.close();
      server.close();
    }
  });
});

// --- message size -------------------------------------------------------------------

describe('idle connections and the cap on connections', () => {
  const IDLE_MS = 150;
  const idle = { code: H2Error.NO_ERROR, reason: 'idle' };

  it('closes a connection idle for idleTimeoutMs gracefully: GOAWAY and PING, then the final GOAWAY', async () => {
    const { transport } = await serve({ idleTimeoutMs: IDLE_MS });
    const client = await H2TestClient.connect(transport.port);
    try {
      client.request(1, '/test.Echo/Unary', Buffer.from('one call'));
      await client.response(1);
      const calledAt = performance.now();
      const ping = await client.until(() => client.serverPings()[0], 5000);
      expect(performance.now() - calledAt).toBeGreaterThanOrEqual(IDLE_MS - 10);
      expect(client.goAways()).toEqual([{ lastStreamId: 2 ** 31 - 1, ...idle }]);
      client.send(frame(FrameType.PING, Flag.ACK, 0, ping.payload));
      expect(await client.until(() => client.goAways()[1])).toEqual({ lastStreamId: 1, ...idle });
      await client.whenClosed();
    } finally {
      client.close();
      await transport.close(1000);
    }
  });

  it('keeps a connection whose call is open however quiet it is, and closes it once idle after the call', async () => {
    const { transport, observed } = await serve({ idleTimeoutMs: IDLE_MS });
    const client = await H2TestClient.connect(transport.port);
    try {
      client.request(1, '/test.Echo/Pending', Buffer.from('slow'));
      const call = await observed.until(() => observed.pending[0]);
      await new Promise((resolve) => setTimeout(resolve, 3 * IDLE_MS));
      expect(client.goAways()).toEqual([]);
      call.answer(Buffer.from('done'));
      expect(grpcMessages((await client.response(1)).data)).toEqual([Buffer.from('done')]);
      await client.until(() => client.goAways()[0], 5000);
      expect(client.goAways()).toEqual([{ lastStreamId: 2 ** 31 - 1, ...idle }]);
    } finally {
      client.close();
      await transport.close(1000);
    }
  });

  it('closes connections past maxConnections as they arrive; the open ones are served', async () => {
    const { transport } = await serve({ maxConnections: 2 });
    const clients = [await H2TestClient.connect(transport.port), await H2TestClient.connect(transport.port)];
    try {
      const refused = net.connect({ host: '127.0.0.1', port: transport.port });
      refused.on('error', () => {});
      const received: Buffer[] = [];
      refused.on('data', (chunk: Buffer) => received.push(chunk));
      await new Promise((resolve) => refused.once('close', resolve));
      expect(Buffer.concat(received).length).toBe(0); // not even the server's SETTINGS
      for (const [i, client] of clients.entries()) {
        client.request(1, '/test.Echo/Unary', Buffer.from(`client ${i}`));
        expect(grpcMessages((await client.response(1)).data)).toEqual([Buffer.from(`client ${i}`)]);
      }
    } finally {
      for (const client of clients) client.close();
      await transport.close(1000);
    }
  });
});

describe('the message size limit', () => {
  const server = serveRawClients();

  it('refuses a request message past maxMessageBytes as RESOURCE_EXHAUSTED, naming the limit', async () => {
    const client = await server.connect();
    client.headers(1, requestFields('/test.Echo/Unary'));
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 1);
    client.data(1, Buffer.concat([prefix, Buffer.alloc(1000)]));
    const reply = await client.response(1);
    expect(reply.headers[0]).toMatchObject({ 'grpc-status': '8', 'grpc-message': expect.stringContaining(`${MAX_MESSAGE_BYTES + 1} bytes`) });
    expect(reply.headers[0]?.['grpc-message']).toContain(`limit of ${MAX_MESSAGE_BYTES} bytes`);
    // The client, still sending, is told to stop.
    await client.until(() => client.stream(1).reset !== undefined);
    expect(client.stream(1).reset).toBe(H2Error.NO_ERROR);
    // A message at the limit is taken.
    client.request(3, '/test.Echo/Sink', Buffer.alloc(MAX_MESSAGE_BYTES));
    const sink = await client.response(3);
    expect(grpcMessages(sink.data)[0]?.readBigUInt64BE(0)).toBe(BigInt(MAX_MESSAGE_BYTES));
  });

  it("holds at most twice the message limit for one connection's unfinished requests; an answered one frees its share", async () => {
    const client = await server.connect();
    // Zeros: Big answers with an empty message, which no window holds back.
    const full = grpcMessage(Buffer.alloc(MAX_MESSAGE_BYTES));
    // Two unary requests at the limit whose client has not ended its side: both held.
    for (const id of [1, 3]) {
      client.headers(id, requestFields('/test.Echo/Big'));
      client.data(id, full);
    }
    // A third would pass the connection's budget: refused at once, saying so.
    client.headers(5, requestFields('/test.Echo/Big'));
    client.data(5, full);
    const refused = await client.response(5);
    expect(refused.headers[0]).toMatchObject({ 'grpc-status': '8', 'grpc-message': expect.stringContaining(`more than ${2 * MAX_MESSAGE_BYTES} bytes`) });
    // The first two, ended, are answered; then a new one fits again.
    for (const id of [1, 3]) client.data(id, Buffer.alloc(0), true);
    for (const id of [1, 3]) expect((await client.response(id)).headers.at(-1)?.['grpc-status']).toBe('0');
    client.request(7, '/test.Echo/Big', Buffer.alloc(MAX_MESSAGE_BYTES));
    expect((await client.response(7)).headers.at(-1)?.['grpc-status']).toBe('0');
  });

  it('a message dripped a byte per frame is read whole, and a compressed one inflating past the budget is refused', async () => {
    const client = await server.connect();
    const body = Buffer.from('assembled from many frames');
    client.headers(1, requestFields('/test.Echo/Unary'));
    const framed = grpcMessage(body);
    for (let i = 0; i < framed.length; i++) client.data(1, framed.subarray(i, i + 1), i === framed.length - 1);
    const echoed = await client.response(1);
    expect(grpcMessages(echoed.data)[0]?.toString()).toBe(body.toString());
    // Two held requests at the limit leave no room for what a small gzip message inflates to.
    for (const id of [3, 5]) {
      client.headers(id, requestFields('/test.Echo/Unary'));
      client.data(id, grpcMessage(Buffer.alloc(MAX_MESSAGE_BYTES - 1024)));
    }
    client.headers(7, requestFields('/test.Echo/Unary', [['grpc-encoding', 'gzip']]));
    client.data(7, grpcMessage(gzipSync(Buffer.alloc(MAX_MESSAGE_BYTES / 2)), true), true);
    expect((await client.response(7)).headers[0]).toMatchObject({ 'grpc-status': '8', 'grpc-message': expect.stringContaining('unfinished requests') });
  });

  it('stops reading a client that leaves its answers unread, until they drain', async () => {
    const client = await server.connect({ settings: [[Setting.INITIAL_WINDOW_SIZE, 2 ** 31 - 1]] });
    client.send(frame(FrameType.WINDOW_UPDATE, 0, 0, uint32(2 ** 31 - 1 - 65_535)));
    client.socket.pause();
    // 40 MiB of answers the client does not read: past what the server lets wait in its socket.
    const size = Buffer.alloc(4);
    size.writeUInt32BE(MAX_MESSAGE_BYTES);
    for (let id = 1; id < 40; id += 2) client.request(id, '/test.Echo/Big', size);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { observed } = server.serving;
    const before = observed.pending.length;
    client.request(41, '/test.Echo/Pending', Buffer.from('sent while the answers wait'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(observed.pending.length).toBe(before);
    // Reading again drains the answers; then the server reads on.
    client.socket.resume();
    const call = await observed.until(() => observed.pending[before]);
    expect(call.request.toString()).toBe('sent while the answers wait');
    call.answer(Buffer.from('done'));
    expect(grpcMessages((await client.response(41)).data)[0]?.toString()).toBe('done');
  });

  it('answers RESOURCE_EXHAUSTED for a response message past maxMessageBytes', async () => {
    const client = await server.connect();
    const size = Buffer.alloc(4);
    size.writeUInt32BE(MAX_MESSAGE_BYTES + 1);
    client.request(1, '/test.Echo/Big', size);
    const reply = await client.response(1);
    expect(reply.data.length).toBe(0);
    expect(reply.headers[0]).toMatchObject({ 'grpc-status': '8', 'grpc-message': expect.stringContaining(`limit of ${MAX_MESSAGE_BYTES} bytes`) });
  });
});
