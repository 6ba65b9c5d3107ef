/**
 * The KServe V2 REST front end on uWebSockets.js. It only translates HTTP
 * into calls on the core and back: health, server and model metadata,
 * readiness, the effective config, and inference (JSON, or Triton's binary
 * tensor extension).
 */
import type { InferenceCore, InferResponse } from '../core/core.js';
import { WeirError } from '../errors.js';
import { type TypedArray, buffersOf } from '../tensors/datatypes.js';
import { LARGE_JSON_BYTES } from '../workers/jobs.js';
import { type BodyLimits, BodyReader } from './read-body.js';
import { type Exchange, JSON_HEADERS, exchange, send, sendError, sendJson } from './respond.js';
import { App, type HttpRequest, type HttpResponse, LISTEN_EXCLUSIVE_PORT, type ListenSocket, closeListenSocket, listenPort } from './uws.js';
import { type DecodedRequest, decodeInferRequest, encodeInferResponse } from './v2-codec.js';

export interface HttpServerOptions extends BodyLimits {
  host: string;
  port: number;
}

export const DEFAULT_HTTP_LIMITS: BodyLimits = { maxBodyBytes: 64 * 1024 * 1024, bodyTimeoutMs: 30_000 };

export interface HttpServer {
  /** The port listened on (useful with port 0). */
  readonly port: number;
  /** Stops accepting connections; requests in flight still get their answers. */
  close(): void;
}

/** HTTP extensions Weir supports, reported by GET /v2. */
const EXTENSIONS = ['binary_tensor_data', 'model_configuration'];

const HEADER_LENGTH = 'inference-header-content-length';

/** Binary bodies from this size go to shared memory; copying smaller ones costs less than sharing them. */
const SHARED_BODY_BYTES = 4096;

/** Bytes of the outputs that will be written as JSON numbers rather than appended as binary. */
function jsonOutputBytes(response: InferResponse, binaryOutputs: DecodedRequest['binaryOutputs']): number {
  if (binaryOutputs === 'all') return 0;
  let bytes = 0;
  for (const output of response.outputs) if (!binaryOutputs.has(output.name)) bytes += output.data.byteLength;
  return bytes;
}

/** A path segment, percent-decoded; malformed encoding is the client's error. */
function pathParameter(req: HttpRequest, index: number, what: string): string {
  const raw = req.getParameter(index) ?? '';
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new WeirError('WEIR_INVALID_REQUEST', `the ${what} in the URL, '${raw}', is not valid percent-encoding`);
  }
}

