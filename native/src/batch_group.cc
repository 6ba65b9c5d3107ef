#include "batch_group.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "errors.h"
#include "session_registry.h"
#include "tensor_convert.h"

namespace weir {
namespace {

constexpr double kPacked = 0;
constexpr double kLarge = 1;

[[noreturn]] void Malformed(const std::string& what) {
  throw CodedError("WEIR_BAD_ARGUMENT", "malformed batch group: " + what);
}

// The flat layout's preamble: four uint32 (string count, header count,
// packed bytes, string table bytes).
constexpr size_t kFlatPreamble = 16;

size_t AlignTo8(size_t offset) { return (offset + 7) & ~size_t{7}; }

struct FlatSections {
  uint32_t string_count;
  size_t header_count;
  size_t packed_bytes;
  size_t strings_end;
  size_t header_offset;
  size_t packed_offset;
  size_t total;
};

// Where each section of a flat message of `strings_bytes` of string table lies.
FlatSections LayOutFlat(uint32_t string_count, size_t header_count, size_t packed_bytes, size_t strings_bytes) {
  FlatSections sections{string_count, header_count, packed_bytes, kFlatPreamble + strings_bytes, 0, 0, 0};
  sections.header_offset = AlignTo8(sections.strings_end);
  sections.packed_offset = AlignTo8(sections.header_offset + header_count * sizeof(double));
  sections.total = sections.packed_offset + packed_bytes;
  return sections;
}

FlatSections ReadFlatSections(const uint8_t* flat, size_t length) {
  if (length < kFlatPreamble || reinterpret_cast<uintptr_t>(flat) % 8 != 0) Malformed("a flat message must start 8-byte aligned");
  uint32_t preamble[4];
  std::memcpy(preamble, flat, sizeof preamble);
  // Each count is bounded by the buffer before any arithmetic on it.
  if (preamble[0] > preamble[3] / sizeof(uint32_t) || preamble[1] > length / sizeof(double) || preamble[2] > length ||
      preamble[3] > length) {
    Malformed("section sizes beyond the buffer");
  }
  FlatSections sections = LayOutFlat(preamble[0], preamble[1], preamble[2], preamble[3]);
  if (sections.total > length) Malformed("sections beyond the buffer");
  return sections;
}

// Reads the message a group arrives in; every read is bounds-checked.
class GroupReader {
 public:
  explicit GroupReader(const Napi::Object& message) {
    Napi::Value strings = message.Get("strings");
    Napi::Value header = message.Get("header");
    Napi::Value packed = message.Get("packed");
    Napi::Value large = message.Get("large");
    if (!strings.IsArray() || !header.IsTypedArray() || !packed.IsArrayBuffer() || !large.IsArray()) {
      Malformed("expected { strings, header, packed, large }");
    }
    auto string_array = strings.As<Napi::Array>();
    strings_.reserve(string_array.Length());
    for (uint32_t i = 0; i < string_array.Length(); ++i) strings_.emplace_back(Utf8(string_array.Get(i)).view());

    auto header_array = header.As<Napi::TypedArray>();
    if (header_array.TypedArrayType() != napi_float64_array) Malformed("header must be a Float64Array");
    header_ = header.As<Napi::Float64Array>().Data();
    header_length_ = header_array.ElementLength();

    auto packed_buffer = packed.As<Napi::ArrayBuffer>();
    packed_ = static_cast<uint8_t*>(packed_buffer.Data());
    packed_length_ = packed_buffer.ByteLength();

    auto large_array = large.As<Napi::Array>();
    for (uint32_t i = 0; i < large_array.Length(); ++i) {
      Napi::Value view = large_array.Get(i);
      if (!view.IsTypedArray()) Malformed("large[" + std::to_string(i) + "] must be a TypedArray");
      napi_typedarray_type type;
      size_t length = 0;
      void* data = nullptr;
      napi_get_typedarray_info(env(view), view, &type, &length, &data, nullptr, nullptr);
      large_.push_back({data, length * view.As<Napi::TypedArray>().ElementSize()});
    }
  }

