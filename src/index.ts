export { InferenceCore, type CoreOptions, type InferRequest, type InferResponse, type VersionStatus } from './core/core.js';
export { ERRORS, WeirError, type ErrorCode } from './errors.js';
export { DATATYPES, type DataType, encodeBytesTensor, decodeBytesTensor } from './tensors/datatypes.js';
export type { Tensor } from './tensors/tensor.js';
export type { Cancellation } from './workers/task.js';
export { planThreads, type ThreadPlan } from './config/threads.js';
