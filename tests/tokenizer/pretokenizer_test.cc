// The regex pre-tokenizer: the Qwen2 and GPT-2 patterns on crafted inputs, with the pieces
// worked out by hand from the patterns (Oniguruma semantics).
#include "common/tokenizer/pretokenizer.h"

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> SplitWith(std::string_view pattern, std::string_view text) {
  absl::StatusOr<std::unique_ptr<RegexSplitter>> splitter = RegexSplitter::Create(pattern);
  EXPECT_TRUE(splitter.ok()) << splitter.status();
  if (!splitter.ok()) return {};
  std::vector<std::string_view> pieces;
  const absl::Status status = (*splitter)->Split(text, &pieces);
  EXPECT_TRUE(status.ok()) << status;
  return std::vector<std::string>(pieces.begin(), pieces.end());
}

std::vector<std::string> Qwen(std::string_view text) {
  return SplitWith(kQwen2PreTokenizerPattern, text);
}

TEST(PreTokenizerTest, Contractions) {
  EXPECT_THAT(Qwen("I'm DON'T you're"), ElementsAre("I", "'m", " DON", "'T", " you", "'re"));
  EXPECT_THAT(Qwen("we'LL they'Ve he'd"), ElementsAre("we", "'LL", " they", "'Ve", " he", "'d"));
  // Not a contraction: the apostrophe joins the letters after it.
  EXPECT_THAT(Qwen("'x 'sx"), ElementsAre("'x", " '", "sx"));
}

TEST(PreTokenizerTest, DigitsOneByOne) {
  EXPECT_THAT(Qwen("12345"), ElementsAre("1", "2", "3", "4", "5"));
  EXPECT_THAT(Qwen(" 123"), ElementsAre(" ", "1", "2", "3"));
  EXPECT_THAT(Qwen("x2y"), ElementsAre("x", "2", "y"));
}

TEST(PreTokenizerTest, WhiteSpaceGoesWithTheWordAfterIt) {
  EXPECT_THAT(Qwen("Hello world"), ElementsAre("Hello", " world"));
  // \s+(?!\S) keeps the last space for the word.
  EXPECT_THAT(Qwen("a   b"), ElementsAre("a", "  ", " b"));
  EXPECT_THAT(Qwen("a \t b"), ElementsAre("a", " \t", " b"));
  EXPECT_THAT(Qwen("end   "), ElementsAre("end", "   "));
  EXPECT_THAT(Qwen("hello!!!\n\nNext"), ElementsAre("hello", "!!!\n\n", "Next"));
  EXPECT_THAT(Qwen(" (x)"), ElementsAre(" (", "x", ")"));
}

TEST(PreTokenizerTest, LineBreaks) {
  EXPECT_THAT(Qwen("a\n\nb"), ElementsAre("a", "\n\n", "b"));
  EXPECT_THAT(Qwen("x  \n  y"), ElementsAre("x", "  \n", " ", " y"));
  EXPECT_THAT(Qwen("a\r\nb"), ElementsAre("a", "\r\n", "b"));
}

TEST(PreTokenizerTest, UnicodeClasses) {
  EXPECT_THAT(Qwen("naïve café"), ElementsAre("naïve", " café"));
  EXPECT_THAT(Qwen("中文，世界"), ElementsAre("中文", "，世界"));
  EXPECT_THAT(Qwen("a\u00A0b"), ElementsAre("a", "\u00A0b"));  // NBSP: not a letter, not \r\n
  EXPECT_THAT(Qwen("٣٤"), ElementsAre("٣", "٤"));              // Arabic-Indic digits are \p{N}
}

TEST(PreTokenizerTest, WhiteSpaceIsOnigurumasNotPcre2s) {
  // U+180E is not White_Space (since Unicode 6.3) though PCRE2's \s has it: it is
  // punctuation-like here, as in Oniguruma.
  EXPECT_THAT(Qwen("a\u180E\u180Eb"), ElementsAre("a", "\u180E\u180E", "b"));
  // U+0085 (NEL) is White_Space: the spaces before it stay apart from it.
  EXPECT_THAT(Qwen("a  \u0085b"), ElementsAre("a", "  ", "\u0085b"));
  // U+FEFF is not White_Space.
  EXPECT_THAT(Qwen("a  \uFEFFb"), ElementsAre("a", " ", " \uFEFF", "b"));
}

TEST(PreTokenizerTest, CaseInsensitiveContractionsFoldLikeOniguruma) {
  // (?i:'s) matches the long s U+017F, which case-folds to 's'.
  EXPECT_THAT(Qwen("'\u017Fx"), ElementsAre("'\u017F", "x"));
}

TEST(PreTokenizerTest, Gpt2Pattern) {
  EXPECT_THAT(SplitWith(kGpt2PreTokenizerPattern, "Hello world's 123 abc!!"),
              ElementsAre("Hello", " world", "'s", " 123", " abc", "!!"));
  EXPECT_THAT(SplitWith(kGpt2PreTokenizerPattern, "a  b"), ElementsAre("a", " ", " b"));
}

TEST(PreTokenizerTest, IsolatedKeepsTheGapsAndSkipsEmptyMatches) {
  EXPECT_THAT(SplitWith("[0-9]+", "ab12cd3"), ElementsAre("ab", "12", "cd", "3"));
  EXPECT_THAT(SplitWith("a*", "bab"), ElementsAre("b", "a", "b"));
  EXPECT_THAT(SplitWith("x", ""), ElementsAre());
}

TEST(PreTokenizerTest, LongWhiteSpaceRunsDoNotExhaustTheMatcher) {
  const std::string text = std::string(200000, ' ') + "x" + std::string(100000, '\n');
  const std::vector<std::string> pieces = Qwen(text);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0], std::string(199999, ' '));
  EXPECT_EQ(pieces[1], " x");
  EXPECT_EQ(pieces[2], std::string(100000, '\n'));
}

TEST(PreTokenizerTest, RewriteMakesWhiteSpaceExplicit) {
  const std::string ws =
      R"(\t\n\x0B\f\r\x20\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
  EXPECT_EQ(RewritePatternForPcre2(R"(\s+(?!\S))").value(), "[" + ws + "]+(?![^" + ws + "])");
  EXPECT_EQ(RewritePatternForPcre2(R"([^\s\p{L}])").value(), "[^" + ws + R"(\p{L}])");
  EXPECT_EQ(RewritePatternForPcre2(R"([]\s]x)").value(), "[]" + ws + "]x");
  EXPECT_EQ(RewritePatternForPcre2(R"([[:alpha:]\s])").value(), "[[:alpha:]" + ws + "]");
  EXPECT_EQ(RewritePatternForPcre2(R"(\\s)").value(), R"(\\s)");  // an escaped backslash
  const absl::StatusOr<std::string> bad = RewritePatternForPcre2(R"([\S])");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("\\S inside a character class"));
}

TEST(PreTokenizerTest, BadPatternsAreRefused) {
  const absl::StatusOr<std::unique_ptr<RegexSplitter>> bad = RegexSplitter::Create("(ab");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("regex '(ab' does not compile"));
}

}  // namespace
}  // namespace deepsearch
