// Lifting the numbers out of a V2 JSON request before JSON.parse sees it.
//
// JSON.parse spends most of a small inference body's time on the numbers of
// `inputs[i].data` (V8 builds a heap number per element, which the decoder
// then copies into a TypedArray). LiftInputData parses those arrays here,
// into doubles, and leaves JSON.parse a body whose lifted arrays are each
// replaced by `0`. The rest of the body is copied as it is: JSON.parse still
// judges it, so every error message stays JSON.parse's own.
//
// The numbers come out exactly as JSON.parse would give them (correctly
// rounded doubles). Anything this scanner is not sure of makes it give up and
// return false, and the caller parses the original body: invalid JSON, keys
// written with escapes, a repeated `inputs` or `data` key, data arrays that
// hold anything but numbers (those are left in place), numbers out of
// double's range, nesting deeper than it follows.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace weir {

struct LiftedJson {
  // The body with every lifted array replaced by `0`.
  std::string text;
  // The lifted numbers, every array's back to back, nested ones flattened.
  std::vector<double> values;
  // Two per element of `inputs`: where its numbers start and end in `values`,
  // or -1, -1 where its data was not lifted.
  std::vector<int32_t> spans;
};

// True when at least one array was lifted; `out` is then filled.
bool LiftInputData(std::string_view json, LiftedJson& out);

}  // namespace weir
