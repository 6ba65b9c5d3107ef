/**
 * The KServe V2 gRPC front end (GRPCInferenceService, proto/). Like the HTTP
 * one it only translates: each call decodes its message, calls the core,
 * and encodes the answer; errors map through the error table to a gRPC
 * status. Message sizes are bounded by maxMessageBytes both ways (larger
 * ones are RESOURCE_EXHAUSTED, from grpc-js), and a call's deadline bounds
 * how long its request may wait in the model's queue.
 */
import {
  type MethodDefinition,
  type ServerUnaryCall,
  type ServiceDefinition,
  type handleBidiStreamingCall,
  type sendUnaryData,
  Server,
  ServerCredentials,
} from '@grpc/grpc-js';

import type { InferenceCore } from '../core/core.js';
import { toModelConfig } from './model-config.js';
import type { ModelInferRequest, ModelRequest, ModelStreamInferResponse } from './messages.js';
import { type InferContext, grpcError, inferMessage, streamInfer } from './infer-call.js';
import { type UndecodedRequest, deferringLargeInputs } from './large-requests.js';
import { inferenceService } from './proto.js';

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

/** A unary call answered by `answer`; whatever it throws becomes the call's status. */
function unary<Request, Response>(answer: (request: Request, call: ServerUnaryCall<Request, Response>) => Response | Promise<Response>) {
  return (call: ServerUnaryCall<Request, Response>, callback: sendUnaryData<Response>): void => {
    if (call.cancelled) return;
    Promise.resolve()
      .then(() => answer(call.request, call))
      .then(
        (response) => {
          if (!call.cancelled) callback(null, response);
        },
        (error: unknown) => {
          if (!call.cancelled) callback(grpcError(error));
        },
      );
  };
}

/** GRPCInferenceService, with inference requests whose inputs are large left for a worker to decode. */
function serviceDeferringLargeInputs(): ServiceDefinition {
  const service = inferenceService();
  const deferring = (method: MethodDefinition<unknown, unknown>) => ({ ...method, requestDeserialize: deferringLargeInputs(method.requestDeserialize) });
  return { ...service, ModelInfer: deferring(service.ModelInfer as MethodDefinition<unknown, unknown>), ModelStreamInfer: deferring(service.ModelStreamInfer as MethodDefinition<unknown, unknown>) };
}

/** ModelRequest's version: '' means none was given. */
const version = (request: ModelRequest): string | undefined => (request.version === '' ? undefined : request.version);

/** host:port for grpc-js, with an IPv6 host in brackets. */
function address(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

export async function startGrpcServer(core: InferenceCore, options: GrpcServerOptions): Promise<GrpcServer> {
  const server = new Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
  });
  const context: InferContext = { core };
  server.addService(serviceDeferringLargeInputs(), {
    ServerLive: unary(() => ({ live: core.live() })),
    ServerReady: unary(() => ({ ready: core.ready() })),
    ServerMetadata: unary(() => {
      const { name, version: serverVersion } = core.serverMetadata();
      return { name, version: serverVersion, extensions: EXTENSIONS };
    }),
    ModelReady: unary((request: ModelRequest) => ({ ready: core.modelReady(request.name, version(request)) })),
    ModelMetadata: unary((request: ModelRequest) => core.modelMetadata(request.name, version(request))),
    ModelConfig: unary((request: ModelRequest) => ({ config: toModelConfig(core.modelConfig(request.name, version(request))) })),
    ModelInfer: unary((request: ModelInferRequest | UndecodedRequest, unaryCall) => inferMessage(context, request, unaryCall.getDeadline())),
    ModelStreamInfer: ((stream) => streamInfer(context, stream)) satisfies handleBidiStreamingCall<ModelInferRequest | UndecodedRequest, ModelStreamInferResponse>,
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address(options.host, options.port), ServerCredentials.createInsecure(), (error, bound) => {
      if (error) {
        server.forceShutdown();
        reject(new Error(`cannot listen for gRPC on ${options.host}:${options.port} (is the port in use?): ${error.message}`));
      } else resolve(bound);
    });
  });

  let closing: Promise<void> | null = null;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const cutOff = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(cutOff);
          resolve();
        });
      });
      return closing;
    },
  };
}
