// A model's weights as a WeightSet and back: exact round trips in f32, bf16 rounding, deltas
// between two exports, and the architecture and tensor-name checks.
#include "common/model/weight_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/core/rng.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

// The "tiny" preset (hidden 128, 2 layers, 4 query / 2 KV heads), with a vocabulary of 67.
Qwen2Config TinyConfig(bool tied) {
  Qwen2Config c = Qwen2Config::Preset("tiny", 67).value();
  c.tie_word_embeddings = tied;
  return c;
}

std::unique_ptr<Qwen2Model> MakeModel(const Qwen2Config& config, uint64_t seed,
                                      at::ScalarType dtype = at::kFloat) {
  absl::StatusOr<std::unique_ptr<Qwen2Model>> model = Qwen2Model::Create(config, {dtype, at::kCPU});
  EXPECT_TRUE(model.ok()) << model.status();
  (*model)->InitializeRandom(seed);
  // Biases and norms away from their 0 / 1 initial values, so every tensor carries information.
  c10::NoGradGuard no_grad;
  for (auto& [name, t] : (*model)->NamedParameters()) {
    if (name.find("norm") != std::string::npos || name.find("bias") != std::string::npos)
      t.add_(at::randn(t.sizes(), at::TensorOptions().dtype(t.scalar_type())) * 0.3);
  }
  return std::move(*model);
}

at::Tensor Logits(const Qwen2Model& model) {
  const at::Tensor ids =
      at::arange(0, 24, at::kLong).remainder(model.config().vocab_size).view({2, 12});
  return model.Forward(ids, at::full({2}, 12, at::kLong));
}

WeightSet Export(const Qwen2Model& model, int64_t version, Dtype dtype) {
  absl::StatusOr<WeightSet> set = ExportWeights(model, version, dtype);
  EXPECT_TRUE(set.ok()) << set.status();
  return *std::move(set);
}

std::unique_ptr<Qwen2Model> Import(const WeightSet& set, at::ScalarType dtype = at::kFloat) {
  absl::StatusOr<std::unique_ptr<Qwen2Model>> model = ImportWeights(set, {dtype, at::kCPU});
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

// `set` without the tensor `drop`, and with `reshape` (if named) given shape [1].
WeightSet Edited(const WeightSet& set, const std::string& drop, const std::string& reshape = "") {
  WeightSet out;
  out.version = set.version;
  out.model_config_json = set.model_config_json;
  for (const WeightTensor& t : set.tensors) {
    if (t.name == drop) continue;
    if (t.name == reshape) {
      EXPECT_TRUE(out.Add(t.name, t.dtype, {1}, set.Bytes(t).substr(0, DtypeSize(t.dtype))).ok());
    } else {
      EXPECT_TRUE(out.Add(t.name, t.dtype, t.shape, set.Bytes(t)).ok());
    }
  }
  return out;
}

TEST(WeightExportTest, Float32RoundTripGivesIdenticalLogits) {
  for (const bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    at::manual_seed(1);
    const std::unique_ptr<Qwen2Model> model = MakeModel(TinyConfig(tied), 11);
    const WeightSet set = Export(*model, 3, Dtype::kF32);
    EXPECT_EQ(set.version, 3);
    ASSERT_TRUE(set.Validate().ok());
    std::vector<std::string> names;
    for (const WeightTensor& t : set.tensors) {
      names.push_back(t.name);
      EXPECT_EQ(t.dtype, Dtype::kF32) << t.name;
    }
    EXPECT_EQ(names, model->ParameterNames());
    EXPECT_EQ(set.Find("lm_head.weight") != nullptr, !tied);
    EXPECT_EQ(set.payload.size(), static_cast<size_t>(TinyConfig(tied).NumParameters()) * 4);
    absl::StatusOr<Qwen2Config> config = Qwen2Config::FromJson(set.model_config_json, "set");
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->dtype, "float32");
    EXPECT_EQ(config->hidden_size, 128);

    const std::unique_ptr<Qwen2Model> copy = Import(set);
    ASSERT_NE(copy, nullptr);
    EXPECT_EQ(copy->config().tie_word_embeddings, tied);
    EXPECT_TRUE(at::equal(Logits(*copy), Logits(*model)));
  }
}

TEST(WeightExportTest, Bfloat16RoundTripEqualsTheRoundedWeights) {
  at::manual_seed(2);
  const std::unique_ptr<Qwen2Model> model = MakeModel(TinyConfig(false), 12);
  const WeightSet set = Export(*model, 4, Dtype::kBF16);
  EXPECT_EQ(set.payload.size(), static_cast<size_t>(TinyConfig(false).NumParameters()) * 2);
  for (const WeightTensor& t : set.tensors) EXPECT_EQ(t.dtype, Dtype::kBF16) << t.name;
  EXPECT_EQ(Qwen2Config::FromJson(set.model_config_json, "set")->dtype, "bfloat16");

  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const std::unique_ptr<Qwen2Model> copy = Import(set, dtype);
    ASSERT_NE(copy, nullptr);
    const auto original = model->NamedParameters();
    const auto imported = copy->NamedParameters();
    ASSERT_EQ(original.size(), imported.size());
    for (size_t i = 0; i < original.size(); ++i) {
      const at::Tensor rounded = original[i].second.to(at::kBFloat16).to(dtype);
      EXPECT_EQ(imported[i].second.scalar_type(), dtype);
      EXPECT_TRUE(at::equal(imported[i].second, rounded)) << original[i].first;
    }
  }
  // Rounding happened: the bf16 copy is not the f32 model.
  EXPECT_FALSE(
      at::equal(Import(set)->NamedParameters()[0].second, model->NamedParameters()[0].second));
}

