// Added tokens: the strings a tokenizer.json lists under "added_tokens" (special tokens such
// as <|im_end|> and others such as <think>), found in the input before anything else.
//
// Reimplements Hugging Face tokenizers' AddedVocabulary (added_vocabulary.rs): matching is
// leftmost-longest over all added tokens (an Aho-Corasick automaton there, a byte trie here);
// tokens with "normalized": false are matched on the raw input, those with "normalized": true
// on the normalised text between the first ones. A match that is refused (a special token
// while special tokens are not allowed, the tokenizers' `encode_special_tokens`; or a
// "single_word" token touching a word character) stays ordinary text and the search goes on
// after it. "lstrip"/"rstrip" make the token swallow the white space on its left/right.
//
// Approximations, none of which Qwen's file exercises: "single_word" tests word characters
// with Unicode categories (letters, marks, decimal digits, connector punctuation, ZWNJ/ZWJ)
// rather than Rust regex's \w tables.
//
// Thread-safe after construction: every method is const.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

#include "common/tokenizer/json_fields.h"
#include "common/tokenizer/normalizer.h"
#include "common/tokenizer/tokenizer.h"

namespace deepsearch {

struct AddedToken {
  TokenId id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// A stretch of input: an added token (id >= 0, `text` is what it covered) or text for the
// model (id == kTextSegment).
struct Segment {
  static constexpr TokenId kTextSegment = -1;
  std::string_view text;
  TokenId id = kTextSegment;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;

  // Reads the root's "added_tokens" array (missing or null: none). `normalization` turns the
  // content of "normalized": true tokens into what they match.
  static absl::StatusOr<AddedVocabulary> FromJson(const nlohmann::json& root,
                                                  const JsonFields& fields,
                                                  Normalization normalization);

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* FindById(TokenId id) const;
  std::optional<TokenId> FindByContent(std::string_view content) const;
  // The largest added id, or -1 when there are none.
  TokenId max_id() const { return max_id_; }
  bool has_normalized_tokens() const { return !normalized_.empty(); }

  // Splits raw `text` at the "normalized": false tokens, appending to `segments`.
  void SplitRaw(std::string_view text, bool allow_special, std::vector<Segment>* segments) const {
    raw_.Split(text, allow_special, tokens_, segments);
  }
  // Splits normalised `text` at the "normalized": true tokens, appending to `segments`.
  void SplitNormalized(std::string_view text, bool allow_special,
                       std::vector<Segment>* segments) const {
    normalized_.Split(text, allow_special, tokens_, segments);
  }

 private:
  // A byte trie over some of the tokens, matched leftmost-longest.
  class Matcher {
   public:
    void Add(std::string_view pattern, int token_index);
    bool empty() const { return terminal_.size() <= 1; }
    void Split(std::string_view text, bool allow_special, const std::vector<AddedToken>& tokens,
               std::vector<Segment>* segments) const;

   private:
    // The longest pattern starting at `pos`: its token index and end, or {-1, pos}.
    std::pair<int, size_t> LongestAt(std::string_view text, size_t pos) const;

    absl::flat_hash_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child node
    std::vector<int32_t> terminal_ = {-1};          // node -> token index ending there, or -1
    bool first_byte_[256] = {};
  };

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<TokenId, int> by_id_;  // id -> index in tokens_
  absl::flat_hash_map<std::string, int> by_content_;
  TokenId max_id_ = -1;
  Matcher raw_;
  Matcher normalized_;
};

}  // namespace deepsearch
