/**
 * At most `limit` tasks at once; the rest wait their turn, first come first
 * served. For work whose memory grows with each task running, such as
 * decompressing request bodies: a few kilobytes of gzip may inflate to the
 * body limit, so without a bound a burst of small compressed requests could
 * hold many times that at once.
 */
export class ConcurrencyLimit {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError(`a concurrency limit must be a whole number from 1, got ${limit}`);
  }

  /** Runs `task` once fewer than `limit` others run; settles as it does. */
  run<T>(task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.running += 1;
        let settled: Promise<T>;
        try {
          settled = task();
        } catch (error) {
          settled = Promise.reject(error);
        }
        settled.then(resolve, reject).finally(() => {
          this.running -= 1;
          this.waiting.shift()?.();
        });
      };
      if (this.running < this.limit) start();
      else this.waiting.push(start);
    });
  }

  /** Tasks running now, and waiting. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}

