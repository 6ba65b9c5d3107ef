/**
 * HTTP content codings, as tritonclient.http uses them: request bodies sent
 * compressed (`Content-Encoding: gzip` or `deflate`, its
 * `request_compression_algorithm`) and answers compressed for clients that
 * ask (`Accept-Encoding`, its `response_compression_algorithm`). zlib runs
 * on libuv's thread pool, so the event loop never waits on it; a body is
 * never inflated past the body limit (src/inflate.ts).
 */
import { createDeflate, createGzip } from 'node:zlib';

import { WeirError } from '../errors.js';
import { inflateBounded, isPastLimit } from '../inflate.js';

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

/** The body with its coding undone (src/inflate.ts), never past `maxBytes`: errors name the coding. */
export function decompressBody(body: Uint8Array, coding: Exclude<ContentCoding, 'identity'>, maxBytes: number): Promise<Buffer> {
  return inflateBounded(body, coding, maxBytes).catch((error: Error) => {
    throw isPastLimit(error)
      ? new WeirError('WEIR_BODY_TOO_LARGE', `the body decompresses (Content-Encoding ${coding}) past the limit of ${maxBytes} bytes`)
      : new WeirError('WEIR_INVALID_REQUEST', `the body cannot be decompressed as Content-Encoding ${coding}: ${error.message}`);
  });
}

/**
 * The coding to answer in, from an Accept-Encoding header: gzip or deflate,
 * whichever the client weighs more (gzip on a tie; `*` stands for codings it
 * does not name), or identity when it accepts neither.
 */
export function answerCoding(header: string): ContentCoding {
  if (header === '') return 'identity';
  // Every request asks this, and a client sends the same header each time: parse it once.
  if (header !== lastAccepted.header) lastAccepted = { header, coding: parseAcceptEncoding(header) };
  return lastAccepted.coding;
}

let lastAccepted: { header: string; coding: ContentCoding } = { header: '', coding: 'identity' };

function parseAcceptEncoding(header: string): ContentCoding {
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
