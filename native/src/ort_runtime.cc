#include "ort_runtime.h"

#include <dlfcn.h>
#include <stdlib.h>

#include <atomic>
#include <mutex>

#include "errors.h"

namespace weir {
namespace {

struct Runtime {
  RuntimeInfo info;
  Ort::Env* env = nullptr;           // never freed: threads may still use it at exit
  OrtMemoryInfo* cpu_memory = nullptr;
};

std::mutex runtime_mutex;
std::atomic<Runtime*> runtime{nullptr};  // set once, under runtime_mutex

Runtime* OpenRuntime(const std::string& library_path) {
  void* library = dlopen(library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    throw CodedError("WEIR_RUNTIME_LOAD_FAILED",
                     "cannot open the ONNX Runtime library " + library_path + ": " + dlerror());
  }
  using GetApiBase = const OrtApiBase* (*)();
  auto get_api_base = reinterpret_cast<GetApiBase>(dlsym(library, "OrtGetApiBase"));
  if (get_api_base == nullptr) {
    throw CodedError("WEIR_RUNTIME_LOAD_FAILED", library_path + " does not export OrtGetApiBase");
  }
  const OrtApiBase* base = get_api_base();
  const OrtApi* api = base->GetApi(ORT_API_VERSION);
  if (api == nullptr) {
    throw CodedError("WEIR_RUNTIME_LOAD_FAILED",
                     "ONNX Runtime " + std::string(base->GetVersionString()) + " at " + library_path +
                         " does not offer C API version " + std::to_string(ORT_API_VERSION) +
                         " that this addon was built for; use ONNX Runtime 1." +
                         std::to_string(ORT_API_VERSION) + " or newer");
  }
  Ort::InitApi(api);

  // ORT 1.30 writes telemetry under the home folder unless this is set before
  // the first environment exists. A value set by the user wins.
  setenv("ORT_DISABLE_TELEMETRY", "1", 0);

  auto* rt = new Runtime();
  rt->info = {library_path, base->GetVersionString(), ORT_API_VERSION};
  try {
    rt->env = new Ort::Env(ORT_LOGGING_LEVEL_WARNING, "weir");
    rt->env->DisableTelemetryEvents();
    Ort::ThrowOnError(api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &rt->cpu_memory));
  } catch (const Ort::Exception& e) {
    throw FromOrt(e);
  }
  return rt;
}

}  // namespace

RuntimeInfo InitRuntime(const std::string& library_path) {
  std::lock_guard<std::mutex> lock(runtime_mutex);
  Runtime* rt = runtime.load(std::memory_order_acquire);
  if (rt == nullptr) {
    rt = OpenRuntime(library_path);
    runtime.store(rt, std::memory_order_release);
  } else if (rt->info.library_path != library_path) {
    throw CodedError("WEIR_RUNTIME_CONFLICT", "ONNX Runtime is already loaded from " + rt->info.library_path +
                                                  "; cannot also load " + library_path + " in the same process");
  }
  return rt->info;
}

static Runtime& ReadyRuntime() {
  Runtime* rt = runtime.load(std::memory_order_acquire);
  if (rt == nullptr) {
    throw CodedError("WEIR_RUNTIME_NOT_INITIALIZED", "ONNX Runtime is not loaded: call initRuntime() first");
  }
  return *rt;
}

Ort::Env& RuntimeEnv() { return *ReadyRuntime().env; }

const OrtMemoryInfo* CpuMemoryInfo() { return ReadyRuntime().cpu_memory; }

}  // namespace weir
