// GPT-2's byte-level alphabet: every byte as one printable Unicode character.
//
// Reimplements `bytes_to_unicode()` of OpenAI's GPT-2 encoder.py, which Hugging Face
// tokenizers' ByteLevel pre-tokenizer and decoder use unchanged: the bytes 0x21..0x7E,
// 0xA1..0xAC and 0xAE..0xFF stand for the code point of the same value; the other 68 bytes,
// in increasing order, for U+0100, U+0101, ... So the space 0x20 is 'Ġ' (U+0120) and the
// newline 0x0A is 'Ċ' (U+010A).
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace deepsearch {

// The character that stands for `byte`.
char32_t ByteToUnicode(uint8_t byte);

// The byte that `c` stands for, or nullopt when `c` is not in the alphabet.
std::optional<uint8_t> UnicodeToByte(char32_t c);

// Every byte of `bytes` as its character, UTF-8 encoded.
std::string ByteLevelEncode(std::string_view bytes);

// The inverse of ByteLevelEncode: the bytes a vocabulary string stands for, or nullopt
// when `token` is not valid UTF-8 or has a character outside the alphabet.
std::optional<std::string> ByteLevelDecode(std::string_view token);

}  // namespace deepsearch
