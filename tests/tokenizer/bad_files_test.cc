// Malformed and unsupported tokenizer.json files: each refused with a message naming the
// file, the key and the problem.
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/tokenizer/tokenizer.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A small valid byte-level BPE file; the tests break one thing at a time. Its vocabulary
// lacks most bytes, which is allowed (they fail at encode time).
constexpr char kGood[] = R"json({
  "added_tokens": [{"id": 5, "content": "<|end|>", "special": true}],
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "\\p{L}+|\\s+"}, "behavior": "Isolated",
     "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4},
            "merges": ["a b", ["ab", "c"]]}
})json";

std::string ErrorOf(const nlohmann::json& j) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = ParseTokenizerJson(j.dump(), "bad.json");
  EXPECT_FALSE(t.ok()) << "accepted: " << j.dump();
  if (t.ok()) return "";
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), StartsWith("bad.json: "));
  return std::string(t.status().message());
}

nlohmann::json Good() { return nlohmann::json::parse(kGood); }

TEST(BadFilesTest, TheBaseFileIsGood) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = ParseTokenizerJson(kGood, "good.json");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Encode("abc").value(), std::vector<TokenId>{4});
  EXPECT_EQ((*t)->vocab_size(), 6);
}

TEST(BadFilesTest, MalformedJson) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = ParseTokenizerJson("{\"model\": [1,", "x.json");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("x.json: malformed JSON"));
  // Found by fuzz/fuzz_safetensors in the same parser: a number past a double threw
  // out_of_range instead of parse_error; it is malformed JSON too, not a crash.
  t = ParseTokenizerJson(R"({"model": {"dropout": 1e99999}})", "big.json");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("big.json: malformed JSON"));
  EXPECT_THAT(ErrorOf(nlohmann::json::array({1, 2})),
              HasSubstr("expected a JSON object at the top, got an array of 2"));
}

TEST(BadFilesTest, MissingFields) {
  nlohmann::json j = Good();
  j.erase("model");
  EXPECT_THAT(ErrorOf(j), HasSubstr("bad.json: model: missing"));
  j = Good();
  j["model"].erase("merges");
  j["model"].erase("type");
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.type: missing"));
  j = Good();
  j["model"].erase("merges");
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.merges: missing"));
  j = Good();
  j["model"].erase("vocab");
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.vocab: missing"));
  j = Good();
  j.erase("decoder");
  EXPECT_THAT(ErrorOf(j), HasSubstr("decoder: missing"));
  j = Good();
  j.erase("pre_tokenizer");
  EXPECT_THAT(ErrorOf(j), HasSubstr("pre_tokenizer: missing"));
  j = Good();
  j["added_tokens"][0].erase("content");
  EXPECT_THAT(ErrorOf(j), HasSubstr("added_tokens[0].content: missing"));
}

TEST(BadFilesTest, UnsupportedComponents) {
  nlohmann::json j = Good();
  j["model"]["type"] = "Unigram";
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.type: 'Unigram' is not supported"));
  j = Good();
  j["decoder"] = {{"type", "Metaspace"}};
  EXPECT_THAT(ErrorOf(j), HasSubstr("decoder.type: decoder 'Metaspace' is not supported"));
  j = Good();
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_THAT(ErrorOf(j), HasSubstr("normalizer.type: normalizer 'Lowercase' is not supported"));
  j = Good();
  j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Whitespace"}};
  EXPECT_THAT(ErrorOf(j), HasSubstr("pre_tokenizer.pretokenizers[0].type: pre-tokenizer "
                                    "'Whitespace' is not supported"));
  j = Good();
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  EXPECT_THAT(ErrorOf(j), HasSubstr("pre_tokenizer.pretokenizers[0].behavior: 'Removed'"));
  j = Good();
  j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true;
  EXPECT_THAT(ErrorOf(j), HasSubstr("pre_tokenizer.pretokenizers[1].add_prefix_space"));
  j = Good();
  j["pre_tokenizer"] = j["pre_tokenizer"]["pretokenizers"][0];
  EXPECT_THAT(ErrorOf(j), HasSubstr("pre_tokenizer: a byte-level BPE needs the ByteLevel"));
  j = Good();
  j["model"]["byte_fallback"] = true;
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.byte_fallback: true is not supported"));
  j = Good();
  j["model"]["continuing_subword_prefix"] = "##";
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.continuing_subword_prefix: '##' is not supported"));
  j = Good();
  j["model"]["dropout"] = 0.1;
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.dropout: BPE dropout is not supported"));
}

