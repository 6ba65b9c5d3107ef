// Doorbells: a worker thread rings one to have a JavaScript function called on
// the thread that opened it. This is what a one-number MessagePort message did
// for the worker pool, without the clone, the MessageEvent and its dispatch
// that each message costs both threads. A bell is a thread-safe function
// underneath; bells are numbered process-wide so that a worker's instance of
// the addon can ring one the main thread's instance opened.
#pragma once

#include <napi.h>

#include <cstdint>

namespace weir {

// Opens a bell on the calling thread that calls `callback` (no arguments) once
// per ring. The bell does not keep the event loop alive. Returns its number.
uint32_t OpenDoorbell(Napi::Env env, Napi::Function callback);

// Rings bell `id`; from any thread. False when it is closed (or never was).
bool RingDoorbell(uint32_t id);

// Closes bell `id` on the thread that opened it; rings not yet delivered are
// dropped. Closing a closed bell does nothing.
void CloseDoorbell(uint32_t id);

}  // namespace weir
