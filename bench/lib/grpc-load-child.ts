/**
 * The gRPC load generator: `callers` concurrent callers spread over
 * `channels` clients (one HTTP/2 connection each), each keeping one request
 * in flight: ModelInfer calls one after another (unary), or one
 * ModelStreamInfer stream per caller that gets the next request as soon as
 * the previous one is answered (stream). The callers run through the
 * warm-up straight into the measured window (window.ts), which counts the
 * answers that arrive inside it; then they stop sending, the requests in
 * flight are answered and the streams closed.
 *
 * Started by grpc-load.ts as its own process, pinned to the client's CPU;
 * reads a GrpcLoadRequest as JSON on stdin and prints a GrpcLoadResult as
 * JSON on stdout. Latencies are of OK answers only, kept exactly. An error
 * is a call's non-OK status, an answer with error_message, an answer that is
 * not 2 probabilities, or no answer within timeoutS.
 */
import * as grpc from '@grpc/grpc-js';

import type { GrpcErrors, GrpcLoadRequest, GrpcLoadResult } from './grpc-load.js';
import { checkInferResponse, connected, describeStatus, type Json, METHODS, newClient, prepared } from './grpc-client.js';
import { Latencies, openWindow, round } from './window.js';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input) as GrpcLoadRequest;
const bytes = Buffer.from(request.requestBase64, 'base64');
const timeoutMs = request.timeoutS * 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let phase: 'warmup' | 'measure' | 'drain' = 'warmup';
const latencies = new Latencies();
let answers = 0;
const errors: GrpcErrors = { total: 0, status: {}, stream_error_messages: 0, wrong_answers: 0, timeouts: 0, outside_window: 0, first: null };

/** Error kinds: a gRPC status name, or one of these. */
type Failure = { kind: 'status'; name: string; text: string } | { kind: 'stream_error_messages' | 'wrong_answers' | 'timeouts'; text: string };

/** One answer (or failure) to a request sent at `sent`. */
function answered(sent: number, failure: Failure | null): void {
  if (failure !== null && errors.first === null) errors.first = `${failure.kind === 'status' ? '' : `${failure.kind}: `}${failure.text}`.slice(0, 500);
  if (phase !== 'measure') {
    if (failure !== null) errors.outside_window += 1;
    return;
  }
  answers += 1;
  if (failure === null) {
    latencies.record(performance.now() - sent);
    return;
  }
  errors.total += 1;
  if (failure.kind === 'status') errors.status[failure.name] = (errors.status[failure.name] ?? 0) + 1;
  else errors[failure.kind] += 1;
}

const statusFailure = (error: { code?: number; details?: string; message?: string }): Failure => ({
  kind: 'status',
  name: error.code === undefined ? 'UNKNOWN' : (grpc.status[error.code] ?? String(error.code)),
  text: describeStatus(error),
});
const wrong = (problem: string | null): Failure | null => (problem === null ? null : { kind: 'wrong_answers', text: problem });
/** A stream's answer: error_message set, or a wrong answer, or null. */
const streamFailure = (response: Json): Failure | null =>
  response?.error_message ? { kind: 'stream_error_messages', text: String(response.error_message) } : wrong(checkInferResponse(response?.infer_response));

/** ModelInfer calls one after another until the drain; resolves when the last one is answered. */
function unaryCaller(client: grpc.Client): Promise<void> {
  return new Promise((done) => {
    const send = () => {
      if (phase === 'drain') return done();
      const sent = performance.now();
      client.makeUnaryRequest(METHODS.unary.path, prepared, METHODS.unary.responseDeserialize, bytes, { deadline: Date.now() + timeoutMs }, (error, response) => {
        answered(sent, error ? statusFailure(error) : wrong(checkInferResponse(response)));
        send();
      });
    };
    send();
  });
}

