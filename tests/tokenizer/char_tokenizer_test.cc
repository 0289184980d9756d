// The character tokenizer: built by BuildCharTokenizerJson, read back as a tokenizer.json.
#include "common/tokenizer/char_tokenizer.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/tokenizer/tokenizer.h"

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

CharVocabSpec ArithmeticSpec() {
  CharVocabSpec spec;
  spec.specials = {"<pad>", "<bos>", "<eos>", "<step>", "<ans>"};
  spec.characters = "0123456789+-= \n";
  return spec;
}

std::unique_ptr<Tokenizer> Build(const CharVocabSpec& spec) {
  absl::StatusOr<std::string> json = BuildCharTokenizerJson(spec);
  EXPECT_TRUE(json.ok()) << json.status();
  if (!json.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = ParseTokenizerJson(*json, "chars.json");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::vector<TokenId> Ids(const Tokenizer& t, std::string_view text, bool allow_special = false) {
  absl::StatusOr<std::vector<TokenId>> ids = t.Encode(text, allow_special);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<TokenId>{};
}

TEST(CharTokenizerTest, WritesAHuggingFaceWordLevelFile) {
  absl::StatusOr<std::string> text = BuildCharTokenizerJson(ArithmeticSpec());
  ASSERT_TRUE(text.ok()) << text.status();
  const nlohmann::json j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["model"]["type"], "WordLevel");
  EXPECT_EQ(j["model"]["unk_token"], "<unk>");
  EXPECT_EQ(j["model"]["vocab"]["<pad>"], 0);
  EXPECT_EQ(j["model"]["vocab"]["<unk>"], 5);  // after the given specials
  EXPECT_EQ(j["model"]["vocab"]["0"], 6);
  EXPECT_EQ(j["model"]["vocab"]["\n"], 20);
  EXPECT_EQ(j["pre_tokenizer"]["type"], "Split");
  EXPECT_EQ(j["pre_tokenizer"]["pattern"]["Regex"], "[\\s\\S]");
  EXPECT_EQ(j["pre_tokenizer"]["behavior"], "Isolated");
  EXPECT_EQ(j["decoder"]["type"], "Fuse");
  EXPECT_TRUE(j["normalizer"].is_null());
  ASSERT_EQ(j["added_tokens"].size(), 6u);
  EXPECT_EQ(j["added_tokens"][3]["content"], "<step>");
  EXPECT_EQ(j["added_tokens"][3]["id"], 3);
  EXPECT_EQ(j["added_tokens"][3]["special"], true);
  EXPECT_EQ(j["added_tokens"][3]["normalized"], false);
}

TEST(CharTokenizerTest, EncodesOneTokenPerCodePoint) {
  const auto t = Build(ArithmeticSpec());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 21);
  // '0' is 6, ..., '9' is 15, '+' 16, '-' 17, '=' 18, ' ' 19, '\n' 20.
  EXPECT_THAT(Ids(*t, "12+3"), ElementsAre(7, 8, 16, 9));
  EXPECT_THAT(Ids(*t, "1 = 1\n"), ElementsAre(7, 19, 18, 19, 7, 20));
  EXPECT_THAT(Ids(*t, ""), ElementsAre());
  EXPECT_EQ(t->Decode(Ids(*t, "9-8=1\n")), "9-8=1\n");
  EXPECT_EQ(t->TokenToId("<step>"), 3);
  EXPECT_EQ(t->TokenToId("7"), 13);
  EXPECT_EQ(t->TokenToId("x"), std::nullopt);
  EXPECT_EQ(t->IdToToken(16), "+");
  EXPECT_EQ(t->IdToToken(21), "");
  EXPECT_EQ(t->TokenBytes(4), "<ans>");
}

TEST(CharTokenizerTest, UnknownCharactersBecomeUnk) {
  const auto t = Build(ArithmeticSpec());
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(Ids(*t, "1x2é"), ElementsAre(7, 5, 8, 5));
  EXPECT_EQ(t->Decode(Ids(*t, "1x")), "1<unk>");
  EXPECT_EQ(t->Decode(Ids(*t, "1x"), /*skip_special=*/true), "1");
}

TEST(CharTokenizerTest, WithoutUnkAnUnknownCharacterIsAnError) {
  CharVocabSpec spec = ArithmeticSpec();
  spec.unk_token = "";
  const auto t = Build(spec);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 20);
  const absl::StatusOr<std::vector<TokenId>> ids = t->Encode("1x");
  ASSERT_FALSE(ids.ok());
  EXPECT_THAT(ids.status().message(), HasSubstr("character U+0078 'x' has no token"));
}

TEST(CharTokenizerTest, SpecialTokens) {
  const auto t = Build(ArithmeticSpec());
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(Ids(*t, "<bos>1+1<step>2<eos>", true), ElementsAre(1, 7, 16, 7, 3, 8, 2));
  // Not allowed: the text of <bos> is five unknown characters.
  EXPECT_THAT(Ids(*t, "<bos>1"), ElementsAre(5, 5, 5, 5, 5, 7));
  const std::vector<TokenId> ids = {1, 7, 4, 8, 2, 0};
  EXPECT_EQ(t->Decode(ids), "<bos>1<ans>2<eos><pad>");
  EXPECT_EQ(t->Decode(ids, /*skip_special=*/true), "12");
  EXPECT_TRUE(t->IsSpecial(0));
  EXPECT_TRUE(t->IsSpecial(5));
  EXPECT_FALSE(t->IsSpecial(6));
  EXPECT_EQ(t->Decode(std::vector<TokenId>{7, 99}), "1\uFFFD");
}

