#include "model_session.h"

#include <chrono>
#include <cstring>

#include "errors.h"
#include "ort_runtime.h"
#include "string_tensor.h"

namespace weir {

std::atomic<int64_t> ModelSession::live_count_{0};

namespace {

std::string DescribeType(const Ort::ConstTypeInfo& info);

std::string DescribeType(const Ort::TypeInfo& info) { return DescribeType(info.GetConst()); }

std::string DescribeType(const Ort::ConstTypeInfo& info) {
  switch (info.GetONNXType()) {
    case ONNX_TYPE_TENSOR:
      return "tensor(" + std::string(OnnxTypeName(info.GetTensorTypeAndShapeInfo().GetElementType())) + ")";
    case ONNX_TYPE_SPARSETENSOR:
      return "sparse_tensor(" + std::string(OnnxTypeName(info.GetTensorTypeAndShapeInfo().GetElementType())) + ")";
    case ONNX_TYPE_SEQUENCE:
      return "seq(" + DescribeType(info.GetSequenceTypeInfo().GetSequenceElementType()) + ")";
    case ONNX_TYPE_MAP: {
      auto map = info.GetMapTypeInfo();
      return "map(" + std::string(OnnxTypeName(map.GetMapKeyType())) + "," + DescribeType(map.GetMapValueType()) + ")";
    }
    case ONNX_TYPE_OPTIONAL:
      return "optional(" + DescribeType(info.GetOptionalTypeInfo().GetOptionalElementType()) + ")";
    default:
      return "unknown";
  }
}

ValueSpec DescribeValue(std::string name, const Ort::TypeInfo& info) {
  ValueSpec spec;
  spec.name = std::move(name);
  spec.type = DescribeType(info);
  if (info.GetONNXType() != ONNX_TYPE_TENSOR) return spec;

  auto tensor = info.GetTensorTypeAndShapeInfo();
  spec.dtype = FindByOnnx(tensor.GetElementType());
  spec.shape = tensor.GetShape();
  std::vector<const char*> symbols(spec.shape.size(), nullptr);
  tensor.GetSymbolicDimensions(symbols.data(), symbols.size());
  for (size_t i = 0; i < spec.shape.size(); ++i) {
    if (spec.shape[i] < 0) spec.shape[i] = -1;
    spec.dim_names.emplace_back(symbols[i] != nullptr ? symbols[i] : "");
  }
  return spec;
}

int IndexOf(const std::vector<ValueSpec>& specs, std::string_view name) {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

ModelSession::ModelSession(const std::string& model_path, const SessionConfig& config) {
  try {
    Ort::SessionOptions options = BuildOptions(config);
    session_ = Ort::Session(RuntimeEnv(), model_path.c_str(), options);

    Ort::AllocatorWithDefaultOptions allocator;
    for (size_t i = 0; i < session_.GetInputCount(); ++i) {
      inputs_.push_back(DescribeValue(session_.GetInputNameAllocated(i, allocator).get(), session_.GetInputTypeInfo(i)));
    }
    for (size_t i = 0; i < session_.GetOutputCount(); ++i) {
      outputs_.push_back(
          DescribeValue(session_.GetOutputNameAllocated(i, allocator).get(), session_.GetOutputTypeInfo(i)));
    }
  } catch (const Ort::Exception& e) {
    throw FromOrt(e);
  }
  for (const auto& spec : inputs_) input_names_.push_back(spec.name.c_str());
  for (const auto& spec : outputs_) output_names_.push_back(spec.name.c_str());
  live_count_.fetch_add(1);
}

ModelSession::~ModelSession() { live_count_.fetch_sub(1); }

Ort::SessionOptions ModelSession::BuildOptions(const SessionConfig& config) {
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(config.intra_op_threads);
  options.SetInterOpNumThreads(config.inter_op_threads);
  options.SetGraphOptimizationLevel(config.optimization);
  options.SetExecutionMode(ORT_SEQUENTIAL);
  // Several workers share the cores: idle ORT threads sleep instead of spinning.
  options.AddConfigEntry("session.intra_op.allow_spinning", "0");
  options.AddConfigEntry("session.inter_op.allow_spinning", "0");

  provider_ = "cpu";
  if (config.execution_provider == "cuda") {
    OrtCUDAProviderOptions cuda;
    cuda.device_id = config.device_id;
    try {
      options.AppendExecutionProvider_CUDA(cuda);
      provider_ = "cuda";
    } catch (const Ort::Exception& e) {
      std::string reason = "the CUDA execution provider cannot be used on device " +
                           std::to_string(config.device_id) + ": " + e.what();
      if (!config.cpu_fallback) throw CodedError("WEIR_EP_UNAVAILABLE", reason);
      fallback_reason_ = reason;
    }
  } else if (config.execution_provider != "cpu") {
    throw CodedError("WEIR_EP_UNAVAILABLE",
                     "unknown execution provider '" + config.execution_provider + "'; expected 'cpu' or 'cuda'");
  }
  return options;
}

int ModelSession::InputIndex(std::string_view name) const { return IndexOf(inputs_, name); }
int ModelSession::OutputIndex(std::string_view name) const { return IndexOf(outputs_, name); }

RunResult ModelSession::Run(std::vector<InputTensor>& inputs, std::vector<size_t> output_indices) const {
  // ORT rejects a null data pointer even for an empty tensor.
  static char empty_tensor_data[8];

  RunResult result;
  result.output_indices = std::move(output_indices);
  std::vector<const char*> input_names;
  std::vector<Ort::Value> input_values;
  std::vector<const char*> output_names;
  input_names.reserve(inputs.size());
  input_values.reserve(inputs.size());
  for (size_t index : result.output_indices) output_names.push_back(output_names_[index]);

  try {
    for (auto& input : inputs) {
      input_names.push_back(input_names_[input.index]);
      if (input.dtype->onnx == ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING) {
        input_values.push_back(MakeStringTensor(input, inputs_[input.index].name));
      } else {
        void* data = input.byte_length == 0 ? empty_tensor_data : input.data;
        input_values.push_back(Ort::Value::CreateTensor(CpuMemoryInfo(), data, input.byte_length, input.shape.data(),
                                                        input.shape.size(), input.dtype->onnx));
      }
    }
    auto wall_start = std::chrono::steady_clock::now();
    result.values = session_.Run(Ort::RunOptions{nullptr}, input_names.data(), input_values.data(),
                                 input_values.size(), output_names.data(), output_names.size());
    result.run_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - wall_start).count());
  } catch (const Ort::Exception& e) {
    throw FromOrt(e);
  }
  return result;
}

}  // namespace weir
