#include "json_lift.h"

#include <charconv>
#include <cstring>
#include <limits>

namespace weir {
namespace {

// Powers of ten a double holds exactly: with a mantissa below 2^53, one
// multiplication or division by one of these is correctly rounded (Clinger).
constexpr double kExactPowersOfTen[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
constexpr int kMaxExactPower = 22;
constexpr uint64_t kMaxExactMantissa = uint64_t{1} << 53;
// Containers deeper than this are left to JSON.parse (and the recursion bounded).
constexpr int kMaxDepth = 64;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

class Scanner {
 public:
  Scanner(std::string_view json, LiftedJson& out, bool keep_unlifted) : json_(json), out_(out), keep_unlifted_(keep_unlifted) {}

  // Scans the whole body; false where it gives up (see json_lift.h).
  bool Run() {
    SkipSpace();
    if (At() != '{') return false;
    if (!Object(0, Where::kRoot, -1)) return false;
    SkipSpace();
    if (pos_ != json_.size() || (lifted_ == 0 && !keep_unlifted_)) return false;
    out_.text.append(json_.substr(copied_));
    return true;
  }

 private:
  // What the container being scanned is, as far as lifting cares.
  enum class Where { kRoot, kInputs, kInput, kOther };

  char At() const { return pos_ < json_.size() ? json_[pos_] : '\0'; }

  void SkipSpace() {
    while (pos_ < json_.size()) {
      char c = json_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
      ++pos_;
    }
  }

  bool Value(int depth, Where where, int index) {
    switch (At()) {
      case '{': return Object(depth, where, index);
      case '[': return Array(depth, where);
      case '"': return String(nullptr);
      case 't': return Literal("true");
      case 'f': return Literal("false");
      case 'n': return Literal("null");
      default: {
        double ignored;
        return Number(ignored);
      }
    }
  }

  bool Literal(const char* word) {
    size_t length = std::strlen(word);
    if (json_.compare(pos_, length, word) != 0) return false;
    pos_ += length;
    return true;
  }

  // Skips a string; `raw` gets its contents as written. False if unterminated.
  bool String(std::string_view* raw) {
    size_t start = ++pos_;
    while (pos_ < json_.size()) {
      char c = json_[pos_];
      if (c == '"') {
        if (raw) *raw = json_.substr(start, pos_ - start);
        ++pos_;
        return true;
      }
      pos_ += c == '\\' ? 2 : 1;
    }
    return false;
  }

  // Steps past a container's opener; true when it closes at once (`{}`, `[]`).
  bool OpensEmpty(char closer) {
    ++pos_;
    SkipSpace();
    if (At() != closer) return false;
    ++pos_;
    return true;
  }

  enum class Next { kMore, kClosed, kInvalid };

  // After a member or an element: a comma (more follow) or the container's closer.
  Next AfterItem(char closer) {
    SkipSpace();
    if (At() == ',') {
      ++pos_;
      SkipSpace();
      return Next::kMore;
    }
    if (At() != closer) return Next::kInvalid;
    ++pos_;
    return Next::kClosed;
  }

  // `index`: this object's position in `inputs`, for an input.
  bool Object(int depth, Where where, int index) {
    if (depth >= kMaxDepth) return false;
    if (OpensEmpty('}')) return true;
    bool seen_key = false;
    bool seen_id = false;
    while (true) {
      if (At() != '"') return false;
      std::string_view key;
      if (!String(&key)) return false;
      // An escaped key could spell a name this scanner watches for.
      if (where != Where::kOther && key.find('\\') != std::string_view::npos) return false;
      SkipSpace();
      if (At() != ':') return false;
      ++pos_;
      SkipSpace();
      if (where == Where::kRoot && key == "inputs") {
        // JSON.parse keeps the last of repeated keys; this scanner would not know which.
        if (seen_key) return false;
        seen_key = true;
        if (At() == '[') {
          if (!Array(depth + 1, Where::kInputs)) return false;
        } else if (!Value(depth + 1, Where::kOther, -1)) {
          return false;
        }
      } else if (where == Where::kRoot && key == "id") {
        if (seen_id) return false;
        seen_id = true;
        if (!Id()) return false;
      } else if (where == Where::kInput && key == "data") {
        if (seen_key) return false;
        seen_key = true;
        if (!Data(index)) return false;
      } else if (!Value(depth + 1, Where::kOther, -1)) {
        return false;
      }
      const Next next = AfterItem('}');
      if (next != Next::kMore) return next == Next::kClosed;
    }
  }

  bool Array(int depth, Where where) {
    if (depth >= kMaxDepth) return false;
    if (OpensEmpty(']')) return true;
    for (int index = 0;; ++index) {
      if (where == Where::kInputs) {
        out_.spans.push_back(-1);
        out_.spans.push_back(-1);
      }
      bool ok = where == Where::kInputs && At() == '{' ? Object(depth + 1, Where::kInput, index)
                                                       : Value(depth + 1, Where::kOther, -1);
      if (!ok) return false;
      const Next next = AfterItem(']');
      if (next != Next::kMore) return next == Next::kClosed;
    }
  }

  // An input's `data`: lifted when it is a non-empty array of numbers (nested
  // or not); otherwise scanned and left in the text.
  bool Data(int index) {
    size_t start = pos_;
    size_t values_before = out_.values.size();
    if (At() == '[') {
      switch (NumberArray(0)) {
        case Lift::kLifted:
          if (out_.values.size() == values_before) break;  // []: left as written
          ReplaceInText(start, "0");
          out_.spans[2 * index] = static_cast<int32_t>(values_before);
          out_.spans[2 * index + 1] = static_cast<int32_t>(out_.values.size());
          ++lifted_;
          return true;
        case Lift::kNotNumbers:
          break;
        case Lift::kInvalid:
          return false;
      }
      out_.values.resize(values_before);
      pos_ = start;
    }
    return Value(3, Where::kOther, -1);
  }

  // Writes the text up to `start`, then `with` in place of json_[start, pos_).
  void ReplaceInText(size_t start, std::string_view with) {
    out_.text.append(json_.substr(copied_, start - copied_));
    out_.text.append(with);
    copied_ = pos_;
  }

  // The request's `id`: lifted when it is a string that reads as it is
  // written (no escapes, no control characters, which JSON.parse refuses);
  // anything else stays in the text for JSON.parse to judge.
  bool Id() {
    if (At() != '"') return Value(1, Where::kOther, -1);
    const size_t start = pos_;
    std::string_view raw;
    if (!String(&raw)) return false;
    for (char c : raw) {
      if (c == '\\' || static_cast<unsigned char>(c) < 0x20) return true;
    }
    ReplaceInText(start, "\"\"");
    out_.id_start = static_cast<int64_t>(start + 1);
    out_.id_end = static_cast<int64_t>(pos_ - 1);
    return true;
  }

  enum class Lift { kLifted, kNotNumbers, kInvalid };

  Lift NumberArray(int depth) {
    if (depth >= kMaxDepth) return Lift::kNotNumbers;
    if (OpensEmpty(']')) return Lift::kLifted;
    while (true) {
      if (At() == '[') {
        Lift inner = NumberArray(depth + 1);
        if (inner != Lift::kLifted) return inner;
      } else if (At() == '-' || IsDigit(At())) {
        double value;
        if (!Number(value)) return Lift::kInvalid;
        out_.values.push_back(value);
        if (At() == ',' && pos_ + 1 < json_.size() && (json_[pos_ + 1] == '-' || IsDigit(json_[pos_ + 1]))) {
          ++pos_;  // the common case, "1.5,-2": straight to the next number
          continue;
        }
      } else {
        return Lift::kNotNumbers;
      }
      const Next next = AfterItem(']');
      if (next == Next::kMore) continue;
      return next == Next::kClosed ? Lift::kLifted : Lift::kInvalid;
    }
  }

  // A JSON number (RFC 8259's grammar exactly), correctly rounded. Walks a
  // pointer rather than At(): this loop is most of a small body's scan.
  bool Number(double& value) {
    const char* const begin = json_.data() + pos_;
    const char* const end = json_.data() + json_.size();
    const char* p = begin;
    const bool negative = p < end && *p == '-';
    if (negative) ++p;
    // Up to 19 significant digits gathered exactly; more go to the standard library below.
    uint64_t mantissa = 0;
    int digits = 0;
    int exponent = 0;
    auto gather = [&](char c) {
      if (digits < 19) mantissa = mantissa * 10 + static_cast<uint64_t>(c - '0');
      ++digits;
    };
    if (p < end && *p == '0') {
      ++p;
    } else if (p < end && IsDigit(*p)) {
      do gather(*p++);
      while (p < end && IsDigit(*p));
    } else {
      return false;
    }
    if (p < end && *p == '.') {
      ++p;
      if (p == end || !IsDigit(*p)) return false;
      do {
        const char c = *p++;
        --exponent;
        if (digits > 0 || c != '0') gather(c);  // zeros before the first significant digit only scale
      } while (p < end && IsDigit(*p));
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
      ++p;
      const bool negative_exponent = p < end && *p == '-';
      if (p < end && (*p == '+' || *p == '-')) ++p;
      if (p == end || !IsDigit(*p)) return false;
      int written = 0;
      do {
        if (written < 100000) written = written * 10 + (*p - '0');
        ++p;
      } while (p < end && IsDigit(*p));
      exponent += negative_exponent ? -written : written;
    }
    pos_ = static_cast<size_t>(p - json_.data());
    if (digits <= 19 && mantissa <= kMaxExactMantissa && exponent >= -kMaxExactPower && exponent <= kMaxExactPower) {
      double magnitude = static_cast<double>(mantissa);
      magnitude = exponent < 0 ? magnitude / kExactPowersOfTen[-exponent] : magnitude * kExactPowersOfTen[exponent];
      value = negative ? -magnitude : magnitude;
      return true;
    }
    // Digits past the fast path's reach: the standard library rounds them right.
    auto [parsed_end, error] = std::from_chars(begin, p, value);
    // Out of double's range JSON.parse gives ±Infinity or 0: not worth matching here.
    return error == std::errc() && parsed_end == p;
  }

  std::string_view json_;
  LiftedJson& out_;
  size_t pos_ = 0;
  size_t copied_ = 0;  // json_[0, copied_) is in out_.text already
  int lifted_ = 0;
  bool keep_unlifted_;
};

}  // namespace

int SkeletonIds::Find(std::string_view text) const {
  auto found = ids_.find(text);
  return found == ids_.end() ? -1 : found->second;
}

int SkeletonIds::Add(std::string_view text) {
  if (text.size() > kMaxChars) return -1;
  if (texts_.size() == kMaxSkeletons) {
    ids_.clear();
    texts_.clear();
  }
  const int id = static_cast<int>(texts_.size());
  texts_.emplace_back(text);
  ids_.emplace(texts_.back(), id);
  return id;
}

bool LiftInputData(std::string_view json, LiftedJson& out, bool keep_unlifted) {
  out.text.clear();
  out.values.clear();
  out.spans.clear();
  out.id_start = out.id_end = -1;
  out.text.reserve(json.size());
  return Scanner(json, out, keep_unlifted).Run();
}

}  // namespace weir
