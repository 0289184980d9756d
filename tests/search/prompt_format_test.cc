#include "search/prompt_format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/tokenizer/char_tokenizer.h"

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(PromptFormatTest, TemplateSpecialsAreTokensButThePromptCannotInjectThem) {
  std::unique_ptr<Tokenizer> tok = *ParseTokenizerJson(*DefaultTaskTokenizerJson(), "task");
  const PromptFormat f = *PromptFormat::Parse(PromptFormat::kTaskDefault);
  EXPECT_EQ(f.ToString(), "<bos>{prompt}\n");
  EXPECT_EQ(f.Render("1+1"), "<bos>1+1\n");
  const int32_t bos = *tok->TokenToId("<bos>");
  const std::vector<int32_t> ids = *f.Encode(*tok, "1+1");
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(ids[0], bos);
  EXPECT_EQ(tok->Decode(ids), "<bos>1+1\n");
  // "<eos>" inside a problem statement is text, five characters, not the special token.
  const std::vector<int32_t> injected = *f.Encode(*tok, "<eos>");
  EXPECT_EQ(injected.size(), 7u);
  EXPECT_THAT(injected, ::testing::Not(::testing::Contains(*tok->TokenToId("<eos>"))));
  // Length limit.
  EXPECT_THAT(std::string(f.Encode(*tok, "1234567890", 8).status().message()),
              HasSubstr("12 tokens, more than the limit of 8"));
}

TEST(PromptFormatTest, MalformedTemplatesAreRefused) {
  EXPECT_THAT(std::string(PromptFormat::Parse("no placeholder").status().message()),
              HasSubstr("no {prompt}"));
  EXPECT_THAT(std::string(PromptFormat::Parse("{prompt}{prompt}").status().message()),
              HasSubstr("more than once"));
  const PromptFormat bare = *PromptFormat::Parse("{prompt}");
  std::unique_ptr<Tokenizer> tok = *ParseTokenizerJson(*DefaultTaskTokenizerJson(), "task");
  EXPECT_THAT(std::string(bare.Encode(*tok, "").status().message()), HasSubstr("no tokens"));
  EXPECT_THAT(*bare.Encode(*tok, "ab"), ElementsAre(*tok->TokenToId("a"), *tok->TokenToId("b")));
}

}  // namespace
}  // namespace deepsearch
