// Tensors across the JavaScript boundary: an input is read as a view over
// the caller's TypedArray (no copy); an output's bytes are copied once, with
// memcpy, into a new ArrayBuffer that JavaScript owns and may transfer.
#pragma once

#include <napi.h>

#include <string>
#include <string_view>

#include "model_session.h"

namespace weir {

// A JavaScript string's UTF-8 bytes, kept on the stack when short (empty
// when the value is not a string).
class Utf8 {
 public:
  explicit Utf8(const Napi::Value& value);
  Utf8(const Utf8&) = delete;
  Utf8& operator=(const Utf8&) = delete;
  std::string_view view() const { return view_; }

 private:
  char inline_[128];
  std::string heap_;
  std::string_view view_;
};

// Checks a tensor against the session's signature (inputs[position] in
// messages) and views it as an InputTensor. Throws WEIR_BAD_TENSOR.
InputTensor BindInput(const ModelSession& session, std::string_view name, std::string_view datatype,
                      std::vector<int64_t> shape, void* data, size_t byte_length, size_t position);

// Position of a requested output (outputs[position] in messages). Throws WEIR_BAD_TENSOR.
int BindOutput(const ModelSession& session, std::string_view name, size_t position);

// Reads `{ name, datatype, shape, data }` (inputs[position]) into a view,
// checking it against the session's signature. Throws WEIR_BAD_TENSOR.
InputTensor ReadInputTensor(const ModelSession& session, const Napi::Value& value, size_t position);

// Resolves requested output names (undefined: every output) to positions.
std::vector<size_t> ReadOutputSelection(const ModelSession& session, const Napi::Value& value);

// Where one output goes in a buffer holding several, checked (a tensor of a
// V2 datatype, else WEIR_UNSUPPORTED_TYPE) before any memory is allocated.
struct OutputLayout {
  const DataType* dtype;
  size_t count;   // elements
  size_t bytes;   // for BYTES, the length-prefixed encoding
  size_t offset;  // 8-byte aligned, so that every TypedArray view is aligned
};
OutputLayout LayOut(const ValueSpec& spec, const Ort::Value& value, size_t offset);

// Writes an output's bytes at layout.offset of `buffer`.
void CopyOutput(const Ort::Value& value, const OutputLayout& layout, uint8_t* buffer);

// The TypedArray that views an output written into `buffer`.
Napi::Value WrapBytes(Napi::Env env, const OutputLayout& layout, Napi::ArrayBuffer buffer);

// The result of a run as one flat array, cheaper to build through N-API
// than an object per output: [runNs, name, datatype, shape, data, name, ...].
// Every output's data is a TypedArray over one fresh ArrayBuffer per run.
Napi::Array WriteRunResult(Napi::Env env, const ModelSession& session, const RunResult& result);

// Metadata of an input or output as `{ name, type, datatype, shape, dimNames }`.
Napi::Object WriteValueSpec(Napi::Env env, const ValueSpec& spec);

}  // namespace weir
