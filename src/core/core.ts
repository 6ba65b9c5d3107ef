/**
 * The one API both front ends call: health, metadata, readiness and
 * inference. It owns the model repository and the worker pool; front ends
 * only translate a protocol into these calls and back.
 */
import { createRequire } from 'node:module';

import { type ThreadPlan, type ThreadRequest, planThreads } from '../config/threads.js';
import type { BatchReply, BatchRequest, BatchStats } from '../batching/batcher.js';
import { type ErrorCode, WeirError, toWeirError } from '../errors.js';
import { type RunResult, nativeAddon } from '../native/addon.js';
import type { ModelVersion, ServedVersion, VersionState } from '../repository/model-version.js';
import { type Model, ModelRepository } from '../repository/repository.js';
import type { Tensor } from '../tensors/tensor.js';
import type { Job } from '../workers/jobs.js';
import type { Cancellation } from '../workers/task.js';
import { WorkerPool } from '../workers/pool.js';
import { type EffectiveConfig, type ModelMetadata, effectiveConfig, modelMetadata } from './model-views.js';
import type { InferRequest } from './infer-request.js';
import { validateRequest } from './validate-request.js';

const { version: WEIR_VERSION } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** Told about every request answered and every batch run (the metrics implement it). */
export interface CoreObserver {
  /** `version` is '' when the request failed before a version was chosen; `model` is '' for unknown models. */
  requestFinished(model: string, version: string, seconds: number, failure: ErrorCode | null): void;
  batchRan(model: string, version: number, stats: BatchStats): void;
  /** A front end's job ran, in a worker or (when too many waited) on the main thread; `failure`: its error code. */
  jobRan(job: string, thread: 'worker' | 'main', seconds: number, failure: ErrorCode | null): void;
}

export interface CoreOptions extends ThreadRequest {
  modelRepository: string;
  /** Longest a request may wait in its model's queue before it is refused (default 30 s). */
  requestTimeoutMs?: number;
  observer?: CoreObserver;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export { type InferRequest, inferRequest } from './infer-request.js';

/** Where the core sends one request's outcome: exactly one method is called, once. Neither may throw. */
export interface InferReply {
  answer(response: InferResponse): void;
  fail(error: unknown): void;
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: Tensor[];
  /** Time inside ONNX Runtime's Run for the batch that carried this request (not part of the V2 response). */
  computeNs: number;
}

export interface VersionStatus {
  model: string;
  version: number | null;
  state: VersionState;
  reason: string | null;
}

export class InferenceCore {
  private stopping = false;

  private constructor(
    readonly repository: ModelRepository,
    readonly pool: WorkerPool,
    readonly threads: ThreadPlan,
    private readonly requestTimeoutMs: number,
    private readonly observer: CoreObserver | null,
  ) {}

  /** Loads the runtime and the repository and starts the workers. */
  static async start(options: CoreOptions): Promise<InferenceCore> {
    const threads = planThreads(options);
    const pool = new WorkerPool({ workers: threads.workers });
    const repository = new ModelRepository(options.modelRepository, {
      addon: nativeAddon(),
      threads,
      runBatch: (task, deadline, cancellation) => pool.run(task, deadline, cancellation),
      onBatch: (model, version, stats) => options.observer?.batchRan(model, version, stats),
    });
    try {
      await repository.loadAll();
    } catch (error) {
      await pool.close();
      throw error;
    }
    return new InferenceCore(repository, pool, threads, options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, options.observer ?? null);
  }

  live(): boolean {
    return !this.stopping;
  }

  ready(): boolean {
    return !this.stopping;
  }

  serverMetadata(): { name: string; version: string; extensions: string[]; onnxruntime: string } {
    return { name: 'weir', version: WEIR_VERSION, extensions: [], onnxruntime: nativeAddon().runtime.version };
  }

  modelReady(name: string, version?: string | number): boolean {
    const model = this.findModel(name);
    if (version === undefined) return model.readyVersions().length > 0;
    return this.findVersion(model, version).state === 'READY';
  }

