/**
 * One version of a model and its lifecycle: LOADING → READY or UNAVAILABLE
 * (with the reason), and READY → UNLOADING → gone once the requests in flight
 * have finished. While READY it holds what the request path reads, computed
 * once at load.
 */
import type { Batcher } from '../batching/batcher.js';
import { type ErrorCode, WeirError } from '../errors.js';
import type { SessionInfo, SessionOptions } from '../native/addon.js';
import type { DynamicBatching, ModelConfig } from './model-config.js';
import type { Signature, TensorSpec } from './signature.js';

export type VersionState = 'LOADING' | 'READY' | 'UNAVAILABLE' | 'UNLOADING';

/** Everything the request path needs about a READY version. */
export interface ServedVersion {
  model: string;
  version: number;
  /** The native session registry's key for this version. */
  sessionKey: string;
  provider: SessionInfo['provider'];
  /** Why the configured provider was replaced by CPU, if it was. */
  fallbackReason: string | null;
  /** The config as written (or defaulted); the values below are what it resolved to. */
  config: ModelConfig;
  signature: Signature;
  /** null: every request runs alone. */
  batching: DynamicBatching | null;
  sessionOptions: SessionOptions;
  /** Queues and batches this version's requests. */
  batcher: Batcher;
  inputsByName: ReadonlyMap<string, TensorSpec>;
  outputNames: ReadonlySet<string>;
}

export class ModelVersion {
  state: VersionState = 'LOADING';
  /** Why the version is UNAVAILABLE. */
  reason: { code: ErrorCode; message: string } | null = null;
  private served: ServedVersion | null = null;
  private inflight = 0;
  private onDrained: (() => void) | null = null;

  constructor(
    readonly model: string,
    readonly version: number,
  ) {}

  markReady(served: ServedVersion): void {
    this.served = served;
    this.state = 'READY';
  }

  markUnavailable(error: WeirError): void {
    this.served = null;
    this.state = 'UNAVAILABLE';
    this.reason = { code: error.code, message: error.message };
  }

  /** The served version, when READY. */
  get ready(): ServedVersion | null {
    return this.state === 'READY' ? this.served : null;
  }

  /**
   * Claims the version for one request; every acquire() is followed by one
   * release(). Throws WEIR_MODEL_UNAVAILABLE unless READY.
   */
  acquire(): ServedVersion {
    const served = this.ready;
    if (!served) {
      const why = this.reason ? `: ${this.reason.message}` : '';
      throw new WeirError('WEIR_MODEL_UNAVAILABLE', `model '${this.model}' version ${this.version} is ${this.state}${why}`);
    }
    this.inflight += 1;
    return served;
  }

  release(): void {
    this.inflight -= 1;
    if (this.inflight === 0) this.onDrained?.();
  }

  get inflightRequests(): number {
    return this.inflight;
  }

  /** UNLOADING: refuses new requests, resolves once those in flight are done. */
  async drain(): Promise<ServedVersion | null> {
    const served = this.served;
    this.state = 'UNLOADING';
    if (this.inflight > 0) await new Promise<void>((resolve) => (this.onDrained = resolve));
    this.onDrained = null;
    this.served = null;
    return served;
  }
}
