import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ERRORS, GrpcStatus, WeirError, toWeirError } from '../dist/errors.js';

const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
const grpcName = Object.fromEntries(Object.entries(GrpcStatus).map(([name, value]) => [value, name]));

describe('the error table', () => {
  it('is the README error list, row for row', () => {
    const rows = [...readme.matchAll(/^\| `([A-Z_]+)` \| (\d+) \| ([A-Z_]+) \| (.+) \|$/gm)].map((m) => ({
      code: m[1],
      http: Number(m[2]),
      grpc: m[3],
      meaning: m[4],
    }));
    const table = Object.entries(ERRORS).map(([code, spec]) => ({
      code,
      http: spec.http,
      grpc: grpcName[spec.grpc],
      meaning: spec.meaning,
    }));
    expect(rows).toEqual(table);
  });

  it('covers every code the native addon can raise', () => {
    const native = ['errors.cc', 'addon.cc', 'model_session.cc', 'ort_runtime.cc', 'session_registry.cc', 'string_tensor.cc', 'tensor_convert.cc']
      .map((file) => readFileSync(join(__dirname, '..', 'native', 'src', file), 'utf8'))
      .join('\n');
    // Codes appear as CodedError("X", ...), ToJsError(env, "X", ...), code_ = "X" and return "X".
    const raised = /(?:CodedError\(|ToJsError\(env, |code_ = |return )"((?:WEIR|ORT)_[A-Z_]+)"/g;
    const codes = new Set([...native.matchAll(raised)].map((m) => m[1] as string));
    expect(codes.size).toBeGreaterThan(15);
    codes.delete('ORT_OK');
    for (const code of codes) expect(Object.keys(ERRORS)).toContain(code);
  });

  it('keeps the code of coded errors and turns anything else into WEIR_INTERNAL', () => {
    const native = Object.assign(new Error('ORT says no'), { code: 'ORT_INVALID_ARGUMENT' });
    expect(toWeirError(native)).toMatchObject({ code: 'ORT_INVALID_ARGUMENT', message: 'ORT says no', httpStatus: 400 });
    expect(toWeirError(new Error('boom')).code).toBe('WEIR_INTERNAL');
    expect(toWeirError(Object.assign(new Error('x'), { code: 'ENOENT' })).code).toBe('WEIR_INTERNAL');
    const own = new WeirError('WEIR_MODEL_NOT_FOUND', 'no model');
    expect(toWeirError(own)).toBe(own);
    expect(own.grpcStatus).toBe(GrpcStatus.NOT_FOUND);
  });
});
