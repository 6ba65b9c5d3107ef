// One loaded model version: an ORT session with its metadata, shared by every
// thread of the process. Run() is safe to call from several threads at once
// (ORT sessions are), and touches no JavaScript.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <onnxruntime_cxx_api.h>

#include "dtypes.h"

namespace weir {

struct SessionConfig {
  int intra_op_threads = 1;
  int inter_op_threads = 1;
  GraphOptimizationLevel optimization = ORT_ENABLE_ALL;
  std::string execution_provider = "cpu";  // "cpu" or "cuda"
  int device_id = 0;
  bool cpu_fallback = false;  // if CUDA cannot be used, run on CPU instead of failing
};

// Metadata of one model input or output.
struct ValueSpec {
  std::string name;
  std::string type;                    // ONNX type, e.g. "tensor(float)", "seq(map(int64,tensor(float)))"
  const DataType* dtype = nullptr;     // null unless a tensor of a supported element type
  std::vector<int64_t> shape;          // -1 for a dynamic dimension; empty for a scalar
  std::vector<std::string> dim_names;  // symbolic dimension names, "" where none
};

// An input tensor over caller-owned bytes (no copy).
struct InputTensor {
  size_t index;  // position in ModelSession::inputs()
  const DataType* dtype;
  std::vector<int64_t> shape;
  void* data;
  size_t byte_length;
};

struct RunResult {
  std::vector<size_t> output_indices;  // positions in ModelSession::outputs()
  std::vector<Ort::Value> values;
  uint64_t run_ns = 0;  // wall time inside ORT's Run
};

class ModelSession {
 public:
  ModelSession(const std::string& model_path, const SessionConfig& config);
  ~ModelSession();
  ModelSession(const ModelSession&) = delete;
  ModelSession& operator=(const ModelSession&) = delete;

  const std::vector<ValueSpec>& inputs() const { return inputs_; }
  const std::vector<ValueSpec>& outputs() const { return outputs_; }
  const std::string& provider() const { return provider_; }
  const std::string& fallback_reason() const { return fallback_reason_; }

  // Position of the named input/output, or -1.
  int InputIndex(std::string_view name) const;
  int OutputIndex(std::string_view name) const;

  RunResult Run(std::vector<InputTensor>& inputs, std::vector<size_t> output_indices) const;

  // Sessions alive in the process (loaded and not yet destroyed).
  static int64_t LiveCount() { return live_count_.load(); }

 private:
  Ort::SessionOptions BuildOptions(const SessionConfig& config);

  std::string provider_;
  std::string fallback_reason_;
  mutable Ort::Session session_{nullptr};  // Run() is thread-safe but not const in the C++ API
  std::vector<ValueSpec> inputs_;
  std::vector<ValueSpec> outputs_;
  std::vector<const char*> input_names_;
  std::vector<const char*> output_names_;
  static std::atomic<int64_t> live_count_;
};

}  // namespace weir
