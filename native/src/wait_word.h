// Blocking on a 32-bit word of shared memory, and waking who blocks on it:
// Linux's futex, for the worker pool's mailbox. Atomics.notify signals its
// waiter while holding a process-wide V8 mutex, so on a core the two threads
// share, the woken worker runs, finds that mutex taken, and sleeps again
// until the notifier lets go: two context switches more per batch than the
// wake itself (docs/architecture.md).
#pragma once

#include <cstdint>

namespace weir {

// Blocks while *word == expected, for at most timeout_ms (a wake, a change
// of the word, a signal or the timeout ends it; the caller re-checks).
void WaitOnWord(int32_t* word, int32_t expected, double timeout_ms);

// Wakes one thread blocked on `word`.
void WakeWord(int32_t* word);

}  // namespace weir
