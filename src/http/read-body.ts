/**
 * Reading a request body from uWebSockets.js: chunks are copied as they
 * arrive (uWS reuses their memory), straight into one buffer when the length
 * is declared; the size is bounded, and a body that arrives too slowly is
 * refused and its connection closed.
 *
 * `alignAt` places the body so that its byte at that offset (where Triton's
 * binary tensors begin, after the JSON header) is 8-byte aligned in memory:
 * the tensors can then be viewed in place instead of copied out.
 */
import { WeirError } from '../errors.js';
import { type Exchange, sendError } from './respond.js';

export interface BodyLimits {
  maxBodyBytes: number;
  bodyTimeoutMs: number;
}

/** Resolves with the whole body, or answers the error itself and resolves with null. */
export function readBody(ex: Exchange, contentLength: string, limits: BodyLimits, alignAt = 0): Promise<Uint8Array | null> {
  const declared = /^\d+$/.test(contentLength) ? Number(contentLength) : -1;
  if (declared > limits.maxBodyBytes) {
    sendError(ex, new WeirError('WEIR_BODY_TOO_LARGE', `the body's ${declared} bytes exceed the limit of ${limits.maxBodyBytes}`), true);
    return Promise.resolve(null);
  }
  const pad = (8 - (Math.abs(alignAt) % 8)) % 8;
  return new Promise((resolve) => {
    // With a declared length the chunks land in place; otherwise they are kept and joined at the end.
    const into = declared >= 0 ? new Uint8Array(pad + declared) : null;
    const chunks: Uint8Array[] = [];
    let size = 0;
    // The connection is dropped after these errors: the rest of the body is not wanted.
    const fail = (error: WeirError) => {
      clearTimeout(timer);
      sendError(ex, error, true);
      resolve(null);
    };
    const timer = setTimeout(() => {
      fail(new WeirError('WEIR_BODY_TIMEOUT', `the body did not arrive within ${limits.bodyTimeoutMs} ms (${size} bytes received)`));
    }, limits.bodyTimeoutMs);
    ex.onAbort = () => {
      clearTimeout(timer);
      resolve(null);
    };
    ex.res.onData((chunk, isLast) => {
      try {
        receive(chunk, isLast);
      } catch (error) {
        // A throw here would escape into uWS and take the process down.
        fail(new WeirError('WEIR_INTERNAL', `reading the body failed: ${(error as Error).message}`));
      }
    });
    const receive = (chunk: ArrayBuffer, isLast: boolean) => {
      if (ex.done) {
        clearTimeout(timer);
        return;
      }
      const bytes = new Uint8Array(chunk);
      if (size + bytes.byteLength > (into ? declared : limits.maxBodyBytes)) {
        fail(new WeirError('WEIR_BODY_TOO_LARGE', `the body exceeds ${into ? `its declared ${declared} bytes` : `the limit of ${limits.maxBodyBytes} bytes`}`));
        return;
      }
      if (into) into.set(bytes, pad + size);
      else chunks.push(bytes.slice());
      size += bytes.byteLength;
      if (!isLast) return;
      clearTimeout(timer);
      if (into) {
        resolve(into.subarray(pad, pad + size));
        return;
      }
      const joined = new Uint8Array(pad + size);
      let offset = pad;
      for (const part of chunks) {
        joined.set(part, offset);
        offset += part.byteLength;
      }
      resolve(joined.subarray(pad));
    };
  });
}
