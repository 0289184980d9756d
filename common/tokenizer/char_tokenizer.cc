#include "common/tokenizer/char_tokenizer.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

#include "common/core/status.h"
#include "common/tokenizer/utf8.h"

namespace deepsearch {
namespace {

// Patterns that match exactly one code point, newlines included.
constexpr std::string_view kSingleCodePointPatterns[] = {R"([\s\S])", R"([\S\s])", R"((?s:.))",
                                                         R"((?s).)"};
constexpr std::string_view kWrittenPattern = R"([\s\S])";

// The one code point `text` holds, or nullopt.
std::optional<char32_t> SingleCodePoint(std::string_view text) {
  if (text.empty()) return std::nullopt;
  const Utf8Step step = DecodeUtf8Step(text, 0);
  if (!step.valid || step.length != text.size()) return std::nullopt;
  return step.code_point;
}

absl::Status ReadSplit(const nlohmann::json& root, const JsonFields& fields) {
  DS_ASSIGN_OR_RETURN(const nlohmann::json* pre, fields.Required(root, "", "pre_tokenizer"));
  DS_ASSIGN_OR_RETURN(std::string type, fields.Type(*pre, "pre_tokenizer"));
  const nlohmann::json* split = pre;
  std::string key = "pre_tokenizer";
  if (type == "Sequence") {
    const nlohmann::json* list = JsonFields::Optional(*pre, "pretokenizers");
    if (list == nullptr || !list->is_array() || list->size() != 1) {
      return fields.Error("pre_tokenizer.pretokenizers",
                          "a character tokenizer needs exactly one Split pre-tokenizer");
    }
    split = &(*list)[0];
    key = "pre_tokenizer.pretokenizers[0]";
    DS_ASSIGN_OR_RETURN(type, fields.Type(*split, key));
  }
  if (type != "Split") {
    return fields.Error(JsonFields::Path(key, "type"),
                        absl::StrCat("pre-tokenizer '", type,
                                     "' is not supported with a WordLevel model (a character "
                                     "tokenizer needs Split on single code points)"));
  }
  DS_ASSIGN_OR_RETURN(const nlohmann::json* pattern, fields.Required(*split, key, "pattern"));
  const nlohmann::json* regex = JsonFields::Optional(*pattern, "Regex");
  const std::string regex_text =
      regex != nullptr && regex->is_string() ? regex->get<std::string>() : pattern->dump();
  if (std::find(std::begin(kSingleCodePointPatterns), std::end(kSingleCodePointPatterns),
                regex_text) == std::end(kSingleCodePointPatterns)) {
    return fields.Error(JsonFields::Path(key, "pattern"),
                        absl::StrCat("'", regex_text,
                                     "' is not supported with a WordLevel model (expected a "
                                     "single-code-point regex such as [\\s\\S])"));
  }
  DS_ASSIGN_OR_RETURN(std::string behavior, fields.RequiredString(*split, key, "behavior"));
  if (behavior != "Isolated") {
    return fields.Error(JsonFields::Path(key, "behavior"),
                        absl::StrCat("'", behavior, "' is not supported (only Isolated)"));
  }
  DS_ASSIGN_OR_RETURN(bool invert, fields.OptionalBool(*split, key, "invert", false));
  if (invert) return fields.Error(JsonFields::Path(key, "invert"), "true is not supported");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> BuildCharTokenizerJson(const CharVocabSpec& spec) {
  std::vector<std::string> specials = spec.specials;
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < specials.size(); ++i) {
    const std::string& s = specials[i];
    if (s.empty()) return absl::InvalidArgumentError(absl::StrCat("specials[", i, "]: empty"));
    if (!IsValidUtf8(s)) {
      return absl::InvalidArgumentError(absl::StrCat("specials[", i, "]: not valid UTF-8"));
    }
    if (!seen.insert(s).second) {
      return absl::InvalidArgumentError(absl::StrCat("specials[", i, "]: '", s, "' repeated"));
    }
  }
  if (!spec.unk_token.empty() && !seen.contains(spec.unk_token)) {
    if (!IsValidUtf8(spec.unk_token)) {
      return absl::InvalidArgumentError("unk_token: not valid UTF-8");
    }
    specials.push_back(spec.unk_token);
    seen.insert(spec.unk_token);
  }
  size_t bad_offset = 0;
  if (!IsValidUtf8(spec.characters, &bad_offset)) {
    return absl::InvalidArgumentError(
        absl::StrCat("characters: not valid UTF-8 at byte ", bad_offset));
  }

  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  TokenId next_id = 0;
  for (const std::string& s : specials) {
    added.push_back({{"id", next_id},
                     {"content", s},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
    vocab[s] = next_id++;
  }
  for (size_t pos = 0; pos < spec.characters.size();) {
    const Utf8Step step = DecodeUtf8Step(spec.characters, pos);
    std::string c = spec.characters.substr(pos, step.length);
    if (!seen.insert(c).second) {
      const bool is_special = std::find(specials.begin(), specials.end(), c) != specials.end();
      return absl::InvalidArgumentError(
          absl::StrCat("characters: ", CodePointName(step.code_point), " '", c, "' at byte ", pos,
                       is_special ? " is also a special token" : " is repeated"));
    }
    vocab[c] = next_id++;
    pos += step.length;
  }

  nlohmann::ordered_json model = {{"type", "WordLevel"}, {"vocab", std::move(vocab)}};
  if (spec.unk_token.empty()) {
    model["unk_token"] = nullptr;
  } else {
    model["unk_token"] = spec.unk_token;
  }
  nlohmann::ordered_json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", std::move(added)},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Split"},
        {"pattern", {{"Regex", std::string(kWrittenPattern)}}},
        {"behavior", "Isolated"},
        {"invert", false}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "Fuse"}}},
      {"model", std::move(model)},
  };
  return root.dump(2, ' ', /*ensure_ascii=*/false) + "\n";
}

