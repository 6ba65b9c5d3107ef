/**
 * The model repository on disk, in Triton's layout:
 *
 *   <root>/<model>/config.json | config.yaml      (optional)
 *   <root>/<model>/<version>/model.onnx           (version: a positive integer)
 *
 * Loading one model never stops the others: a model or version that fails is
 * UNAVAILABLE and says why. Models can be (re)loaded and unloaded at any time;
 * nothing here assumes the set of versions is fixed at start.
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { Batcher, type BatchStats, type RunBatch } from '../batching/batcher.js';
import type { ThreadPlan } from '../config/threads.js';
import { WeirError, toWeirError } from '../errors.js';
import type { NativeAddon, SessionOptions } from '../native/addon.js';
import { DEFAULT_DYNAMIC_BATCHING, type ModelConfig, readModelConfig } from './model-config.js';
import { ModelVersion, type ServedVersion } from './model-version.js';
import { resolveSignature } from './signature.js';
import { selectVersions } from './version-policy.js';

export const MODEL_FILE = 'model.onnx';

/**
 * Makes session keys unique in the process: the native registry is
 * process-wide, and several repositories (or reloads of one version) may
 * hold the same model name and version at once.
 */
let sessionGeneration = 0;

export class Model {
  /** The validated config; null when the config file itself is broken. */
  config: ModelConfig | null = null;
  /** Why the model as a whole cannot serve (bad config, no versions). */
  reason: string | null = null;
  readonly versions = new Map<number, ModelVersion>();

  constructor(readonly name: string) {}

  /** The newest READY version (on the request path: no allocation). */
  newestReady(): ModelVersion | undefined {
    let newest: ModelVersion | undefined;
    for (const version of this.versions.values()) {
      if (version.state === 'READY' && (!newest || version.version > newest.version)) newest = version;
    }
    return newest;
  }

  /** READY versions, newest first. */
  readyVersions(): ServedVersion[] {
    return [...this.versions.values()]
      .map((v) => v.ready)
      .filter((v): v is ServedVersion => v !== null)
      .sort((a, b) => b.version - a.version);
  }
}

export interface RepositoryOptions {
  addon: NativeAddon;
  threads: ThreadPlan;
  /** Runs one batch (in the worker pool). */
  runBatch: RunBatch;
  /** Told about every batch that ran. */
  onBatch?: (model: string, version: number, stats: BatchStats) => void;
}

export class ModelRepository {
  readonly root: string;
  private readonly models = new Map<string, Model>();

  constructor(
    root: string,
    private readonly options: RepositoryOptions,
  ) {
    this.root = resolve(root);
  }

