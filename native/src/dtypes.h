// The datatype table: KServe V2 names <-> ONNX element types <-> element
// sizes. src/tensors/datatypes.ts mirrors it for JavaScript.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <onnxruntime_cxx_api.h>

namespace weir {

// How an element type is held in JavaScript: which TypedArray wraps its bytes.
enum class JsArrayKind { kFloat32, kFloat64, kInt8, kUint8, kInt16, kUint16, kInt32, kUint32, kBigInt64, kBigUint64 };

struct DataType {
  std::string_view v2_name;           // "FP32", "BYTES", ...
  ONNXTensorElementDataType onnx;     // ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, ...
  size_t element_size;                // bytes per element; 0 for BYTES (variable)
  JsArrayKind js_kind;                // BYTES travel as Uint8Array (length-prefixed)
};

// nullptr when the type has no V2 name (complex numbers, float8, ...).
const DataType* FindByOnnx(ONNXTensorElementDataType onnx);
const DataType* FindByV2Name(std::string_view name);

// Human-readable ONNX type name for error messages ("tensor(float)").
std::string_view OnnxTypeName(ONNXTensorElementDataType onnx);

}  // namespace weir
