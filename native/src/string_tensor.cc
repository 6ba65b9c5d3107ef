#include "string_tensor.h"

#include <cstring>
#include <vector>

#include "errors.h"

namespace weir {
namespace {

uint32_t ReadLength(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

void WriteLength(uint8_t* p, uint32_t n) {
  p[0] = static_cast<uint8_t>(n);
  p[1] = static_cast<uint8_t>(n >> 8);
  p[2] = static_cast<uint8_t>(n >> 16);
  p[3] = static_cast<uint8_t>(n >> 24);
}

size_t ElementCount(const std::vector<int64_t>& shape) {
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);
  return count;
}

}  // namespace

Ort::Value MakeStringTensor(const InputTensor& input, const std::string& input_name) {
  const size_t count = ElementCount(input.shape);
  const auto* bytes = static_cast<const uint8_t*>(input.data);
  const size_t size = input.byte_length;

  Ort::AllocatorWithDefaultOptions allocator;
  auto value = Ort::Value::CreateTensor(allocator, input.shape.data(), input.shape.size(),
                                        ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
  size_t offset = 0;
  for (size_t i = 0; i < count; ++i) {
    if (size - offset < 4) {
      throw CodedError("WEIR_BAD_TENSOR", "input '" + input_name + "': BYTES data ends after " + std::to_string(i) +
                                              " of " + std::to_string(count) + " elements");
    }
    const uint32_t length = ReadLength(bytes + offset);
    offset += 4;
    if (size - offset < length) {
      throw CodedError("WEIR_BAD_TENSOR", "input '" + input_name + "': BYTES element " + std::to_string(i) +
                                              " claims " + std::to_string(length) + " bytes but only " +
                                              std::to_string(size - offset) + " remain");
    }
    char* element = value.GetResizedStringTensorElementBuffer(i, length);
    if (length > 0) std::memcpy(element, bytes + offset, length);
    offset += length;
  }
  if (offset != size) {
    throw CodedError("WEIR_BAD_TENSOR", "input '" + input_name + "': " + std::to_string(size - offset) +
                                            " bytes follow the last of " + std::to_string(count) + " BYTES elements");
  }
  return value;
}

size_t EncodedStringTensorSize(const Ort::Value& value) {
  const size_t count = value.GetTensorTypeAndShapeInfo().GetElementCount();
  return value.GetStringTensorDataLength() + 4 * count;
}

void EncodeStringTensor(const Ort::Value& value, uint8_t* dest) {
  const size_t count = value.GetTensorTypeAndShapeInfo().GetElementCount();
  const size_t data_length = value.GetStringTensorDataLength();
  if (count == 0) return;
  // ORT writes the elements back to back plus their start offsets; the
  // length prefixes are then slotted in front of each element.
  std::vector<char> content(data_length > 0 ? data_length : 1);
  std::vector<size_t> offsets(count);
  value.GetStringTensorContent(content.data(), data_length, offsets.data(), count);
  for (size_t i = 0; i < count; ++i) {
    const size_t end = i + 1 < count ? offsets[i + 1] : data_length;
    const size_t length = end - offsets[i];
    WriteLength(dest, static_cast<uint32_t>(length));
    if (length > 0) std::memcpy(dest + 4, content.data() + offsets[i], length);
    dest += 4 + length;
  }
}

}  // namespace weir
