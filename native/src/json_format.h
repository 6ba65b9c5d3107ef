// Writing tensor data as JSON numbers, exactly as JavaScript would.
//
// A response's `data` is text the front end sends as it is. V8 turns a
// double that came from a float32 (17 significant digits) into text in about
// 250 ns; std::to_chars finds the same shortest round-trip digits several
// times faster. The digits are then laid out as ECMAScript's
// Number::toString does (plain up to 21 integer digits, `0.000001` down to
// 1e-6, exponent form beyond), so the text is byte for byte what
// `String(value)` gives: clients and tests see no difference.
#pragma once

#include <cstddef>
#include <string>

#include <js_native_api_types.h>  // napi_typedarray_type

namespace weir {

// Writes `value` at `at` as String(value) writes it (at most 25 characters)
// and returns the end; nullptr for NaN and the infinities, which JSON cannot hold.
char* WriteJsNumber(double value, char* at);

// Appends `[v0,v1,...]` for the elements of a typed array; integers of every
// width, 64-bit ones included, are written in full. False, with `out` as it
// was, when an element is not finite or the type is one it does not write
// (Float16Array).
bool AppendJsonArray(napi_typedarray_type type, const void* data, size_t count, std::string& out);

}  // namespace weir