  modelMetadata(name: string, version?: string | number): ModelMetadata {
    const model = this.findModel(name);
    return modelMetadata(model, this.servedVersion(model, version));
  }

  modelConfig(name: string, version?: string | number): EffectiveConfig {
    return effectiveConfig(this.servedVersion(this.findModel(name), version));
  }

  /** Every model version and its lifecycle state, for logs and status pages. */
  status(): VersionStatus[] {
    return this.repository.list().flatMap((model): VersionStatus[] => {
      if (model.versions.size === 0) {
        return [{ model: model.name, version: null, state: 'UNAVAILABLE', reason: model.reason }];
      }
      return [...model.versions.values()]
        .sort((a, b) => a.version - b.version)
        .map((v) => ({ model: model.name, version: v.version, state: v.state, reason: v.reason?.message ?? null }));
    });
  }

  /** Answers one request through its version's batcher. */
  infer(request: InferRequest): Promise<InferResponse> {
    return new Promise((resolve, reject) => this.inferInto(request, { answer: resolve, fail: reject }));
  }

  /**
   * Answers one request through its version's batcher, into `reply`
   * (possibly before this returns: a request refused at once). The front
   * ends' path: one object per request carries it through the batch, where
   * a chain of promises cost three promises, their resolving functions and
   * a microtask each.
   */
  inferInto(request: InferRequest, reply: InferReply): void {
    const started = performance.now();
    let entry: ModelVersion;
    let served: ServedVersion;
    try {
      if (this.stopping) throw new WeirError('WEIR_SERVER_STOPPING', 'the server is shutting down');
      if (!Array.isArray(request.inputs)) throw new WeirError('WEIR_BAD_ARGUMENT', 'inputs must be an array of tensors');
      entry = this.versionToServe(request.model, request.version);
      served = entry.acquire();
    } catch (error) {
      countFailure(this.observer, request, '', started, error);
      reply.fail(error);
      return;
    }
    const call = new CoreCall(this.observer, entry, served, request, started, reply);
    let queued: BatchRequest;
    try {
      const outputs = validateRequest(served, request.inputs, request.outputs);
      const timeoutMs = Math.min(request.timeoutMs ?? Number.POSITIVE_INFINITY, this.requestTimeoutMs);
      queued = { inputs: request.inputs, outputs, deadline: started + timeoutMs, arrivedAt: started, cancellation: request.cancellation };
    } catch (error) {
      call.reject(error);
      return;
    }
    served.batcher.enqueue(queued, call);
  }

  /**
   * Runs a front end's job (workers/jobs.ts) in a worker, such as decoding a
   * large JSON body, so that it stays off the main thread. When too many
   * jobs already wait for a worker, it runs here instead, as it would have
   * without workers: a job is a way to keep the event loop free, never a
   * reason to refuse a request.
   */
  async offload<I, O>(job: Job<I, O>, input: I, transfer?: ArrayBuffer[]): Promise<O> {
    const started = performance.now();
    let thread: 'worker' | 'main' = 'worker';
    try {
      let output: O;
      try {
        output = await this.pool.runJob(job, input, transfer);
      } catch (error) {
        if (toWeirError(error).code !== 'WEIR_QUEUE_FULL') throw error;
        thread = 'main'; // refused before anything was sent: `input` is still whole
        output = job.run(input).output;
      }
      this.observer?.jobRan(job.name, thread, (performance.now() - started) / 1000, null);
      return output;
    } catch (error) {
      this.observer?.jobRan(job.name, thread, (performance.now() - started) / 1000, toWeirError(error).code);
      throw error;
    }
  }

  /** Counts a request a front end refused before it reached the core (it could not be decoded). */
  requestRefused(model: string, error: unknown): void {
    const { code } = toWeirError(error);
    const known = this.repository.model(model) !== undefined;
    this.observer?.requestFinished(known ? model : '', '', 0, code);
  }