  /** Scans the repository and loads every model found. */
  async loadAll(): Promise<void> {
    if (!existsSync(this.root) || !(await stat(this.root)).isDirectory()) {
      throw new WeirError('WEIR_REPOSITORY_INVALID', `model repository ${this.root} is not a folder`);
    }
    const names = (await readdir(this.root, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
      .map((entry) => entry.name)
      .sort();
    await Promise.all(names.map((name) => this.loadModel(name)));
  }

  model(name: string): Model | undefined {
    return this.models.get(name);
  }

  list(): Model[] {
    return [...this.models.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Loads (or reloads) one model: versions its policy now selects are
   * loaded, versions it no longer selects are drained and unloaded.
   */
  async loadModel(name: string): Promise<Model> {
    const dir = join(this.root, name);
    const model = this.models.get(name) ?? new Model(name);
    this.models.set(name, model);
    model.reason = null;

    let wanted: number[] = [];
    try {
      model.config = await readModelConfig(dir, name);
      wanted = selectVersions(model.config.versionPolicy, await versionsOnDisk(dir));
      if (wanted.length === 0) model.reason = `no version folder of model '${name}' matches its version policy`;
    } catch (error) {
      model.config = null;
      model.reason = toWeirError(error).message;
    }

    const stale = [...model.versions.values()].filter((v) => !wanted.includes(v.version));
    const fresh = wanted.filter((v) => !model.versions.has(v) || model.versions.get(v)?.state === 'UNAVAILABLE');
    // New versions are READY before old ones stop taking requests: no gap.
    await Promise.all(fresh.map((version) => this.loadVersion(model, version)));
    await Promise.all(stale.map((version) => this.unloadVersion(model, version)));
    return model;
  }

  /** Drains and unloads every version of every model. */
  async unloadAll(): Promise<void> {
    await Promise.all(
      [...this.models.values()].flatMap((model) => [...model.versions.values()].map((v) => this.unloadVersion(model, v))),
    );
  }

  private async loadVersion(model: Model, version: number): Promise<void> {
    const entry = new ModelVersion(model.name, version);
    model.versions.set(version, entry);
    const config = model.config as ModelConfig;
    const modelPath = join(this.root, model.name, String(version), MODEL_FILE);
    const sessionKey = `${model.name}:${version}#${++sessionGeneration}`;
    let loaded = false;
    try {
      if (!existsSync(modelPath)) {
        throw new WeirError('WEIR_MODEL_FILE_MISSING', `the version folder has no ${MODEL_FILE}`);
      }
      const sessionOptions = this.sessionOptions(config);
      const session = await this.options.addon.loadSession(sessionKey, modelPath, sessionOptions);
      loaded = true;
      const signature = resolveSignature(config, session);
      // A derived config batches like Triton's auto-complete: dynamic batching on.
      const derivedBatching = config.maxBatchSize === undefined && signature.maxBatchSize > 0;
      const batching = signature.maxBatchSize === 0 ? null : (config.dynamicBatching ?? (derivedBatching ? DEFAULT_DYNAMIC_BATCHING : null));
      entry.markReady({
        model: model.name,
        version,
        sessionKey,
        provider: session.provider,
        fallbackReason: session.fallbackReason,
        config,
        signature,
        batching,
        sessionOptions,
        batcher: new Batcher(sessionKey, {
          maxBatchSize: signature.maxBatchSize,
          merge: batching !== null,
          rowShapesVary: signature.inputs.some((spec) => spec.shape.slice(1).includes(-1)),
          preferredBatchSizes: batching?.preferredBatchSize ?? [],
          maxQueueDelayMicroseconds: batching?.maxQueueDelayMicroseconds ?? 0,
          maxQueueSize: batching?.maxQueueSize ?? DEFAULT_DYNAMIC_BATCHING.maxQueueSize,
          concurrency: this.options.threads.workers,
        }, this.options.runBatch, (stats) => this.options.onBatch?.(model.name, version, stats)),
        inputsByName: new Map(signature.inputs.map((spec) => [spec.name, spec])),
        outputNames: new Set(signature.outputs.map((spec) => spec.name)),
      });
    } catch (error) {
      if (loaded) this.options.addon.releaseSession(sessionKey);
      const { code, message } = toWeirError(error);
      entry.markUnavailable(new WeirError(code, `model '${model.name}' version ${version}: ${message}`));
    }
  }

  private async unloadVersion(model: Model, entry: ModelVersion): Promise<void> {
    const served = await entry.drain();
    if (served) {
      served.batcher.stop(new WeirError('WEIR_MODEL_UNAVAILABLE', `model '${model.name}' version ${entry.version} was unloaded`));
      this.options.addon.releaseSession(served.sessionKey);
    }
    if (model.versions.get(entry.version) === entry) model.versions.delete(entry.version);
  }

  private sessionOptions(config: ModelConfig): SessionOptions {
    const { runtime } = config;
    return {
      intraOpThreads: runtime.intraOpThreads ?? this.options.threads.intraOpThreads,
      interOpThreads: runtime.interOpThreads ?? this.options.threads.interOpThreads,
      graphOptimization: runtime.graphOptimization,
      executionProvider: runtime.executionProvider,
      deviceId: runtime.deviceId,
      cpuFallback: runtime.cpuFallback,
    };
  }
}

async function versionsOnDisk(modelDir: string): Promise<number[]> {
  const entries = await readdir(modelDir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && /^[1-9]\d*$/.test(e.name)).map((e) => Number(e.name));
}
