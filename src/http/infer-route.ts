/**
 * POST /v2/models/{m}[/versions/{v}]/infer: reads the body, decodes it, runs
 * it through the core and answers. The main thread touches tensor bytes as
 * little as it can: a large JSON body is decoded, and a large JSON answer
 * encoded, in a worker; binary tensors are read into pooled shared memory,
 * which the workers read in place and which is given back once the core
 * has answered; binary outputs are written from where they lie.
 */
import type { InferenceCore, InferReply, InferResponse } from '../core/core.js';
import { type TypedArray, buffersOf } from '../tensors/datatypes.js';
import { contentCoding } from './content-coding.js';
import type { BodyListener, BodyReader } from './read-body.js';
import { type Exchange, type Exchanges, JSON_HEADERS, send, sendError } from './respond.js';
import type { HttpRequest, HttpResponse } from './uws.js';
import { type DecodedRequest, decodeInferRequest, encodeInferResponse } from './v2-codec.js';
import { DECODE_V2_JSON, ENCODE_V2_RESPONSE, LARGE_JSON_BYTES } from './v2-jobs.js';

/** Header names as bytes: uWS converts a string argument to UTF-8 on every call. */
const HEADER_LENGTH = Buffer.from('inference-header-content-length');
const CONTENT_LENGTH = Buffer.from('content-length');
const CONTENT_ENCODING = Buffer.from('content-encoding');

/** Binary bodies from this size go to shared memory; copying smaller ones costs less than sharing them. */
const SHARED_BODY_BYTES = 4096;

/** Which model and version a request names (its path parameters, decoded). */
export type InferTarget = (req: HttpRequest) => { model: string; version: string | undefined };

export function inferRoute(core: InferenceCore, bodies: BodyReader, exchanges: Exchanges, target: InferTarget): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    const ex = exchanges.start(res, req);
    try {
      // uWS's request object lives only until this handler returns: read it all now.
      const { model, version } = target(req);
      const headerLength = req.getHeader(HEADER_LENGTH);
      const declared = headerLength === '' ? undefined : Number(headerLength);
      // A malformed header length is refused by the decoder; here it only places the body.
      const alignAt = Number.isSafeInteger(declared) ? (declared as number) : 0;
      // A JSON-only body is parsed at once, so it may be borrowed; binary tensors are viewed in place, so not those.
      const borrow = declared === undefined;
      const contentLength = req.getHeader(CONTENT_LENGTH);
      const shared = !borrow && Number(contentLength) >= SHARED_BODY_BYTES;
      const coding = contentCoding(req.getHeader(CONTENT_ENCODING));
      bodies.read(ex, contentLength, new InferExchange(core, bodies, ex, model, version, declared), { alignAt, borrow, shared, coding });
    } catch (error) {
      sendError(ex, error);
    }
  };
}

/**
 * One inference request from its body to its answer: one object that the
 * body reader and then the core call back, where a closure per step was
 * garbage on every request.
 */
class InferExchange implements BodyListener, InferReply {
  /** What the inputs may be views of; given back once the core has answered and nothing refers to it. */
  private body: Uint8Array | undefined;
  /** Which outputs go as binary: set from the decoded request before the core is asked. */
  private binaryOutputs!: DecodedRequest['binaryOutputs'];

  constructor(
    private readonly core: InferenceCore,
    private readonly bodies: BodyReader,
    private readonly ex: Exchange,
    private readonly model: string,
    private readonly version: string | undefined,
    /** Inference-Header-Content-Length, when the body carries binary tensors. */
    private readonly headerLength: number | undefined,
  ) {}

  /** A large JSON body is decoded in a worker; anything else at once (the body may be borrowed). */
  onBody(body: Uint8Array, borrowed: boolean): void {
    const { model, version } = this;
    if (this.headerLength === undefined && body.byteLength > LARGE_JSON_BYTES) {
      const own = borrowed ? body.slice() : body;
      this.core.offload(DECODE_V2_JSON, { body: own, model, ...(version !== undefined && { version }) }, [own.buffer as ArrayBuffer]).then(
        (decoded) => this.infer(decoded),
        (error: unknown) => this.refuse(error),
      );
      return;
    }
    let decoded: DecodedRequest;
    try {
      decoded = decodeInferRequest(body, this.headerLength, model, version);
    } catch (error) {
      this.bodies.release(body);
      this.refuse(error);
      return;
    }
    this.body = body;
    this.infer(decoded);
  }

  answer(response: InferResponse): void {
    try {
      this.releaseBody();
      this.respond(response);
    } catch (error) {
      sendError(this.ex, error); // an encoding failure too: every request gets an answer
    }
  }

  fail(error: unknown): void {
    this.releaseBody();
    sendError(this.ex, error);
  }

  private infer({ request, binaryOutputs }: DecodedRequest): void {
    if (this.ex.done) {
      this.releaseBody(); // the client left while its body was decoded
      return;
    }
    this.binaryOutputs = binaryOutputs;
    request.cancellation = this.ex;
    this.core.inferInto(request, this);
  }

  private refuse(error: unknown): void {
    this.core.requestRefused(this.model, error);
    sendError(this.ex, error);
  }

  private releaseBody(): void {
    if (this.body) this.bodies.release(this.body);
    this.body = undefined;
  }

  /** Encodes the response; large JSON outputs are encoded in a worker. */
  private respond(response: InferResponse): void {
    const { ex, binaryOutputs } = this;
    if (ex.done) return;
    if (jsonOutputBytes(response, binaryOutputs) <= LARGE_JSON_BYTES) {
      sendEncoded(ex, encodeInferResponse(response, binaryOutputs));
      return;
    }
    // The outputs are views into their batch's buffer: copy out only this request's part to move.
    const outputs = response.outputs.map((output) => ({ ...output, data: output.data.slice() as TypedArray }));
    this.core
      .offload(ENCODE_V2_RESPONSE, { response: { ...response, outputs }, binaryOutputs }, buffersOf(outputs.map((output) => output.data)))
      .then((encoded) => sendEncoded(ex, encoded))
      .catch((error: unknown) => sendError(ex, error));
  }
}

/** Bytes of the outputs that will be written as JSON numbers rather than appended as binary. */
function jsonOutputBytes(response: InferResponse, binaryOutputs: DecodedRequest['binaryOutputs']): number {
  if (binaryOutputs === 'all') return 0;
  let bytes = 0;
  for (const output of response.outputs) if (!binaryOutputs.has(output.name)) bytes += output.data.byteLength;
  return bytes;
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
