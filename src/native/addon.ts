/**
 * The native addon, loaded once per thread (main thread and each worker),
 * with ONNX Runtime opened inside it. The addon's own state (the runtime and
 * the session registry) is process-wide; see native/src/session_registry.h.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { TypedArray } from '../tensors/datatypes.js';
import type { Tensor } from '../tensors/tensor.js';
import type { WireMessage } from '../workers/wire.js';

export interface RuntimeInfo {
  libraryPath: string;
  version: string;
  apiVersion: number;
}

export interface SessionOptions {
  intraOpThreads: number;
  interOpThreads: number;
  graphOptimization: 'disable' | 'basic' | 'extended' | 'all';
  executionProvider: 'cpu' | 'cuda';
  deviceId: number;
  /** Run on CPU when the CUDA provider cannot be used, instead of failing. */
  cpuFallback: boolean;
}

/** A model input or output as ONNX Runtime describes it. */
export interface ValueInfo {
  name: string;
  /** ONNX type, e.g. `tensor(float)` or `seq(map(int64,tensor(float)))`. */
  type: string;
  /** V2 datatype; null unless a tensor of a supported element type. */
  datatype: Tensor['datatype'] | null;
  /** -1 for a dynamic dimension; empty for a scalar. */
  shape: number[];
  /** Symbolic dimension names; '' where a dimension has none. */
  dimNames: string[];
}