absl::StatusOr<std::unique_ptr<CharTokenizer>> CharTokenizer::FromJson(const nlohmann::json& root,
                                                                       const JsonFields& fields) {
  std::unique_ptr<CharTokenizer> tokenizer(new CharTokenizer());
  DS_ASSIGN_OR_RETURN(const nlohmann::json* model, fields.Required(root, "", "model"));
  DS_ASSIGN_OR_RETURN(const nlohmann::json* decoder, fields.Required(root, "", "decoder"));
  DS_ASSIGN_OR_RETURN(std::string decoder_type, fields.Type(*decoder, "decoder"));
  if (decoder_type != "Fuse") {
    return fields.Error("decoder.type", absl::StrCat("decoder '", decoder_type,
                                                     "' is not supported with a WordLevel "
                                                     "model (supported: Fuse)"));
  }
  DS_RETURN_IF_ERROR(ReadSplit(root, fields));
  DS_ASSIGN_OR_RETURN(tokenizer->normalization_, ParseNormalizer(root, fields));
  DS_ASSIGN_OR_RETURN(tokenizer->added_,
                      AddedVocabulary::FromJson(root, fields, tokenizer->normalization_));

  DS_ASSIGN_OR_RETURN(const nlohmann::json* vocab, fields.Required(*model, "model", "vocab"));
  if (!vocab->is_object()) {
    return fields.Error(
        "model.vocab", absl::StrCat("expected an object of token: id, got ", DescribeJson(*vocab)));
  }
  TokenId max_id = tokenizer->added_.max_id();
  for (const auto& [token, id_json] : vocab->items()) {
    const std::string key = JsonFields::Path("model.vocab", token);
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 ||
        id_json.get<int64_t>() > INT32_MAX) {
      return fields.Error(key, absl::StrCat("expected a non-negative 32-bit integer id, got ",
                                            DescribeJson(id_json)));
    }
    const auto id = static_cast<TokenId>(id_json.get<int64_t>());
    const std::optional<TokenId> added = tokenizer->added_.FindByContent(token);
    const std::optional<char32_t> c = SingleCodePoint(token);
    if (added.has_value()) {
      if (*added != id) {
        return fields.Error(key,
                            absl::StrCat("id ", id, " differs from the added token's id ", *added));
      }
    } else if (!c.has_value()) {
      return fields.Error(key, "neither one code point nor an added token");
    }
    if (c.has_value()) tokenizer->char_ids_[*c] = id;
    tokenizer->vocab_[token] = id;
    max_id = std::max(max_id, id);
  }
  tokenizer->id_to_token_.assign(static_cast<size_t>(max_id) + 1, "");
  tokenizer->special_.assign(static_cast<size_t>(max_id) + 1, false);
  for (const auto& [token, id] : tokenizer->vocab_) {
    if (!tokenizer->id_to_token_[id].empty()) {
      return fields.Error(
          "model.vocab", absl::StrCat("id ", id, " is given to both '", tokenizer->id_to_token_[id],
                                      "' and '", token, "'"));
    }
    tokenizer->id_to_token_[id] = token;
  }
  for (const AddedToken& token : tokenizer->added_.tokens()) {
    tokenizer->id_to_token_[token.id] = token.content;
    tokenizer->special_[token.id] = token.special;
  }

  DS_ASSIGN_OR_RETURN(std::string unk, fields.OptionalString(*model, "model", "unk_token", ""));
  if (!unk.empty()) {
    const auto it = tokenizer->vocab_.find(unk);
    if (it == tokenizer->vocab_.end()) {
      return fields.Error("model.unk_token", absl::StrCat("'", unk, "' is not in model.vocab"));
    }
    tokenizer->unk_id_ = it->second;
  }
  return tokenizer;
}

