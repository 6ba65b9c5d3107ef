/**
 * HTTP clients for the front-end tests: fetch with the body read once (text,
 * JSON, bytes), Triton's binary tensor layout in both directions, and a raw
 * socket client for what fetch cannot do (stalling, chunked bodies, hanging
 * up mid-request, watching the server close the connection).
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';

import type { InferenceCore } from '../../dist/index.js';
import { type HttpServer, startHttpServer } from '../../dist/http/server.js';

// Response bodies are checked field by field; `any` keeps those checks short.
export type Json = any;

export interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: Json;
}

export interface Listening {
  server: HttpServer;
  port: number;
  base: string;
}

export async function listen(core: InferenceCore, limits: { maxBodyBytes?: number; bodyTimeoutMs?: number } = {}): Promise<Listening> {
  const server = await startHttpServer(core, {
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: limits.maxBodyBytes ?? 64 * 1024 * 1024,
    bodyTimeoutMs: limits.bodyTimeoutMs ?? 30_000,
  });
  return { server, port: server.port, base: `http://127.0.0.1:${server.port}` };
}

export async function call(url: string, init: RequestInit = {}): Promise<Reply> {
  const response = await fetch(url, init);
  const body = Buffer.from(await response.arrayBuffer());
  const text = body.toString('utf8');
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, body, text, json };
}

/** POSTs a JSON value (or a string as it is). */
export function postJson(url: string, value: unknown): Promise<Reply> {
  return call(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof value === 'string' ? value : JSON.stringify(value),
  });
}

/** Bytes of a TypedArray, without copying. */
export function bytesOf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/** Triton's binary layout: the JSON header, then each tensor's bytes. */
export function binaryBody(header: object, tensors: ArrayBufferView[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...tensors.map(bytesOf)]), headerLength: json.byteLength };
}

/** POSTs a binary-extension body; `headerLength` overrides the Inference-Header-Content-Length sent. */
export function postBinary(url: string, header: object, tensors: ArrayBufferView[], headerLength?: number): Promise<Reply> {
  const encoded = binaryBody(header, tensors);
  return call(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(headerLength ?? encoded.headerLength) },
    body: encoded.body,
  });
}

/**
 * Splits a binary-extension response: its JSON header (Inference-Header-Content-Length
 * bytes) and, for each output with parameters.binary_data_size, its bytes, by name.
 */
export function splitBinaryResponse(reply: Reply): { json: Json; binary: Map<string, Buffer> } {
  const headerLength = Number(reply.headers.get('inference-header-content-length'));
  if (!Number.isInteger(headerLength)) throw new Error(`no Inference-Header-Content-Length in a ${reply.status} response: ${reply.text.slice(0, 200)}`);
  const json = JSON.parse(reply.body.subarray(0, headerLength).toString('utf8')) as Json;
  const binary = new Map<string, Buffer>();
  let offset = headerLength;
  for (const output of json.outputs as Json[]) {
    const size = output.parameters?.binary_data_size as number | undefined;
    if (size === undefined) continue;
    binary.set(output.name as string, reply.body.subarray(offset, offset + size));
    offset += size;
  }
  if (offset !== reply.body.byteLength) throw new Error(`binary outputs add up to ${offset - headerLength} bytes, the body has ${reply.body.byteLength - headerLength}`);
  return { json, binary };
}

export const float32s = (bytes: Buffer): number[] => Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
export const int64s = (bytes: Buffer): number[] => Array.from(new BigInt64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), Number);

export interface RawResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
  json: Json;
}

/**
 * One raw TCP connection to the server. `response()` resolves with the first
 * complete HTTP response (Content-Length framed); `closed` resolves when the
 * connection ends, whoever closed it. Socket errors (EPIPE, ECONNRESET when the
 * server hangs up on a body still being written) are recorded, not thrown.
 */
export class RawClient {
  readonly socket: net.Socket;
  readonly connected: Promise<void>;
  readonly closed: Promise<void>;
  readonly errors: string[] = [];
  private received = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private isClosed = false;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.connected = new Promise((resolve) => this.socket.once('connect', () => resolve()));
    this.closed = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.isClosed = true;
        this.waiter?.();
        resolve();
      }),
    );
    this.socket.on('error', (error: NodeJS.ErrnoException) => this.errors.push(error.code ?? error.message));
    this.socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.waiter?.();
    });
  }

  write(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The first complete response; rejects if the connection closes before one arrived. */
  async response(): Promise<RawResponse> {
    for (;;) {
      const parsed = parseResponse(this.received);
      if (parsed) return parsed;
      if (this.isClosed) throw new Error(`the connection closed after ${this.received.byteLength} bytes without a complete response: ${JSON.stringify(this.received.toString('latin1').slice(0, 300))} (socket errors: ${this.errors.join(', ') || 'none'})`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = null;
    }
  }
}

function parseResponse(received: Buffer): RawResponse | null {
  const end = received.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine = '', ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  if (received.byteLength < end + 4 + length) return null;
  const body = received.subarray(end + 4, end + 4 + length).toString('utf8');
  let json: Json;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body, json };
}

/** Request head for a raw POST. */
export function postHead(path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines.join('')}\r\n`;
}

/**
 * A sample's value from Prometheus text: the line named `name` whose labels
 * include every one in `labels`; undefined when there is none.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[key as string] = value as string;
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}
