/**
 * The HTTP and gRPC decoders hand the core objects of one shape (V8's hidden
 * class): the same request fields in the same order, the same kind of shape
 * array. The code both share is then optimised once for both; before, each
 * switch between HTTP and gRPC traffic deoptimised validation and batching.
 */
import { setFlagsFromString } from 'node:v8';

import { describe, expect, it } from 'vitest';

import { decodeInferRequest as decodeGrpc } from '../dist/grpc/infer-codec.js';
import { decodeModelInferRequest } from '../dist/grpc/infer-wire.js';
import { inferenceService } from '../dist/grpc/proto.js';
import { decodeInferRequest as decodeHttp } from '../dist/http/v2-codec.js';

setFlagsFromString('--allow-natives-syntax');
// Compiled after the flag is set, so that the parser takes V8's intrinsic.
const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

const features = Array.from({ length: 32 }, (_, i) => i / 32);

function viaHttp(extra: object = {}) {
  const body = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32], data: features }], ...extra });
  return decodeHttp(new TextEncoder().encode(body), undefined, 'tabular').request;
}

function viaGrpc(extra: object = {}) {
  const message = {
    model_name: 'tabular',
    inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32] }],
    raw_input_contents: [Buffer.from(new Float32Array(features).buffer)],
    ...extra,
  };
  const bytes = (inferenceService() as any).ModelInfer.requestSerialize(message) as Buffer;
  return decodeGrpc(decodeModelInferRequest(bytes)!);
}

describe('requests from both front ends', () => {
  it('have one shape, with or without the optional fields', () => {
    const requests = [viaHttp(), viaGrpc(), viaHttp({ id: 'a', outputs: [{ name: 'probabilities' }] }), viaGrpc({ id: 'a', outputs: [{ name: 'probabilities' }] })];
    for (const request of requests.slice(1)) {
      expect(Object.keys(request)).toEqual(Object.keys(requests[0]!));
      expect(sameMap(request, requests[0]!)).toBe(true);
    }
  });

  it('carry tensors and shapes of one shape', () => {
    const [http, grpc] = [viaHttp().inputs[0]!, viaGrpc().inputs[0]!];
    expect(grpc.shape).toEqual(http.shape);
    expect(sameMap(grpc, http)).toBe(true);
    expect(sameMap(grpc.shape, http.shape)).toBe(true);
    expect(sameMap(grpc.data, http.data)).toBe(true);
  });
});
