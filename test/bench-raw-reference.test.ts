import { describe, expect, it } from 'vitest';

import { bracketed, type RawOrtResult } from '../bench/lib/raw-ort.js';

const run = (rows: Record<number, number>): RawOrtResult => {
  const perBatch = Object.entries(rows).map(([batch, rowsPerS]) => ({ batch: Number(batch), rows_per_s: rowsPerS, run_us: Math.round((1e6 * Number(batch)) / rowsPerS) }));
  const best = perBatch.reduce((a, b) => (b.rows_per_s > a.rows_per_s ? b : a));
  return { per_batch: perBatch, best: { batch: best.batch, rows_per_s: best.rows_per_s } };
};

describe("the CNN benchmark's raw ONNX Runtime reference", () => {
  it('is, per batch size, the mean of the runs before and after the servers, the best size chosen by that mean', () => {
    // Before, batch 8 looked best by a lucky sample; over both runs 32 is.
    const reference = bracketed(run({ 1: 1500, 8: 2400, 32: 2000 }), run({ 1: 1400, 8: 1500, 32: 2100 }));
    expect(reference.per_batch.map((b) => [b.batch, b.rows_per_s])).toEqual([[1, 1450], [8, 1950], [32, 2050]]);
    expect(reference.best).toEqual({ batch: 32, rows_per_s: 2050 });
    expect(reference.before.best.batch).toBe(8);
  });

  it('refuses runs that measured different batch sizes', () => {
    expect(() => bracketed(run({ 1: 1500, 8: 2400 }), run({ 1: 1400 }))).toThrow(/batch 8 before the servers but not after/);
  });
});
