// Weight files (common/weights/weight_file.h): the manifest-order layout is a valid
// safetensors file whose data section is the payload, read back as a view of the mapping;
// the earlier layout (the reference writer's order, one payload checksum) still reads; every
// byte is checked; a version or manifest other than expected is DataLoss naming it.
#include "common/weights/weight_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

#include "common/core/hash.h"
#include "common/weights/safetensors.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

// Three tensors whose names sort differently from their manifest order, in two dtypes.
WeightSet Sample(int64_t version) {
  WeightSet set;
  set.version = version;
  set.model_config_json = R"({"hidden_size": 8})";
  std::vector<float> a(24), c(6);
  std::vector<uint16_t> b(40);
  for (size_t i = 0; i < a.size(); ++i) a[i] = 0.25f * static_cast<float>(i) + version;
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint16_t>(0x3f00 + i + version);
  for (size_t i = 0; i < c.size(); ++i) c[i] = -static_cast<float>(i);
  auto bytes = [](const auto& v) {
    return std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(v[0]));
  };
  EXPECT_TRUE(set.Add("z.weight", Dtype::kF32, {4, 6}, bytes(a)).ok());
  EXPECT_TRUE(set.Add("a.weight", Dtype::kBF16, {40}, bytes(b)).ok());
  EXPECT_TRUE(set.Add("m.bias", Dtype::kF32, {6}, bytes(c)).ok());
  return set;
}

class WeightFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(absl::StrCat(::testing::TempDir(), "/weight_file_", ::getpid()))
               .lexically_normal()
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(WeightFileTest, TheFileIsSafetensorsInManifestOrderAndReadsBackAsAView) {
  const WeightSet set = Sample(7);
  const std::string path = dir_ + "/w.safetensors";
  ASSERT_TRUE(WriteWeightFile(set, path, /*sync=*/true).ok());
  // Any safetensors reader sees the tensors, laid out in manifest order.
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 3u);
  EXPECT_EQ((*file)->tensors()[0].name, "z.weight");
  EXPECT_EQ((*file)->tensors()[1].name, "a.weight");
  EXPECT_EQ((*file)->tensors()[2].name, "m.bias");
  EXPECT_EQ((*file)->metadata().at("deepsearch.weight_version"), "7");
  EXPECT_EQ((*file)->metadata().at("deepsearch.tensor_xxh3"),
            absl::StrCat("[\"", HashHex64(set.tensors[0].checksum), "\",\"",
                         HashHex64(set.tensors[1].checksum), "\",\"",
                         HashHex64(set.tensors[2].checksum), "\"]"));
  auto read = ReadWeightFile(path, {.version = 7, .manifest = &set.tensors});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->version, 7);
  EXPECT_EQ(read->model_config_json, set.model_config_json);
  EXPECT_EQ(read->tensors, set.tensors);
  EXPECT_TRUE(read->data() == set.data());
  EXPECT_NE(read->mapping, nullptr);
  EXPECT_TRUE(read->payload.empty());  // a view, not a copy
  EXPECT_EQ(read->Bytes(read->tensors[1]), set.Bytes(set.tensors[1]));
  EXPECT_FALSE(read->Add("more", Dtype::kF32, {1}, std::string(4, '\0')).ok());
  // A full encoding of a mapped set copies the bytes.
  const EncodedWeights full = EncodeFull(*read);
  EXPECT_TRUE(full.data == set.data());
  EXPECT_EQ(full.data_checksum, Hash64(set.data()));
}

TEST_F(WeightFileTest, TheEarlierLayoutIsStillReadIntoMemory) {
  // As the store wrote versions before the manifest-order layout: the reference writer's
  // order (dtype, then name) and one checksum over the manifest-order payload.
  const WeightSet set = Sample(3);
  std::vector<TensorToWrite> tensors;
  for (const WeightTensor& t : set.tensors) {
    const std::string_view bytes = set.Bytes(t);
    tensors.push_back(
        {t.name, t.dtype, t.shape,
         absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())});
  }
  const std::string path = dir_ + "/old.safetensors";
  std::map<std::string, std::string> metadata = {
      {"deepsearch.weight_version", "3"},
      {"deepsearch.model_config", set.model_config_json},
      {"deepsearch.tensor_order", R"(["z.weight","a.weight","m.bias"])"},
      {"deepsearch.payload_xxh3", HashHex64(Hash64(set.data()))},
  };
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());
  auto read = ReadWeightFile(path, {.version = 3});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->tensors, set.tensors);
  EXPECT_TRUE(read->data() == set.data());
  EXPECT_EQ(read->mapping, nullptr);  // assembled: the file's order is not the manifest's
  // Its one checksum still guards every byte.
  metadata["deepsearch.payload_xxh3"] = HashHex64(Hash64(set.data()) + 1);
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());
  read = ReadWeightFile(path, {});
  EXPECT_TRUE(absl::IsDataLoss(read.status())) << read.status();
  EXPECT_THAT(read.status().message(), HasSubstr("payload checksum"));
}

TEST_F(WeightFileTest, WhatDoesNotMatchIsDataLossNamingIt) {
  const WeightSet set = Sample(5);
  const std::string path = dir_ + "/w.safetensors";
  ASSERT_TRUE(WriteWeightFile(set, path, /*sync=*/false).ok());
  auto other = ReadWeightFile(path, {.version = 6});
  EXPECT_TRUE(absl::IsDataLoss(other.status()));
  EXPECT_THAT(other.status().message(), HasSubstr("holds version 5, expected 6"));
  std::vector<WeightTensor> manifest = set.tensors;
  manifest[2].checksum ^= 1;
  other = ReadWeightFile(path, {.manifest = &manifest});
  EXPECT_TRUE(absl::IsDataLoss(other.status()));
  EXPECT_THAT(other.status().message(), HasSubstr("tensor 2 is 'm.bias' F32[6]"));
  manifest.pop_back();
  other = ReadWeightFile(path, {.manifest = &manifest});
  EXPECT_THAT(other.status().message(), HasSubstr("beyond the 2 expected"));
  // One byte of the second tensor flipped.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-(24 + 10), std::ios::end);
    f.put('\x55');
  }
  other = ReadWeightFile(path, {});
  EXPECT_TRUE(absl::IsDataLoss(other.status()));
  EXPECT_THAT(other.status().message(), HasSubstr("tensor 'a.weight' has checksum"));
  // Not a weight file at all; no file.
  ASSERT_TRUE(WriteSafetensors(dir_ + "/plain.safetensors", {}, {}).ok());
  other = ReadWeightFile(dir_ + "/plain.safetensors", {});
  EXPECT_THAT(other.status().message(), HasSubstr("not a weight file"));
  EXPECT_TRUE(absl::IsNotFound(ReadWeightFile(dir_ + "/absent", {}).status()));
}

TEST_F(WeightFileTest, DecodingAFileReferenceMapsAndChecksIt) {
  const WeightSet set = Sample(9);
  EncodedWeights reference = FileReference(set, dir_ + "/w.safetensors");
  ASSERT_TRUE(WriteWeightFile(set, reference.file_path, /*sync=*/false).ok());
  auto decoded = DecodeWeights(reference, nullptr);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->data() == set.data());
  EXPECT_EQ(decoded->tensors, set.tensors);
  reference.model_config_json = "{}";
  EXPECT_THAT(DecodeWeights(reference, nullptr).status().message(),
              HasSubstr("records another model config"));
  reference.file_path.clear();
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeWeights(reference, nullptr).status()));
}

}  // namespace
}  // namespace deepsearch
