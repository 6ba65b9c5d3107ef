/**
 * The gRPC server's transport: a TCP listener whose connections speak
 * HTTP/2 (h2/connection.ts), each request stream a Call (call.ts) routed by
 * its :path to a unary or bidirectional-streaming method. Methods see
 * decoded messages and give back messages to encode; whatever a method
 * throws becomes the call's status through `toStatus`.
 *
 * What the protocol asks of a server, besides: a request that is not a
 * POST is answered 405, one that is not application/grpc 415; unknown
 * methods and compressions other than gzip and deflate are UNIMPLEMENTED
 * (answers go uncompressed); `grpc-timeout` sets the call's deadline, past
 * which it is answered DEADLINE_EXCEEDED (once its method gives up or a
 * sweep finds it) and its answer dropped. Each connection's unfinished
 * calls share a budget of request bytes (call.ts, RequestBudget).
 */
import net from 'node:net';

import { GrpcStatus, WeirError } from '../errors.js';
import { Call, type CallStatus, REQUEST_ENCODINGS, RequestBudget, type RequestEncoding } from './call.js';
import { H2Connection, type H2Stream } from './h2/connection.js';
import { encodeHeaderBlock } from './h2/hpack.js';

interface MethodCodec {
  /** `/package.Service/Method`. */
  path: string;
  decode(bytes: Buffer): unknown;
  encode(message: unknown): Uint8Array;
}

/** A method with one request and one response. */
export interface UnaryMethod extends MethodCodec {
  kind: 'unary';
  answer(request: unknown, call: Call): unknown;
}

/** A bidirectional-streaming method: `open` is called once per call and returns who hears its requests. */
export interface StreamingMethod extends MethodCodec {
  kind: 'bidi';
  open(stream: ServerStream): StreamHandler;
}

export type Method = UnaryMethod | StreamingMethod;

export interface StreamHandler {
  message(request: unknown): void;
  /** The client has sent its last request. */
  end(): void;
  /** The call was cancelled, timed out or lost: nothing more can be sent. */
  cancelled(): void;
}

/** A streaming call's sending side. */
export interface ServerStream {
  readonly call: Call;
  /** False once the call has ended, failed or been cancelled. */
  readonly open: boolean;
  send(message: unknown): void;
  end(status?: CallStatus): void;
}

export interface TransportOptions {
  host: string;
  port: number;
  /** The largest message received or sent, in bytes. */
  maxMessageBytes: number;
  methods: readonly Method[];
  /** Any error thrown by a method, as a status. */
  toStatus(error: unknown): CallStatus;
  maxConcurrentStreams?: number;
  maxHeaderListBytes?: number;
  /** Connections open at once; more are closed as they arrive (default 10 000). */
  maxConnections?: number;
  /** A connection with no call open, silent this long, is closed gracefully (default 5 minutes). */
  idleTimeoutMs?: number;
}

export interface Transport {
  readonly port: number;
  /** Stops accepting connections, lets the calls open finish, then closes; past `graceMs`, cuts them off. */
  close(graceMs: number): Promise<void>;
}

const MAX_CONCURRENT_STREAMS = 1000;
/** Each connection holds a descriptor and up to a request budget of memory: their number is bounded too. */
const MAX_CONNECTIONS = 10_000;
const IDLE_TIMEOUT_MS = 5 * 60_000;
/** The request bytes one connection's unfinished calls may hold, in messages of the largest size. */
const REQUEST_BUDGET_MESSAGES = 2;
const MAX_HEADER_LIST_BYTES = 16 * 1024;
/** How often calls are checked for a passed deadline. */
const DEADLINE_SWEEP_MS = 20;

const HTTP_ONLY = (status: number) => encodeHeaderBlock([[':status', String(status)]]);
const NOT_POST = HTTP_ONLY(405);
const NOT_GRPC = HTTP_ONLY(415);
const OK: CallStatus = { code: GrpcStatus.OK, details: '' };
const DEADLINE_EXCEEDED: CallStatus = { code: GrpcStatus.DEADLINE_EXCEEDED, details: "the call's deadline passed before it was answered" };

/** grpc-timeout's units, in milliseconds. */
const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** grpc-timeout (up to 8 digits and a unit) in milliseconds; NaN when malformed. */
export function parseTimeout(value: string): number {
  const unit = TIMEOUT_UNITS[value.slice(-1)];
  const digits = value.slice(0, -1);
  if (unit === undefined || digits.length === 0 || digits.length > 8 || !/^\d+$/.test(digits)) return Number.NaN;
  return Number(digits) * unit;
}

