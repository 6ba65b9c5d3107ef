// Coded errors of the addon. Every failure that reaches JavaScript carries a
// stable `code`: ORT's own status codes as `ORT_<NAME>`, the addon's own as
// `WEIR_<NAME>`. src/errors.ts lists them all.
#pragma once

#include <stdexcept>
#include <string>

#include <onnxruntime_cxx_api.h>

namespace weir {

class CodedError : public std::runtime_error {
 public:
  CodedError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// ORT's OrtErrorCode as the string code JavaScript sees.
const char* OrtErrorCodeName(OrtErrorCode code);

inline CodedError FromOrt(const Ort::Exception& e) {
  return CodedError(OrtErrorCodeName(e.GetOrtErrorCode()), e.what());
}

}  // namespace weir
