// Text normalisation before pre-tokenization: Unicode NFC, with utf8proc.
//
// Reimplements Hugging Face tokenizers' `NFC` normalizer (which Qwen's tokenizer.json
// names), applied to the text between added tokens. Also accepted: no normalizer (null) and
// a `Sequence` whose members are all NFC. Any other normalizer (NFKC, Lowercase, Replace,
// Prepend, BertNormalizer, ...) is refused when the file is read.
//
// Thread-safe: pure functions.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

#include "common/tokenizer/json_fields.h"

namespace deepsearch {

enum class Normalization { kNone, kNfc };

// Reads the root's "normalizer" member.
absl::StatusOr<Normalization> ParseNormalizer(const nlohmann::json& root, const JsonFields& fields);

// The NFC form of valid UTF-8 text (Unicode 15 tables of the system's utf8proc).
std::string NormalizeNfc(std::string_view text);

std::string Normalize(Normalization normalization, std::string_view text);

}  // namespace deepsearch
