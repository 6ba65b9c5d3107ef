#include "json_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <system_error>

namespace weir {
namespace {

// Writes the shortest digits `digits` (k of them) of a value digits × 10^(n−k)
// at `at`, laid out as ECMAScript's Number::toString (radix 10) does; returns
// the end. At most 21 + 6 characters for the digits' 17, so 32 is room enough.
char* LayOut(const char* digits, int k, int n, char* at) {
  if (k <= n && n <= 21) {  // an integer: the digits, then zeros
    at = std::copy(digits, digits + k, at);
    return std::fill_n(at, n - k, '0');
  }
  if (0 < n && n <= 21) {  // a decimal point inside the digits
    at = std::copy(digits, digits + n, at);
    *at++ = '.';
    return std::copy(digits + n, digits + k, at);
  }
  if (-6 < n && n <= 0) {  // 0.000ddd
    *at++ = '0';
    *at++ = '.';
    at = std::fill_n(at, -n, '0');
    return std::copy(digits, digits + k, at);
  }
  *at++ = digits[0];  // d.ddde±x
  if (k > 1) {
    *at++ = '.';
    at = std::copy(digits + 1, digits + k, at);
  }
  const int exponent = n - 1;
  *at++ = 'e';
  *at++ = exponent < 0 ? '-' : '+';
  return std::to_chars(at, at + 4, exponent < 0 ? -exponent : exponent).ptr;
}

// The longest texts: a double's 17 digits laid out with its sign and
// exponent ("-1.2345678901234567e-308"), and a 64-bit integer's 20 digits and sign.
constexpr size_t kMaxNumberChars = 25;

template <typename Int>
char* WriteIntegers(const Int* values, size_t count, char* at) {
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) *at++ = ',';
    at = std::to_chars(at, at + kMaxNumberChars, values[i]).ptr;
  }
  return at;
}

template <typename Float>
char* WriteFloats(const Float* values, size_t count, char* at) {
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) *at++ = ',';
    at = WriteJsNumber(static_cast<double>(values[i]), at);
    if (at == nullptr) return nullptr;
  }
  return at;
}

}  // namespace

char* WriteJsNumber(double value, char* at) {
  if (!std::isfinite(value)) return nullptr;
  if (value == 0) {  // -0 as well: String(-0) is "0"
    *at++ = '0';
    return at;
  }
  // Scientific form gives the shortest round-trip digits as [-]d.ddde±xx.
  char scientific[32];
  const char* end = std::to_chars(scientific, scientific + sizeof scientific, value, std::chars_format::scientific).ptr;
  const char* from = scientific;
  if (*from == '-') *at++ = *from++;
  char digits[20];
  int k = 0;
  for (; *from != 'e'; ++from) {
    if (*from != '.') digits[k++] = *from;
  }
  const bool negative_exponent = from[1] == '-';
  int exponent = 0;
  for (const char* e = from + 2; e < end; ++e) exponent = exponent * 10 + (*e - '0');
  return LayOut(digits, k, (negative_exponent ? -exponent : exponent) + 1, at);
}

bool AppendJsonArray(napi_typedarray_type type, const void* data, size_t count, std::string& out) {
  // Written in place, into room for the longest numbers, then cut to length.
  const size_t start = out.size();
  out.resize(start + 2 + count * (kMaxNumberChars + 1));
  char* at = out.data() + start;
  *at++ = '[';
  switch (type) {
    case napi_float32_array:
      at = WriteFloats(static_cast<const float*>(data), count, at);
      break;
    case napi_float64_array:
      at = WriteFloats(static_cast<const double*>(data), count, at);
      break;
    case napi_int8_array:
      at = WriteIntegers(static_cast<const int8_t*>(data), count, at);
      break;
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      at = WriteIntegers(static_cast<const uint8_t*>(data), count, at);
      break;
    case napi_int16_array:
      at = WriteIntegers(static_cast<const int16_t*>(data), count, at);
      break;
    case napi_uint16_array:
      at = WriteIntegers(static_cast<const uint16_t*>(data), count, at);
      break;
    case napi_int32_array:
      at = WriteIntegers(static_cast<const int32_t*>(data), count, at);
      break;
    case napi_uint32_array:
      at = WriteIntegers(static_cast<const uint32_t*>(data), count, at);
      break;
    case napi_bigint64_array:
      at = WriteIntegers(static_cast<const int64_t*>(data), count, at);
      break;
    case napi_biguint64_array:
      at = WriteIntegers(static_cast<const uint64_t*>(data), count, at);
      break;
    default:  // Float16Array: V2's FP16 travels as Uint16Array bits and converts in JavaScript
      at = nullptr;
  }
  if (at == nullptr) {
    out.resize(start);
    return false;
  }
  *at++ = ']';
  out.resize(static_cast<size_t>(at - out.data()));
  return true;
}

}  // namespace weir
