#include "common/tokenizer/utf8.h"

#include <cstdint>

#include "absl/strings/str_format.h"

namespace deepsearch {
namespace {

bool IsContinuation(uint8_t b) { return (b & 0xC0) == 0x80; }

// For a lead byte: the sequence length (0 if the byte can never start one) and the range the
// second byte must lie in (Unicode Table 3-7, well-formed UTF-8 byte sequences).
struct LeadInfo {
  int length;
  uint8_t second_lo;
  uint8_t second_hi;
};

LeadInfo Lead(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};  // continuation bytes and the overlong C0, C1
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};  // no overlongs
  if (b == 0xED) return {3, 0x80, 0x9F};  // no surrogates
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};  // no overlongs
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};
}

}  // namespace

Utf8Step DecodeUtf8Step(std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const uint8_t b0 = s[pos];
  const LeadInfo lead = Lead(b0);
  if (lead.length == 1) return {b0, 1, true};
  if (lead.length == 0) return {kReplacementCharacter, 1, false};
  // The maximal subpart: as many bytes as continue a well-formed prefix.
  if (pos + 1 >= n || s[pos + 1] < lead.second_lo || s[pos + 1] > lead.second_hi) {
    return {kReplacementCharacter, 1, false};
  }
  char32_t cp = b0 & (0xFF >> (lead.length + 1));
  cp = (cp << 6) | (s[pos + 1] & 0x3F);
  for (int i = 2; i < lead.length; ++i) {
    if (pos + i >= n || !IsContinuation(s[pos + i])) {
      return {kReplacementCharacter, static_cast<size_t>(i), false};
    }
    cp = (cp << 6) | (s[pos + i] & 0x3F);
  }
  return {cp, static_cast<size_t>(lead.length), true};
}

bool IsValidUtf8(std::string_view text, size_t* error_offset) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Utf8Step step = DecodeUtf8Step(text, pos);
    if (!step.valid) {
      if (error_offset != nullptr) *error_offset = pos;
      return false;
    }
    pos += step.length;
  }
  return true;
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string Utf8Lossy(std::string_view bytes) {
  size_t bad = 0;
  if (IsValidUtf8(bytes, &bad)) return std::string(bytes);
  std::string out(bytes.substr(0, bad));
  size_t pos = bad;
  while (pos < bytes.size()) {
    const Utf8Step step = DecodeUtf8Step(bytes, pos);
    if (step.valid) {
      out.append(bytes.substr(pos, step.length));
    } else {
      out.append(kReplacementUtf8);
    }
    pos += step.length;
  }
  return out;
}

size_t IncompleteUtf8Suffix(std::string_view bytes) {
  const size_t n = bytes.size();
  // A sequence is at most 4 bytes, so an incomplete one starts in the last 3.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t start = n - back;
    const auto b = static_cast<uint8_t>(bytes[start]);
    if (IsContinuation(b)) continue;
    const LeadInfo lead = Lead(b);
    if (lead.length <= static_cast<int>(back)) return 0;  // complete, ASCII or invalid
    // Every byte present must continue a well-formed prefix.
    const Utf8Step step = DecodeUtf8Step(bytes, start);
    return step.length == back ? back : 0;
  }
  return 0;
}

bool IsUnicodeWhiteSpace(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85) return false;
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

std::string CodePointName(char32_t c) {
  return absl::StrFormat("U+%04X", static_cast<uint32_t>(c));
}

}  // namespace deepsearch
