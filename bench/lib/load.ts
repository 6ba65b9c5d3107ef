/**
 * Drives a server with autocannon in a child process pinned to the client's
 * CPU (bench/lib/load-child.ts), so the load generator never shares the
 * server's core, and times the server's CPU from /proc over the same window.
 */
import { join } from 'node:path';

import { startChild, waitForChild } from './children.js';

export interface LoadRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  bodyBase64: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  /** Process group whose CPU time is measured (the server's pid: it leads its group). */
  serverPid: number;
  /** The server's taskset CPU list; when it is one CPU, that core's /proc/stat is read too. */
  serverCpus: string | undefined;
  /** Prometheus endpoint with weir_batch_size_rows, or null. */
  metricsUrl: string | null;
  /** Model whose series count, when the histogram is labelled by model. */
  model: string;
  timeoutS: number;
}

export interface LoadResult {
  /** Responses of any status within the measured window. */
  requests: number;
  requests_2xx: number;
  seconds: number;
  requests_per_s: number | null;
  /** Of 2xx responses. */
  latency_ms: { p50: number | null; p90: number | null; p99: number | null; mean: number | null; max: number | null };
  /** total = non-2xx + timeouts + socket errors. */
  errors: { total: number; non_2xx: number; timeouts: number; socket_errors: number };
  /** Server CPU time (user + system, every thread) in the window; /proc ticks, 10 ms resolution. */
  server_cpu_s: number;
  /** server_cpu_s / requests. */
  cpu_us_per_request: number | null;
  /** Cores the server kept busy (1.0 = its one pinned core saturated). */
  server_cpu_cores: number;
  /** Cores the load generator used (near 1.0: the client, not the server, may be the limit). */
  client_cpu_cores: number;
  /**
   * How the server's core spent the window (fractions; null unless pinned to
   * one core): busy (anyone's work, incl. softirq), idle, steal, and
   * unaccounted: time the VM's host took without reporting it as steal.
   */
  server_core: { busy: number; idle: number; steal: number; unaccounted: number } | null;
  /** Mean rows per batch over the measured window (servers with metrics only; null if unreadable). */
  mean_batch_size?: number | null;
}

export interface LoadOptions {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  serverPid: number;
  serverCpus: string | undefined;
  metricsUrl: string | null;
  model: string;
  cpus: string | undefined;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const request: LoadRequest = {
    url: options.url,
    method: options.method,
    headers: options.headers,
    bodyBase64: options.body.toString('base64'),
    connections: options.connections,
    seconds: options.seconds,
    warmupSeconds: options.warmupSeconds,
    serverPid: options.serverPid,
    serverCpus: options.serverCpus,
    metricsUrl: options.metricsUrl,
    model: options.model,
    timeoutS: 10,
  };
  const child = startChild([process.execPath, '--import', 'tsx', join(import.meta.dirname, 'load-child.ts')], {
    cpus: options.cpus,
    stdin: JSON.stringify(request),
    collectStdout: true,
  });
  const code = await waitForChild(child, (options.seconds + options.warmupSeconds + 60) * 1000);
  const line = child.stdout().trim().split('\n').pop() ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`load generator failed (${code}): ${child.tail().slice(-800)}`);
  return JSON.parse(line) as LoadResult;
}
