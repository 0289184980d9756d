// Checkpoint directories: the sharded fixture, broken indexes, the sharded writer round trip,
// stale files of another layout, and the loader's name check.
#include "common/weights/checkpoint_files.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "tests/weights/safetensors_testing.h"

namespace deepsearch {
namespace {

using ::deepsearch::testing_safetensors::Bytes;
using ::deepsearch::testing_safetensors::DataPath;
using ::deepsearch::testing_safetensors::LittleEndian;
using ::deepsearch::testing_safetensors::ReadFile;
using ::deepsearch::testing_safetensors::Span;
using ::deepsearch::testing_safetensors::TempDir;
using ::deepsearch::testing_safetensors::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CheckpointFilesTest, OpensTheShardedFixture) {
  absl::StatusOr<std::unique_ptr<CheckpointFiles>> checkpoint =
      CheckpointFiles::Open(DataPath("sharded"));
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_TRUE((*checkpoint)->sharded());
  EXPECT_EQ((*checkpoint)->files().size(), 2u);
  EXPECT_THAT((*checkpoint)->names(), ElementsAre("a", "b", "c"));
  EXPECT_EQ((*checkpoint)->total_bytes(), 15u);
  const SafetensorsFile::TensorView* a = (*checkpoint)->Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, Dtype::kF32);
  EXPECT_EQ(Bytes(*a), LittleEndian<float>({1, 2}));
  const SafetensorsFile::TensorView* b = (*checkpoint)->Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(Bytes(*b), (std::vector<uint8_t>{7, 8, 9}));
  const SafetensorsFile::TensorView* c = (*checkpoint)->Find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->dtype, Dtype::kI32);
  EXPECT_EQ(Bytes(*c), LittleEndian<int32_t>({-5}));
  EXPECT_EQ((*checkpoint)->Find("d"), nullptr);
  for (const auto& file : (*checkpoint)->files()) {
    EXPECT_EQ(file->metadata().at("format"), "pt");
  }
}

TEST(CheckpointFilesTest, RefusesBrokenIndexes) {
  const std::string s1 = "model-00001-of-00002.safetensors";
  struct Case {
    std::string dir;
    absl::StatusCode code;
    std::string message;  // after "<dir>/model.safetensors.index.json: "
  } cases[] = {
      {"index_missing_shard", absl::StatusCode::kNotFound,
       "shard model-00002-of-00002.safetensors: cannot open "},
      {"index_missing_tensor", absl::StatusCode::kInvalidArgument,
       "weight_map lists 1 tensor that the shard named for it does not hold: 'z' in " + s1},
      {"index_unlisted_tensor", absl::StatusCode::kInvalidArgument,
       "the shards hold 1 tensor that weight_map does not list for them: 'b' in " + s1 +
           ", not listed"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dir);
    const std::string dir = DataPath(c.dir);
    const absl::Status status = CheckpointFiles::Open(dir).status();
    EXPECT_EQ(status.code(), c.code);
    EXPECT_THAT(
        std::string(status.message()),
        ::testing::StartsWith(absl::StrCat(dir, "/", kSafetensorsIndexFile, ": ", c.message)));
  }
}

TEST(CheckpointFilesTest, RefusesMalformedIndexText) {
  TempDir dir;
  const std::vector<uint8_t> one = {1};
  ASSERT_TRUE(
      WriteSafetensors(dir.File("s.safetensors"), {{"t", Dtype::kU8, {1}, Span(one)}}).ok());
  const std::string index = dir.File(kSafetensorsIndexFile);
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {"{\"weight_map\": ", "the index is not valid JSON: "},
      {"[]", "the index is an array, expected a JSON object"},
      {"{\"metadata\": {}}", "the index has no \"weight_map\""},
      {"{\"weight_map\": []}", "weight_map is an array, not an object"},
      {"{\"weight_map\": {\"t\": 1}}", "weight_map entry 't' is an integer, not a shard file name"},
      {"{\"weight_map\": {\"t\": \"../s.safetensors\"}}",
       "weight_map entry 't' names '../s.safetensors', which is not a file name inside the "
       "directory"},
      {"{\"weight_map\": {\"t\": \"s.safetensors\", \"t\": \"s.safetensors\"}}",
       "key 't' appears twice in the index entry 'weight_map'"},
      {"{\"weight_map\": {\"t\": \"s.safetensors\", \"u\": \"s.safetensors\"}}",
       "weight_map lists 1 tensor that the shard named for it does not hold: 'u' in "
       "s.safetensors"},
  };
  for (const Case& c : cases) {
    WriteFile(index, c.text);
    const absl::Status status = CheckpointFiles::Open(dir.path()).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(status.message()),
                ::testing::StartsWith(absl::StrCat(index, ": ", c.message)));
  }
  WriteFile(index,
            "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {\"t\": \"s.safetensors\"}}");
  absl::StatusOr<std::unique_ptr<CheckpointFiles>> checkpoint = CheckpointFiles::Open(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_THAT((*checkpoint)->names(), ElementsAre("t"));
}

