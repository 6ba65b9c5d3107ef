/**
 * What every load generator (HTTP: load-child.ts; gRPC: grpc-load-child.ts)
 * measures the same way: the latencies of successful requests, kept exactly,
 * and the measured window, over which the server's CPU time (its whole
 * process group, from /proc), its core's time, the load generator's own CPU
 * time and the batch-size histogram's deltas are read.
 */
import { meanBatchSize, scrapeBatchHistogram } from './metrics.js';
import { coreShare, coreTicks, processGroupCpuSeconds, threadCpuSeconds } from './proc.js';

/** The server a window is measured on. */
export interface WindowTarget {
  /** Process group whose CPU time is measured (the server's pid: it leads its group). */
  serverPid: number;
  /** The server's taskset CPU list; when it is one CPU, that core's /proc/stat is read too. */
  serverCpus: string | undefined;
  /** Prometheus endpoint with weir_batch_size_rows, or null. */
  metricsUrl: string | null;
  /** Model whose series count, when the histogram is labelled by model. */
  model: string;
}

/** The figures of a window that do not depend on the protocol (see LoadResult in load.ts). */
export interface WindowFigures {
  seconds: number;
  server_cpu_s: number;
  server_cpu_cores: number;
  client_cpu_cores: number;
  server_core: { busy: number; idle: number; steal: number; unaccounted: number } | null;
  /** Only when the target has a metrics endpoint. */
  mean_batch_size?: number | null;
}

export interface LatencySummary {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  mean: number | null;
  max: number | null;
}

/** A number rounded to `digits`, or null when it is not finite. */
export const round = (n: number, digits: number): number | null => (Number.isFinite(n) ? Number(n.toFixed(digits)) : null);

/** Latencies in milliseconds, kept exactly (a growing Float64Array, no histogram rounding). */
export class Latencies {
  private values = new Float64Array(1 << 16);
  count = 0;

  record(ms: number): void {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.count++] = ms;
  }

  summary(): LatencySummary {
    const sorted = this.values.subarray(0, this.count).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    const percentile = (p: number) => (sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number));
    return {
      p50: round(percentile(0.5), 3),
      p90: round(percentile(0.9), 3),
      p99: round(percentile(0.99), 3),
      mean: round(sum / this.count, 3),
      max: round(sorted[this.count - 1] ?? NaN, 3),
    };
  }
}

export interface PerRequestCpu {
  cpu_us_per_request: number | null;
  /**
   * The server's main thread alone (its event loop); the rest of
   * cpu_us_per_request is its other threads: inference workers, V8's helpers.
   */
  main_thread_cpu_us_per_request: number | null;
}

export interface OpenWindow {
  /**
   * Closes the window: /proc is read first, synchronously, then the metrics
   * are scraped. `requests` (answers of any status in the window) gives
   * cpu_us_per_request.
   */
  close(requests: number): Promise<WindowFigures & PerRequestCpu>;
}

/**
 * Opens the measured window: scrapes the batch histogram, then reads /proc.
 * Whatever the caller does right after this resolves (same microtask turn)
 * is inside the window.
 */
export async function openWindow(target: WindowTarget): Promise<OpenWindow> {
  const batchesBefore = await scrapeBatchHistogram(target.metricsUrl, target.model);
  const serverCore = /^\d+$/.test(target.serverCpus ?? '') ? Number(target.serverCpus) : null;
  const coreStart = serverCore === null ? null : coreTicks(serverCore);
  const serverCpuStart = processGroupCpuSeconds(target.serverPid);
  const mainThreadCpuStart = threadCpuSeconds(target.serverPid, target.serverPid);
  const clientCpuStart = process.cpuUsage();
  const start = performance.now();
  return {
    async close(requests) {
      const wallS = (performance.now() - start) / 1000;
      const serverCpuS = processGroupCpuSeconds(target.serverPid) - serverCpuStart;
      const mainThreadCpuS = threadCpuSeconds(target.serverPid, target.serverPid) - mainThreadCpuStart;
      const coreEnd = serverCore === null ? null : coreTicks(serverCore);
      const clientCpu = process.cpuUsage(clientCpuStart);
      const batchesAfter = await scrapeBatchHistogram(target.metricsUrl, target.model);
      const perRequest = (seconds: number) => (requests > 0 ? round((seconds * 1e6) / requests, 1) : null);
      const figures: WindowFigures & PerRequestCpu = {
        seconds: round(wallS, 3) as number,
        server_cpu_s: round(serverCpuS, 2) as number,
        cpu_us_per_request: perRequest(serverCpuS),
        main_thread_cpu_us_per_request: perRequest(mainThreadCpuS),
        server_cpu_cores: round(serverCpuS / wallS, 2) as number,
        client_cpu_cores: round((clientCpu.user + clientCpu.system) / 1e6 / wallS, 2) as number,
        server_core: coreShare(coreStart, coreEnd, wallS),
      };
      if (target.metricsUrl !== null) figures.mean_batch_size = meanBatchSize(batchesBefore, batchesAfter);
      return figures;
    },
  };
}
