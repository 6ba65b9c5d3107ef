#include "dtypes.h"

#include <array>

namespace weir {
namespace {

using E = ONNXTensorElementDataType;
using K = JsArrayKind;

constexpr std::array<DataType, 14> kTable{{
    {"BOOL", ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, 1, K::kUint8},
    {"UINT8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, 1, K::kUint8},
    {"UINT16", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16, 2, K::kUint16},
    {"UINT32", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32, 4, K::kUint32},
    {"UINT64", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64, 8, K::kBigUint64},
    {"INT8", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, 1, K::kInt8},
    {"INT16", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16, 2, K::kInt16},
    {"INT32", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, 4, K::kInt32},
    {"INT64", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, 8, K::kBigInt64},
    {"FP16", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, 2, K::kUint16},
    {"BF16", ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16, 2, K::kUint16},
    {"FP32", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, 4, K::kFloat32},
    {"FP64", ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, 8, K::kFloat64},
    {"BYTES", ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, 0, K::kUint8},
}};

// The JavaScript side reinterprets these bytes in place: the sizes must match.
static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE-754 float and double expected");
static_assert(sizeof(Ort::Float16_t) == 2 && sizeof(Ort::BFloat16_t) == 2, "16-bit floats are 2 bytes");
static_assert(sizeof(bool) == 1, "ONNX BOOL elements are one byte, as in a Uint8Array");

}  // namespace

const DataType* FindByOnnx(E onnx) {
  for (const auto& t : kTable) {
    if (t.onnx == onnx) return &t;
  }
  return nullptr;
}

const DataType* FindByV2Name(std::string_view name) {
  for (const auto& t : kTable) {
    if (t.v2_name == name) return &t;
  }
  return nullptr;
}

std::string_view OnnxTypeName(E onnx) {
  switch (onnx) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return "uint16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return "int16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return "string";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return "bool";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "double";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return "uint32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return "uint64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX64: return "complex64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX128: return "complex128";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
    default: return "unknown";
  }
}

}  // namespace weir
