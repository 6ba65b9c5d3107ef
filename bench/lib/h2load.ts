/**
 * A second gRPC unary load generator: h2load (Debian's nghttp2-client,
 * fetched into .cache/h2load by scripts/fetch-h2load.sh, or BENCH_H2LOAD),
 * which sends one prepared ModelInfer request over `channels` connections
 * with `callers / channels` streams in flight on each. grpc-js's client
 * spends ~150–250 µs of CPU per unary call and stops near 5–7 k calls/s on
 * its core; h2load, in C, keeps the server as busy as autocannon does over
 * HTTP. h2load sees only HTTP statuses (a gRPC error is an HTTP 200 with
 * grpc-status in its trailers), so gRPC failures are counted from the
 * server's weir_requests_total over the same window.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { REPO_ROOT, startChild, waitForChild } from './children.js';
import { failuresBetween, meanBatchSize, scrapeBatchHistogram, scrapeRequestOutcomes } from './metrics.js';
import { processGroupCpuSeconds } from './proc.js';
import { round } from './window.js';

export interface H2loadOptions {
  address: string;
  path: string;
  /** The serialized request message (without gRPC's 5-byte prefix). */
  request: Buffer;
  callers: number;
  channels: number;
  seconds: number;
  warmupSeconds: number;
  serverPid: number;
  metricsUrl: string | null;
  model: string;
  cpus: string | undefined;
}

export interface H2loadResult {
  generator: string;
  callers: number;
  channels: number;
  requests: number;
  seconds: number;
  requests_per_s: number | null;
  /** h2load's mean time per request (it reports no percentiles). */
  latency_mean_ms: number | null;
  server_cpu_s: number;
  cpu_us_per_request: number | null;
  server_cpu_cores: number;
  mean_batch_size: number | null;
  /** h2load's failed, errored and timed-out requests, and gRPC failures the server counted (with their reasons, when there are any). */
  errors: { total: number; h2load: number; grpc: number | null; grpc_reasons?: Record<string, number> };
}

/** The h2load binary: BENCH_H2LOAD, or fetched once into .cache/h2load. Throws when neither works. */
function h2loadBinary(): string {
  const given = process.env.BENCH_H2LOAD;
  if (given) return given;
  const script = join(REPO_ROOT, 'scripts', 'fetch-h2load.sh');
  return execFileSync('bash', [script, join(REPO_ROOT, '.cache', 'h2load')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** The environment h2load runs in: the libraries unpacked beside it first, when there are any. */
function h2loadEnv(binary: string): NodeJS.ProcessEnv {
  const libraries = join(dirname(dirname(binary)), 'lib', 'x86_64-linux-gnu');
  return existsSync(libraries) ? { ...process.env, LD_LIBRARY_PATH: libraries } : process.env;
}

/** One h2load run of `seconds`; returns its output. */
async function h2load(binary: string, options: H2loadOptions, requestFile: string, seconds: number): Promise<string> {
  const child = startChild(
    [
      binary,
      '-c', String(options.channels),
      '-m', String(Math.max(1, Math.round(options.callers / options.channels))),
      '-D', String(seconds),
      '-d', requestFile,
      '-H', 'content-type: application/grpc',
      '-H', 'te: trailers',
      `http://${options.address}${options.path}`,
    ],
    { cpus: options.cpus, collectStdout: true, env: h2loadEnv(binary) },
  );
  const code = await waitForChild(child, (seconds + 30) * 1000);
  if (code !== 0) throw new Error(`h2load failed (${code}): ${child.tail().slice(-800)}`);
  return child.stdout();
}

/** How long the server is given to count the calls a finished h2load run cut off. */
const SETTLE_MS = 250;

const number = (text: string, pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? Number.NaN);

export async function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  const binary = h2loadBinary();
  const framed = Buffer.alloc(5 + options.request.length);
  framed.writeUInt32BE(options.request.length, 1);
  options.request.copy(framed, 5);
  const requestFile = join(mkdtempSync(join(tmpdir(), 'weir-h2load-')), 'request.bin');
  writeFileSync(requestFile, framed);

  if (options.warmupSeconds > 0) {
    await h2load(binary, options, requestFile, options.warmupSeconds);
    // Calls the warm-up run left in flight are cancelled as its connections close: counted before the window opens, not in it.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  }
  const [histogram0, outcomes0] = await Promise.all([scrapeBatchHistogram(options.metricsUrl, options.model), scrapeRequestOutcomes(options.metricsUrl, options.model)]);
  const cpu0 = processGroupCpuSeconds(options.serverPid);
  const started = performance.now();
  const output = await h2load(binary, options, requestFile, options.seconds);
  const seconds = (performance.now() - started) / 1000;
  const cpu = processGroupCpuSeconds(options.serverPid) - cpu0;
  const [histogram1, outcomes1] = await Promise.all([scrapeBatchHistogram(options.metricsUrl, options.model), scrapeRequestOutcomes(options.metricsUrl, options.model)]);

  const done = number(output, /(\d+) done/);
  // Failed, errored or timed out, or answered with anything but HTTP 2xx.
  const h2loadErrors = number(output, /(\d+) failed/) + number(output, /(\d+) errored/) + number(output, /(\d+) timeout/) + (done - number(output, /status codes: (\d+) 2xx/));
  const grpcFailures = outcomes0 && outcomes1 ? outcomes1.failure - outcomes0.failure : null;
  const meanUs = number(output, /time for request:\s+\S+\s+\S+\s+(\S+?)us/);
  const meanMs = number(output, /time for request:\s+\S+\s+\S+\s+(\S+?)ms/);
  return {
    generator: execFileSync(binary, ['--version'], { encoding: 'utf8', env: h2loadEnv(binary) }).trim(),
    callers: options.callers,
    channels: options.channels,
    requests: done,
    seconds: round(seconds, 2) ?? seconds,
    requests_per_s: round(done / seconds, 0),
    latency_mean_ms: Number.isFinite(meanMs) ? meanMs : round(meanUs / 1000, 3),
    server_cpu_s: round(cpu, 2) ?? cpu,
    cpu_us_per_request: round((cpu * 1e6) / done, 1),
    server_cpu_cores: round(cpu / seconds, 2) ?? 0,
    mean_batch_size: meanBatchSize(histogram0, histogram1),
    errors: {
      total: h2loadErrors + (grpcFailures ?? 0),
      h2load: h2loadErrors,
      grpc: grpcFailures,
      ...(grpcFailures && outcomes0 && outcomes1 && { grpc_reasons: failuresBetween(outcomes0, outcomes1) }),
    },
  };
}
