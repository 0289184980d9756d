#include "common/tokenizer/byte_level.h"

#include <array>

#include "common/tokenizer/utf8.h"

namespace deepsearch {
namespace {

// Bytes that stand for themselves in GPT-2's alphabet.
constexpr bool IsPrintable(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> to_unicode{};
  // Indexed by code point; the alphabet ends at U+0143 (0x100 + 68 - 1).
  std::array<int16_t, 0x144> to_byte{};
  std::array<std::string, 256> utf8;
};

Tables MakeTables() {
  Tables t;
  for (auto& b : t.to_byte) b = -1;
  int next = 0;
  for (int b = 0; b < 256; ++b) {
    const char32_t c = IsPrintable(b) ? static_cast<char32_t>(b) : 0x100 + next++;
    t.to_unicode[b] = c;
    t.to_byte[c] = static_cast<int16_t>(b);
  }
  return t;
}

const Tables& GetTables() {
  static const Tables* const tables = [] {
    auto* t = new Tables(MakeTables());
    for (int b = 0; b < 256; ++b) AppendUtf8(t->to_unicode[b], &t->utf8[b]);
    return t;
  }();
  return *tables;
}

}  // namespace

char32_t ByteToUnicode(uint8_t byte) { return GetTables().to_unicode[byte]; }

std::optional<uint8_t> UnicodeToByte(char32_t c) {
  const Tables& t = GetTables();
  if (c >= t.to_byte.size() || t.to_byte[c] < 0) return std::nullopt;
  return static_cast<uint8_t>(t.to_byte[c]);
}

std::string ByteLevelEncode(std::string_view bytes) {
  const Tables& t = GetTables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char b : bytes) out.append(t.utf8[static_cast<uint8_t>(b)]);
  return out;
}

std::optional<std::string> ByteLevelDecode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    const Utf8Step step = DecodeUtf8Step(token, pos);
    if (!step.valid) return std::nullopt;
    const std::optional<uint8_t> byte = UnicodeToByte(step.code_point);
    if (!byte.has_value()) return std::nullopt;
    out.push_back(static_cast<char>(*byte));
    pos += step.length;
  }
  return out;
}

}  // namespace deepsearch
