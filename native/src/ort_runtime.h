// The one ONNX Runtime of the process. The library is opened at run time
// (dlopen) from the file that onnxruntime-node ships, or from the file named by
// WEIR_ORT_LIBRARY (e.g. a CUDA-enabled build), so that every user of ORT in
// the process shares it. All threads and all N-API environments share the
// state below; it lives until the process exits.
#pragma once

#include <string>

#include <onnxruntime_cxx_api.h>

namespace weir {

struct RuntimeInfo {
  std::string library_path;
  std::string version;  // as ORT reports it, e.g. "1.30.0"
  int api_version;      // the C API version this addon was compiled against
};

// Opens the library once; later calls with the same path return its info, a
// different path is an error (one ORT per process). Thread-safe.
RuntimeInfo InitRuntime(const std::string& library_path);

// Throws WEIR_RUNTIME_NOT_INITIALIZED before InitRuntime succeeded.
Ort::Env& RuntimeEnv();
const OrtMemoryInfo* CpuMemoryInfo();

}  // namespace weir
