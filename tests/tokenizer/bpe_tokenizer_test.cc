// The byte-level BPE on a tiny hand-made tokenizer.json, where every expected id can be
// worked out by hand: byte b is token b (its byte-level character), and a few merges and
// added tokens sit above 255.
#include "common/tokenizer/bpe_tokenizer.h"

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/utf8.h"

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The parts of a Qwen2-style file the tests vary; "vocab" gets the 256 byte tokens added.
constexpr char kTinyBpe[] = R"json({
  "version": "1.0",
  "added_tokens": [
    {"id": 300, "content": "<|x|>", "special": true, "normalized": false,
     "lstrip": false, "rstrip": false, "single_word": false},
    {"id": 301, "content": "<|xy|>", "special": true, "normalized": false,
     "lstrip": false, "rstrip": false, "single_word": false},
    {"id": 302, "content": "<t>", "special": false, "normalized": false,
     "lstrip": false, "rstrip": false, "single_word": false}
  ],
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split",
     "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
  ]},
  "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
                     "use_regex": false},
  "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
              "use_regex": false},
  "model": {
    "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
    "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
    "vocab": {"ab": 256, "abc": 257, "Ġa": 258, "bc": 259, "aa": 260, "Ġab": 261},
    "merges": [["a", "b"], ["ab", "c"], ["Ġ", "a"], ["b", "c"], ["a", "a"], ["Ġ", "ab"]]
  }
})json";

nlohmann::json TinyJson() {
  nlohmann::json j = nlohmann::json::parse(kTinyBpe);
  for (int b = 0; b < 256; ++b) {
    std::string c;
    AppendUtf8(ByteToUnicode(static_cast<uint8_t>(b)), &c);
    j["model"]["vocab"][c] = b;
  }
  return j;
}

std::unique_ptr<Tokenizer> Build(const nlohmann::json& j) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = ParseTokenizerJson(j.dump(), "tiny.json");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::vector<TokenId> Ids(const Tokenizer& t, std::string_view text, bool allow_special = false) {
  absl::StatusOr<std::vector<TokenId>> ids = t.Encode(text, allow_special);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<TokenId>{};
}

std::vector<TokenId> Bytes(std::string_view text) {
  std::vector<TokenId> ids;
  for (const char c : text) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

TEST(BpeTokenizerTest, BytesWithoutMergesAreTheirOwnTokens) {
  const auto t = Build(TinyJson());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 303);
  EXPECT_EQ(Ids(*t, "hi"), Bytes("hi"));
  EXPECT_EQ(Ids(*t, "x\n\ty"), Bytes("x\n\ty"));
  EXPECT_EQ(Ids(*t, "中"), Bytes("中"));
  EXPECT_THAT(Ids(*t, ""), ElementsAre());
  EXPECT_EQ(t->IdToToken(' '), "Ġ");
  EXPECT_EQ(t->IdToToken(258), "Ġa");
  EXPECT_EQ(t->TokenToId("Ġab"), 261);
  EXPECT_EQ(t->TokenToId("nope"), std::nullopt);
  EXPECT_EQ(t->IdToToken(299), "");  // unassigned
  EXPECT_EQ(t->IdToToken(-1), "");
}

TEST(BpeTokenizerTest, MergesApplyLowestRankFirst) {
  const auto t = Build(TinyJson());
  ASSERT_NE(t, nullptr);
  // a b c: (a,b) rank 0 first, then (ab,c) rank 1.
  EXPECT_THAT(Ids(*t, "abc"), ElementsAre(257));
  // b c a b: (a,b) rank 0 merges before (b,c) rank 3.
  EXPECT_THAT(Ids(*t, "bcab"), ElementsAre(259, 256));
  // " ab": (a,b) rank 0, then (Ġ,ab) rank 5; (Ġ,a) rank 2 never gets its chance.
  EXPECT_THAT(Ids(*t, " ab"), ElementsAre(261));
  EXPECT_THAT(Ids(*t, " ac"), ElementsAre(258, 'c'));
  // Equal ranks: the leftmost pair first, so "aaa" is aa + a.
  EXPECT_THAT(Ids(*t, "aaa"), ElementsAre(260, 'a'));
  EXPECT_THAT(Ids(*t, "aaaa"), ElementsAre(260, 260));
}