TEST(CharTokenizerTest, MultiByteCharacters) {
  CharVocabSpec spec;
  spec.specials = {"<eos>"};
  spec.characters = "aé中😀\t";
  const auto t = Build(spec);
  ASSERT_NE(t, nullptr);
  // <eos> 0, <unk> 1, a 2, é 3, 中 4, 😀 5, \t 6.
  EXPECT_THAT(Ids(*t, "😀é\ta中"), ElementsAre(5, 3, 6, 2, 4));
  EXPECT_EQ(t->Decode(std::vector<TokenId>{5, 3, 6, 2, 4}), "😀é\ta中");
  // Streaming works per token: every token is whole characters.
  StreamingDecoder stream(*t);
  EXPECT_EQ(stream.Push(5), "😀");
}

TEST(CharTokenizerTest, WrittenFileLoadsThroughLoadTokenizer) {
  absl::StatusOr<std::string> text = BuildCharTokenizerJson(ArithmeticSpec());
  ASSERT_TRUE(text.ok());
  const std::string path =
      ::testing::TempDir() + "/char_tokenizer_" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream out(path, std::ios::binary);
    out << *text;
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = LoadTokenizer(path);
  std::remove(path.c_str());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(Ids(**t, "2+2=4"), ElementsAre(8, 16, 8, 18, 10));
}

TEST(CharTokenizerTest, BuilderRefusesBadSpecs) {
  auto error = [](const CharVocabSpec& spec) {
    absl::StatusOr<std::string> json = BuildCharTokenizerJson(spec);
    EXPECT_FALSE(json.ok());
    return json.ok() ? std::string() : std::string(json.status().message());
  };
  CharVocabSpec repeated_char = ArithmeticSpec();
  repeated_char.characters = "abca";
  EXPECT_THAT(error(repeated_char), HasSubstr("U+0061 'a' at byte 3 is repeated"));
  CharVocabSpec special_char = ArithmeticSpec();
  special_char.specials.push_back("#");
  special_char.characters = "1#";
  EXPECT_THAT(error(special_char), HasSubstr("'#' at byte 1 is also a special token"));
  CharVocabSpec empty_special = ArithmeticSpec();
  empty_special.specials.push_back("");
  EXPECT_THAT(error(empty_special), HasSubstr("specials[5]: empty"));
  CharVocabSpec repeated_special = ArithmeticSpec();
  repeated_special.specials.push_back("<bos>");
  EXPECT_THAT(error(repeated_special), HasSubstr("specials[5]: '<bos>' repeated"));
  CharVocabSpec bad_utf8 = ArithmeticSpec();
  bad_utf8.characters = "ab\xC3";
  EXPECT_THAT(error(bad_utf8), HasSubstr("characters: not valid UTF-8 at byte 2"));
}

TEST(CharTokenizerTest, ReaderChecksTheFile) {
  absl::StatusOr<std::string> text = BuildCharTokenizerJson(ArithmeticSpec());
  ASSERT_TRUE(text.ok());
  const nlohmann::json good = nlohmann::json::parse(*text);
  auto error = [](const nlohmann::json& j) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> t = ParseTokenizerJson(j.dump(), "c.json");
    EXPECT_FALSE(t.ok());
    return t.ok() ? std::string() : std::string(t.status().message());
  };
  nlohmann::json dot = good;
  dot["pre_tokenizer"]["pattern"]["Regex"] = ".";  // misses newlines
  EXPECT_THAT(error(dot), HasSubstr("c.json: pre_tokenizer.pattern: '.' is not supported"));
  nlohmann::json perl_dot = good;
  perl_dot["pre_tokenizer"]["pattern"]["Regex"] = "(?s:.)";
  EXPECT_TRUE(ParseTokenizerJson(perl_dot.dump(), "c.json").ok());
  nlohmann::json no_decoder = good;
  no_decoder.erase("decoder");
  EXPECT_THAT(error(no_decoder), HasSubstr("c.json: decoder: missing"));
  nlohmann::json word = good;
  word["model"]["vocab"]["ab"] = 30;
  EXPECT_THAT(error(word), HasSubstr("model.vocab.ab: neither one code point nor an added token"));
  nlohmann::json bad_unk = good;
  bad_unk["model"]["unk_token"] = "<missing>";
  EXPECT_THAT(error(bad_unk), HasSubstr("model.unk_token: '<missing>' is not in model.vocab"));
  nlohmann::json shared_id = good;
  shared_id["model"]["vocab"]["9"] = 6;
  EXPECT_THAT(error(shared_id), HasSubstr("id 6 is given to both"));
  nlohmann::json moved_special = good;
  moved_special["model"]["vocab"]["<eos>"] = 40;
  EXPECT_THAT(error(moved_special),
              HasSubstr("model.vocab.<eos>: id 40 differs from the added token's id 2"));
}

}  // namespace
}  // namespace deepsearch
