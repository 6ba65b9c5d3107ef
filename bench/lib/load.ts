/**
 * Drives a server with autocannon in a child process pinned to the client's
 * CPU (bench/lib/load-child.ts), so the load generator never shares the
 * server's core, and times the server's CPU from /proc over the same window.
 */
import { join } from 'node:path';

import { runJsonChild } from './children.js';
import type { LatencySummary, WindowTarget } from './window.js';

export interface LoadRequest extends WindowTarget {
  url: string;
  method: string;
  headers: Record<string, string>;
  bodyBase64: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  timeoutS: number;
  /** Requests per second across all connections, paced; omitted: as fast as the server answers. */
  requestsPerSecond?: number;
}

export interface LoadResult {
  /** Responses of any status within the measured window. */
  requests: number;
  requests_2xx: number;
  seconds: number;
  requests_per_s: number | null;
  /** Of 2xx responses. */
  latency_ms: LatencySummary;
  /** total = non-2xx + timeouts + socket errors. */
  errors: { total: number; non_2xx: number; timeouts: number; socket_errors: number };
  /** Server CPU time (user + system, every thread) in the window; /proc ticks, 10 ms resolution. */
  server_cpu_s: number;
  /** server_cpu_s / requests. */
  cpu_us_per_request: number | null;
  /** The server's main thread (its event loop) alone, per request; the rest is its other threads. */
  main_thread_cpu_us_per_request: number | null;
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
  requestsPerSecond?: number;
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
    ...(options.requestsPerSecond !== undefined && { requestsPerSecond: options.requestsPerSecond }),
  };
  return runJsonChild<LoadResult>(join(import.meta.dirname, 'load-child.ts'), {
    cpus: options.cpus,
    input: request,
    timeoutMs: (options.seconds + options.warmupSeconds + 60) * 1000,
    what: 'load generator',
  });
}
