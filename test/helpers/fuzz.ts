/**
 * What the fuzz tests share: a seeded generator (so a failure names a case
 * that can be run again), byte-level mutation, a runner of many cases at
 * once, and the scale knob.
 */
import { seededRandom } from '../../scripts/onnx-builder.mjs';

/** How many times the usual number of cases to run: WEIR_FUZZ_SCALE=N for a deeper search by hand. */
export const SCALE = Number(process.env.WEIR_FUZZ_SCALE ?? 1);

/** Bytes that bend JSON's structure (and its literals, escapes and UTF-8) rather than its text. */
export const JSON_ALPHABET = new Uint8Array(Buffer.from('[]{}",:0123456789eE.+- \\utrfn\x00\x7f\xff\xc3', 'latin1'));

/** A seeded generator of floats in [0, 1). */
export function random(seed: number): () => number {
  const next = seededRandom(seed);
  return () => (next() + 1) / 2;
}

/**
 * One to three byte edits, as a truncated, corrupted or hand-mangled message
 * would have: deletions, insertions and overwrites (half the time with a byte
 * from `alphabet`, the structural ones, else any byte), now and then a cut.
 */
export function mutate(bytes: Uint8Array, next: () => number, alphabet: Uint8Array): Buffer {
  let out = Buffer.from(bytes); // a copy: the caller's bytes stay as they were
  for (let edits = 1 + Math.floor(next() * 3); edits > 0; edits--) {
    const at = Math.floor(next() * (out.length + 1));
    const byte = next() < 0.5 ? (alphabet[Math.floor(next() * alphabet.length)] as number) : Math.floor(next() * 256);
    const op = next();
    if (op < 0.3) out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
    else if (op < 0.6) out = Buffer.concat([out.subarray(0, at), Buffer.of(byte), out.subarray(at)]);
    else if (op < 0.95) {
      if (out.length > 0) out[Math.min(at, out.length - 1)] = byte;
    } else out = out.subarray(0, at);
  }
  return out;
}

/** Runs `count` cases, `concurrency` at a time; collects what each reports (null: fine). */
export async function runCases(count: number, concurrency: number, one: (index: number) => Promise<string | null>): Promise<string[]> {
  const problems: string[] = [];
  let nextIndex = 0;
  const lane = async () => {
    while (nextIndex < count && problems.length < 5) {
      const problem = await one(nextIndex++);
      if (problem) problems.push(problem);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return problems;
}