TEST(BpeTokenizerTest, MergeOrderIsTheListOrder) {
  nlohmann::json j = TinyJson();
  // (b,c) now outranks (a,b): "abc" becomes a + bc, and (a,bc) is no merge.
  j["model"]["merges"] = nlohmann::json::parse(R"([["b", "c"], ["a", "b"], ["ab", "c"]])");
  const auto t = Build(j);
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(Ids(*t, "abc"), ElementsAre('a', 259));
}

TEST(BpeTokenizerTest, BothMergeFormatsGiveTheSameTokens) {
  nlohmann::json pairs = TinyJson();
  nlohmann::json strings = TinyJson();
  strings["model"]["merges"] = {"a b", "ab c", "Ġ a", "b c", "a a", "Ġ ab"};
  const auto a = Build(pairs);
  const auto b = Build(strings);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (const char* text : {"abc", "bcab", " ab", " ac", "aaaaa", "x abc abcab"}) {
    EXPECT_EQ(Ids(*a, text), Ids(*b, text)) << text;
  }
  // Ġ a b c: (a,b) rank 0, then (ab,c) rank 1 beats (Ġ,ab) rank 5.
  EXPECT_THAT(Ids(*b, "x abc"), ElementsAre('x', ' ', 257));
}

TEST(BpeTokenizerTest, RepeatedMergeTakesItsLaterRank) {
  nlohmann::json j = TinyJson();
  // (a,b) listed first and again after (b,c): the later rank wins, as in tokenizers.
  j["model"]["merges"] = nlohmann::json::parse(R"([["a", "b"], ["b", "c"], ["a", "b"]])");
  const auto t = Build(j);
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(Ids(*t, "abc"), ElementsAre('a', 259));
}

TEST(BpeTokenizerTest, IgnoreMergesTakesWholeVocabularyWords) {
  nlohmann::json j = TinyJson();
  j["model"]["vocab"]["ca"] = 270;  // reachable by no merge
  const auto plain = Build(j);
  j["model"]["ignore_merges"] = true;
  const auto ignoring = Build(j);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(ignoring, nullptr);
  EXPECT_THAT(Ids(*plain, "ca"), ElementsAre('c', 'a'));
  EXPECT_THAT(Ids(*ignoring, "ca"), ElementsAre(270));
}

TEST(BpeTokenizerTest, AddedTokensLongestFirst) {
  const auto t = Build(TinyJson());
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(Ids(*t, "<|x|>", true), ElementsAre(300));
  EXPECT_THAT(Ids(*t, "<|xy|>", true), ElementsAre(301));  // not <|x + y|>
  std::vector<TokenId> expected = {'1', 301, '2', 300};
  EXPECT_EQ(Ids(*t, "1<|xy|>2<|x|>", true), expected);
  EXPECT_EQ(t->Decode(expected), "1<|xy|>2<|x|>");
}

TEST(BpeTokenizerTest, SpecialTokensAreRefusedUnlessAllowed) {
  const auto t = Build(TinyJson());
  ASSERT_NE(t, nullptr);
  // Without allow_special the text is encoded as text: "<|" "x" "|>" by the regex.
  const std::vector<TokenId> as_text = Ids(*t, "<|x|>");
  EXPECT_EQ(as_text, Bytes("<|x|>"));
  EXPECT_THAT(as_text, ::testing::Not(::testing::Contains(300)));
  // Non-special added tokens are always recognised.
  EXPECT_THAT(Ids(*t, "<t>"), ElementsAre(302));
  EXPECT_THAT(Ids(*t, "a<t>b", true), ElementsAre('a', 302, 'b'));
  EXPECT_TRUE(t->IsSpecial(300));
  EXPECT_FALSE(t->IsSpecial(302));
  EXPECT_FALSE(t->IsSpecial('a'));
  EXPECT_FALSE(t->IsSpecial(5000));
}

