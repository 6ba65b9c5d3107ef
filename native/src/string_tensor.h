// BYTES (ONNX string) tensors. Across the JavaScript boundary a BYTES tensor
// is one buffer in Triton's binary layout: each element is a 4-byte
// little-endian length followed by that many bytes. Elements may hold any
// bytes, NULs included.
#pragma once

#include <cstdint>
#include <string>

#include <onnxruntime_cxx_api.h>

#include "model_session.h"

namespace weir {

// Builds an ORT string tensor from a length-prefixed buffer; throws
// WEIR_BAD_TENSOR naming `input_name` when the buffer does not hold exactly
// as many elements as the shape says.
Ort::Value MakeStringTensor(const InputTensor& input, const std::string& input_name);

// Size of the length-prefixed encoding of an ORT string tensor.
size_t EncodedStringTensorSize(const Ort::Value& value);

// Writes the length-prefixed encoding into `dest` (EncodedStringTensorSize bytes).
void EncodeStringTensor(const Ort::Value& value, uint8_t* dest);

}  // namespace weir
