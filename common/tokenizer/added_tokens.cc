#include "common/tokenizer/added_tokens.h"

#include <algorithm>

#include <utf8proc.h>

#include "absl/strings/str_cat.h"

#include "common/tokenizer/utf8.h"

namespace deepsearch {
namespace {

// A word character for "single_word": letters, marks, decimal digits, connector
// punctuation, and the zero-width (non-)joiner (Rust regex's Unicode \w, by category).
bool IsWordCharacter(char32_t c) {
  if (c == 0x200C || c == 0x200D) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// The start of the code point that ends at `end` (> 0) in valid UTF-8.
size_t PreviousCodePointStart(std::string_view text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return start;
}

}  // namespace

absl::StatusOr<AddedVocabulary> AddedVocabulary::FromJson(const nlohmann::json& root,
                                                          const JsonFields& fields,
                                                          Normalization normalization) {
  AddedVocabulary vocab;
  const nlohmann::json* list = JsonFields::Optional(root, "added_tokens");
  if (list == nullptr) return vocab;
  if (!list->is_array()) {
    return fields.Error("added_tokens",
                        absl::StrCat("expected an array, got ", DescribeJson(*list)));
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& entry = (*list)[i];
    const std::string key = JsonFields::Index("added_tokens", i);
    if (!entry.is_object()) {
      return fields.Error(key, absl::StrCat("expected an object, got ", DescribeJson(entry)));
    }
    AddedToken token;
    absl::StatusOr<const nlohmann::json*> id = fields.Required(entry, key, "id");
    if (!id.ok()) return id.status();
    if (!(*id)->is_number_integer() || (*id)->get<int64_t>() < 0 ||
        (*id)->get<int64_t>() > INT32_MAX) {
      return fields.Error(
          JsonFields::Path(key, "id"),
          absl::StrCat("expected a non-negative 32-bit integer, got ", DescribeJson(**id)));
    }
    token.id = static_cast<TokenId>((*id)->get<int64_t>());
    absl::StatusOr<std::string> content = fields.RequiredString(entry, key, "content");
    if (!content.ok()) return content.status();
    if (content->empty()) return fields.Error(JsonFields::Path(key, "content"), "empty");
    if (!IsValidUtf8(*content)) {
      return fields.Error(JsonFields::Path(key, "content"), "not valid UTF-8");
    }
    token.content = *std::move(content);
    struct Flag {
      const char* name;
      bool* value;
      bool fallback;
    };
    // Hugging Face's defaults for a missing flag: normalized follows !special.
    absl::StatusOr<bool> special = fields.OptionalBool(entry, key, "special", false);
    if (!special.ok()) return special.status();
    token.special = *special;
    for (const Flag& flag :
         {Flag{"lstrip", &token.lstrip, false}, Flag{"rstrip", &token.rstrip, false},
          Flag{"single_word", &token.single_word, false},
          Flag{"normalized", &token.normalized, !token.special}}) {
      absl::StatusOr<bool> value = fields.OptionalBool(entry, key, flag.name, flag.fallback);
      if (!value.ok()) return value.status();
      *flag.value = *value;
    }
    if (vocab.by_id_.contains(token.id)) {
      return fields.Error(JsonFields::Path(key, "id"),
                          absl::StrCat("id ", token.id, " is used by an earlier added token"));
    }
    if (vocab.by_content_.contains(token.content)) {
      return fields.Error(JsonFields::Path(key, "content"),
                          absl::StrCat("'", token.content, "' is listed twice"));
    }
    const int index = static_cast<int>(vocab.tokens_.size());
    vocab.by_id_[token.id] = index;
    vocab.by_content_[token.content] = index;
    vocab.max_id_ = std::max(vocab.max_id_, token.id);
    if (token.normalized) {
      vocab.normalized_.Add(Normalize(normalization, token.content), index);
    } else {
      vocab.raw_.Add(token.content, index);
    }
    vocab.tokens_.push_back(std::move(token));
  }
  return vocab;
}

const AddedToken* AddedVocabulary::FindById(TokenId id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<TokenId> AddedVocabulary::FindByContent(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

void AddedVocabulary::Matcher::Add(std::string_view pattern, int token_index) {
  int32_t node = 0;
  for (const char c : pattern) {
    const auto byte = static_cast<uint8_t>(c);
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | byte;
    const auto it = edges_.find(key);
    if (it != edges_.end()) {
      node = it->second;
    } else {
      const auto child = static_cast<int32_t>(terminal_.size());
      terminal_.push_back(-1);
      edges_[key] = child;
      node = child;
    }
  }
  terminal_[node] = token_index;
  if (!pattern.empty()) first_byte_[static_cast<uint8_t>(pattern[0])] = true;
}

std::pair<int, size_t> AddedVocabulary::Matcher::LongestAt(std::string_view text,
                                                           size_t pos) const {
  int best = -1;
  size_t best_end = pos;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(text[i]);
    const auto it = edges_.find(key);
    if (it == edges_.end()) break;
    node = it->second;
    if (terminal_[node] >= 0) {
      best = terminal_[node];
      best_end = i + 1;
    }
  }
  return {best, best_end};
}

void AddedVocabulary::Matcher::Split(std::string_view text, bool allow_special,
                                     const std::vector<AddedToken>& tokens,
                                     std::vector<Segment>* segments) const {
  size_t emitted = 0;  // the end of what is already in `segments`
  size_t pos = 0;
  if (!empty()) {
    while (pos < text.size()) {
      if (!first_byte_[static_cast<uint8_t>(text[pos])]) {
        ++pos;
        continue;
      }
      const auto [index, match_end] = LongestAt(text, pos);
      if (index < 0) {
        ++pos;
        continue;
      }
      const AddedToken& token = tokens[index];
      size_t start = pos;
      size_t end = match_end;
      pos = match_end;  // the search goes on after the match, used or not
      if (token.special && !allow_special) continue;
      if (token.single_word) {
        const bool word_before =
            start > 0 &&
            IsWordCharacter(DecodeUtf8Step(text, PreviousCodePointStart(text, start)).code_point);
        const bool word_after =
            end < text.size() && IsWordCharacter(DecodeUtf8Step(text, end).code_point);
        if (word_before || word_after) continue;
      }
      if (token.lstrip) {
        while (start > emitted) {
          const size_t previous = PreviousCodePointStart(text, start);
          if (!IsUnicodeWhiteSpace(DecodeUtf8Step(text, previous).code_point)) break;
          start = previous;
        }
      }
      if (token.rstrip) {
        while (end < text.size()) {
          const Utf8Step step = DecodeUtf8Step(text, end);
          if (!IsUnicodeWhiteSpace(step.code_point)) break;
          end += step.length;
        }
        pos = end;
      }
      if (start > emitted) segments->push_back({text.substr(emitted, start - emitted)});
      segments->push_back({text.substr(start, end - start), token.id});
      emitted = end;
    }
  }
  if (emitted < text.size()) segments->push_back({text.substr(emitted)});
}

}  // namespace deepsearch
