// Tokenizers read from Hugging Face tokenizer.json files: text to token ids and back.
//
// Two implementations sit behind one interface, chosen by the file's model.type:
//   * "BPE" with a ByteLevel decoder: the byte-level BPE of GPT-2 as Hugging Face tokenizers
//     runs it for Qwen2 / Qwen2.5 / Qwen3 / DeepSeek-R1-Distill-Qwen (bpe_tokenizer.h);
//     the encodings equal the tokenizers library's, checked against golden encodings of the
//     real Qwen vocabulary (tests/data/tokenizers).
//   * "WordLevel" with a one-code-point split: the character tokenizer of the project's own
//     tiny models, one token per Unicode code point plus special tokens (char_tokenizer.h).
// Anything else (Unigram, WordPiece, Metaspace/SentencePiece-style BPE, byte fallback, other
// normalizers or pre-tokenizers) is refused with an error naming the field.
//
// Encode never adds anything (no BOS/EOS): the file's post_processor, truncation and padding
// are not applied, as with the tokenizers library's `add_special_tokens=False`. Callers
// build prompts with explicit special tokens and `allow_special`.
//
// Decoding turns ids into bytes (TokenBytes), concatenates them and decodes UTF-8 lossily
// (utf8.h). An id the tokenizer does not know decodes to U+FFFD.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace deepsearch {

using TokenId = int32_t;

// Implementations are immutable after loading: every method is const and thread-safe, and
// any number of threads may call them at once.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`, which must be valid UTF-8 (InvalidArgument, naming the byte
  // offset, otherwise). allow_special: recognise the added tokens marked "special" (such as
  // <|im_end|>) in the text; when false their text is encoded as ordinary text, so a user
  // prompt cannot inject them. Added tokens not marked special (such as Qwen3's <think>) are
  // always recognised. Also fails when a character has no token and the vocabulary has no
  // unknown token.
  virtual absl::StatusOr<std::vector<TokenId>> Encode(std::string_view text,
                                                      bool allow_special = false) const = 0;

  // The text of `ids`. skip_special drops the special added tokens. Bytes that are not valid
  // UTF-8 become U+FFFD (as Hugging Face decodes); an unknown id contributes one U+FFFD.
  virtual std::string Decode(absl::Span<const TokenId> ids, bool skip_special = false) const = 0;

  // The largest id + 1, added tokens included. Ids below it may still be unassigned.
  virtual int32_t vocab_size() const = 0;

  // The id of a vocabulary string ("Ġthe") or added token ("<|im_end|>").
  virtual std::optional<TokenId> TokenToId(std::string_view token) const = 0;

  // The vocabulary string of `id` ("Ġthe") or an added token's content; "" if unknown.
  virtual std::string IdToToken(TokenId id) const = 0;

  // The raw bytes `id` contributes to decoded text, possibly part of a UTF-8 sequence (for
  // streaming and stop strings). An unknown id gives U+FFFD's three bytes.
  virtual std::string TokenBytes(TokenId id) const = 0;

  // True for added tokens marked "special".
  virtual bool IsSpecial(TokenId id) const = 0;
};

// Reads a Hugging Face tokenizer.json and builds the implementation its model.type names.
// Errors name the file and the offending key ("tok.json: model.merges[3]: ...").
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path);

// The same from the file's text; `source` names it in errors.
absl::StatusOr<std::unique_ptr<Tokenizer>> ParseTokenizerJson(std::string_view json,
                                                              std::string_view source);

// Decode as every implementation here does it: the TokenBytes of each id (special ones
// dropped when skip_special), concatenated and decoded lossily.
std::string DecodeTokenBytes(const Tokenizer& tokenizer, absl::Span<const TokenId> ids,
                             bool skip_special);

// Decodes a stream of ids piece by piece, for printing tokens as they are generated.
// Push returns the text completed so far and holds back a trailing partial UTF-8 sequence
// until later tokens complete it; Flush returns what is held back, incomplete bytes as
// U+FFFD. The pieces returned by all Push calls and a final Flush concatenate to Decode of
// all the ids. Not thread-safe (one stream, one thread); the tokenizer must outlive it.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(tokenizer), skip_special_(skip_special) {}

  std::string Push(TokenId id);
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete UTF-8 sequence, at most 3
};

}  // namespace deepsearch