export function startHttpServer(core: InferenceCore, options: HttpServerOptions): Promise<HttpServer> {
  const app = App();
  const bodies = new BodyReader(options);

  /** A GET answered from the core synchronously; errors map through the error table. */
  const get = (pattern: string, answer: (req: HttpRequest) => [number, unknown]) =>
    app.get(pattern, (res: HttpResponse, req: HttpRequest) => {
      const ex = exchange(res);
      try {
        const [status, body] = answer(req);
        sendJson(ex, status, body);
      } catch (error) {
        sendError(ex, error);
      }
    });

  get('/v2/health/live', () => (core.live() ? [200, { live: true }] : [503, { live: false }]));
  get('/v2/health/ready', () => (core.ready() ? [200, { ready: true }] : [503, { ready: false }]));
  get('/v2', () => [200, { ...core.serverMetadata(), extensions: EXTENSIONS }]);
  for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    const model = (req: HttpRequest) => pathParameter(req, 0, 'model name');
    const version = (req: HttpRequest) => (prefix.endsWith(':version') ? pathParameter(req, 1, 'version') : undefined);
    get(prefix, (req) => [200, core.modelMetadata(model(req), version(req))]);
    get(`${prefix}/config`, (req) => [200, core.modelConfig(model(req), version(req))]);
    get(`${prefix}/ready`, (req) => {
      const ready = core.modelReady(model(req), version(req));
      return [ready ? 200 : 503, { name: model(req), ready }];
    });
    app.post(`${prefix}/infer`, (res: HttpResponse, req: HttpRequest) => {
      const ex = exchange(res);
      try {
        // uWS's request object lives only until this handler returns: read it all now.
        const name = model(req);
        const versionAsked = version(req);
        const headerLength = req.getHeader(HEADER_LENGTH);
        const declared = headerLength === '' ? undefined : Number(headerLength);
        // A malformed header length is refused by the decoder; here it only places the body.
        const alignAt = Number.isSafeInteger(declared) ? (declared as number) : 0;
        // A JSON-only body is parsed at once, so it may be borrowed; binary tensors are viewed in place, so not those.
        const borrow = declared === undefined;
        // Binary tensors are read into pooled shared memory: the workers read them there and join them into their batch.
        const contentLength = req.getHeader('content-length');
        const shared = !borrow && Number(contentLength) >= SHARED_BODY_BYTES;
        bodies.read(ex, contentLength, (body, borrowed) => infer(ex, name, versionAsked, body, borrowed, declared), { alignAt, borrow, shared });
      } catch (error) {
        sendError(ex, error);
      }
    });
  }
  app.any('/*', (res: HttpResponse, req: HttpRequest) => {
    sendError(exchange(res), new WeirError('WEIR_NOT_FOUND', `no endpoint ${req.getMethod().toUpperCase()} ${req.getUrl()}; see the KServe V2 routes under /v2`));
  });

  /**
   * Decodes the body and answers when the core does. A large JSON body is
   * decoded in a worker; anything else at once (the body may be borrowed).
   */
  function infer(ex: Exchange, model: string, version: string | undefined, body: Uint8Array, borrowed: boolean, headerLength: number | undefined): void {
    if (headerLength === undefined && body.byteLength > LARGE_JSON_BYTES) {
      const own = borrowed ? body.slice() : body;
      core.offload('decodeV2Json', { body: own, model, ...(version !== undefined && { version }) }, [own.buffer as ArrayBuffer]).then(
        (decoded) => answer(ex, decoded),
        (error: unknown) => refuse(ex, model, error),
      );
      return;
    }
    let decoded: DecodedRequest;
    try {
      decoded = decodeInferRequest(body, headerLength, model, version);
    } catch (error) {
      bodies.release(body);
      refuse(ex, model, error);
      return;
    }
    answer(ex, decoded, body);
  }

  function refuse(ex: Exchange, model: string, error: unknown): void {
    core.requestRefused(model, error);
    sendError(ex, error);
  }

  /** `body`: what the inputs may be views of; once answered, nothing refers to it and it is given back. */
  function answer(ex: Exchange, { request, binaryOutputs }: DecodedRequest, body?: Uint8Array): void {
    if (ex.done) {
      if (body) bodies.release(body); // the client left while its body was decoded
      return;
    }
    core.infer(request)
      .then(
        (response) => {
          if (body) bodies.release(body);
          respond(ex, response, binaryOutputs);
        },
        (error: unknown) => {
          if (body) bodies.release(body);
          throw error;
        },
      )
      .catch((error: unknown) => sendError(ex, error)); // an encoding failure too: every request gets an answer
  }

  /** Encodes the response; large JSON outputs are encoded in a worker. */
  function respond(ex: Exchange, response: InferResponse, binaryOutputs: DecodedRequest['binaryOutputs']): void {
    if (ex.done) return;
    if (jsonOutputBytes(response, binaryOutputs) <= LARGE_JSON_BYTES) {
      sendEncoded(ex, encodeInferResponse(response, binaryOutputs));
      return;
    }
    // The outputs are views into their batch's buffer: copy out only this request's part to move.
    const outputs = response.outputs.map((output) => ({ ...output, data: output.data.slice() as TypedArray }));
    core
      .offload('encodeV2Response', { response: { ...response, outputs }, binaryOutputs }, buffersOf(outputs.map((output) => output.data)))
      .then((encoded) => sendEncoded(ex, encoded))
      .catch((error: unknown) => sendError(ex, error));
  }

  /** JSON alone, or Triton's binary layout: the JSON, then each binary output from where it lies. */
  function sendEncoded(ex: Exchange, { json, binary }: { json: string | Uint8Array; binary: readonly TypedArray[] }): void {
    if (binary.length === 0) {
      send(ex, 200, typeof json === 'string' ? json : [json], JSON_HEADERS);
      return;
    }
    const header = typeof json === 'string' ? Buffer.from(json, 'utf8') : json;
    const parts = [header, ...binary.map((data) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength))];
    send(ex, 200, parts, { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(header.byteLength) });
  }

  return new Promise((resolve, reject) => {
    const listen = app.listen as unknown as (host: string, port: number, flags: number, cb: (socket: ListenSocket | false) => void) => void;
    listen.call(app, options.host, options.port, LISTEN_EXCLUSIVE_PORT, (socket: ListenSocket | false) => {
      if (!socket) {
        reject(new Error(`cannot listen for HTTP on ${options.host}:${options.port} (is the port in use?)`));
        return;
      }
      let open = true;
      resolve({
        port: listenPort(socket),
        close() {
          if (open) closeListenSocket(socket);
          open = false;
        },
      });
    });
  });
}
