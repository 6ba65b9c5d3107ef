/**
 * A KServe V2 gRPC client for the tests, built from proto/ with
 * @grpc/proto-loader the way any client would be (int64 as strings, bytes
 * as Buffers): promise-returning unary calls that reject with the call's
 * status, a bidirectional stream whose answers can be awaited one by one,
 * and raw tensor bytes in both directions.
 */
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { expect } from 'vitest';

import { LOADER_OPTIONS, SERVICE_PROTO } from '../../dist/grpc/proto.js';

// Messages are checked field by field; `any` keeps those checks short.
export type Json = any;

// The server's own loader options: the same message shapes on both sides.
const definition = loadSync(SERVICE_PROTO, LOADER_OPTIONS);
const ServiceClient = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;

const service = (definition['inference.GRPCInferenceService'] ?? {}) as unknown as Record<string, grpc.MethodDefinition<Json, Json>>;
const STREAM_METHOD = service.ModelStreamInfer as grpc.MethodDefinition<Json, Json>;
/** ModelInfer's definition: its serializer makes request bytes to forge from. */
export const inferenceMethod = service.ModelInfer as grpc.MethodDefinition<Json, Json>;

export type Unary = 'ServerLive' | 'ServerReady' | 'ModelReady' | 'ServerMetadata' | 'ModelMetadata' | 'ModelInfer' | 'ModelConfig';

export class GrpcClient {
  readonly client: grpc.Client;

  constructor(port: number) {
    this.client = new ServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }

  /** A unary call; `deadlineMs` from now. Rejects with the ServiceError (code, details). */
  call(method: Unary, request: Json = {}, deadlineMs?: number): Promise<Json> {
    return new Promise((done, fail) => {
      const options: grpc.CallOptions = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
      const fn = (this.client as unknown as Record<string, Function>)[method] as Function;
      fn.call(this.client, request, options, (error: grpc.ServiceError | null, response: Json) => (error ? fail(error) : done(response)));
    });
  }

  /** A unary call whose grpc-js call object is returned too, to cancel it. */
  cancellable(method: Unary, request: Json): { call: grpc.ClientUnaryCall; reply: Promise<Json> } {
    let call!: grpc.ClientUnaryCall;
    const reply = new Promise((done, fail) => {
      const fn = (this.client as unknown as Record<string, Function>)[method] as Function;
      call = fn.call(this.client, request, (error: grpc.ServiceError | null, response: Json) => (error ? fail(error) : done(response)));
    });
    return { call, reply };
  }

  stream(): InferStream {
    return new InferStream((this.client as unknown as { ModelStreamInfer(): grpc.ClientDuplexStream<Json, Json> }).ModelStreamInfer());
  }

  /** ModelStreamInfer whose requests are written as bytes serialized (or forged) by the caller. */
  rawStream(): InferStream {
    const method = STREAM_METHOD;
    return new InferStream(this.client.makeBidiStreamRequest(method.path, (bytes: Buffer) => bytes, method.responseDeserialize));
  }

  close(): void {
    this.client.close();
  }
}

/** ModelStreamInfer from the client's side: answers are queued as they arrive. */
export class InferStream {
  readonly answers: Json[] = [];
  /** Resolves with the stream's final status (OK once the server has ended it). */
  readonly status: Promise<grpc.StatusObject>;
  private waiter: (() => void) | null = null;

  constructor(readonly call: grpc.ClientDuplexStream<Json, Json>) {
    call.on('data', (answer: Json) => {
      this.answers.push(answer);
      this.waiter?.();
    });
    // The final status arrives as 'status'; a non-OK one also as 'error', which must be handled.
    call.on('error', () => {});
    this.status = new Promise((done) => call.on('status', done));
  }

  write(request: Json): void {
    this.call.write(request);
  }

  /** Waits until `count` answers have arrived in all. */
  async received(count: number): Promise<Json[]> {
    while (this.answers.length < count) {
      await new Promise<void>((done) => (this.waiter = done));
      this.waiter = null;
    }
    return this.answers.slice(0, count);
  }
}

/** The rejection of a call: fails the test when the call succeeds. */
export async function grpcFailure(reply: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await reply;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** Asserts a failed call's status code and that its details hold every fragment. */
export async function expectStatus(reply: Promise<unknown>, code: grpc.status, ...fragments: string[]): Promise<grpc.ServiceError> {
  const error = await grpcFailure(reply);
  expect({ code: grpc.status[error.code], details: error.details }).toMatchObject({ code: grpc.status[code] });
  for (const fragment of fragments) expect(error.details).toContain(fragment);
  return error;
}

/** A TypedArray's bytes as a Buffer, without copying. */
export const rawBytes = (view: ArrayBufferView): Buffer => Buffer.from(view.buffer, view.byteOffset, view.byteLength);

/** A ModelInferRequest giving every input raw. */
export function rawRequest(model: string, inputs: Array<{ name: string; datatype: string; shape: number[]; data: ArrayBufferView }>, extra: Json = {}): Json {
  return {
    model_name: model,
    inputs: inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    raw_input_contents: inputs.map(({ data }) => rawBytes(data)),
    ...extra,
  };
}

type ArrayOf<T> = { new (buffer: ArrayBuffer): T };

/** The raw output `name` of a ModelInferResponse as a TypedArray (copied, so aligned). */
export function rawOutput<T>(response: Json, name: string, array: ArrayOf<T>): T {
  const index = (response.outputs as Json[]).findIndex((output) => output.name === name);
  if (index < 0) throw new Error(`the response has no output '${name}'`);
  const bytes = response.raw_output_contents[index] as Buffer;
  return new array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
}

/** rawOutput as plain numbers (INT64 and UINT64 through Number). */
export function rawNumbers(response: Json, name: string, array: ArrayOf<ArrayLike<number | bigint>>): number[] {
  return Array.from(rawOutput(response, name, array), Number);
}

/** Stops what a test file started, in order; a part its setup never made is skipped. */
export async function stopServing(
  parts: { client?: GrpcClient; server?: { close(): Promise<void> }; http?: { server: { close(): void } }; core?: { stop(): Promise<void> }; repository?: string },
  removeRepository: (root: string) => Promise<void>,
): Promise<void> {
  parts.client?.close();
  await parts.server?.close();
  parts.http?.server.close();
  await parts.core?.stop();
  if (parts.repository) await removeRepository(parts.repository);
}
