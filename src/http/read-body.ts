/**
 * Reading a request body from uWebSockets.js: chunks are copied as they
 * arrive (uWS reuses their memory), the size is bounded, and a body that
 * arrives too slowly is refused and its connection closed.
 */
import { WeirError } from '../errors.js';
import { type Exchange, sendError } from './respond.js';

export interface BodyLimits {
  maxBodyBytes: number;
  bodyTimeoutMs: number;
}

/** Resolves with the whole body, or answers the error itself and resolves with null. */
export function readBody(ex: Exchange, contentLength: string, limits: BodyLimits): Promise<Uint8Array | null> {
  const declared = contentLength === '' ? 0 : Number(contentLength);
  if (declared > limits.maxBodyBytes) {
    sendError(ex, new WeirError('WEIR_BODY_TOO_LARGE', `the body's ${declared} bytes exceed the limit of ${limits.maxBodyBytes}`), true);
    return Promise.resolve(null);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
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
      if (ex.done) {
        clearTimeout(timer);
        return;
      }
      size += chunk.byteLength;
      if (size > limits.maxBodyBytes) {
        fail(new WeirError('WEIR_BODY_TOO_LARGE', `the body exceeds the limit of ${limits.maxBodyBytes} bytes`));
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) {
        clearTimeout(timer);
        resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
      }
    });
  });
}
