#include "common/tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

#include "common/core/status.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/utf8.h"

namespace deepsearch {
namespace {

// Debian's Abseil has its own string_view, which its containers look up by.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

uint64_t PairKey(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// A candidate merge of the symbol at `pos` with the one after it. Lower rank first, then
// the leftmost position, as tokenizers' word.rs orders its heap.
struct Candidate {
  int32_t rank;
  int32_t pos;
  TokenId id;
  bool operator>(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

// One symbol of a word while merging: a doubly linked list over an array.
struct Symbol {
  TokenId id;  // -1 once merged into the symbol before it
  int32_t prev;
  int32_t next;
};

// "a b" (older files) or ["a", "b"] (tokenizers >= 0.20).
absl::StatusOr<std::pair<std::string, std::string>> ParseMergeEntry(const nlohmann::json& entry,
                                                                    const std::string& key,
                                                                    const JsonFields& fields) {
  if (entry.is_string()) {
    const std::string& text = entry.get_ref<const std::string&>();
    const size_t space = text.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == text.size() ||
        text.find(' ', space + 1) != std::string::npos) {
      return fields.Error(
          key, absl::StrCat("expected two tokens separated by one space, got '", text, "'"));
    }
    return std::make_pair(text.substr(0, space), text.substr(space + 1));
  }
  if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string() &&
      !entry[0].get_ref<const std::string&>().empty() &&
      !entry[1].get_ref<const std::string&>().empty()) {
    return std::make_pair(entry[0].get<std::string>(), entry[1].get<std::string>());
  }
  return fields.Error(key, absl::StrCat("expected a \"left right\" string or a pair of two "
                                        "non-empty strings, got ",
                                        DescribeJson(entry)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromJson(const nlohmann::json& root,
                                                                     const JsonFields& fields) {
  std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer());
  DS_ASSIGN_OR_RETURN(const nlohmann::json* model, fields.Required(root, "", "model"));
  DS_RETURN_IF_ERROR(tokenizer->ReadModel(*model, fields));

  DS_ASSIGN_OR_RETURN(const nlohmann::json* decoder, fields.Required(root, "", "decoder"));
  DS_ASSIGN_OR_RETURN(std::string decoder_type, fields.Type(*decoder, "decoder"));
  if (decoder_type != "ByteLevel") {
    return fields.Error("decoder.type",
                        absl::StrCat("decoder '", decoder_type,
                                     "' is not supported with a BPE model (supported: ByteLevel)"));
  }

  DS_ASSIGN_OR_RETURN(tokenizer->normalization_, ParseNormalizer(root, fields));
  DS_RETURN_IF_ERROR(tokenizer->ReadPreTokenizer(root, fields));
  DS_ASSIGN_OR_RETURN(tokenizer->added_,
                      AddedVocabulary::FromJson(root, fields, tokenizer->normalization_));

  // Ids: the vocabulary's, then the added tokens' (which win where they share an id).
  TokenId max_id = tokenizer->added_.max_id();
  for (const auto& [token, id] : tokenizer->vocab_) max_id = std::max(max_id, id);
  const size_t size = static_cast<size_t>(max_id) + 1;
  tokenizer->id_to_token_.assign(size, "");
  tokenizer->token_bytes_.assign(size, std::string(kReplacementUtf8));
  tokenizer->special_.assign(size, false);
  for (const auto& [token, id] : tokenizer->vocab_) {
    tokenizer->id_to_token_[id] = token;
    // Tokenizers' ByteLevel decoder keeps a token whose characters are not all in the
    // byte alphabet as its UTF-8 text.
    std::optional<std::string> bytes = ByteLevelDecode(token);
    tokenizer->token_bytes_[id] = bytes.has_value() ? *std::move(bytes) : token;
  }
  for (const AddedToken& token : tokenizer->added_.tokens()) {
    tokenizer->id_to_token_[token.id] = token.content;
    tokenizer->token_bytes_[token.id] = token.content;
    tokenizer->special_[token.id] = token.special;
  }
  return tokenizer;
}

absl::Status BpeTokenizer::ReadModel(const nlohmann::json& model, const JsonFields& fields) {
  // Features this implementation does not have: refuse rather than encode differently.
  DS_ASSIGN_OR_RETURN(bool byte_fallback,
                      fields.OptionalBool(model, "model", "byte_fallback", false));
  if (byte_fallback) {
    return fields.Error("model.byte_fallback", "true is not supported (byte-level BPE only)");
  }
  if (const nlohmann::json* dropout = JsonFields::Optional(model, "dropout");
      dropout != nullptr && !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    return fields.Error("model.dropout",
                        absl::StrCat("BPE dropout is not supported, got ", DescribeJson(*dropout)));
  }
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    DS_ASSIGN_OR_RETURN(std::string value, fields.OptionalString(model, "model", affix, ""));
    if (!value.empty()) {
      return fields.Error(JsonFields::Path("model", affix),
                          absl::StrCat("'", value, "' is not supported (only empty or null)"));
    }
  }
  DS_ASSIGN_OR_RETURN(fuse_unk_, fields.OptionalBool(model, "model", "fuse_unk", false));
  DS_ASSIGN_OR_RETURN(ignore_merges_, fields.OptionalBool(model, "model", "ignore_merges", false));

  DS_RETURN_IF_ERROR(ReadVocab(model, fields));
  for (int b = 0; b < 256; ++b) {
    std::string character;
    AppendUtf8(ByteToUnicode(static_cast<uint8_t>(b)), &character);
    const auto it = vocab_.find(character);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }

  DS_ASSIGN_OR_RETURN(std::string unk, fields.OptionalString(model, "model", "unk_token", ""));
  if (!unk.empty()) {
    const auto it = vocab_.find(unk);
    if (it == vocab_.end()) {
      return fields.Error("model.unk_token", absl::StrCat("'", unk, "' is not in model.vocab"));
    }
    unk_id_ = it->second;
  }

  return ReadMerges(model, fields);
}

absl::Status BpeTokenizer::ReadVocab(const nlohmann::json& model, const JsonFields& fields) {
  DS_ASSIGN_OR_RETURN(const nlohmann::json* vocab, fields.Required(model, "model", "vocab"));
  if (!vocab->is_object()) {
    return fields.Error(
        "model.vocab", absl::StrCat("expected an object of token: id, got ", DescribeJson(*vocab)));
  }
  vocab_.reserve(vocab->size());
  absl::flat_hash_map<TokenId, const std::string*> seen_ids;
  seen_ids.reserve(vocab->size());
  for (const auto& [token, id_json] : vocab->items()) {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 ||
        id_json.get<int64_t>() > INT32_MAX) {
      return fields.Error(
          JsonFields::Path("model.vocab", token),
          absl::StrCat("expected a non-negative 32-bit integer id, got ", DescribeJson(id_json)));
    }
    if (!IsValidUtf8(token)) {
      return fields.Error("model.vocab", absl::StrCat("token '", token, "' is not valid UTF-8"));
    }
    const auto id = static_cast<TokenId>(id_json.get<int64_t>());
    const auto [it, inserted] = vocab_.emplace(token, id);
    if (!inserted) {
      return fields.Error("model.vocab", absl::StrCat("token '", token, "' is listed twice"));
    }
    const auto [seen, fresh] = seen_ids.emplace(id, &it->first);
    if (!fresh) {
      return fields.Error("model.vocab", absl::StrCat("id ", id, " is given to both '",
                                                      *seen->second, "' and '", token, "'"));
    }
  }
  if (vocab_.empty()) return fields.Error("model.vocab", "empty");

  return absl::OkStatus();
}

absl::Status BpeTokenizer::ReadMerges(const nlohmann::json& model, const JsonFields& fields) {
  DS_ASSIGN_OR_RETURN(const nlohmann::json* merges, fields.Required(model, "model", "merges"));
  if (!merges->is_array()) {
    return fields.Error("model.merges",
                        absl::StrCat("expected an array, got ", DescribeJson(*merges)));
  }
  merges_.reserve(merges->size());
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    const std::string key = JsonFields::Index("model.merges", rank);
    DS_ASSIGN_OR_RETURN(auto pair, ParseMergeEntry((*merges)[rank], key, fields));
    const auto left = vocab_.find(pair.first);
    const auto right = vocab_.find(pair.second);
    for (const auto& [part, found] : {std::make_pair(&pair.first, left != vocab_.end()),
                                      std::make_pair(&pair.second, right != vocab_.end())}) {
      if (!found) return fields.Error(key, absl::StrCat("'", *part, "' is not in model.vocab"));
    }
    const auto merged = vocab_.find(pair.first + pair.second);
    if (merged == vocab_.end()) {
      return fields.Error(key, absl::StrCat("the merged token '", pair.first, pair.second,
                                            "' is not in model.vocab"));
    }
    merges_.insert_or_assign(PairKey(left->second, right->second),
                             Merge{static_cast<int32_t>(rank), merged->second});
  }
  return absl::OkStatus();
}

absl::Status BpeTokenizer::ReadPreTokenizer(const nlohmann::json& root, const JsonFields& fields) {
  DS_ASSIGN_OR_RETURN(const nlohmann::json* pre, fields.Required(root, "", "pre_tokenizer"));
  DS_ASSIGN_OR_RETURN(std::string type, fields.Type(*pre, "pre_tokenizer"));
  std::vector<std::pair<const nlohmann::json*, std::string>> steps;  // (component, its key)
  if (type == "Sequence") {
    DS_ASSIGN_OR_RETURN(const nlohmann::json* list,
                        fields.Required(*pre, "pre_tokenizer", "pretokenizers"));
    if (!list->is_array()) {
      return fields.Error("pre_tokenizer.pretokenizers",
                          absl::StrCat("expected an array, got ", DescribeJson(*list)));
    }
    for (size_t i = 0; i < list->size(); ++i) {
      steps.emplace_back(&(*list)[i], JsonFields::Index("pre_tokenizer.pretokenizers", i));
    }
  } else {
    steps.emplace_back(pre, "pre_tokenizer");
  }

  bool byte_level = false;
  for (const auto& [step, key] : steps) {
    DS_ASSIGN_OR_RETURN(std::string step_type, fields.Type(*step, key));
    if (byte_level) {
      return fields.Error(key, absl::StrCat("'", step_type,
                                            "' after ByteLevel is not supported (ByteLevel "
                                            "must be the last pre-tokenizer)"));
    }
    if (step_type == "Split") {
      DS_ASSIGN_OR_RETURN(const nlohmann::json* pattern, fields.Required(*step, key, "pattern"));
      const std::string pattern_key = JsonFields::Path(key, "pattern");
      const nlohmann::json* regex = JsonFields::Optional(*pattern, "Regex");
      if (regex == nullptr || !regex->is_string()) {
        return fields.Error(pattern_key, absl::StrCat("expected {\"Regex\": \"...\"} (String "
                                                      "patterns are not supported), got ",
                                                      pattern->dump()));
      }
      DS_ASSIGN_OR_RETURN(std::string behavior, fields.RequiredString(*step, key, "behavior"));
      if (behavior != "Isolated") {
        return fields.Error(JsonFields::Path(key, "behavior"),
                            absl::StrCat("'", behavior, "' is not supported (only Isolated)"));
      }
      DS_ASSIGN_OR_RETURN(bool invert, fields.OptionalBool(*step, key, "invert", false));
      if (invert) return fields.Error(JsonFields::Path(key, "invert"), "true is not supported");
      absl::StatusOr<std::unique_ptr<RegexSplitter>> splitter =
          RegexSplitter::Create(regex->get<std::string>());
      if (!splitter.ok()) {
        return fields.Error(JsonFields::Path(pattern_key, "Regex"),
                            std::string(splitter.status().message()));
      }
      splitters_.push_back(*std::move(splitter));
    } else if (step_type == "ByteLevel") {
      DS_ASSIGN_OR_RETURN(bool add_prefix_space,
                          fields.OptionalBool(*step, key, "add_prefix_space", true));
      if (add_prefix_space) {
        return fields.Error(JsonFields::Path(key, "add_prefix_space"),
                            "true (or missing, which means true) is not supported");
      }
      DS_ASSIGN_OR_RETURN(bool use_regex, fields.OptionalBool(*step, key, "use_regex", true));
      if (use_regex) {
        DS_ASSIGN_OR_RETURN(auto splitter, RegexSplitter::Create(kGpt2PreTokenizerPattern));
        splitters_.push_back(std::move(splitter));
      }
      byte_level = true;
    } else {
      return fields.Error(JsonFields::Path(key, "type"),
                          absl::StrCat("pre-tokenizer '", step_type,
                                       "' is not supported (supported: Split, ByteLevel)"));
    }
  }
  if (!byte_level) {
    return fields.Error("pre_tokenizer", "a byte-level BPE needs the ByteLevel pre-tokenizer");
  }
  return absl::OkStatus();
}

absl::Status BpeTokenizer::SplitPieces(std::string_view text,
                                       std::vector<std::string_view>* pieces) const {
  pieces->clear();
  if (text.empty()) return absl::OkStatus();
  pieces->push_back(text);
  std::vector<std::string_view> next;
  for (const auto& splitter : splitters_) {
    next.clear();
    for (const std::string_view piece : *pieces) DS_RETURN_IF_ERROR(splitter->Split(piece, &next));
    pieces->swap(next);
  }
  return absl::OkStatus();
}

template <typename PieceFn>
absl::Status BpeTokenizer::ForEachPiece(std::string_view text, bool allow_special,
                                        std::vector<TokenId>* ids, PieceFn piece_fn) const {
  size_t bad_offset = 0;
  if (!IsValidUtf8(text, &bad_offset)) {
    return absl::InvalidArgumentError(
        absl::StrCat("text to encode is not valid UTF-8 at byte ", bad_offset));
  }
  std::vector<Segment> raw;
  added_.SplitRaw(text, allow_special, &raw);
  std::vector<Segment> normalized_segments;
  std::vector<std::string_view> pieces;
  for (const Segment& segment : raw) {
    if (segment.id != Segment::kTextSegment) {
      if (ids != nullptr) ids->push_back(segment.id);
      continue;
    }
    const std::string normalized = Normalize(normalization_, segment.text);
    normalized_segments.clear();
    if (added_.has_normalized_tokens()) {
      added_.SplitNormalized(normalized, allow_special, &normalized_segments);
    } else {
      normalized_segments.push_back({normalized});
    }
    for (const Segment& part : normalized_segments) {
      if (part.id != Segment::kTextSegment) {
        if (ids != nullptr) ids->push_back(part.id);
        continue;
      }
      DS_RETURN_IF_ERROR(SplitPieces(part.text, &pieces));
      for (const std::string_view piece : pieces) DS_RETURN_IF_ERROR(piece_fn(piece));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TokenId>> BpeTokenizer::Encode(std::string_view text,
                                                          bool allow_special) const {
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 1);
  DS_RETURN_IF_ERROR(ForEachPiece(
      text, allow_special, &ids, [&](std::string_view piece) { return EncodePiece(piece, &ids); }));
  return ids;
}

absl::StatusOr<std::vector<std::string>> BpeTokenizer::PreTokenize(std::string_view text,
                                                                   bool allow_special) const {
  std::vector<std::string> pieces;
  DS_RETURN_IF_ERROR(ForEachPiece(text, allow_special, nullptr, [&](std::string_view piece) {
    pieces.emplace_back(piece);
    return absl::OkStatus();
  }));
  return pieces;
}

absl::Status BpeTokenizer::EncodePiece(std::string_view piece, std::vector<TokenId>* ids) const {
  if (piece.size() > kMaxCachedPieceBytes) return MergePiece(piece, ids);
  CacheShard& shard = cache_[absl::Hash<absl::string_view>()(AbslView(piece)) % kCacheShards];
  {
    absl::MutexLock lock(&shard.mu);
    const auto it = shard.map.find(AbslView(piece));
    if (it != shard.map.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return absl::OkStatus();
    }
  }
  const size_t begin = ids->size();
  DS_RETURN_IF_ERROR(MergePiece(piece, ids));
  std::vector<TokenId> result(ids->begin() + static_cast<std::ptrdiff_t>(begin), ids->end());
  absl::MutexLock lock(&shard.mu);
  // A bounded cache: start over when full rather than track recency.
  if (shard.map.size() >= kCacheEntriesPerShard) shard.map.clear();
  shard.map.emplace(std::string(piece), std::move(result));
  return absl::OkStatus();
}

std::optional<BpeTokenizer::Merge> BpeTokenizer::FindMerge(TokenId left, TokenId right) const {
  const auto it = merges_.find(PairKey(left, right));
  if (it == merges_.end()) return std::nullopt;
  return it->second;
}

absl::Status BpeTokenizer::MergePiece(std::string_view piece, std::vector<TokenId>* ids) const {
  if (piece.empty()) return absl::OkStatus();
  if (ignore_merges_) {
    const auto it = vocab_.find(ByteLevelEncode(piece));
    if (it != vocab_.end()) {
      ids->push_back(it->second);
      return absl::OkStatus();
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) {
    TokenId id = byte_ids_[static_cast<uint8_t>(piece[i])];
    if (id < 0) {
      if (!unk_id_.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat("byte 0x", absl::Hex(static_cast<uint8_t>(piece[i]), absl::kZeroPad2),
                         " has no token in the vocabulary and there is no unk_token"));
      }
      if (fuse_unk_ && !symbols.empty() && symbols.back().id == *unk_id_) continue;
      id = *unk_id_;
    }
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1});
    if (index > 0) symbols[index - 1].next = index;
  }

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const std::optional<Merge> merge = FindMerge(symbols[pos].id, symbols[next].id)) {
      queue.push({merge->rank, pos, merge->id});
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.id < 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Stale when either side changed since the candidate was queued.
    const std::optional<Merge> merge = FindMerge(left.id, right.id);
    if (!merge.has_value() || merge->id != top.id) continue;
    left.id = top.id;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
  return absl::OkStatus();
}

std::string BpeTokenizer::Decode(absl::Span<const TokenId> ids, bool skip_special) const {
  return DecodeTokenBytes(*this, ids, skip_special);
}

std::optional<TokenId> BpeTokenizer::TokenToId(std::string_view token) const {
  if (std::optional<TokenId> added = added_.FindByContent(token)) return added;
  const auto it = vocab_.find(AbslView(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::string BpeTokenizer::IdToToken(TokenId id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return id_to_token_[id];
}

std::string BpeTokenizer::TokenBytes(TokenId id) const {
  if (id < 0 || id >= vocab_size()) return std::string(kReplacementUtf8);
  return token_bytes_[id];
}

bool BpeTokenizer::IsSpecial(TokenId id) const {
  return id >= 0 && id < vocab_size() && special_[id];
}

}  // namespace deepsearch