absl::Status CharTokenizer::EncodeText(std::string_view text, std::vector<TokenId>* ids) const {
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Step step = DecodeUtf8Step(text, pos);
    const auto it = char_ids_.find(step.code_point);
    if (it != char_ids_.end()) {
      ids->push_back(it->second);
    } else if (unk_id_.has_value()) {
      ids->push_back(*unk_id_);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("character ", CodePointName(step.code_point), " '",
                       std::string(text.substr(pos, step.length)),
                       "' has no token and the vocabulary has no unk_token"));
    }
    pos += step.length;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TokenId>> CharTokenizer::Encode(std::string_view text,
                                                           bool allow_special) const {
  size_t bad_offset = 0;
  if (!IsValidUtf8(text, &bad_offset)) {
    return absl::InvalidArgumentError(
        absl::StrCat("text to encode is not valid UTF-8 at byte ", bad_offset));
  }
  std::vector<TokenId> ids;
  ids.reserve(text.size());
  std::vector<Segment> raw;
  added_.SplitRaw(text, allow_special, &raw);
  std::vector<Segment> parts;
  for (const Segment& segment : raw) {
    if (segment.id != Segment::kTextSegment) {
      ids.push_back(segment.id);
      continue;
    }
    const std::string normalized = Normalize(normalization_, segment.text);
    parts.clear();
    if (added_.has_normalized_tokens()) {
      added_.SplitNormalized(normalized, allow_special, &parts);
    } else {
      parts.push_back({normalized});
    }
    for (const Segment& part : parts) {
      if (part.id != Segment::kTextSegment) {
        ids.push_back(part.id);
      } else {
        DS_RETURN_IF_ERROR(EncodeText(part.text, &ids));
      }
    }
  }
  return ids;
}

std::string CharTokenizer::Decode(absl::Span<const TokenId> ids, bool skip_special) const {
  return DecodeTokenBytes(*this, ids, skip_special);
}

std::optional<TokenId> CharTokenizer::TokenToId(std::string_view token) const {
  if (std::optional<TokenId> added = added_.FindByContent(token)) return added;
  const auto it = vocab_.find(absl::string_view(token.data(), token.size()));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::string CharTokenizer::IdToToken(TokenId id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return id_to_token_[id];
}

std::string CharTokenizer::TokenBytes(TokenId id) const {
  if (id < 0 || id >= vocab_size() || id_to_token_[id].empty()) {
    return std::string(kReplacementUtf8);
  }
  return id_to_token_[id];
}

bool CharTokenizer::IsSpecial(TokenId id) const {
  return id >= 0 && id < vocab_size() && special_[id];
}

absl::StatusOr<std::string> DefaultTaskTokenizerJson() {
  CharVocabSpec spec;
  spec.specials = {"<pad>", "<unk>", "<bos>", "<eos>"};
  spec.unk_token = "<unk>";
  // "\n", then printable ASCII 0x20..0x7e.
  spec.characters.assign(1 + 0x7e - 0x20 + 1, '\n');
  for (size_t i = 1; i < spec.characters.size(); ++i)
    spec.characters[i] = static_cast<char>(0x20 + i - 1);
  return BuildCharTokenizerJson(spec);
}

}  // namespace deepsearch