TEST(BpeTokenizerTest, RefusedSpecialTokenTextJoinsTheTextAroundIt) {
  const auto t = Build(TinyJson());
  ASSERT_NE(t, nullptr);
  auto* bpe = dynamic_cast<BpeTokenizer*>(t.get());
  ASSERT_NE(bpe, nullptr);
  // As with tokenizers' encode_special_tokens: " <|x|>" is pre-tokenized as a whole, so the
  // space joins the punctuation after it.
  EXPECT_THAT(bpe->PreTokenize(" <|x|>").value(), ElementsAre(" <|", "x", "|>"));
  EXPECT_THAT(bpe->PreTokenize(" <|x|>", true).value(), ElementsAre(" "));
}

TEST(BpeTokenizerTest, AddedTokenFlags) {
  nlohmann::json j = TinyJson();
  j["added_tokens"] = nlohmann::json::parse(R"([
    {"id": 400, "content": "<m>", "special": true, "lstrip": true, "rstrip": true},
    {"id": 401, "content": "go", "special": false, "single_word": true, "normalized": false},
    {"id": 402, "content": "caf\u00e9", "special": false, "normalized": true}
  ])");
  const auto t = Build(j);
  ASSERT_NE(t, nullptr);
  // lstrip/rstrip swallow the white space around the token.
  EXPECT_THAT(Ids(*t, "a  <m>\tb", true), ElementsAre('a', 400, 'b'));
  // single_word: only where no word character touches it.
  EXPECT_THAT(Ids(*t, "go go!", true), ElementsAre(401, ' ', 401, '!'));
  EXPECT_EQ(Ids(*t, "gone", true), Bytes("gone"));
  // normalized: matched after NFC, so the decomposed spelling finds it too.
  EXPECT_THAT(Ids(*t, "cafe\u0301", true), ElementsAre(402));
  EXPECT_THAT(Ids(*t, "x caf\u00e9", true), ElementsAre('x', ' ', 402));
}

TEST(BpeTokenizerTest, NfcNormalisesTheTextBetweenAddedTokens) {
  nlohmann::json j = TinyJson();
  const auto nfc = Build(j);
  j["normalizer"] = nullptr;
  const auto raw = Build(j);
  ASSERT_NE(nfc, nullptr);
  ASSERT_NE(raw, nullptr);
  // "e" + U+0301 is "é" (C3 A9) after NFC.
  EXPECT_THAT(Ids(*nfc, "e\u0301"), ElementsAre(0xC3, 0xA9));
  EXPECT_THAT(Ids(*raw, "e\u0301"), ElementsAre('e', 0xCC, 0x81));
  EXPECT_EQ(nfc->Decode(Ids(*nfc, "e\u0301")), "\u00e9");
  // The added token's content is never normalised.
  EXPECT_THAT(Ids(*nfc, "e\u0301<|x|>", true), ElementsAre(0xC3, 0xA9, 300));
}

TEST(BpeTokenizerTest, DecodeIsLossyAndCanSkipSpecialTokens) {
  const auto t = Build(TinyJson());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->Decode(std::vector<TokenId>{'h', 261, 'c'}), "h abc");
  // 0xFF alone is not UTF-8; F0 9F is a truncated emoji: one U+FFFD each.
  EXPECT_EQ(t->Decode(std::vector<TokenId>{'h', 0xFF, 'i'}), "h\uFFFDi");
  EXPECT_EQ(t->Decode(std::vector<TokenId>{0xF0, 0x9F, 'h'}), "\uFFFDh");
  // Unknown and unassigned ids give U+FFFD.
  EXPECT_EQ(t->Decode(std::vector<TokenId>{'a', 99999, 299, -4, 'b'}), "a\uFFFD\uFFFD\uFFFDb");
  EXPECT_EQ(t->TokenBytes(99999), "\uFFFD");
  const std::vector<TokenId> ids = {'h', 300, 'i', 302};
  EXPECT_EQ(t->Decode(ids), "h<|x|>i<t>");
  EXPECT_EQ(t->Decode(ids, /*skip_special=*/true), "hi<t>");  // <t> is not special
}

