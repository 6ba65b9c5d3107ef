/**
 * Drives a server's KServe V2 gRPC front end with grpc-js callers in a child
 * process pinned to the client's CPU (bench/lib/grpc-load-child.ts), and
 * times the server's CPU from /proc over the measured window, as load.ts
 * does for HTTP.
 */
import { join } from 'node:path';

import { runJsonChild } from './children.js';
import type { GrpcMode } from './grpc-client.js';
import type { LoadResult } from './load.js';
import type { WindowTarget } from './window.js';

/** What the load child reads on stdin: the options, with the request as base64 and a stream timeout. */
export type GrpcLoadRequest = Omit<GrpcLoadOptions, 'request' | 'cpus'> & {
  timeoutS: number;
  /** The serialized ModelInferRequest every caller sends. */
  requestBase64: string;
};

export interface GrpcErrors {
  /** Errors among the answers in the measured window: statuses + stream_error_messages + wrong_answers + timeouts. */
  total: number;
  /** Non-OK statuses by name (a unary call's, or a stream's that failed with a request in flight). */
  status: Record<string, number>;
  /** Stream answers with error_message set. */
  stream_error_messages: number;
  /** OK answers that are not 2 FP32 probabilities summing to 1. */
  wrong_answers: number;
  /** Stream requests unanswered within timeoutS (unary calls have a deadline: DEADLINE_EXCEEDED). */
  timeouts: number;
  /** Errors of any kind in the warm-up or the drain, not in `total`. */
  outside_window: number;
  /** The first error seen, as text; null when none. */
  first: string | null;
}

/** The HTTP load's figures (LoadResult), with gRPC's counts and errors. */
export type GrpcLoadResult = Omit<LoadResult, 'requests_2xx' | 'errors'> & {
  mode: GrpcMode;
  callers: number;
  channels: number;
  /** Answers of any kind (OK or not) that arrived in the measured window. */
  requests: number;
  /** OK answers (to which latency_ms refers). */
  requests_ok: number;
  errors: GrpcErrors;
  /** Every request in flight was answered after the window (false: some were left unanswered). */
  drained: boolean;
};

export interface GrpcLoadOptions extends WindowTarget {
  address: string;
  mode: GrpcMode;
  callers: number;
  channels: number;
  seconds: number;
  warmupSeconds: number;
  request: Buffer;
  /** taskset CPU list of the load generator. */
  cpus: string | undefined;
}

export async function runGrpcLoad(options: GrpcLoadOptions): Promise<GrpcLoadResult> {
  const { request: bytes, cpus, ...rest } = options;
  const request: GrpcLoadRequest = { ...rest, timeoutS: 10, requestBase64: bytes.toString('base64') };
  return runJsonChild<GrpcLoadResult>(join(import.meta.dirname, 'grpc-load-child.ts'), {
    cpus,
    input: request,
    timeoutMs: (options.seconds + options.warmupSeconds + 60) * 1000,
    what: `gRPC load generator (${options.mode})`,
  });
}
