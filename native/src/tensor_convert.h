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

// Reads `{ name, datatype, shape, data }` (inputs[position]) into a view,
// checking it against the session's signature. Throws WEIR_BAD_TENSOR.
InputTensor ReadInputTensor(const ModelSession& session, const Napi::Value& value, size_t position);

// Resolves requested output names (undefined: every output) to positions.
std::vector<size_t> ReadOutputSelection(const ModelSession& session, const Napi::Value& value);

// `{ name, datatype, shape, data }` with data a TypedArray over fresh memory.
Napi::Object WriteOutputTensor(Napi::Env env, const ValueSpec& spec, const Ort::Value& value);

// Metadata of an input or output as `{ name, type, datatype, shape, dimNames }`.
Napi::Object WriteValueSpec(Napi::Env env, const ValueSpec& spec);

}  // namespace weir
