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

// Element count, or SIZE_MAX when it would not fit in memory.
size_t ElementCount(const std::vector<int64_t>& shape) {
  size_t count = 1;
  for (int64_t d : shape) {
    if (d != 0 && count > std::numeric_limits<size_t>::max() / 4 / static_cast<size_t>(d)) {
      return std::numeric_limits<size_t>::max();
    }
    count *= static_cast<size_t>(d);
  }
  return count;
}

template <typename T>
Napi::Value TypedArrayOver(Napi::Env env, Napi::ArrayBuffer buffer, size_t count, napi_typedarray_type type) {
  return Napi::TypedArrayOf<T>::New(env, count, buffer, 0, type);
}

Napi::Value WrapBytes(Napi::Env env, const DataType& dtype, Napi::ArrayBuffer buffer, size_t count) {
  switch (dtype.js_kind) {
    case JsArrayKind::kFloat32: return TypedArrayOver<float>(env, buffer, count, napi_float32_array);
    case JsArrayKind::kFloat64: return TypedArrayOver<double>(env, buffer, count, napi_float64_array);
    case JsArrayKind::kInt8: return TypedArrayOver<int8_t>(env, buffer, count, napi_int8_array);
    case JsArrayKind::kUint8: return TypedArrayOver<uint8_t>(env, buffer, count, napi_uint8_array);
    case JsArrayKind::kInt16: return TypedArrayOver<int16_t>(env, buffer, count, napi_int16_array);
    case JsArrayKind::kUint16: return TypedArrayOver<uint16_t>(env, buffer, count, napi_uint16_array);
    case JsArrayKind::kInt32: return TypedArrayOver<int32_t>(env, buffer, count, napi_int32_array);
    case JsArrayKind::kUint32: return TypedArrayOver<uint32_t>(env, buffer, count, napi_uint32_array);
    case JsArrayKind::kBigInt64: return TypedArrayOver<int64_t>(env, buffer, count, napi_bigint64_array);
    case JsArrayKind::kBigUint64: return TypedArrayOver<uint64_t>(env, buffer, count, napi_biguint64_array);
  }
  return env.Undefined();
}

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

InputTensor ReadInputTensor(const ModelSession& session, const Napi::Value& value, size_t position) {
  // Built only on failure: the run path allocates nothing it does not need.
  auto field = [position] { return "inputs[" + std::to_string(position) + "]"; };
  if (!value.IsObject()) BadTensor(field() + " must be an object { name, datatype, shape, data }");
  auto object = value.As<Napi::Object>();

  Napi::Value name_value = object.Get("name");
  if (!name_value.IsString()) BadTensor(field() + ".name must be a string");
  const Utf8 name_utf8(name_value);
  const std::string_view name = name_utf8.view();
  const int index = session.InputIndex(name);
  if (index < 0) BadTensor(field() + ".name: the model has no input named '" + std::string(name) + "'");
  const ValueSpec& spec = session.inputs()[static_cast<size_t>(index)];

  const Utf8 datatype_utf8(object.Get("datatype"));
  const std::string_view datatype = datatype_utf8.view();
  const DataType* dtype = FindByV2Name(datatype);
  if (dtype == nullptr || dtype != spec.dtype) {
    BadTensor(field() + ".datatype: input '" + spec.name + "' expects " +
              std::string(spec.dtype ? spec.dtype->v2_name : spec.type) + ", got '" + std::string(datatype) + "'");
  }

  InputTensor input{static_cast<size_t>(index), dtype, ReadShape(object.Get("shape"), position), nullptr, 0};
  Napi::Value data = object.Get("data");
  // The raw N-API calls also accept views over a SharedArrayBuffer, whose
  // buffer node-addon-api's ArrayBuffer wrapper rejects.
  if (data.IsTypedArray()) {
    napi_typedarray_type type;
    size_t length = 0;
    napi_get_typedarray_info(data.Env(), data, &type, &length, &input.data, nullptr, nullptr);
    input.byte_length = length * data.As<Napi::TypedArray>().ElementSize();
  } else if (data.IsDataView()) {
    napi_get_dataview_info(data.Env(), data, &input.byte_length, &input.data, nullptr, nullptr);
  } else {
    BadTensor(field() + ".data must be a TypedArray or DataView over the tensor's bytes");
  }

  const size_t count = ElementCount(input.shape);
  if (count == std::numeric_limits<size_t>::max()) BadTensor(field() + ".shape describes a tensor too large to hold");
  if (dtype->element_size > 0 && input.byte_length != count * dtype->element_size) {
    BadTensor(field() + ".data holds " + std::to_string(input.byte_length) + " bytes; shape and " +
              std::string(datatype) + " need " + std::to_string(count * dtype->element_size));
  }
  return input;
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
    Napi::Value name_value = array.Get(i);
    const std::string name = name_value.IsString() ? name_value.As<Napi::String>().Utf8Value() : "";
    const int index = session.OutputIndex(name);
    if (index < 0) {
      BadTensor("outputs[" + std::to_string(i) + "]: the model has no output named '" + name + "'");
    }
    indices.push_back(static_cast<size_t>(index));
  }
  return indices;
}

Napi::Object WriteOutputTensor(Napi::Env env, const ValueSpec& spec, const Ort::Value& value) {
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
  const std::vector<int64_t> shape = info.GetShape();
  const size_t count = info.GetElementCount();

  Napi::Value data;
  if (dtype->element_size == 0) {
    auto buffer = Napi::ArrayBuffer::New(env, EncodedStringTensorSize(value));
    EncodeStringTensor(value, static_cast<uint8_t*>(buffer.Data()));
    data = Napi::Uint8Array::New(env, buffer.ByteLength(), buffer, 0);
  } else {
    const size_t bytes = count * dtype->element_size;
    auto buffer = Napi::ArrayBuffer::New(env, bytes);
    if (bytes > 0) std::memcpy(buffer.Data(), value.GetTensorRawData(), bytes);
    data = WrapBytes(env, *dtype, buffer, count);
  }

  auto object = Napi::Object::New(env);
  object.Set("name", Napi::String::New(env, spec.name));
  object.Set("datatype", Napi::String::New(env, dtype->v2_name.data(), dtype->v2_name.size()));
  object.Set("shape", ShapeArray(env, shape));
  object.Set("data", data);
  return object;
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