  // A message laid out in one buffer (batch_group.h: the flat layout); it has no large tensors.
  GroupReader(const uint8_t* flat, size_t length) {
    FlatSections sections = ReadFlatSections(flat, length);
    size_t at = kFlatPreamble;
    strings_.reserve(sections.string_count);
    for (uint32_t i = 0; i < sections.string_count; ++i) {
      uint32_t bytes;
      if (at + sizeof bytes > sections.strings_end) Malformed("string table ends early");
      std::memcpy(&bytes, flat + at, sizeof bytes);
      at += sizeof bytes;
      if (bytes > sections.strings_end - at) Malformed("string table ends early");
      strings_.emplace_back(reinterpret_cast<const char*>(flat + at), bytes);
      at += bytes;
    }
    header_ = reinterpret_cast<const double*>(flat + sections.header_offset);
    header_length_ = sections.header_count;
    packed_ = const_cast<uint8_t*>(flat + sections.packed_offset);
    packed_length_ = sections.packed_bytes;
  }

  size_t Count() {
    const double value = Next();
    // Integers a double holds exactly; anything else is not a count.
    if (!(value >= 0 && value <= 9007199254740992.0) || value != std::floor(value)) Malformed("expected a count");
    return static_cast<size_t>(value);
  }

  double Next() {
    if (position_ >= header_length_) Malformed("header ends early");
    return header_[position_++];
  }

  const std::string& String() {
    const size_t index = Count();
    if (index >= strings_.size()) Malformed("string index out of range");
    return strings_[index];
  }

  // A tensor's bytes: at an offset of the packed buffer, or a large tensor of its own.
  std::pair<void*, size_t> Bytes(double location, size_t where, size_t bytes) {
    if (location == kPacked) {
      if (where > packed_length_ || bytes > packed_length_ - where) Malformed("tensor beyond the packed buffer");
      return {packed_ + where, bytes};
    }
    if (location != kLarge || where >= large_.size()) Malformed("unknown tensor location");
    if (large_[where].second != bytes) Malformed("large tensor size differs from its header");
    return large_[where];
  }

 private:
  static napi_env env(const Napi::Value& value) { return value.Env(); }

  std::vector<std::string> strings_;
  const double* header_ = nullptr;
  size_t header_length_ = 0;
  size_t position_ = 0;
  uint8_t* packed_ = nullptr;
  size_t packed_length_ = 0;
  std::vector<std::pair<void*, size_t>> large_;
};

// One batch as read from the message, before its session is known.
struct BatchRequest {
  std::string key;
  struct Input {
    std::string_view name;  // into the reader's string table, which outlives the batch
    std::string_view datatype;
    std::vector<int64_t> shape;
    void* data;
    size_t byte_length;
    // The parts joined, when they did not arrive side by side.
    std::vector<uint8_t> joined;
  };
  std::vector<Input> inputs;
  bool all_outputs = true;
  std::vector<std::string> outputs;
};

// An input's bytes: one part, parts that arrived side by side (packed one
// after another), or parts joined here, in the worker (shared memory).
void ReadParts(GroupReader& reader, BatchRequest::Input& input) {
  const size_t count = reader.Count();
  if (count == 0) Malformed("a tensor without data");
  std::vector<std::pair<void*, size_t>> parts;
  parts.reserve(count);
  bool adjacent = true;
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) {
    const double location = reader.Next();
    const size_t where = reader.Count();
    const size_t bytes = reader.Count();
    parts.push_back(reader.Bytes(location, where, bytes));
    if (i > 0) adjacent = adjacent && static_cast<uint8_t*>(parts[i - 1].first) + parts[i - 1].second == parts[i].first;
    total += bytes;
  }
  if (adjacent) {
    input.data = parts[0].first;
    input.byte_length = total;
    return;
  }
  input.joined.resize(total);
  size_t offset = 0;
  for (const auto& [data, bytes] : parts) {
    if (bytes > 0) std::memcpy(input.joined.data() + offset, data, bytes);
    offset += bytes;
  }
  input.data = input.joined.data();
  input.byte_length = total;
}

BatchRequest ReadBatch(GroupReader& reader) {
  BatchRequest batch;
  batch.key = reader.String();
  const size_t input_count = reader.Count();
  batch.inputs.reserve(input_count);
  for (size_t n = input_count; n > 0; --n) {
    BatchRequest::Input input;
    input.name = reader.String();
    input.datatype = reader.String();
    for (size_t rank = reader.Count(); rank > 0; --rank) input.shape.push_back(static_cast<int64_t>(reader.Count()));
    ReadParts(reader, input);
    batch.inputs.push_back(std::move(input));
  }
  const double outputs = reader.Next();
  batch.all_outputs = outputs < 0;
  for (size_t n = batch.all_outputs ? 0 : static_cast<size_t>(outputs); n > 0; --n) {
    batch.outputs.push_back(reader.String());
  }
  return batch;
}

// A batch's outcome: outputs, or a coded error.
struct BatchReply {
  std::shared_ptr<ModelSession> session;
  RunResult result;
  std::vector<OutputLayout> layouts;
  std::string error_code;
  std::string error_message;
};

BatchReply RunBatch(BatchRequest& batch) {
  BatchReply reply;
  try {
    reply.session = SessionRegistry::Instance().Find(batch.key);
    const ModelSession& session = *reply.session;
    std::vector<InputTensor> inputs;
    inputs.reserve(batch.inputs.size());
    for (size_t i = 0; i < batch.inputs.size(); ++i) {
      auto& input = batch.inputs[i];
      inputs.push_back(
          BindInput(session, input.name, input.datatype, std::move(input.shape), input.data, input.byte_length, i));
    }
    std::vector<size_t> outputs;
    if (batch.all_outputs) {
      for (size_t i = 0; i < session.outputs().size(); ++i) outputs.push_back(i);
    } else {
      for (size_t i = 0; i < batch.outputs.size(); ++i) {
        outputs.push_back(static_cast<size_t>(BindOutput(session, batch.outputs[i], i)));
      }
    }
    reply.result = session.Run(inputs, std::move(outputs));
    for (size_t i = 0; i < reply.result.values.size(); ++i) {
      reply.layouts.push_back(
          LayOut(session.outputs()[reply.result.output_indices[i]], reply.result.values[i], 0));
    }
  } catch (const CodedError& e) {
    reply.error_code = e.code();
    reply.error_message = e.what();
  } catch (const Ort::Exception& e) {
    reply.error_code = OrtErrorCodeName(e.GetOrtErrorCode());
    reply.error_message = e.what();
  }
  return reply;
}

// Builds the reply message: strings deduplicated, small outputs packed.
class GroupWriter {
 public:
  explicit GroupWriter(size_t pack_limit) : pack_limit_(pack_limit) {
    strings_.reserve(8);
    header_.reserve(64);
  }

