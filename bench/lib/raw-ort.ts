/**
 * Raw onnxruntime-node's rows/s on the CNN, measured in a child pinned to the
 * server's core: the reference the CNN scenario is judged against.
 *
 * This machine's speed drifts by ±20 % within a minute (raw batch-32 runs
 * half a minute apart measured 487 and 592 µs per image), so one
 * measurement taken after the servers' is a reference from another moment.
 * The harness brackets the servers' CNN windows with a run before and one
 * after, and `bracketed` takes, for each batch size, the mean of the two:
 * drift that is steady over the round cancels, as it would if raw had run
 * in the servers' own window. The best batch size is chosen from those
 * means.
 */
import { join } from 'node:path';

import { runJsonChild } from './children.js';

export interface RawOrtBatch {
  batch: number;
  rows_per_s: number;
  run_us: number;
}

export interface RawOrtResult {
  per_batch: RawOrtBatch[];
  best: { batch: number; rows_per_s: number };
}

/** Two runs around the servers' windows and the reference made of them. */
export interface BracketedRawOrt extends RawOrtResult {
  before: RawOrtResult;
  after: RawOrtResult;
}

export async function measureRawOrt(secondsPerBatch: number, cpus: string | undefined): Promise<RawOrtResult> {
  return runJsonChild<RawOrtResult>(join(import.meta.dirname, 'raw-ort-child.ts'), {
    cpus,
    args: [String(secondsPerBatch)],
    timeoutMs: (secondsPerBatch * 4 + 60) * 1000,
    what: 'raw onnxruntime-node run',
  });
}

/** Per batch size, the mean of the runs before and after; the best batch size by that mean. */
export function bracketed(before: RawOrtResult, after: RawOrtResult): BracketedRawOrt {
  const perBatch = before.per_batch.map((first): RawOrtBatch => {
    const second = after.per_batch.find((b) => b.batch === first.batch);
    if (!second) throw new Error(`raw onnxruntime-node measured batch ${first.batch} before the servers but not after`);
    return {
      batch: first.batch,
      rows_per_s: Math.round((first.rows_per_s + second.rows_per_s) / 2),
      run_us: Math.round((first.run_us + second.run_us) / 2),
    };
  });
  const best = perBatch.reduce((a, b) => (b.rows_per_s > a.rows_per_s ? b : a));
  return { per_batch: perBatch, best: { batch: best.batch, rows_per_s: best.rows_per_s }, before, after };
}
