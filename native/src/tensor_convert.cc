#include "tensor_convert.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "errors.h"
#include "string_tensor.h"

namespace weir {
namespace {

[[noreturn]] void BadTensor(const std::string& message) { throw CodedError("WEIR_BAD_TENSOR", message); }

std::vector<int64_t> ReadShape(const Napi::Value& value, size_t position) {
  auto field = [position] { return "inputs[" + std::to_string(position) + "].shape"; };
  if (!value.IsArray()) BadTensor(field() + " must be an array of non-negative integers");
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> shape(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value dim = array.Get(i);
    double d = dim.IsNumber() ? dim.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != std::floor(d) || d > static_cast<double>(std::numeric_limits<int32_t>::max())) {
      BadTensor(field() + "[" + std::to_string(i) + "] must be a non-negative integer");
    }
    shape[i] = static_cast<int64_t>(d);
  }
  return shape;
}

// Element count, or SIZE_MAX when the product overflows.
size_t ElementCount(const std::vector<int64_t>& shape) {
  size_t count = 1;
  for (int64_t d : shape) {
    if (d == 0) return 0;
    if (count > std::numeric_limits<size_t>::max() / static_cast<size_t>(d)) return std::numeric_limits<size_t>::max();
    count *= static_cast<size_t>(d);
  }
  return count;
}

template <typename T>
Napi::Value TypedArrayOver(Napi::Env env, Napi::ArrayBuffer buffer, size_t offset, size_t count,
                           napi_typedarray_type type) {
  return Napi::TypedArrayOf<T>::New(env, count, buffer, offset, type);
}

}  // namespace

Napi::Value WrapBytes(Napi::Env env, const OutputLayout& layout, Napi::ArrayBuffer buffer) {
  const size_t offset = layout.offset;
  // BYTES travel as a Uint8Array over their length-prefixed encoding.
  const size_t count = layout.dtype->element_size == 0 ? layout.bytes : layout.count;
  switch (layout.dtype->js_kind) {
    case JsArrayKind::kFloat32: return TypedArrayOver<float>(env, buffer, offset, count, napi_float32_array);
    case JsArrayKind::kFloat64: return TypedArrayOver<double>(env, buffer, offset, count, napi_float64_array);
    case JsArrayKind::kInt8: return TypedArrayOver<int8_t>(env, buffer, offset, count, napi_int8_array);
    case JsArrayKind::kUint8: return TypedArrayOver<uint8_t>(env, buffer, offset, count, napi_uint8_array);
    case JsArrayKind::kInt16: return TypedArrayOver<int16_t>(env, buffer, offset, count, napi_int16_array);
    case JsArrayKind::kUint16: return TypedArrayOver<uint16_t>(env, buffer, offset, count, napi_uint16_array);
    case JsArrayKind::kInt32: return TypedArrayOver<int32_t>(env, buffer, offset, count, napi_int32_array);
    case JsArrayKind::kUint32: return TypedArrayOver<uint32_t>(env, buffer, offset, count, napi_uint32_array);
    case JsArrayKind::kBigInt64: return TypedArrayOver<int64_t>(env, buffer, offset, count, napi_bigint64_array);
    case JsArrayKind::kBigUint64: return TypedArrayOver<uint64_t>(env, buffer, offset, count, napi_biguint64_array);
  }
  return env.Undefined();
}

namespace {

Napi::Array ShapeArray(Napi::Env env, const std::vector<int64_t>& shape) {
  auto array = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) array.Set(i, Napi::Number::New(env, static_cast<double>(shape[i])));
  return array;
}

}  // namespace

Utf8::Utf8(const Napi::Value& value) {
  if (!value.IsString()) return;
  size_t length = 0;
  napi_get_value_string_utf8(value.Env(), value, nullptr, 0, &length);
  char* target = inline_;
  if (length >= sizeof(inline_)) {
    heap_.resize(length + 1);
    target = heap_.data();
  }
  napi_get_value_string_utf8(value.Env(), value, target, length + 1, &length);
  view_ = std::string_view(target, length);
}

InputTensor BindInput(const ModelSession& session, std::string_view name, std::string_view datatype,
                      std::vector<int64_t> shape, void* data, size_t byte_length, size_t position) {
  // Built only on failure: the run path allocates nothing it does not need.
  auto field = [position] { return "inputs[" + std::to_string(position) + "]"; };
  const int index = session.InputIndex(name);
  if (index < 0) BadTensor(field() + ".name: the model has no input named '" + std::string(name) + "'");
  const ValueSpec& spec = session.inputs()[static_cast<size_t>(index)];

  const DataType* dtype = FindByV2Name(datatype);
  if (dtype == nullptr || dtype != spec.dtype) {
    BadTensor(field() + ".datatype: input '" + spec.name + "' expects " +
              std::string(spec.dtype ? spec.dtype->v2_name : spec.type) + ", got '" + std::string(datatype) + "'");
  }
  // Compared by division: count * element_size may wrap around.
  const size_t count = ElementCount(shape);
  const size_t size = dtype->element_size;
  const bool fits = size > 0 ? byte_length % size == 0 && count == byte_length / size
                             : count <= byte_length / 4;  // each BYTES element has a 4-byte length
  if (!fits) {
    BadTensor(field() + ".data holds " + std::to_string(byte_length) + " bytes, which cannot hold the " +
              (count == std::numeric_limits<size_t>::max() ? std::string("overflowing") : std::to_string(count)) +
              " " + std::string(datatype) + " elements its shape describes");
  }
  return InputTensor{static_cast<size_t>(index), dtype, std::move(shape), data, byte_length};
}

