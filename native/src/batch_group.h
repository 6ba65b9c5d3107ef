// Runs a group of batches in the pool's wire format (src/workers/wire.ts is
// the reference) and answers in the same format, with one crossing between
// JavaScript and C++ per group instead of objects per batch and tensor:
//
//   { strings: string[], header: Float64Array, packed: ArrayBuffer, large: TypedArray[] }
//
// A batch that fails gets an error reply; the others still run.
#pragma once

#include <napi.h>

namespace weir {

// `pack_limit`: outputs up to this many bytes go into `packed`; larger ones
// get a buffer of their own in `large`, for the caller to transfer.
Napi::Object RunBatchGroup(Napi::Env env, const Napi::Object& message, size_t pack_limit);

}  // namespace weir