  void Number(double value) { header_.push_back(value); }

  // A group uses a handful of distinct strings (output names, datatypes,
  // error codes): a linear search over views is cheaper than hashing copies.
  // Each view must outlive Finish: session metadata, static names, replies.
  void String(std::string_view value) {
    size_t index = 0;
    while (index < strings_.size() && strings_[index] != value) ++index;
    if (index == strings_.size()) strings_.push_back(value);
    header_.push_back(static_cast<double>(index));
  }

  void Reply(BatchReply& reply) {
    if (!reply.error_code.empty()) {
      Number(0);
      String(reply.error_code);
      String(reply.error_message);
      return;
    }
    Number(1);
    Number(static_cast<double>(reply.result.run_ns));
    Number(static_cast<double>(reply.layouts.size()));
    for (size_t i = 0; i < reply.layouts.size(); ++i) {
      OutputLayout& layout = reply.layouts[i];
      const Ort::Value& value = reply.result.values[i];
      String(reply.session->outputs()[reply.result.output_indices[i]].name);
      String(layout.dtype->v2_name);
      const std::vector<int64_t> shape = value.GetTensorTypeAndShapeInfo().GetShape();
      Number(static_cast<double>(shape.size()));
      for (int64_t d : shape) Number(static_cast<double>(d));
      Number(1);  // one part
      if (layout.bytes <= pack_limit_) {
        layout.offset = (packed_length_ + 7) & ~size_t{7};
        packed_length_ = layout.offset + layout.bytes;
        packed_.push_back({&value, layout});
        Number(kPacked);
        Number(static_cast<double>(layout.offset));
      } else {
        layout.offset = 0;
        Number(kLarge);
        Number(static_cast<double>(large_.size()));
        large_.push_back({&value, layout});
      }
      Number(static_cast<double>(layout.bytes));
    }
  }

