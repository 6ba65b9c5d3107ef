/**
 * The gateway's Prometheus metrics (prom-client), in one registry of their
 * own: requests by model, version and outcome; request, queue and compute
 * durations; batch sizes in rows and in requests; queue depth; worker
 * utilisation; the jobs the workers ran besides inference. Compute time is
 * measured inside the workers and travels back with each batch's reply, so
 * it reaches this registry on the main thread.
 */
import { Gauge, Registry } from 'prom-client';

import type { BatchStats } from '../batching/batcher.js';
import type { CoreObserver } from '../core/core.js';
import type { ErrorCode } from '../errors.js';
import { type CounterSeries, FastCounter, FastHistogram, type HistogramSeries } from './series.js';

const LABELS = ['model', 'version'] as const;
/** 50 µs to 10 s. */
const DURATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** Live figures the metrics read when scraped. */
export interface MetricSources {
  queueDepths(): Array<{ model: string; version: number; depth: number }>;
  workerUtilization(): number;
}

export class Metrics implements CoreObserver {
  readonly registry = new Registry();
  private readonly requests = new FastCounter(
    'weir_requests_total',
    'Inference requests answered, by outcome (success, failure) and reason (the error code; "" on success).',
    [...LABELS, 'outcome', 'reason'],
    this.registry,
  );
  private readonly requestDuration = new FastHistogram(
    'weir_request_duration_seconds', 'Time from a request entering the core to its answer.', LABELS, DURATION_BUCKETS, this.registry,
  );
  private readonly queueDuration = new FastHistogram(
    'weir_queue_duration_seconds', "Time a request waited in its model version's queue before its batch started.", LABELS, DURATION_BUCKETS, this.registry,
  );
  private readonly computeDuration = new FastHistogram(
    'weir_compute_duration_seconds', "ONNX Runtime's Run time per batch, measured in the worker thread.", LABELS, DURATION_BUCKETS, this.registry,
  );
  private readonly batchRows = new FastHistogram('weir_batch_size_rows', 'Rows per batch run.', LABELS, BATCH_BUCKETS, this.registry);
  private readonly batchRequests = new FastHistogram('weir_batch_size_requests', 'Requests per batch run.', LABELS, BATCH_BUCKETS, this.registry);
  private readonly jobs = new FastCounter(
    'weir_worker_jobs_total',
    'Work besides inference handed to the worker threads (decoding or encoding a large body), by job, the thread that ran it (main when too many waited), outcome and reason.',
    ['job', 'thread', 'outcome', 'reason'],
    this.registry,
  );
  private readonly jobDuration = new FastHistogram(
    'weir_worker_job_duration_seconds', 'Time from handing a job to the workers to its answer.', ['job'], DURATION_BUCKETS, this.registry,
  );

  /** What a successful request updates, by model then version: found without building a key. */
  private readonly successes = new Map<string, Map<string, { requests: CounterSeries; duration: HistogramSeries }>>();

  constructor(sources: MetricSources) {
    new Gauge({
      name: 'weir_queue_depth',
      help: 'Requests waiting in a model version queue.',
      labelNames: LABELS,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { model, version, depth } of sources.queueDepths()) this.set({ model, version: String(version) }, depth);
      },
    });
    new Gauge({
      name: 'weir_worker_utilization',
      help: 'Fraction of time the inference worker threads were busy (0..1).',
      registers: [this.registry],
      collect() {
        this.set(sources.workerUtilization());
      },
    });
  }

  requestFinished(model: string, version: string, seconds: number, failure: ErrorCode | null): void {
    if (failure) {
      this.requests.labels(model, version, 'failure', failure).inc();
      this.requestDuration.labels(model, version).observe(seconds);
      return;
    }
    const series = this.successSeries(model, version);
    series.requests.inc();
    series.duration.observe(seconds);
  }

  private successSeries(model: string, version: string): { requests: CounterSeries; duration: HistogramSeries } {
    let versions = this.successes.get(model);
    if (!versions) this.successes.set(model, (versions = new Map()));
    let series = versions.get(version);
    if (!series) {
      series = { requests: this.requests.labels(model, version, 'success', ''), duration: this.requestDuration.labels(model, version) };
      versions.set(version, series);
    }
    return series;
  }

  batchRan(model: string, version: number, stats: BatchStats): void {
    const v = String(version);
    this.batchRows.labels(model, v).observe(stats.rows);
    this.batchRequests.labels(model, v).observe(stats.requests);
    this.computeDuration.labels(model, v).observe(stats.computeNs / 1e9);
    const queue = this.queueDuration.labels(model, v);
    for (const ms of stats.queueMs) queue.observe(ms / 1000);
  }

  jobRan(job: string, thread: 'worker' | 'main', seconds: number, failure: ErrorCode | null): void {
    this.jobs.labels(job, thread, failure ? 'failure' : 'success', failure ?? '').inc();
    this.jobDuration.labels(job).observe(seconds);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