TEST(BadFilesTest, BadRegex) {
  nlohmann::json j = Good();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{L}";
  EXPECT_THAT(ErrorOf(j), HasSubstr("pre_tokenizer.pretokenizers[0].pattern.Regex: regex "
                                    "'(\\p{L}' does not compile"));
  j = Good();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"String", " "}};
  EXPECT_THAT(ErrorOf(j), HasSubstr("String patterns are not supported"));
}

TEST(BadFilesTest, BadMerges) {
  nlohmann::json j = Good();
  j["model"]["merges"][1] = {"ab", "c", "d"};
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.merges[1]: expected a \"left right\" string or a "
                                    "pair of two non-empty strings, got an array of 3"));
  j = Good();
  j["model"]["merges"][0] = "ab";
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.merges[0]: expected two tokens separated by one "
                                    "space, got 'ab'"));
  j = Good();
  j["model"]["merges"][0] = "a b c";
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.merges[0]: expected two tokens separated"));
  j = Good();
  j["model"]["merges"][0] = 7;
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.merges[0]: expected a \"left right\" string"));
  j = Good();
  j["model"]["merges"][0] = "a q";
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.merges[0]: 'q' is not in model.vocab"));
  j = Good();
  j["model"]["merges"][0] = "b a";
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.merges[0]: the merged token 'ba' is not in "
                                    "model.vocab"));
  j = Good();
  j["model"]["merges"] = "a b";
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.merges: expected an array, got a string"));
}

TEST(BadFilesTest, BadVocabularyAndAddedTokens) {
  nlohmann::json j = Good();
  j["model"]["vocab"]["z"] = -1;
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.vocab.z: expected a non-negative 32-bit integer id, "
                                    "got a number -1"));
  j = Good();
  j["model"]["vocab"]["z"] = 2;
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.vocab: id 2 is given to both"));
  j = Good();
  j["model"]["vocab"] = nlohmann::json::array();
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.vocab: expected an object of token: id, got an "
                                    "array of 0"));
  j = Good();
  j["added_tokens"][0]["id"] = "five";
  EXPECT_THAT(ErrorOf(j), HasSubstr("added_tokens[0].id: expected a non-negative 32-bit "
                                    "integer, got a string 'five'"));
  j = Good();
  j["added_tokens"][0]["special"] = "yes";
  EXPECT_THAT(ErrorOf(j), HasSubstr("added_tokens[0].special: expected true or false"));
  j = Good();
  j["added_tokens"].push_back({{"id", 6}, {"content", "<|end|>"}});
  EXPECT_THAT(ErrorOf(j), HasSubstr("added_tokens[1].content: '<|end|>' is listed twice"));
  j = Good();
  j["added_tokens"].push_back({{"id", 5}, {"content", "<|other|>"}});
  EXPECT_THAT(ErrorOf(j), HasSubstr("added_tokens[1].id: id 5 is used by an earlier"));
  j = Good();
  j["model"]["unk_token"] = "<unk>";
  EXPECT_THAT(ErrorOf(j), HasSubstr("model.unk_token: '<unk>' is not in model.vocab"));
}

TEST(BadFilesTest, MissingFileIsNotFound) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = LoadTokenizer("/nonexistent/tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(),
              HasSubstr("tokenizer file /nonexistent/tokenizer.json: cannot open for reading"));
}

}  // namespace
}  // namespace deepsearch
