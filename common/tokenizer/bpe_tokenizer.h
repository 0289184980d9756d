// Byte-level BPE, as Hugging Face tokenizers runs it for Qwen2 / Qwen2.5 / Qwen3 /
// DeepSeek-R1-Distill-Qwen (and GPT-2).
//
// Encode, for a tokenizer.json with model.type "BPE" and a ByteLevel decoder:
//   1. split the input at added tokens (added_tokens.h);
//   2. NFC-normalise the text between them when the normalizer says so (normalizer.h);
//   3. split that with the pre-tokenizer regex (pretokenizer.h): the Split pre-tokenizer's
//      pattern (Qwen2's), and/or GPT-2's when ByteLevel has use_regex=true;
//   4. map every byte of a piece to GPT-2's byte-level alphabet (byte_level.h) and merge
//      adjacent symbols, always the pair with the lowest rank in model.merges (leftmost
//      first among equal ranks), until no listed pair is left; look the symbols up in
//      model.vocab (tokenizers' models/bpe/word.rs, `merge_all`).
// Decode concatenates the tokens' bytes (the byte map inverted; added tokens as their
// content) and decodes UTF-8 lossily.
//
// Merges may be "a b" strings (older files) or ["a", "b"] pairs (tokenizers >= 0.20); a
// pair listed twice takes its later rank, as in tokenizers. model.ignore_merges,
// model.unk_token and model.fuse_unk are honoured.
//
// Not supported (refused with the key named): byte_fallback, dropout,
// continuing_subword_prefix / end_of_word_suffix, ByteLevel with add_prefix_space, Split
// behaviors other than Isolated, pre-tokenizers other than Split and ByteLevel, decoders
// other than ByteLevel. The post_processor, truncation and padding are ignored (see
// tokenizer.h).
//
// Thread-safety: immutable after loading except for a cache of BPE results per piece, which
// is sharded and mutex-guarded, so Encode may run on many threads at once.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "common/tokenizer/added_tokens.h"
#include "common/tokenizer/json_fields.h"
#include "common/tokenizer/normalizer.h"
#include "common/tokenizer/pretokenizer.h"
#include "common/tokenizer/tokenizer.h"

namespace deepsearch {

class BpeTokenizer final : public Tokenizer {
 public:
  // Builds the tokenizer from a parsed tokenizer.json whose model.type is "BPE".
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromJson(const nlohmann::json& root,
                                                                const JsonFields& fields);

  absl::StatusOr<std::vector<TokenId>> Encode(std::string_view text,
                                              bool allow_special = false) const override;
  std::string Decode(absl::Span<const TokenId> ids, bool skip_special = false) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  std::optional<TokenId> TokenToId(std::string_view token) const override;
  std::string IdToToken(TokenId id) const override;
  std::string TokenBytes(TokenId id) const override;
  bool IsSpecial(TokenId id) const override;

  // The pieces the pre-tokenizer makes of `text` (after added tokens and normalisation;
  // added tokens themselves are left out). For tests and debugging.
  absl::StatusOr<std::vector<std::string>> PreTokenize(std::string_view text,
                                                       bool allow_special = false) const;

 private:
  struct Merge {
    int32_t rank;
    TokenId id;  // the merged token
  };
  struct CacheShard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, std::vector<TokenId>> map ABSL_GUARDED_BY(mu);
  };
  static constexpr int kCacheShards = 16;
  static constexpr size_t kCacheEntriesPerShard = 4096;
  static constexpr size_t kMaxCachedPieceBytes = 256;

  BpeTokenizer() = default;

  absl::Status ReadModel(const nlohmann::json& model, const JsonFields& fields);
  // model.vocab (token: id, ids unique) and model.merges (pairs of vocab tokens whose merge is
  // in the vocab, ranked by their order), parts of ReadModel.
  absl::Status ReadVocab(const nlohmann::json& model, const JsonFields& fields);
  absl::Status ReadMerges(const nlohmann::json& model, const JsonFields& fields);
  absl::Status ReadPreTokenizer(const nlohmann::json& root, const JsonFields& fields);

  // Calls `piece_fn(piece)` for each pre-token of the text between added tokens.
  template <typename PieceFn>
  absl::Status ForEachPiece(std::string_view text, bool allow_special, std::vector<TokenId>* ids,
                            PieceFn piece_fn) const;
  absl::Status SplitPieces(std::string_view text, std::vector<std::string_view>* pieces) const;
  // Appends the BPE tokens of one pre-token (raw bytes), through the cache.
  absl::Status EncodePiece(std::string_view piece, std::vector<TokenId>* ids) const;
  absl::Status MergePiece(std::string_view piece, std::vector<TokenId>* ids) const;
  std::optional<Merge> FindMerge(TokenId left, TokenId right) const;

  Normalization normalization_ = Normalization::kNone;
  AddedVocabulary added_;
  // Applied in order, each to the pieces of the one before; none: the text is one piece.
  std::vector<std::unique_ptr<RegexSplitter>> splitters_;

  absl::flat_hash_map<std::string, TokenId> vocab_;  // model.vocab
  std::vector<std::string> id_to_token_;             // vocab and added tokens; "" unassigned
  std::vector<std::string> token_bytes_;             // what each id decodes to
  std::vector<bool> special_;                        // added tokens marked special
  std::array<TokenId, 256> byte_ids_{};              // byte -> its one-character token, or -1
  absl::flat_hash_map<uint64_t, Merge> merges_;      // (left << 32 | right) -> merge
  std::optional<TokenId> unk_id_;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;

  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace deepsearch
