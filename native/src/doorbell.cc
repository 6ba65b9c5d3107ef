#include "doorbell.h"

#include <mutex>
#include <unordered_map>

#include "errors.h"

namespace weir {
namespace {

struct Bells {
  std::mutex mutex;
  std::unordered_map<uint32_t, napi_threadsafe_function> open;
  uint32_t next_id = 1;
};

// Never destroyed: a worker may ring while the process exits.
Bells& AllBells() {
  static Bells* bells = new Bells();
  return *bells;
}

void CallJs(napi_env env, napi_value callback, void* /*context*/, void* /*data*/) {
  if (env == nullptr || callback == nullptr) return;  // the environment is being torn down
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  // An exception is the callback's own: Node reports it as uncaught, as it would a listener's.
  napi_call_function(env, undefined, callback, 0, nullptr, nullptr);
}

// Also runs when the environment ends with the bell still open.
void Finalize(napi_env /*env*/, void* finalize_data, void* /*hint*/) {
  const auto id = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(finalize_data));
  Bells& bells = AllBells();
  std::lock_guard<std::mutex> lock(bells.mutex);
  bells.open.erase(id);
}

void ThrowIfFailed(napi_status status, const char* what) {
  if (status != napi_ok) throw CodedError("WEIR_INTERNAL", std::string("doorbell: ") + what + " failed");
}

}  // namespace

uint32_t OpenDoorbell(Napi::Env env, Napi::Function callback) {
  Bells& bells = AllBells();
  uint32_t id;
  {
    std::lock_guard<std::mutex> lock(bells.mutex);
    id = bells.next_id++;
  }
  napi_value name;
  ThrowIfFailed(napi_create_string_utf8(env, "weir doorbell", NAPI_AUTO_LENGTH, &name), "naming");
  napi_threadsafe_function function;
  ThrowIfFailed(napi_create_threadsafe_function(env, callback, nullptr, name, 0, 1,
                                                reinterpret_cast<void*>(static_cast<uintptr_t>(id)), Finalize, nullptr,
                                                CallJs, &function),
                "napi_create_threadsafe_function");
  ThrowIfFailed(napi_unref_threadsafe_function(env, function), "napi_unref_threadsafe_function");
  std::lock_guard<std::mutex> lock(bells.mutex);
  bells.open.emplace(id, function);
  return id;
}

bool RingDoorbell(uint32_t id) {
  Bells& bells = AllBells();
  // Held while calling: a bell cannot be released between the lookup and the call.
  std::lock_guard<std::mutex> lock(bells.mutex);
  auto it = bells.open.find(id);
  if (it == bells.open.end()) return false;
  return napi_call_threadsafe_function(it->second, nullptr, napi_tsfn_nonblocking) == napi_ok;
}

void CloseDoorbell(uint32_t id) {
  Bells& bells = AllBells();
  napi_threadsafe_function function;
  {
    std::lock_guard<std::mutex> lock(bells.mutex);
    auto it = bells.open.find(id);
    if (it == bells.open.end()) return;
    function = it->second;
    bells.open.erase(it);
  }
  napi_release_threadsafe_function(function, napi_tsfn_abort);
}

}  // namespace weir