TEST(WeightExportTest, DeltaBetweenExportsRoundTrips) {
  at::manual_seed(3);
  const std::unique_ptr<Qwen2Model> model = MakeModel(TinyConfig(true), 13);
  const WeightSet before = Export(*model, 1, Dtype::kBF16);
  {
    // A small optimizer step: every weight moves by a relative 1e-2, random sign.
    c10::NoGradGuard no_grad;
    for (at::Tensor& p : model->Parameters()) {
      p.mul_(1.0 +
             1e-2 * (at::randint(0, 2, p.sizes(), at::TensorOptions().dtype(p.scalar_type())) * 2 -
                     1));
    }
  }
  const WeightSet after = Export(*model, 2, Dtype::kBF16);
  ASSERT_NE(before.payload, after.payload);
  absl::StatusOr<EncodedWeights> delta = EncodeDelta(after, before);
  ASSERT_TRUE(delta.ok()) << delta.status();
  EXPECT_LT(delta->data.size(), after.payload.size());
  absl::StatusOr<WeightSet> decoded = DecodeWeights(*std::move(delta), &before);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->payload == after.payload);
  const std::unique_ptr<Qwen2Model> copy = Import(*decoded, at::kBFloat16);
  ASSERT_NE(copy, nullptr);
  const auto original = model->NamedParameters();
  const auto imported = copy->NamedParameters();
  for (size_t i = 0; i < original.size(); ++i) {
    EXPECT_TRUE(at::equal(imported[i].second, original[i].second.to(at::kBFloat16)))
        << original[i].first;
  }
}

TEST(WeightExportTest, CheckSameArchitectureNamesTheField) {
  const std::unique_ptr<Qwen2Model> model = MakeModel(TinyConfig(true), 14);
  const WeightSet set = Export(*model, 5, Dtype::kF32);
  EXPECT_TRUE(CheckSameArchitecture(set, TinyConfig(true)).ok());
  Qwen2Config other = TinyConfig(true);
  other.dtype = "bfloat16";  // the storage dtype does not count
  other.initializer_range = 0.5;
  EXPECT_TRUE(CheckSameArchitecture(set, other).ok());
  other.rope_theta = 5.0;  // shapes no tensor, but changes the function
  EXPECT_THAT(CheckSameArchitecture(set, other).message(), HasSubstr("rope_theta"));

  other = TinyConfig(true);
  other.hidden_size = 64;
  absl::Status s = CheckSameArchitecture(set, other);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      s.message(),
      HasSubstr(
          "weight set version 5 vs the model: different architecture: hidden_size 128 vs 64"));

  other = TinyConfig(true);
  other.num_key_value_heads = 3;
  EXPECT_THAT(CheckSameArchitecture(set, other).message(), HasSubstr("num_key_value_heads 2 vs 3"));
  EXPECT_THAT(CheckSameArchitecture(set, TinyConfig(false)).message(),
              HasSubstr("tie_word_embeddings 1 vs 0"));

  WeightSet broken = set;
  broken.model_config_json = "{";
  EXPECT_EQ(CheckSameArchitecture(broken, TinyConfig(true)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(WeightExportTest, ImportNamesMissingUnexpectedAndMisshapenTensors) {
  const std::unique_ptr<Qwen2Model> model = MakeModel(TinyConfig(true), 15);
  const WeightSet set = Export(*model, 6, Dtype::kF32);

  absl::StatusOr<std::unique_ptr<Qwen2Model>> imported =
      ImportWeights(Edited(set, "model.layers.1.mlp.up_proj.weight"), {});
  EXPECT_EQ(imported.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(imported.status().message(),
              HasSubstr("1 missing tensor: model.layers.1.mlp.up_proj.weight"));

  WeightSet extra = set;
  ASSERT_TRUE(extra.Add("lm_head.bias", Dtype::kF32, {1}, std::string(4, '\0')).ok());
  imported = ImportWeights(extra, {});
  EXPECT_THAT(imported.status().message(), HasSubstr("1 unexpected tensor: lm_head.bias"));

  imported = ImportWeights(Edited(set, "", "model.norm.weight"), {});
  EXPECT_THAT(imported.status().message(), HasSubstr("model.norm.weight: expected [128], got [1]"));

  WeightSet ints = Edited(set, "model.norm.weight");
  ASSERT_TRUE(ints.Add("model.norm.weight", Dtype::kI32, {128}, std::string(512, '\0')).ok());
  imported = ImportWeights(ints, {});
  EXPECT_THAT(imported.status().message(),
              HasSubstr("tensor model.norm.weight: dtype I32 is not a floating-point weight type"));

  WeightSet bad_config = set;
  bad_config.model_config_json = R"({"model_type": "llama"})";
  imported = ImportWeights(bad_config, {});
  EXPECT_EQ(imported.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(imported.status().message(), HasSubstr("weight set version 6 config"));
}

TEST(WeightExportTest, ExportRefusesANonFloatDtype) {
  const std::unique_ptr<Qwen2Model> model = MakeModel(TinyConfig(true), 16);
  absl::StatusOr<WeightSet> set = ExportWeights(*model, 1, Dtype::kI8);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), HasSubstr("cannot export weights as I8"));
}

}  // namespace
}  // namespace deepsearch