TEST(BpeTokenizerTest, StreamingHoldsBackAPartialCharacter) {
  const auto t = Build(TinyJson());
  ASSERT_NE(t, nullptr);
  // 😀 is F0 9F 98 80: four byte tokens here.
  const std::vector<TokenId> ids = Ids(*t, "a😀b");
  ASSERT_THAT(ids, ElementsAre('a', 0xF0, 0x9F, 0x98, 0x80, 'b'));
  StreamingDecoder stream(*t);
  EXPECT_EQ(stream.Push(ids[0]), "a");
  EXPECT_EQ(stream.Push(ids[1]), "");
  EXPECT_EQ(stream.Push(ids[2]), "");
  EXPECT_EQ(stream.Push(ids[3]), "");
  EXPECT_EQ(stream.Push(ids[4]), "😀");
  EXPECT_EQ(stream.Push(ids[5]), "b");
  EXPECT_EQ(stream.Flush(), "");

  // Cut short: Flush gives the partial character as one U+FFFD.
  StreamingDecoder cut(*t);
  EXPECT_EQ(cut.Push(0xF0), "");
  EXPECT_EQ(cut.Push(0x9F), "");
  EXPECT_EQ(cut.Flush(), "\uFFFD");
  // A byte that cannot continue it: the partial character is given up at once.
  StreamingDecoder broken(*t);
  EXPECT_EQ(broken.Push(0xF0), "");
  EXPECT_EQ(broken.Push('x'), "\uFFFDx");

  StreamingDecoder skipping(*t, /*skip_special=*/true);
  EXPECT_EQ(skipping.Push(300), "");
  EXPECT_EQ(skipping.Push('o'), "o");
  StreamingDecoder keeping(*t);
  EXPECT_EQ(keeping.Push(300), "<|x|>");
}

TEST(BpeTokenizerTest, InvalidUtf8InputIsRefused) {
  const auto t = Build(TinyJson());
  ASSERT_NE(t, nullptr);
  const absl::StatusOr<std::vector<TokenId>> ids = t->Encode("ab\xFF");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ids.status().message(), HasSubstr("not valid UTF-8 at byte 2"));
}

TEST(BpeTokenizerTest, MissingByteTokensUseUnkOrFail) {
  nlohmann::json j = TinyJson();
  j["model"]["vocab"].erase("Ġ");  // the space byte has no token now
  j["model"]["merges"] = nlohmann::json::array();
  const auto no_unk = Build(j);
  ASSERT_NE(no_unk, nullptr);
  const absl::StatusOr<std::vector<TokenId>> failed = no_unk->Encode("a b");
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr("byte 0x20 has no token"));

  j["model"]["vocab"]["<unk>"] = 500;
  j["model"]["unk_token"] = "<unk>";
  const auto with_unk = Build(j);
  ASSERT_NE(with_unk, nullptr);
  // Pieces "a", "  ", " b".
  EXPECT_THAT(Ids(*with_unk, "a   b"), ElementsAre('a', 500, 500, 500, 'b'));
  j["model"]["fuse_unk"] = true;
  const auto fused = Build(j);
  ASSERT_NE(fused, nullptr);
  EXPECT_THAT(Ids(*fused, "a   b"), ElementsAre('a', 500, 500, 'b'));
}

TEST(BpeTokenizerTest, Gpt2StyleByteLevelRegex) {
  nlohmann::json j = TinyJson();
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  const auto t = Build(j);
  ASSERT_NE(t, nullptr);
  auto* bpe = dynamic_cast<BpeTokenizer*>(t.get());
  ASSERT_NE(bpe, nullptr);
  EXPECT_THAT(bpe->PreTokenize("ab 12's").value(), ElementsAre("ab", " 12", "'s"));
  EXPECT_THAT(Ids(*t, "x ab"), ElementsAre('x', 261));
}

}  // namespace
}  // namespace deepsearch
