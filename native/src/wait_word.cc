#include "wait_word.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <ctime>

namespace weir {

// The threads are one process's, so the private futex (no shared-mapping lookup) is enough.
void WaitOnWord(int32_t* word, int32_t expected, double timeout_ms) {
  const double seconds = std::floor(timeout_ms / 1000);
  struct timespec timeout;
  timeout.tv_sec = static_cast<time_t>(seconds);
  timeout.tv_nsec = static_cast<long>((timeout_ms - seconds * 1000) * 1e6);
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, &timeout, nullptr, 0);
}

void WakeWord(int32_t* word) { syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0); }

}  // namespace weir