TEST(CheckpointFilesTest, NeitherFileIsNotFound) {
  TempDir dir;
  const absl::Status status = CheckpointFiles::Open(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(),
            dir.path() +
                ": no checkpoint: neither model.safetensors nor model.safetensors.index.json "
                "exists there");
}

// Seven tensors of 100 bytes each, in layer order.
struct Layers {
  std::vector<std::vector<uint8_t>> storage;
  std::vector<TensorToWrite> tensors;
  Layers() {
    storage.reserve(7);
    for (int i = 0; i < 7; ++i) {
      std::vector<uint8_t>& bytes = storage.emplace_back(100);
      for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = static_cast<uint8_t>(k + 13 * i);
      tensors.push_back({absl::StrCat("layers.", i, ".weight"), Dtype::kF32, {5, 5}, Span(bytes)});
    }
  }
};

TEST(WriteShardedSafetensorsTest, RoundTripsThroughShards) {
  TempDir dir;
  Layers layers;
  // 250 bytes a shard: [0, 1], [2, 3], [4, 5], [6].
  ASSERT_TRUE(WriteShardedSafetensors(dir.path(), layers.tensors, 250, {{"format", "pt"}}).ok());
  EXPECT_THAT(dir.List(),
              ElementsAre("model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                          "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
                          "model.safetensors.index.json"));
  const std::string index = ReadFile(dir.File(kSafetensorsIndexFile));
  EXPECT_THAT(index, HasSubstr("\"total_size\": 700"));
  EXPECT_THAT(index, HasSubstr("\"layers.5.weight\": \"model-00003-of-00004.safetensors\""));

  absl::StatusOr<std::unique_ptr<CheckpointFiles>> checkpoint = CheckpointFiles::Open(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_TRUE((*checkpoint)->sharded());
  EXPECT_EQ((*checkpoint)->files().size(), 4u);
  EXPECT_EQ((*checkpoint)->total_bytes(), 700u);
  ASSERT_EQ((*checkpoint)->names().size(), 7u);
  for (const TensorToWrite& want : layers.tensors) {
    const SafetensorsFile::TensorView* got = (*checkpoint)->Find(want.name);
    ASSERT_NE(got, nullptr) << want.name;
    EXPECT_EQ(got->dtype, Dtype::kF32);
    EXPECT_THAT(got->shape, ElementsAre(5, 5));
    EXPECT_EQ(Bytes(*got), std::vector<uint8_t>(want.data.begin(), want.data.end()));
  }
  for (const auto& file : (*checkpoint)->files()) {
    EXPECT_EQ(file->metadata().at("format"), "pt");
  }
  EXPECT_EQ((*checkpoint)->files()[3]->tensors().size(), 1u);
}

TEST(WriteShardedSafetensorsTest, OneShardIsASingleFile) {
  TempDir dir;
  Layers layers;
  ASSERT_TRUE(WriteShardedSafetensors(dir.path(), layers.tensors, 700).ok());
  EXPECT_THAT(dir.List(), ElementsAre("model.safetensors"));
  absl::StatusOr<std::unique_ptr<CheckpointFiles>> checkpoint = CheckpointFiles::Open(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_FALSE((*checkpoint)->sharded());
  EXPECT_EQ((*checkpoint)->names().size(), 7u);
  EXPECT_EQ((*checkpoint)->total_bytes(), 700u);
}

TEST(WriteShardedSafetensorsTest, ALargeTensorGetsAShardOfItsOwn) {
  TempDir dir;
  const std::vector<uint8_t> small(10), large(1000);
  ASSERT_TRUE(WriteShardedSafetensors(dir.path(),
                                      {{"s1", Dtype::kU8, {10}, Span(small)},
                                       {"big", Dtype::kU8, {1000}, Span(large)},
                                       {"s2", Dtype::kU8, {10}, Span(small)},
                                       {"s3", Dtype::kU8, {10}, Span(small)}},
                                      100)
                  .ok());
  absl::StatusOr<std::unique_ptr<CheckpointFiles>> checkpoint = CheckpointFiles::Open(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const auto& files = (*checkpoint)->files();
  ASSERT_EQ(files.size(), 3u);
  EXPECT_NE(files[0]->Find("s1"), nullptr);
  EXPECT_EQ(files[1]->tensors().size(), 1u);
  EXPECT_NE(files[1]->Find("big"), nullptr);
  EXPECT_NE(files[2]->Find("s2"), nullptr);
  EXPECT_NE(files[2]->Find("s3"), nullptr);
}

TEST(WriteShardedSafetensorsTest, RewritingLeavesOnlyTheNewLayout) {
  TempDir dir;
  Layers layers;
  ASSERT_TRUE(WriteShardedSafetensors(dir.path(), layers.tensors, 250).ok());
  // Sharded -> 2 shards: the four old shards go.
  ASSERT_TRUE(WriteShardedSafetensors(dir.path(), layers.tensors, 400).ok());
  EXPECT_THAT(dir.List(),
              ElementsAre("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                          "model.safetensors.index.json"));
  // Sharded -> single file: the index, which would win on opening, goes too.
  ASSERT_TRUE(WriteShardedSafetensors(dir.path(), layers.tensors, 1 << 20).ok());
  EXPECT_THAT(dir.List(), ElementsAre("model.safetensors"));
  // Single file -> sharded. Unrelated files stay.
  WriteFile(dir.File("config.json"), "{}");
  ASSERT_TRUE(WriteShardedSafetensors(dir.path(), layers.tensors, 400).ok());
  EXPECT_THAT(dir.List(),
              ElementsAre("config.json", "model-00001-of-00002.safetensors",
                          "model-00002-of-00002.safetensors", "model.safetensors.index.json"));
  absl::StatusOr<std::unique_ptr<CheckpointFiles>> checkpoint = CheckpointFiles::Open(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ((*checkpoint)->names().size(), 7u);
}

TEST(WriteShardedSafetensorsTest, ValidatesEverythingBeforeWriting) {
  TempDir dir;
  Layers layers;
  std::vector<TensorToWrite> tensors = layers.tensors;
  tensors.push_back(tensors[0]);  // the same name again, in what would be the last shard
  absl::Status status = WriteShardedSafetensors(dir.path(), tensors, 250);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), dir.path() + ": tensor 'layers.0.weight': the name is given twice");
  EXPECT_TRUE(dir.List().empty());

  status = WriteShardedSafetensors(dir.path(), layers.tensors, 0);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), dir.path() + ": max_shard_bytes must be positive, got 0");
}

TEST(WriteShardedSafetensorsTest, CreatesTheDirectory) {
  TempDir dir;
  const std::string nested = dir.File("a/b");
  const std::vector<uint8_t> one = {1};
  ASSERT_TRUE(WriteShardedSafetensors(nested, {{"t", Dtype::kU8, {1}, Span(one)}}, 8).ok());
  EXPECT_TRUE(CheckpointFiles::Open(nested).ok());
}

TEST(CheckTensorNamesTest, ListsEveryMissingAndUnexpectedName) {
  EXPECT_TRUE(CheckTensorNames({"a", "b"}, {"b", "a"}).ok());
  EXPECT_TRUE(CheckTensorNames({}, {}).ok());

  absl::Status status = CheckTensorNames(
      {"model.norm.weight", "model.embed_tokens.weight", "model.layers.3.mlp.up_proj.weight"},
      {"lm_head.bias", "model.embed_tokens.weight", "lm_head.bias"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "checkpoint: 2 missing tensors: model.layers.3.mlp.up_proj.weight, "
            "model.norm.weight; 1 unexpected tensor: lm_head.bias");

  status = CheckTensorNames({"x", "y"}, {"y"});
  EXPECT_EQ(status.message(), "checkpoint: 1 missing tensor: x");
  status = CheckTensorNames({"y"}, {"y", "z", "w"});
  EXPECT_EQ(status.message(), "checkpoint: 2 unexpected tensors: w, z");
}

}  // namespace
}  // namespace deepsearch
