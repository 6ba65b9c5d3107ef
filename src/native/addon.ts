/**
 * The native addon, loaded once per thread (main thread and each worker),
 * with ONNX Runtime opened inside it. The addon's own state (the runtime and
 * the session registry) is process-wide; see native/src/session_registry.h.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Tensor } from '../tensors/tensor.js';

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
  /** The calling thread's CPU time inside ONNX Runtime's Run. */
  runCpuNs: number;
}

export interface NativeAddon {
  initRuntime(libraryPath: string): RuntimeInfo;
  loadSession(key: string, modelPath: string, options: SessionOptions): Promise<SessionInfo>;
  /** Drops one reference; returns the references left (0: unloaded). */
  releaseSession(key: string): number;
  run(key: string, inputs: readonly Tensor[], outputNames?: readonly string[]): RunResult;
  sessions(): Array<{ key: string; modelPath: string; references: number }>;
  liveSessionCount(): number;
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

let loaded: { addon: NativeAddon; runtime: RuntimeInfo } | undefined;

/** The addon of this thread, with ONNX Runtime loaded. */
export function nativeAddon(): NativeAddon {
  return loadNative().addon;
}

export function runtimeInfo(): RuntimeInfo {
  return loadNative().runtime;
}

function loadNative(): { addon: NativeAddon; runtime: RuntimeInfo } {
  if (!loaded) {
    const addon = require(join(projectRoot, 'native', 'build', 'Release', 'weir_native.node')) as NativeAddon;
    loaded = { addon, runtime: addon.initRuntime(ortLibraryPath()) };
  }
  return loaded;
}