/** The request's headers that the transport reads. */
interface RequestHeaders {
  method: string;
  path: string;
  contentType: string;
  timeout: string;
  encoding: string;
}

function readHeaders(list: string[]): RequestHeaders {
  const headers: RequestHeaders = { method: '', path: '', contentType: '', timeout: '', encoding: 'identity' };
  for (let i = 0; i < list.length; i += 2) {
    const value = list[i + 1] as string;
    switch (list[i]) {
      case ':method':
        headers.method = value;
        break;
      case ':path':
        headers.path = value;
        break;
      case 'content-type':
        headers.contentType = value;
        break;
      case 'grpc-timeout':
        headers.timeout = value;
        break;
      case 'grpc-encoding':
        headers.encoding = value;
        break;
    }
  }
  return headers;
}

/** application/grpc, alone or with a +format or ;parameters (application/grpc-web frames messages otherwise). */
const isGrpcContentType = (type: string): boolean =>
  type.startsWith('application/grpc') && (type.length === 16 || type[16] === '+' || type[16] === ';');

const isRequestEncoding = (encoding: string): encoding is RequestEncoding => (REQUEST_ENCODINGS as readonly string[]).includes(encoding);

/** Why a request for `method` is refused before it starts, or null. */
function refusalOf(headers: RequestHeaders, method: Method | undefined, timeoutMs: number): CallStatus | null {
  if (!method) return { code: GrpcStatus.UNIMPLEMENTED, details: `this server does not implement ${headers.path}` };
  if (!isRequestEncoding(headers.encoding)) {
    return { code: GrpcStatus.UNIMPLEMENTED, details: `grpc-encoding ${headers.encoding} is not supported: send ${REQUEST_ENCODINGS.join(', ')} messages` };
  }
  if (Number.isNaN(timeoutMs)) return { code: GrpcStatus.INVALID_ARGUMENT, details: `grpc-timeout '${headers.timeout}': expected up to 8 digits and a unit (H, M, S, m, u or n)` };
  return null;
}

export async function listen(options: TransportOptions): Promise<Transport> {
  const methods = new Map(options.methods.map((method) => [method.path, method]));
  // The method's own name (after the last '/'), for its messages: found once, not per call.
  const names = new Map(options.methods.map((method) => [method, method.path.slice(method.path.lastIndexOf('/') + 1)]));
  const connections = new Set<H2Connection>();
  const maxHeaderListBytes = options.maxHeaderListBytes ?? MAX_HEADER_LIST_BYTES;
  // Calls past their deadline are found by sweeping the open streams, not by a
  // timer or a set entry per call: an entry kept a finished call (and the
  // request it holds) alive across collections.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const connection of connections) {
      connection.forEachListener((listener) => {
        const call = listener as Call;
        if (call.deadline <= now) call.cancel(DEADLINE_EXCEEDED);
      });
    }
  }, DEADLINE_SWEEP_MS).unref();

  /** A new stream on a connection with `budget`: checks what the protocol asks, then starts its method's call. */
  const onStream = (budget: RequestBudget, stream: H2Stream, list: string[], tooLarge: boolean) => {
    const headers = readHeaders(list);
    const timeoutMs = headers.timeout === '' ? Number.POSITIVE_INFINITY : parseTimeout(headers.timeout);
    const method = methods.get(headers.path);
    const encoding = isRequestEncoding(headers.encoding) ? headers.encoding : 'identity';
    const call = new Call(stream, performance.now() + timeoutMs, options.maxMessageBytes, budget, method?.kind === 'unary', encoding);
    if (headers.method !== 'POST' && !tooLarge) {
      stream.respond(NOT_POST, true);
      return call;
    }
    if (!isGrpcContentType(headers.contentType) && !tooLarge) {
      stream.respond(NOT_GRPC, true);
      return call;
    }
    const refusal = tooLarge
      ? { code: GrpcStatus.RESOURCE_EXHAUSTED, details: `the request's headers are past the server's limit of ${maxHeaderListBytes} bytes` }
      : refusalOf(headers, method, timeoutMs);
    if (refusal || !method) {
      call.finish(refusal ?? { code: GrpcStatus.UNIMPLEMENTED, details: '' });
      return call;
    }
    const name = names.get(method) as string;
    if (method.kind === 'unary') serveUnary(call, method, name, options.toStatus);
    else serveStream(call, method, name, options.toStatus);
    return call;
  };

  const server = net.createServer((socket) => {
    const budget = new RequestBudget(REQUEST_BUDGET_MESSAGES * options.maxMessageBytes);
    const connection = new H2Connection(socket, {
      maxConcurrentStreams: options.maxConcurrentStreams ?? MAX_CONCURRENT_STREAMS,
      maxHeaderListBytes,
      idleTimeoutMs: options.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
      onStream: (stream, list, tooLarge) => onStream(budget, stream, list, tooLarge),
    });
    connections.add(connection);
    socket.on('close', () => connections.delete(connection));
  });
  // Past this, Node closes each new connection as it is accepted.
  server.maxConnections = options.maxConnections ?? MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new Error(`cannot listen for gRPC on ${options.host}:${options.port} (is the port in use?): ${error.message}`)));
    server.listen({ host: options.host, port: options.port }, resolve);
  });
  const port = (server.address() as net.AddressInfo).port;

  let closing: Promise<void> | null = null;
  return {
    port,
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        const cutOff = setTimeout(() => {
          for (const connection of connections) connection.destroy();
        }, graceMs);
        server.close(() => {
          clearTimeout(cutOff);
          clearInterval(sweep);
          resolve();
        });
        for (const connection of connections) connection.goAway();
      });
      return closing;
    },
  };
}

