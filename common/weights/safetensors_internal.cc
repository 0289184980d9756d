#include "common/weights/safetensors_internal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"

namespace deepsearch::safetensors_internal {
namespace {

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

size_t FindInvalidUtf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Length of the sequence and the allowed range of its second byte (RFC 3629, as
    // Rust's core::str::from_utf8 checks it).
    size_t length = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c == 0xE0) {
      length = 3, lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      length = 3;
    } else if (c == 0xED) {
      length = 3, hi = 0x9F;  // no UTF-16 surrogates
    } else if (c == 0xF0) {
      length = 4, lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      length = 4;
    } else if (c == 0xF4) {
      length = 4, hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return i;
    }
    if (i + length > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < length; ++k) {
      if (!IsContinuation(s[i + k])) return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

std::string JsonTypeName(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a fractional number";
    default:
      return "a binary value";
  }
}

absl::StatusOr<nlohmann::json> ParseStrictJson(std::string_view text, std::string_view what) {
  const std::string what_text(what);
  // nlohmann skips a UTF-8 byte-order mark; serde_json refuses it as an unexpected character.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    return absl::InvalidArgumentError(
        absl::StrCat(what_text, " is not valid JSON: it starts with a UTF-8 byte-order mark"));
  }

  // One frame per open container: objects remember their keys to catch repeats.
  struct Frame {
    bool is_object = false;
    std::string name;  // the key this object sits under, when its parent is an object
    std::set<std::string> keys;
  };
  std::vector<Frame> stack;
  std::string last_key;
  size_t max_nesting = 0;
  std::string duplicate_key, duplicate_parent;
  bool duplicate_at_top = false;
  bool found_duplicate = false;

  const nlohmann::json::parser_callback_t callback =
      [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using Event = nlohmann::json::parse_event_t;
        switch (event) {
          case Event::object_start:
          case Event::array_start: {
            Frame frame;
            frame.is_object = event == Event::object_start;
            if (!stack.empty() && stack.back().is_object) frame.name = last_key;
            stack.push_back(std::move(frame));
            max_nesting = std::max(max_nesting, stack.size());
            break;
          }
          case Event::object_end:
          case Event::array_end:
            if (!stack.empty()) stack.pop_back();
            break;
          case Event::key:
            last_key = parsed.get<std::string>();
            if (!stack.empty() && !stack.back().keys.insert(last_key).second && !found_duplicate) {
              found_duplicate = true;
              duplicate_key = last_key;
              duplicate_parent = stack.back().name;
              duplicate_at_top = stack.size() == 1;
            }
            break;
          case Event::value:
            break;
        }
        return true;
      };

  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e999)
    // Drop the "[json.exception.parse_error.101] " prefix: the rest says where and why.
    std::string message = e.what();
    if (const size_t close = message.find("] ");
        message.rfind("[json.exception", 0) == 0 && close != std::string::npos) {
      message.erase(0, close + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat(what_text, " is not valid JSON: ", message));
  }
  if (max_nesting > static_cast<size_t>(kMaxJsonNesting)) {
    return absl::InvalidArgumentError(absl::StrCat(what_text, " nests arrays and objects ",
                                                   max_nesting, " deep; the limit is ",
                                                   kMaxJsonNesting));
  }
  if (found_duplicate) {
    if (duplicate_at_top) {
      return absl::InvalidArgumentError(
          absl::StrCat("key '", duplicate_key, "' appears twice in ", what_text));
    }
    return absl::InvalidArgumentError(absl::StrCat("key '", duplicate_key, "' appears twice in ",
                                                   what_text, " entry '", duplicate_parent, "'"));
  }
  return value;
}

}  // namespace deepsearch::safetensors_internal
