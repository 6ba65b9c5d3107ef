/**
 * HTTP content codings, as tritonclient.http uses them: request bodies sent
 * compressed (`Content-Encoding: gzip` or `deflate`, its
 * `request_compression_algorithm`) and answers compressed for clients that
 * ask (`Accept-Encoding`, its `response_compression_algorithm`). zlib runs
 * on libuv's thread pool, so the event loop never waits on it; a body is
 * never inflated past the body limit, so a small one cannot expand into
 * more memory than an uncompressed one may hold.
 */
import { createDeflate, createGzip, gunzip, inflate, inflateRaw } from 'node:zlib';

import { WeirError } from '../errors.js';

export type ContentCoding = 'identity' | 'gzip' | 'deflate';

const CODINGS: Readonly<Record<string, ContentCoding>> = { identity: 'identity', gzip: 'gzip', 'x-gzip': 'gzip', deflate: 'deflate' };

/**
 * The coding a Content-Encoding header names ('' is identity). Codings are
 * case-insensitive, and `x-gzip` is gzip (RFC 9110 §8.4.1); a list may
 * stack identity on one coding, but not two real ones.
 */
export function contentCoding(header: string): ContentCoding {
  if (header === '') return 'identity';
  let coding: ContentCoding = 'identity';
  for (const name of header.split(',')) {
    const found = CODINGS[name.trim().toLowerCase()];
    if (found === undefined || (found !== 'identity' && coding !== 'identity')) {
      throw new WeirError('WEIR_UNSUPPORTED_ENCODING', `Content-Encoding '${header}' is not supported; expected gzip, deflate or identity (one coding)`);
    }
    if (found !== 'identity') coding = found;
  }
  return coding;
}

/**
 * The body with its coding undone, in a buffer of its own. `deflate` is the
 * zlib format (RFC 9110), but a raw deflate stream, which some clients send
 * under that name, is read too.
 */
export function decompressBody(body: Uint8Array, coding: Exclude<ContentCoding, 'identity'>, maxBytes: number): Promise<Buffer> {
  const inflater = coding === 'gzip' ? gunzip : hasZlibHeader(body) ? inflate : inflateRaw;
  return new Promise((resolve, reject) => {
    inflater(body, { maxOutputLength: Math.max(1, maxBytes) }, (error, plain) => {
      if (!error) {
        resolve(plain);
        return;
      }
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        reject(new WeirError('WEIR_BODY_TOO_LARGE', `the body decompresses (Content-Encoding ${coding}) past the limit of ${maxBytes} bytes`));
        return;
      }
      reject(new WeirError('WEIR_INVALID_REQUEST', `the body cannot be decompressed as Content-Encoding ${coding}: ${error.message}`));
    });
  });
}

/** RFC 1950's two header bytes: method 8 (deflate), and a check that makes them a multiple of 31. */
function hasZlibHeader(body: Uint8Array): boolean {
  if (body.byteLength < 2) return true; // too short for either: let zlib name the problem
  const [cmf, flg] = body as unknown as [number, number];
  return (cmf & 0x0f) === 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 === 0;
}

/**
 * The coding to answer in, from an Accept-Encoding header: gzip or deflate,
 * whichever the client weighs more (gzip on a tie; `*` stands for codings it
 * does not name), or identity when it accepts neither.
 */
export function answerCoding(header: string): ContentCoding {
  if (header === '') return 'identity';
  const weights: Record<string, number> = {};
  for (const entry of header.split(',')) {
    const [name = '', ...params] = entry.split(';');
    const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)?.[1]).find((v) => v !== undefined);
    const weight = q === undefined ? 1 : Number(q);
    weights[name.trim().toLowerCase()] = Number.isFinite(weight) ? weight : 0;
  }
  const weightOf = (coding: string) => weights[coding] ?? (coding === 'gzip' ? weights['x-gzip'] : undefined) ?? weights['*'] ?? 0;
  const gzipWeight = weightOf('gzip');
  const deflateWeight = weightOf('deflate');
  if (gzipWeight <= 0 && deflateWeight <= 0) return 'identity';
  return gzipWeight >= deflateWeight ? 'gzip' : 'deflate';
}

/**
 * `parts`, one after the other, compressed (deflate as the zlib format, as
 * HTTP defines it), as zlib's output chunks: neither the parts nor the
 * chunks are joined, which for a large binary answer would be a copy of it
 * on the event loop.
 */
export function compressBody(parts: readonly Uint8Array[], coding: Exclude<ContentCoding, 'identity'>): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const zlib = coding === 'gzip' ? createGzip() : createDeflate();
    const chunks: Buffer[] = [];
    zlib.on('data', (chunk: Buffer) => chunks.push(chunk));
    zlib.once('end', () => resolve(chunks));
    zlib.once('error', reject);
    for (const part of parts) zlib.write(part);
    zlib.end();
  });
}