  // Writes the message in the flat layout into `out`; false (nothing
  // usable written) when it does not fit or has outputs too large to pack.
  bool FinishInto(uint8_t* out, size_t capacity) const {
    if (!large_.empty()) return false;
    size_t strings_bytes = 0;
    for (const auto& text : strings_) strings_bytes += sizeof(uint32_t) + text.size();
    const FlatSections sections = LayOutFlat(static_cast<uint32_t>(strings_.size()), header_.size(), packed_length_, strings_bytes);
    if (sections.total > capacity || strings_bytes > UINT32_MAX || packed_length_ > UINT32_MAX) return false;
    const uint32_t preamble[4] = {sections.string_count, static_cast<uint32_t>(header_.size()),
                                  static_cast<uint32_t>(packed_length_), static_cast<uint32_t>(strings_bytes)};
    std::memcpy(out, preamble, sizeof preamble);
    size_t at = kFlatPreamble;
    for (const auto& text : strings_) {
      const auto bytes = static_cast<uint32_t>(text.size());
      std::memcpy(out + at, &bytes, sizeof bytes);
      std::memcpy(out + at + sizeof bytes, text.data(), text.size());
      at += sizeof bytes + text.size();
    }
    if (!header_.empty()) std::memcpy(out + sections.header_offset, header_.data(), header_.size() * sizeof(double));
    for (const auto& [value, layout] : packed_) CopyOutput(*value, layout, out + sections.packed_offset);
    return true;
  }

  Napi::Object Finish(Napi::Env env) {
    auto strings = Napi::Array::New(env, strings_.size());
    for (size_t i = 0; i < strings_.size(); ++i) {
      strings.Set(static_cast<uint32_t>(i), Napi::String::New(env, strings_[i].data(), strings_[i].size()));
    }
    auto header = Napi::Float64Array::New(env, header_.size());
    if (!header_.empty()) std::memcpy(header.Data(), header_.data(), header_.size() * sizeof(double));
    auto packed = Napi::ArrayBuffer::New(env, packed_length_);
    for (const auto& [value, layout] : packed_) CopyOutput(*value, layout, static_cast<uint8_t*>(packed.Data()));
    auto large = Napi::Array::New(env, large_.size());
    for (size_t i = 0; i < large_.size(); ++i) {
      const auto& [value, layout] = large_[i];
      auto buffer = Napi::ArrayBuffer::New(env, layout.bytes);
      CopyOutput(*value, layout, static_cast<uint8_t*>(buffer.Data()));
      large.Set(static_cast<uint32_t>(i), WrapBytes(env, layout, buffer));
    }
    auto message = Napi::Object::New(env);
    message.Set("strings", strings);
    message.Set("header", header);
    message.Set("packed", packed);
    message.Set("large", large);
    return message;
  }

 private:
  size_t pack_limit_;
  std::vector<std::string_view> strings_;
  std::vector<double> header_;
  size_t packed_length_ = 0;
  std::vector<std::pair<const Ort::Value*, OutputLayout>> packed_;
  std::vector<std::pair<const Ort::Value*, OutputLayout>> large_;
};

// Runs every batch of the group before any reply is built: no JavaScript meanwhile.
std::vector<BatchReply> RunAll(GroupReader& reader) {
  std::vector<BatchRequest> batches(reader.Count());
  for (auto& batch : batches) batch = ReadBatch(reader);
  std::vector<BatchReply> replies;
  replies.reserve(batches.size());
  for (auto& batch : batches) replies.push_back(RunBatch(batch));
  return replies;
}

void WriteReplies(GroupWriter& writer, std::vector<BatchReply>& replies) {
  writer.Number(static_cast<double>(replies.size()));
  for (auto& reply : replies) writer.Reply(reply);
}

}  // namespace

Napi::Object RunBatchGroup(Napi::Env env, const Napi::Object& message, size_t pack_limit) {
  GroupReader reader(message);
  std::vector<BatchReply> replies = RunAll(reader);
  GroupWriter writer(pack_limit);
  WriteReplies(writer, replies);
  return writer.Finish(env);
}

Napi::Value RunFlatBatchGroup(Napi::Env env, const uint8_t* request, size_t request_length, uint8_t* reply,
                              size_t reply_capacity, size_t pack_limit) {
  GroupReader reader(request, request_length);
  std::vector<BatchReply> replies = RunAll(reader);
  GroupWriter writer(pack_limit);
  WriteReplies(writer, replies);
  if (writer.FinishInto(reply, reply_capacity)) return Napi::Boolean::New(env, true);
  return writer.Finish(env);
}

}  // namespace weir
