// The character tokenizer of the project's own tiny models: one token per Unicode code point,
// plus special tokens (<pad>, <bos>, <eos>, <step>, <ans>, ...).
//
// It is stored as a valid Hugging Face tokenizer.json, so the tokenizers library reads it too
// (BuildCharTokenizerJson writes one):
//   model:         {"type": "WordLevel", "vocab": {token: id}, "unk_token": "<unk>"}
//   pre_tokenizer: {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated",
//                   "invert": false}   (every code point its own piece)
//   added_tokens:  the specials, "special": true, "normalized": false
//   decoder:       {"type": "Fuse"}  (concatenate), normalizer: null
// Encode splits at added tokens (added_tokens.h), then maps each code point to its token, or
// to the unk token when the vocabulary lacks it. Decode concatenates the tokens.
//
// On reading, the Split pattern must be one that matches exactly one code point: "[\s\S]",
// "[\S\s]", "(?s:.)" or "(?s)." (the last two are Perl/PCRE2 spellings; Oniguruma, which the
// tokenizers library uses, spells dot-all differently, hence "[\s\S]" in written files). The
// decoder must be Fuse; normalizer null or NFC. Every vocabulary entry must be one code point
// or an added token.
//
// Thread-safe: immutable after loading.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

#include "common/tokenizer/added_tokens.h"
#include "common/tokenizer/json_fields.h"
#include "common/tokenizer/normalizer.h"
#include "common/tokenizer/tokenizer.h"

namespace deepsearch {

struct CharVocabSpec {
  // Special tokens, given the lowest ids in this order.
  std::vector<std::string> specials;
  // UTF-8; each code point becomes one token, in id order after the specials (and after
  // unk_token when that is not among the specials). No code point twice.
  std::string characters;
  // The token unknown characters encode to; added as a special token after `specials` when
  // not listed there. Empty: no unk token, and Encode fails on an unknown character.
  std::string unk_token = "<unk>";
};

// The tokenizer.json text of a character tokenizer. InvalidArgument on an empty or repeated
// special, a repeated character, a character that is also a special, or invalid UTF-8.
absl::StatusOr<std::string> BuildCharTokenizerJson(const CharVocabSpec& spec);

// The tokenizer of the built-in task models: one token per character of "\n" and printable
// ASCII, after the specials <pad> (0), <unk> (1), <bos> (2), <eos> (3). Its tokenizer.json.
absl::StatusOr<std::string> DefaultTaskTokenizerJson();

class CharTokenizer final : public Tokenizer {
 public:
  // Builds the tokenizer from a parsed tokenizer.json whose model.type is "WordLevel".
  static absl::StatusOr<std::unique_ptr<CharTokenizer>> FromJson(const nlohmann::json& root,
                                                                 const JsonFields& fields);

  absl::StatusOr<std::vector<TokenId>> Encode(std::string_view text,
                                              bool allow_special = false) const override;
  std::string Decode(absl::Span<const TokenId> ids, bool skip_special = false) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  std::optional<TokenId> TokenToId(std::string_view token) const override;
  std::string IdToToken(TokenId id) const override;
  std::string TokenBytes(TokenId id) const override;
  bool IsSpecial(TokenId id) const override;

 private:
  CharTokenizer() = default;

  absl::Status EncodeText(std::string_view text, std::vector<TokenId>* ids) const;

  Normalization normalization_ = Normalization::kNone;
  AddedVocabulary added_;
  absl::flat_hash_map<char32_t, TokenId> char_ids_;  // one-code-point vocabulary entries
  absl::flat_hash_map<std::string, TokenId> vocab_;  // model.vocab
  std::vector<std::string> id_to_token_;             // "" where unassigned
  std::vector<bool> special_;
  std::optional<TokenId> unk_id_;
};

}  // namespace deepsearch