/** A unary call: one request message, then the client's end; the method's answer, or its error as the status. */
function serveUnary(call: Call, method: UnaryMethod, name: string, toStatus: (error: unknown) => CallStatus): void {
  let request: Buffer | null = null;
  const reply = (response: unknown) => {
    if (call.finished) return;
    if (performance.now() >= call.deadline) return call.finish(DEADLINE_EXCEEDED);
    call.send(method.encode(response));
    call.finish(OK);
  };
  const fail = (error: unknown) => call.finish(toStatus(error));
  call.listen({
    message(bytes) {
      if (request) call.finish({ code: GrpcStatus.UNIMPLEMENTED, details: `${name} takes one request message; a second arrived` });
      request = bytes;
    },
    end() {
      if (!request) return call.finish({ code: GrpcStatus.UNIMPLEMENTED, details: `${name} takes one request message; none arrived` });
      try {
        const answer = method.answer(decodeOrThrow(method, name, request), call);
        // A throw in reply (an answer `encode` refuses) fails the call too, rather than rejecting unhandled.
        if (answer instanceof Promise) answer.then(reply).catch(fail);
        else reply(answer);
      } catch (error) {
        fail(error);
      }
    },
    cancelled() {},
  });
}

/**
 * A bidirectional stream: each request decoded and handed on; the method
 * sends and ends as it likes. What its handler throws ends the call with
 * that error's status, as a unary method's does (thrown from inside the
 * connection's read, it would otherwise take the process down).
 */
function serveStream(call: Call, method: StreamingMethod, name: string, toStatus: (error: unknown) => CallStatus): void {
  let handler: StreamHandler | null = null;
  const fail = (error: unknown) => {
    const open = !call.finished;
    call.finish(toStatus(error));
    if (open) handler?.cancelled();
  };
  const stream: ServerStream = {
    call,
    get open() {
      return !call.finished;
    },
    send: (message) => {
      // Called from the method's own promise chains: an answer that cannot be encoded fails the call, never escapes.
      let bytes: Uint8Array;
      try {
        bytes = method.encode(message);
      } catch (error) {
        fail(error);
        return;
      }
      call.send(bytes);
    },
    end: (status = OK) => call.finish(status),
  };
  try {
    handler = method.open(stream);
  } catch (error) {
    fail(error);
    return;
  }
  const opened = handler;
  call.listen({
    message(bytes) {
      try {
        opened.message(decodeOrThrow(method, name, bytes));
      } catch (error) {
        fail(error);
      }
    },
    end() {
      try {
        opened.end();
      } catch (error) {
        fail(error);
      }
    },
    cancelled: () => opened.cancelled(),
  });
}

function decodeOrThrow(method: MethodCodec, name: string, bytes: Buffer): unknown {
  try {
    return method.decode(bytes);
  } catch (error) {
    throw new WeirError('WEIR_INVALID_REQUEST', `the ${name} request is not a valid protobuf message: ${(error as Error).message}`);
  }
}