interface StreamCaller {
  /** When the request in flight was sent; null when none is. */
  sent: number | null;
  /** Gives up on the request in flight (a timeout): cancels the stream, which the caller reopens. */
  abandon(): void;
}

/**
 * One ModelStreamInfer stream with one request in flight until the drain,
 * then closed from this side. A stream that fails is counted (as the
 * failure of its request in flight, if any) and reopened.
 */
function streamCaller(client: grpc.Client, callers: Set<StreamCaller>): Promise<void> {
  return new Promise((done) => {
    const caller: StreamCaller = { sent: null, abandon: () => {} };
    callers.add(caller);
    const finish = () => {
      callers.delete(caller);
      done();
    };
    const open = () => {
      const call = client.makeBidiStreamRequest(METHODS.stream.path, prepared, METHODS.stream.responseDeserialize);
      let abandoned = false;
      const send = () => {
        caller.sent = performance.now();
        call.write(bytes);
      };
      call.on('data', (response: Json) => {
        const sent = caller.sent;
        if (sent === null) return answered(performance.now(), { kind: 'wrong_answers', text: 'an answer on a stream with no request in flight' });
        caller.sent = null;
        answered(sent, streamFailure(response));
        if (phase === 'drain') call.end();
        else send();
      });
      call.on('error', () => {}); // reported through 'status'
      call.on('status', (status: grpc.StatusObject) => {
        const sent = caller.sent;
        caller.sent = null;
        if (status.code !== grpc.status.OK && !abandoned) answered(sent ?? performance.now(), statusFailure(status));
        else if (status.code === grpc.status.OK && sent !== null) answered(sent, { kind: 'status', name: 'OK_WITHOUT_ANSWER', text: 'the stream ended OK with a request unanswered' });
        if (phase === 'drain') finish();
        else if (status.code === grpc.status.OK || abandoned) open();
        else setTimeout(open, 100); // not at full speed against a server that fails every stream
      });
      caller.abandon = () => {
        abandoned = true;
        call.cancel();
      };
      send();
    };
    open();
  });
}

const clients = Array.from({ length: request.channels }, () => newClient(request.address));
await Promise.all(clients.map((client) => connected(client, timeoutMs)));

const streams = new Set<StreamCaller>();
const callers = Array.from({ length: request.callers }, (_, i) => {
  const client = clients[i % clients.length] as grpc.Client;
  return request.mode === 'unary' ? unaryCaller(client) : streamCaller(client, streams);
});
// Streams have no deadline: a request unanswered after timeoutS is a timeout, and its stream is reopened.
const watchdog = setInterval(() => {
  const now = performance.now();
  for (const caller of streams) {
    if (caller.sent !== null && now - caller.sent > timeoutMs) {
      answered(caller.sent, { kind: 'timeouts', text: `no answer on the stream within ${request.timeoutS} s` });
      caller.sent = null;
      caller.abandon();
    }
  }
}, 250);

if (request.warmupSeconds > 0) await sleep(request.warmupSeconds * 1000);
const window = await openWindow(request);
phase = 'measure';
await sleep(request.seconds * 1000);
phase = 'drain';
const figures = await window.close(answers);

// Every caller stops once its request in flight is answered (or times out).
const drained = await Promise.race([Promise.all(callers).then(() => true), sleep(timeoutMs + 5000).then(() => false)]);
clearInterval(watchdog);
for (const client of clients) client.close();

const { seconds, mean_batch_size, ...cpu } = figures;
const output: GrpcLoadResult = {
  mode: request.mode,
  callers: request.callers,
  channels: request.channels,
  requests: answers,
  requests_ok: latencies.count,
  seconds,
  requests_per_s: round(answers / seconds, 0),
  latency_ms: latencies.summary(),
  errors,
  ...cpu,
  drained,
};
if (mean_batch_size !== undefined) output.mean_batch_size = mean_batch_size;
process.stdout.write(`${JSON.stringify(output)}\n`);
process.exit(0);
