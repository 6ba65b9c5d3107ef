/**
 * The KServe V2 gRPC service, loaded once from proto/ with @grpc/proto-loader.
 * The options decide the JavaScript shapes the codec sees (messages.ts):
 * field names as in the proto, 64-bit integers as decimal strings (a Number
 * would round INT64 data past 2^53), bytes as Buffers viewing the received
 * message (no copy), enums by name, absent fields filled with defaults, and
 * a oneof's chosen member named in a string field.
 */
import { fileURLToPath } from 'node:url';

import { type Options, type ServiceDefinition, loadSync } from '@grpc/proto-loader';

/** proto/ at the package root: two levels up from both src/grpc and dist/grpc. */
export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
export const SERVICE_PROTO = 'grpc_service.proto';
export const SERVICE_NAME = 'inference.GRPCInferenceService';

export const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let service: ServiceDefinition | null = null;

/** GRPCInferenceService's method definitions (serializers included), parsed on first use. */
export function inferenceService(): ServiceDefinition {
  service ??= loadSync(SERVICE_PROTO, LOADER_OPTIONS)[SERVICE_NAME] as ServiceDefinition;
  return service;
}
