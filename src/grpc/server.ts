/**
 * The KServe V2 gRPC front end (GRPCInferenceService, proto/). Like the HTTP
 * one it only translates: each call decodes its message, calls the core,
 * and encodes the answer; errors map through the error table to a gRPC
 * status. It runs on the project's own HTTP/2 transport (transport.ts),
 * which costs a fraction of grpc-js's CPU per call. Message sizes are
 * bounded by maxMessageBytes both ways (larger ones are RESOURCE_EXHAUSTED),
 * and a call's deadline bounds how long its request may wait in the
 * model's queue. Inference requests with large typed inputs are decoded in
 * a worker (large-requests.ts).
 */
import type { MethodDefinition } from '@grpc/proto-loader';

import type { InferenceCore } from '../core/core.js';
import { type InferContext, grpcError, inferMessage, streamInfer } from './infer-call.js';
import { type UndecodedRequest, deferringLargeInputs } from './large-requests.js';
import { decodeModelInferRequest, encodeModelInferResponse, encodeModelStreamInferResponse } from './infer-wire.js';
import type { ModelInferRequest, ModelInferResponse, ModelRequest, ModelStreamInferResponse } from './messages.js';
import { toModelConfig } from './model-config.js';
import { inferenceService } from './proto.js';
import { type Method, listen } from './transport.js';

export interface GrpcServerOptions {
  host: string;
  port: number;
  /** Largest message received or sent, in bytes. */
  maxMessageBytes: number;
}

export interface GrpcServer {
  /** The port listened on (useful with port 0). */
  readonly port: number;
  /** Stops accepting calls and waits for those in flight (cut off after SHUTDOWN_GRACE_MS). */
  close(): Promise<void>;
}

/** How long close() lets calls in flight finish before cutting them off (an open stream may never end). */
export const SHUTDOWN_GRACE_MS = 5000;

/** Extensions reported by ServerMetadata: binary_tensor_data is HTTP's; gRPC has raw contents natively. */
const EXTENSIONS = ['model_configuration'];

/** ModelRequest's version: '' means none was given. */
const version = (request: ModelRequest): string | undefined => (request.version === '' ? undefined : request.version);

export async function startGrpcServer(core: InferenceCore, options: GrpcServerOptions): Promise<GrpcServer> {
  const service = inferenceService();
  /** A method's path and proto-loader's serializers. */
  const codecs = (name: string) => {
    const { path, requestDeserialize, responseSerialize } = service[name] as MethodDefinition<object, object>;
    return { path, decode: requestDeserialize, encode: (message: unknown) => responseSerialize(message as object) };
  };
  const unary = (name: string, answer: (request: never, remainingMs: number | undefined) => unknown): Method => ({
    kind: 'unary',
    ...codecs(name),
    answer: (request, call) => answer(request as never, call.remainingMs()),
  });
  // The inference messages have their own codec (infer-wire.ts; typed contents go to protobufjs); requests with large typed inputs are left for a worker.
  const protobufDecode = codecs('ModelInfer').decode;
  const decodeInfer = deferringLargeInputs((bytes) => decodeModelInferRequest(bytes) ?? protobufDecode(bytes));
  const context: InferContext = { core };
  const methods: Method[] = [
    unary('ServerLive', () => ({ live: core.live() })),
    unary('ServerReady', () => ({ ready: core.ready() })),
    unary('ServerMetadata', () => {
      const { name, version: serverVersion } = core.serverMetadata();
      return { name, version: serverVersion, extensions: EXTENSIONS };
    }),
    unary('ModelReady', (request: ModelRequest) => ({ ready: core.modelReady(request.name, version(request)) })),
    unary('ModelMetadata', (request: ModelRequest) => core.modelMetadata(request.name, version(request))),
    unary('ModelConfig', (request: ModelRequest) => ({ config: toModelConfig(core.modelConfig(request.name, version(request))) })),
    {
      kind: 'unary',
      path: codecs('ModelInfer').path,
      decode: decodeInfer,
      encode: (response) => encodeModelInferResponse(response as ModelInferResponse),
      answer: (request, call) => inferMessage(context, request as ModelInferRequest | UndecodedRequest, call),
    },
    {
      kind: 'bidi',
      path: codecs('ModelStreamInfer').path,
      decode: decodeInfer,
      encode: (answer) => encodeModelStreamInferResponse(answer as ModelStreamInferResponse),
      open: (stream) => streamInfer(context, stream),
    },
  ];
  const transport = await listen({ host: options.host, port: options.port, maxMessageBytes: options.maxMessageBytes, methods, toStatus: grpcError });
  return { port: transport.port, close: () => transport.close(SHUTDOWN_GRACE_MS) };
}