InputTensor ReadInputTensor(const ModelSession& session, const Napi::Value& value, size_t position) {
  auto field = [position] { return "inputs[" + std::to_string(position) + "]"; };
  if (!value.IsObject()) BadTensor(field() + " must be an object { name, datatype, shape, data }");
  auto object = value.As<Napi::Object>();

  Napi::Value name_value = object.Get("name");
  if (!name_value.IsString()) BadTensor(field() + ".name must be a string");
  const Utf8 name(name_value);
  const Utf8 datatype(object.Get("datatype"));
  std::vector<int64_t> shape = ReadShape(object.Get("shape"), position);

  void* data = nullptr;
  size_t byte_length = 0;
  Napi::Value data_value = object.Get("data");
  // The raw N-API calls also accept views over a SharedArrayBuffer, whose
  // buffer node-addon-api's ArrayBuffer wrapper rejects.
  if (data_value.IsTypedArray()) {
    napi_typedarray_type type;
    size_t length = 0;
    napi_get_typedarray_info(data_value.Env(), data_value, &type, &length, &data, nullptr, nullptr);
    byte_length = length * data_value.As<Napi::TypedArray>().ElementSize();
  } else if (data_value.IsDataView()) {
    napi_get_dataview_info(data_value.Env(), data_value, &byte_length, &data, nullptr, nullptr);
  } else {
    BadTensor(field() + ".data must be a TypedArray or DataView over the tensor's bytes");
  }
  return BindInput(session, name.view(), datatype.view(), std::move(shape), data, byte_length, position);
}

int BindOutput(const ModelSession& session, std::string_view name, size_t position) {
  const int index = session.OutputIndex(name);
  if (index < 0) {
    BadTensor("outputs[" + std::to_string(position) + "]: the model has no output named '" + std::string(name) + "'");
  }
  return index;
}

std::vector<size_t> ReadOutputSelection(const ModelSession& session, const Napi::Value& value) {
  std::vector<size_t> indices;
  if (value.IsUndefined() || value.IsNull()) {
    for (size_t i = 0; i < session.outputs().size(); ++i) indices.push_back(i);
    return indices;
  }
  if (!value.IsArray()) BadTensor("outputs must be an array of output names");
  auto array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    indices.push_back(static_cast<size_t>(BindOutput(session, Utf8(array.Get(i)).view(), i)));
  }
  return indices;
}

OutputLayout LayOut(const ValueSpec& spec, const Ort::Value& value, size_t offset) {
  if (!value.IsTensor()) {
    throw CodedError("WEIR_UNSUPPORTED_TYPE", "output '" + spec.name + "' is a " + spec.type + ", not a tensor");
  }
  auto info = value.GetTensorTypeAndShapeInfo();
  const DataType* dtype = FindByOnnx(info.GetElementType());
  if (dtype == nullptr) {
    throw CodedError("WEIR_UNSUPPORTED_TYPE", "output '" + spec.name + "' has element type " +
                                                  std::string(OnnxTypeName(info.GetElementType())) +
                                                  ", which has no V2 datatype");
  }
  const size_t count = info.GetElementCount();
  const size_t bytes = dtype->element_size == 0 ? EncodedStringTensorSize(value) : count * dtype->element_size;
  return {dtype, count, bytes, (offset + 7) & ~size_t{7}};
}

void CopyOutput(const Ort::Value& value, const OutputLayout& layout, uint8_t* buffer) {
  if (layout.dtype->element_size == 0) {
    EncodeStringTensor(value, buffer + layout.offset);
  } else if (layout.bytes > 0) {
    std::memcpy(buffer + layout.offset, value.GetTensorRawData(), layout.bytes);
  }
}

Napi::Array WriteRunResult(Napi::Env env, const ModelSession& session, const RunResult& result) {
  std::vector<OutputLayout> layouts;
  layouts.reserve(result.values.size());
  size_t end = 0;
  for (size_t i = 0; i < result.values.size(); ++i) {
    layouts.push_back(LayOut(session.outputs()[result.output_indices[i]], result.values[i], end));
    end = layouts.back().offset + layouts.back().bytes;
  }

  auto buffer = Napi::ArrayBuffer::New(env, end);
  auto* bytes = static_cast<uint8_t*>(buffer.Data());
  auto flat = Napi::Array::New(env, 1 + 4 * layouts.size());
  flat.Set(uint32_t{0}, Napi::Number::New(env, static_cast<double>(result.run_ns)));
  for (size_t i = 0; i < layouts.size(); ++i) {
    const OutputLayout& out = layouts[i];
    const Ort::Value& value = result.values[i];
    CopyOutput(value, out, bytes);
    const std::string& name = session.outputs()[result.output_indices[i]].name;
    const uint32_t at = static_cast<uint32_t>(1 + 4 * i);
    flat.Set(at, Napi::String::New(env, name));
    flat.Set(at + 1, Napi::String::New(env, out.dtype->v2_name.data(), out.dtype->v2_name.size()));
    flat.Set(at + 2, ShapeArray(env, value.GetTensorTypeAndShapeInfo().GetShape()));
    flat.Set(at + 3, WrapBytes(env, out, buffer));
  }
  return flat;
}

Napi::Object WriteValueSpec(Napi::Env env, const ValueSpec& spec) {
  auto object = Napi::Object::New(env);
  object.Set("name", spec.name);
  object.Set("type", spec.type);
  object.Set("datatype", spec.dtype ? Napi::Value(Napi::String::New(env, std::string(spec.dtype->v2_name)))
                                    : env.Null());
  object.Set("shape", ShapeArray(env, spec.shape));
  auto names = Napi::Array::New(env, spec.dim_names.size());
  for (size_t i = 0; i < spec.dim_names.size(); ++i) names.Set(i, spec.dim_names[i]);
  object.Set("dimNames", names);
  return object;
}

}  // namespace weir
