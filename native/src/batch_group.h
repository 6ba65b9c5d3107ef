// Runs a group of batches in the pool's wire format (src/workers/wire.ts is
// the reference) and answers in the same format, with one crossing between
// JavaScript and C++ per group instead of objects per batch and tensor:
//
//   { strings: string[], header: Float64Array, packed: ArrayBuffer, large: TypedArray[] }
//
// A batch that fails gets an error reply; the others still run.
//
// The same message can also lie in one buffer (the flat layout, which a
// worker's shared mailbox holds; src/workers/wire.ts writes and reads it):
//
//   uint32 stringCount, headerCount, packedBytes, stringBytes
//   the strings: each a uint32 byte length, then its UTF-8
//   (to an 8-byte boundary) the header, headerCount float64
//   (to an 8-byte boundary) the packed tensors, packedBytes
//
// It has no large tensors: a group with any crosses as a message.
#pragma once

#include <napi.h>

namespace weir {

// `pack_limit`: outputs up to this many bytes go into `packed`; larger ones
// get a buffer of their own in `large`, for the caller to transfer.
Napi::Object RunBatchGroup(Napi::Env env, const Napi::Object& message, size_t pack_limit);

// Runs a group in the flat layout from `request` (8-byte aligned) and writes
// the replies into `reply` in the flat layout, returning true; when they do
// not fit `reply_capacity` (or an output passes `pack_limit`), returns them
// as a message instead, as RunBatchGroup does.
Napi::Value RunFlatBatchGroup(Napi::Env env, const uint8_t* request, size_t request_length, uint8_t* reply,
                              size_t reply_capacity, size_t pack_limit);

}  // namespace weir
