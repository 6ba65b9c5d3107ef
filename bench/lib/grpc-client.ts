/**
 * The gRPC benchmark's client side, built from proto/ with @grpc/proto-loader
 * the way any KServe V2 client would be (as in test/helpers/grpc.ts): the
 * request (the tabular model, 1 row, FP32 [1,32] in raw_input_contents),
 * channels that each hold their own HTTP/2 connection, the check of an
 * answer, and the probe run once before the load.
 *
 * The request is serialized once; calls send those bytes through an identity
 * serializer (as autocannon sends a prepared body), so the load generator's
 * CPU goes to gRPC itself. Answers are deserialized and checked in full.
 */
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

import { LOADER_OPTIONS, SERVICE_NAME, SERVICE_PROTO } from '../../dist/grpc/proto.js';
import { checkProbabilities, seeded } from './scenarios.js';

export type GrpcMode = 'unary' | 'stream';

// Decoded messages are checked field by field.
export type Json = any;

// The server's own loader options: the same message shapes on both sides.
const definition = loadSync(SERVICE_PROTO, LOADER_OPTIONS);
const service = definition[SERVICE_NAME] as unknown as grpc.ServiceDefinition;

/** The two inference methods: path, request serializer, response deserializer. */
export const METHODS = {
  unary: service.ModelInfer as grpc.MethodDefinition<Json, Json>,
  stream: service.ModelStreamInfer as grpc.MethodDefinition<Json, Json>,
};

/** Sends bytes serialized beforehand. */
export const prepared = (bytes: Buffer): Buffer => bytes;

export const TABULAR = { model: 'tabular', input: 'features', output: 'probabilities', shape: [1, 32], classes: 2 } as const;

/** The benchmark's request: 1 row of the tabular model, the HTTP scenario's values (seed 7), raw FP32. */
export function tabularRawRequest(): { message: Json; bytes: Buffer; description: string } {
  const features = seeded(32, 7);
  const message = {
    model_name: TABULAR.model,
    inputs: [{ name: TABULAR.input, datatype: 'FP32', shape: [...TABULAR.shape] }],
    raw_input_contents: [Buffer.from(features.buffer, features.byteOffset, features.byteLength)],
  };
  return {
    message,
    bytes: METHODS.unary.requestSerialize(message),
    description: `1-row ModelInferRequest to the tabular model: ${TABULAR.input} FP32 [1,32] as 128 raw little-endian bytes in raw_input_contents -> ${TABULAR.output} FP32 [1,2] in raw_output_contents`,
  };
}

/** What is wrong with a ModelInferResponse to tabularRawRequest, or null. */
export function checkInferResponse(response: Json): string | null {
  const outputs = (response?.outputs ?? []) as Json[];
  const index = outputs.findIndex((o) => o.name === TABULAR.output);
  if (index < 0) return `no '${TABULAR.output}' output (outputs: ${JSON.stringify(outputs.map((o) => o.name))})`;
  const output = outputs[index];
  if (output.datatype !== 'FP32') return `${TABULAR.output} datatype ${output.datatype}, expected FP32`;
  if (JSON.stringify(output.shape.map(Number)) !== '[1,2]') return `${TABULAR.output} shape [${output.shape.join(',')}], expected [1,2]`;
  const raw = response.raw_output_contents?.[index] as Buffer | undefined;
  if (!raw || raw.length !== 4 * TABULAR.classes) return `raw_output_contents[${index}] has ${raw?.length ?? 'no'} bytes, expected ${4 * TABULAR.classes} (FP32 [1,2])`;
  // Copied, so aligned.
  return checkProbabilities(new Float32Array(Uint8Array.prototype.slice.call(raw).buffer), TABULAR.classes);
}

/** What is wrong with a ModelStreamInferResponse (error_message included), or null. */
export function checkStreamResponse(response: Json): string | null {
  if (response?.error_message) return `error_message: ${response.error_message}`;
  return checkInferResponse(response?.infer_response);
}

/**
 * A client with its own channel and HTTP/2 connection: grpc-js shares
 * connections between clients of one target through a global subchannel
 * pool, which a local pool avoids.
 */
export function newClient(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.enable_retries': 0, 'grpc.enable_channelz': 0 });
}

/** Resolves once the client's channel is connected; rejects after `timeoutMs`. */
export function connected(client: grpc.Client, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve())));
}

/** A call's error as text: the status's name and details. */
export function describeStatus(error: { code?: number; details?: string; message?: string }): string {
  const name = error.code === undefined ? 'error' : (grpc.status[error.code] ?? `status ${error.code}`);
  return `${name}: ${error.details || error.message || ''}`.trim();
}

/**
 * Sends the request once in `mode` (ModelInfer, or one request on a
 * ModelStreamInfer stream that is then closed) and checks the answer.
 * Resolves with 'ok' or what went wrong.
 */
export async function probeGrpc(address: string, mode: GrpcMode, timeoutMs = 10_000): Promise<string> {
  const client = newClient(address);
  const { bytes } = tabularRawRequest();
  try {
    await connected(client, timeoutMs);
    if (mode === 'unary') {
      const response = await new Promise<Json>((resolve, reject) =>
        client.makeUnaryRequest(METHODS.unary.path, prepared, METHODS.unary.responseDeserialize, bytes, { deadline: Date.now() + timeoutMs }, (error, answer) =>
          error ? reject(error) : resolve(answer),
        ),
      );
      return checkInferResponse(response) ?? 'ok';
    }
    const call = client.makeBidiStreamRequest(METHODS.stream.path, prepared, METHODS.stream.responseDeserialize, { deadline: Date.now() + timeoutMs });
    const answers: Json[] = [];
    call.on('data', (answer: Json) => answers.push(answer));
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('error', () => {}); // reported through 'status'
    call.write(bytes);
    call.end();
    const final = await status;
    if (final.code !== grpc.status.OK) return `stream ended with ${describeStatus(final)}`;
    if (answers.length !== 1) return `${answers.length} answers on the stream to 1 request`;
    return checkStreamResponse(answers[0]) ?? 'ok';
  } catch (error) {
    return `request failed: ${describeStatus(error as grpc.ServiceError)}`;
  } finally {
    client.close();
  }
}
