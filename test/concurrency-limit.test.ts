/**
 * ConcurrencyLimit: no more than its limit run at once, the rest start in
 * the order they came as others settle, and a task's failure (thrown or
 * rejected) is its caller's alone.
 */
import { describe, expect, it } from 'vitest';

import { ConcurrencyLimit } from '../dist/concurrency-limit.js';

/** A task that settles when told, recording when it started. */
function gate(started: number[], id: number) {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { task: () => (started.push(id), opened.then(() => id)), open };
}

describe('ConcurrencyLimit', () => {
  it('runs at most its limit at once, the rest in arrival order as others settle', async () => {
    const limit = new ConcurrencyLimit(2);
    const started: number[] = [];
    const gates = [0, 1, 2, 3, 4].map((id) => gate(started, id));
    const results = gates.map(({ task }) => limit.run(task));
    expect(started).toEqual([0, 1]);
    expect(limit.load).toEqual({ running: 2, waiting: 3 });
    gates[1]!.open();
    await results[1];
    await Promise.resolve();
    expect(started).toEqual([0, 1, 2]);
    gates[0]!.open();
    gates[2]!.open();
    await Promise.all([results[0], results[2]]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1, 2, 3, 4]);
    gates[3]!.open();
    gates[4]!.open();
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4]);
    expect(limit.load).toEqual({ running: 0, waiting: 0 });
  });

  it("a task that throws or rejects fails only its own caller, and frees its place", async () => {
    const limit = new ConcurrencyLimit(1);
    const thrown = limit.run(() => {
      throw new Error('thrown');
    });
    const rejected = limit.run(() => Promise.reject(new Error('rejected')));
    const fine = limit.run(() => Promise.resolve('fine'));
    await expect(thrown).rejects.toThrow('thrown');
    await expect(rejected).rejects.toThrow('rejected');
    expect(await fine).toBe('fine');
    expect(limit.load).toEqual({ running: 0, waiting: 0 });
  });

  it('refuses a limit that is not a whole number from 1', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new ConcurrencyLimit(bad)).toThrow(RangeError);
  });
});