export interface SessionInfo {
  key: string;
  provider: 'cpu' | 'cuda';
  fallbackReason: string | null;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

export interface RunResult {
  outputs: Tensor[];
  /** Wall time inside ONNX Runtime's Run. */
  runNs: number;
}

export interface NativeAddon {
  /** The ONNX Runtime this process opened. */
  readonly runtime: RuntimeInfo;
  /** Opens ONNX Runtime (done once on load); another library path is WEIR_RUNTIME_CONFLICT. */
  initRuntime(libraryPath: string): RuntimeInfo;
  loadSession(key: string, modelPath: string, options: SessionOptions): Promise<SessionInfo>;
  /** Drops one reference; returns the references left (0: unloaded). */
  releaseSession(key: string): number;
  run(key: string, inputs: readonly Tensor[], outputNames?: readonly string[]): RunResult;
  /**
   * Runs a group of batches in the pool's wire format and answers in it:
   * one crossing into C++ per group. Outputs over `packLimit` bytes come back
   * in buffers of their own.
   */
  runBatchGroup(message: WireMessage, packLimit: number): WireMessage;
  /**
   * The same for a group in the flat layout (wire.ts) in `request`: true once
   * the replies are written into `reply` in that layout, or the replies as a
   * message when they do not fit it.
   */
  runFlatBatchGroup(request: Uint8Array, reply: Uint8Array, packLimit: number): true | WireMessage;
  sessions(): Array<{ key: string; modelPath: string; references: number }>;
  liveSessionCount(): number;
  /**
   * Copies `source` into `target` at `targetOffset` with memcpy: into shared
   * memory, V8's own copy goes byte by byte unless both are aligned alike.
   */
  copyBytes(target: Uint8Array, targetOffset: number, source: ArrayBuffer): void;
  /**
   * Parses the numbers of a V2 JSON body's `inputs[i].data` (json_lift.h)
   * into `scratch` as [skeletonId, idStart, idEnd, inputs, start0, end0, ...,
   * numbers] (idStart, idEnd: where the lifted `id` string lies in `bytes`,
   * or -1); the body's skeleton (its text with each lifted array replaced
   * by 0, and a lifted id by "") comes
   * back as a string the first time, its id in scratch[0] (-1: not kept),
   * and as that id from then on. Null when nothing was lifted (unless
   * `keepUnlifted`: a binary request's JSON header, whose skeleton is all
   * of it); minus the length needed when the numbers do not fit `scratch`.
   */
  liftJsonData(bytes: Uint8Array, scratch: Float64Array, keepUnlifted?: boolean): string | number | null;
  /** `data` as a JSON array, each number as String() writes it; null when one is NaN or infinite (or the array is a Float16Array). */
  jsonNumbers(data: TypedArray): string | null;
  /**
   * Opens a doorbell on this thread: `callback` is called here once per ring.
   * It does not keep the event loop alive. Returns its id, which any thread's
   * addon can ring (native/src/doorbell.h).
   */
  openDoorbell(callback: () => void): number;
  /** Rings doorbell `id`, from any thread; false once it is closed. */
  ringDoorbell(id: number): boolean;
  /** Closes doorbell `id` (on the thread that opened it); rings not yet delivered are dropped. */
  closeDoorbell(id: number): void;
  /**
   * Blocks while `word[0]` equals `expected`, at most `timeoutMs`; a wake, a
   * change of the word or the timeout ends it, so the caller re-checks.
   * Unlike Atomics.wait, worker.terminate() does not interrupt it: keep the
   * timeout short, or wake the thread (native/src/wait_word.h).
   */
  waitOnWord(word: Int32Array, expected: number, timeoutMs: number): void;
  /** Wakes one thread blocked in waitOnWord on `word[0]`. */
  wakeWord(word: Int32Array): void;
}

/** The binding as the C++ exports it; NativeAddon wraps the parts whose shape differs. */
interface Binding extends Omit<NativeAddon, 'runtime' | 'run'> {
  /** [runNs, name, datatype, shape, data, name, ...]: cheaper to build in C++ than objects. */
  run(key: string, inputs: readonly Tensor[], outputNames?: readonly string[]): unknown[];
}

const require = createRequire(import.meta.url);
const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The ONNX Runtime library to open: WEIR_ORT_LIBRARY (e.g. a CUDA-enabled
 * build), else the one onnxruntime-node ships, so that Weir and any
 * onnxruntime-node in the same process share one runtime.
 */
export function ortLibraryPath(): string {
  const fromEnv = process.env.WEIR_ORT_LIBRARY;
  if (fromEnv) return fromEnv;
  const packageDir = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(packageDir, 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime.so.1');
}

let loaded: NativeAddon | undefined;

/** The addon of this thread, with ONNX Runtime loaded. */
export function nativeAddon(): NativeAddon {
  loaded ??= wrap(require(join(projectRoot, 'native', 'build', 'Release', 'weir_native.node')) as Binding);
  return loaded;
}

function wrap(binding: Binding): NativeAddon {
  return {
    runtime: binding.initRuntime(ortLibraryPath()),
    initRuntime: (libraryPath) => binding.initRuntime(libraryPath),
    loadSession: (key, modelPath, options) => binding.loadSession(key, modelPath, options),
    releaseSession: (key) => binding.releaseSession(key),
    sessions: () => binding.sessions(),
    liveSessionCount: () => binding.liveSessionCount(),
    runBatchGroup: (message, packLimit) => binding.runBatchGroup(message, packLimit),
    runFlatBatchGroup: (request, reply, packLimit) => binding.runFlatBatchGroup(request, reply, packLimit),
    copyBytes: (target, targetOffset, source) => binding.copyBytes(target, targetOffset, source),
    liftJsonData: (bytes, scratch, keepUnlifted) => binding.liftJsonData(bytes, scratch, keepUnlifted),
    jsonNumbers: (data) => binding.jsonNumbers(data),
    openDoorbell: (callback) => binding.openDoorbell(callback),
    ringDoorbell: (id) => binding.ringDoorbell(id),
    closeDoorbell: (id) => binding.closeDoorbell(id),
    waitOnWord: (word, expected, timeoutMs) => binding.waitOnWord(word, expected, timeoutMs),
    wakeWord: (word) => binding.wakeWord(word),
    run(key, inputs, outputNames) {
      const flat = binding.run(key, inputs, outputNames);
      const outputs: Tensor[] = [];
      for (let i = 1; i < flat.length; i += 4) {
        outputs.push({
          name: flat[i] as string,
          datatype: flat[i + 1] as Tensor['datatype'],
          shape: flat[i + 2] as number[],
          data: flat[i + 3] as Tensor['data'],
        });
      }
      return { outputs, runNs: flat[0] as number };
    },
  };
}
