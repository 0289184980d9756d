// Helpers shared by the tokenizer tests.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"

namespace deepsearch::testing_util {

// A path under the source tree (ctest runs tests with DEEPSEARCH_SOURCE_DIR set).
inline std::string SourcePath(const std::string& relative) {
  const char* root = std::getenv("DEEPSEARCH_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/" + relative;
}

// Printable form of a string for failure messages: non-ASCII and control bytes as \xNN.
inline std::string Escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7F && b != '\\') {
      out.push_back(c);
    } else {
      out += absl::StrFormat("\\x%02X", b);
    }
  }
  return out;
}

}  // namespace deepsearch::testing_util