  /** Per-version queue depths, for metrics. */
  queueDepths(): Array<{ model: string; version: number; depth: number }> {
    return this.repository.list().flatMap((model) =>
      model.readyVersions().map((served) => ({ model: model.name, version: served.version, depth: served.batcher.queuedRequests })),
    );
  }

  /** Refuses new requests, waits for those in flight, unloads, stops the workers. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.repository.unloadAll();
    await this.pool.close();
  }

  private findModel(name: string): Model {
    const model = this.repository.model(name);
    if (!model) throw new WeirError('WEIR_MODEL_NOT_FOUND', `no model named '${name}' is in the repository`);
    return model;
  }

  private findVersion(model: Model, version: string | number): ModelVersion {
    const text = String(version);
    if (!/^[1-9]\d*$/.test(text)) {
      throw new WeirError('WEIR_BAD_ARGUMENT', `version '${text}' of model '${model.name}' is not a positive integer`);
    }
    const entry = model.versions.get(Number(text));
    if (!entry) {
      const known = [...model.versions.keys()].sort((a, b) => a - b).join(', ') || 'none';
      throw new WeirError('WEIR_VERSION_NOT_FOUND', `model '${model.name}' has no version ${text}; its versions: ${known}`);
    }
    return entry;
  }

  /** The explicit version, else the newest READY one. */
  private versionToServe(name: string, version: string | number | undefined): ModelVersion {
    const model = this.findModel(name);
    if (version !== undefined && version !== '') return this.findVersion(model, version);
    const newest = model.newestReady();
    if (!newest) {
      const why = model.reason ?? this.status().filter((s) => s.model === name).map((s) => `version ${s.version} is ${s.state}${s.reason ? ` (${s.reason})` : ''}`).join('; ');
      throw new WeirError('WEIR_MODEL_UNAVAILABLE', `model '${name}' has no ready version: ${why}`);
    }
    return newest;
  }

  private servedVersion(model: Model, version: string | number | undefined): ServedVersion {
    const entry = version === undefined || version === '' ? this.versionToServe(model.name, undefined) : this.findVersion(model, version);
    const served = entry.ready;
    if (!served) {
      throw new WeirError('WEIR_MODEL_UNAVAILABLE', `model '${model.name}' version ${entry.version} is ${entry.state}${entry.reason ? `: ${entry.reason.message}` : ''}`);
    }
    return served;
  }
}

/**
 * Counts a failed request by its error's code. An observer that throws
 * loses the count, never the client its answer: the caller answers next,
 * and may be deep in the batcher, which must not be thrown out of.
 */
function countFailure(observer: CoreObserver | null, request: InferRequest, version: string, started: number, error: unknown): void {
  if (!observer) return;
  const { code } = toWeirError(error);
  const model = code === 'WEIR_MODEL_NOT_FOUND' ? '' : String(request.model);
  try {
    observer.requestFinished(model, version, (performance.now() - started) / 1000, code);
  } catch {
    // the failure itself is what the client is told
  }
}

/** One request between the core and its batcher: releases the version it holds, counts, and answers. */
class CoreCall implements BatchReply {
  constructor(
    private readonly observer: CoreObserver | null,
    private readonly entry: ModelVersion,
    private readonly served: ServedVersion,
    private readonly request: InferRequest,
    private readonly started: number,
    private readonly reply: InferReply,
  ) {}

  resolve(result: RunResult): void {
    let response: InferResponse;
    try {
      this.entry.release();
      const { served, request } = this;
      const version = String(served.version);
      response = { model_name: served.model, model_version: version, outputs: result.outputs, computeNs: result.runNs };
      if (request.id !== undefined) response.id = request.id;
      this.observer?.requestFinished(served.model, version, (performance.now() - this.started) / 1000, null);
    } catch (error) {
      this.reply.fail(error); // the client still gets an answer
      return;
    }
    this.reply.answer(response);
  }

  reject(error: unknown): void {
    this.entry.release();
    countFailure(this.observer, this.request, String(this.served.version), this.started, error);
    this.reply.fail(error);
  }
}
