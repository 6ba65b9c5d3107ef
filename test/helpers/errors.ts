/** Catching coded errors in tests: they cross threads, so tests read `code`, never `instanceof`. */
import { expect } from 'vitest';

export interface CodedError {
  code: string;
  message: string;
}

/** The error `fn` throws or rejects with; fails the test when it succeeds. */
export async function caught(fn: () => unknown): Promise<CodedError> {
  try {
    await fn();
  } catch (error) {
    return error as CodedError;
  }
  throw new Error('expected an error, but none was thrown');
}

/** The error a synchronous `fn` throws; fails the test when it returns. */
export function thrown(fn: () => unknown): CodedError {
  try {
    fn();
  } catch (error) {
    return error as CodedError;
  }
  throw new Error('expected a throw, but the call returned');
}

/** Asserts the error's code and that its message holds every fragment (the field, what was expected). */
export async function expectError(fn: () => unknown, code: string, ...fragments: string[]): Promise<CodedError> {
  const error = await caught(fn);
  expect({ code: error.code, message: error.message }).toMatchObject({ code });
  for (const fragment of fragments) expect(error.message).toContain(fragment);
  return error;
}
