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
// written with escapes, a repeated `inputs`, `data` or `id` key, data arrays that
// hold anything but numbers (those are left in place), numbers out of
// double's range, nesting deeper than it follows.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
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
  // Where the request's `id` string lies in the body (between its quotes),
  // when it was lifted: the text then reads `"id":""`, so that requests that
  // differ only in their ids share a skeleton. -1, -1 otherwise.
  int64_t id_start = -1;
  int64_t id_end = -1;
};

// True when at least one array was lifted, or when `keep_unlifted` and the
// body is one this scanner follows (a skeleton with nothing lifted: the
// JSON header of a binary request, which repeats as often as a skeleton
// does); `out` is then filled.
bool LiftInputData(std::string_view json, LiftedJson& out, bool keep_unlifted = false);

// The skeletons one thread has handed to JavaScript, by number. A client's
// requests mostly share one skeleton, and a repeated one then crosses as its
// number: no string for V8 to build, and none for JavaScript to hash to find
// its parse. Ids start again from 0 when the table is full, so JavaScript
// keeps what it was last given under each id.
class SkeletonIds {
 public:
  static constexpr size_t kMaxSkeletons = 256;
  static constexpr size_t kMaxChars = 1024;

  SkeletonIds() { texts_.reserve(kMaxSkeletons); }  // never reallocated: ids_ holds views into texts_

  // The id `text` was given, or -1.
  int Find(std::string_view text) const;
  // Gives `text` an id; -1 when it is too long to keep.
  int Add(std::string_view text);

 private:
  std::vector<std::string> texts_;
  std::unordered_map<std::string_view, int> ids_;
};

}  // namespace weir
