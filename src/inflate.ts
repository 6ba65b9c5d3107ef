/**
 * Inflating what clients send compressed, for both front ends (HTTP's
 * Content-Encoding, gRPC's grpc-encoding): on libuv's thread pool, so the
 * event loop never waits on zlib; never past a given size; and at most two
 * at once in the process, since a few kilobytes of gzip may grow to the
 * 64 MiB limit, and a burst of small compressed requests could otherwise
 * make the process hold many times that.
 */
import { gunzip, inflate, inflateRaw } from 'node:zlib';

import { ConcurrencyLimit } from './concurrency-limit.js';

export type Compression = 'gzip' | 'deflate';

const AT_ONCE = new ConcurrencyLimit(2);

/**
 * `bytes` inflated, in a buffer of their own. Rejects with zlib's error,
 * which `isPastLimit` tells apart when the output would pass `maxBytes`.
 * `deflate` is the zlib format, but a raw deflate stream, which some
 * clients send under that name, is read too.
 */
export function inflateBounded(bytes: Uint8Array, compression: Compression, maxBytes: number): Promise<Buffer> {
  const inflater = compression === 'gzip' ? gunzip : hasZlibHeader(bytes) ? inflate : inflateRaw;
  return AT_ONCE.run(
    () =>
      new Promise<Buffer>((resolve, reject) => {
        inflater(bytes, { maxOutputLength: Math.max(1, maxBytes) }, (error, plain) => (error ? reject(error) : resolve(plain)));
      }),
  );
}

/** Whether inflateBounded failed because the output would pass its limit (rather than on corrupt input). */
export const isPastLimit = (error: unknown): boolean => (error as NodeJS.ErrnoException | null)?.code === 'ERR_BUFFER_TOO_LARGE';

/** RFC 1950's two header bytes: method 8 (deflate), and a check that makes them a multiple of 31. */
function hasZlibHeader(bytes: Uint8Array): boolean {
  if (bytes.byteLength < 2) return true; // too short for either: let zlib name the problem
  const [cmf, flg] = bytes as unknown as [number, number];
  return (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && ((cmf << 8) | flg) % 31 === 0;
}
