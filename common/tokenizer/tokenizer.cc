#include "common/tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

#include "common/tokenizer/bpe_tokenizer.h"
#include "common/tokenizer/char_tokenizer.h"
#include "common/tokenizer/json_fields.h"
#include "common/tokenizer/utf8.h"

namespace deepsearch {

absl::StatusOr<std::unique_ptr<Tokenizer>> ParseTokenizerJson(std::string_view json,
                                                              std::string_view source) {
  const JsonFields fields(source);
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e999)
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(source), ": malformed JSON: ", e.what()));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(source), ": expected a JSON object at the top, got ", DescribeJson(root)));
  }
  absl::StatusOr<const nlohmann::json*> model = fields.Required(root, "", "model");
  if (!model.ok()) return model.status();
  if (!(*model)->is_object()) {
    return fields.Error("model", absl::StrCat("expected an object, got ", DescribeJson(**model)));
  }
  // Files written by old versions of the tokenizers library leave out model.type.
  const nlohmann::json* type_json = JsonFields::Optional(**model, "type");
  std::string type;
  if (type_json == nullptr && (*model)->contains("merges")) {
    type = "BPE";
  } else {
    absl::StatusOr<std::string> named = fields.RequiredString(**model, "model", "type");
    if (!named.ok()) return named.status();
    type = *std::move(named);
  }
  if (type == "BPE") {
    absl::StatusOr<std::unique_ptr<BpeTokenizer>> bpe = BpeTokenizer::FromJson(root, fields);
    if (!bpe.ok()) return bpe.status();
    return std::unique_ptr<Tokenizer>(*std::move(bpe));
  }
  if (type == "WordLevel") {
    absl::StatusOr<std::unique_ptr<CharTokenizer>> chars = CharTokenizer::FromJson(root, fields);
    if (!chars.ok()) return chars.status();
    return std::unique_ptr<Tokenizer>(*std::move(chars));
  }
  return fields.Error("model.type", absl::StrCat("'", type,
                                                 "' is not supported (supported: BPE with a "
                                                 "ByteLevel decoder, WordLevel with a "
                                                 "single-character split)"));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("tokenizer file ", path, ": cannot open for reading"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("tokenizer file ", path, ": read failed"));
  }
  return ParseTokenizerJson(text.str(), path);
}

std::string DecodeTokenBytes(const Tokenizer& tokenizer, absl::Span<const TokenId> ids,
                             bool skip_special) {
  std::string bytes;
  for (const TokenId id : ids) {
    if (skip_special && tokenizer.IsSpecial(id)) continue;
    bytes.append(tokenizer.TokenBytes(id));
  }
  return Utf8Lossy(bytes);
}

std::string StreamingDecoder::Push(TokenId id) {
  if (skip_special_ && tokenizer_.IsSpecial(id)) return "";
  pending_.append(tokenizer_.TokenBytes(id));
  const size_t held = IncompleteUtf8Suffix(pending_);
  std::string text = Utf8Lossy(std::string_view(pending_).substr(0, pending_.size() - held));
  pending_.erase(0, pending_.size() - held);
  return text;
}

std::string StreamingDecoder::Flush() {
  std::string text = Utf8Lossy(pending_);
  pending_.clear();
  return text;
}

}  // namespace deepsearch
