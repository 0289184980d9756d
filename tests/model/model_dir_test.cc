// Model directories: config.json in both field forms and the refusals, save -> load bit-exact,
// sharded and base-model layouts, tied/untied, dtype conversion, and clear errors.
#include "common/model/model_dir.h"

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/core/rng.h"
#include "common/tokenizer/char_tokenizer.h"
#include "common/weights/checkpoint_files.h"

namespace deepsearch {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// config.json of DeepSeek-R1-Distill-Qwen-1.5B (classic field form), as published.
constexpr char kDistillConfig[] = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
  "intermediate_size": 8960, "max_position_embeddings": 131072, "max_window_layers": 21,
  "model_type": "qwen2", "num_attention_heads": 12, "num_hidden_layers": 28,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 10000, "sliding_window": 4096,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.44.0",
  "use_cache": true, "use_mrope": false, "use_sliding_window": false, "vocab_size": 151936})";

// The same shape in transformers >= 5's field form.
constexpr char kNewFormConfig[] = R"({
  "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "dtype": "bfloat16",
  "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
  "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
  "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
  "layer_types": ["full_attention", "full_attention"], "sliding_window": null,
  "tie_word_embeddings": true, "eos_token_id": [151645, 151643], "rms_norm_eps": 1e-06})";

TEST(Qwen2ConfigTest, ParsesTheClassicForm) {
  absl::StatusOr<Qwen2Config> c = Qwen2Config::FromJson(kDistillConfig, "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 1536);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->num_kv_groups(), 6);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->dtype, "bfloat16");
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>{151643});
  // 1.78 B parameters untied (MODELS_AND_TASKS §3.1).
  EXPECT_NEAR(static_cast<double>(c->NumParameters()), 1.777e9, 0.002e9);
}

TEST(Qwen2ConfigTest, ParsesTheNewForm) {
  absl::StatusOr<Qwen2Config> c = Qwen2Config::FromJson(kNewFormConfig, "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->rope_theta, 1000000.0);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  // 494 M parameters tied (Qwen2.5-0.5B).
  EXPECT_NEAR(static_cast<double>(c->NumParameters()), 494e6, 1e6);
  // ToJson -> FromJson gives the same config.
  absl::StatusOr<Qwen2Config> back = Qwen2Config::FromJson(c->ToJson(), "roundtrip");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), c->ToJson());
}

TEST(Qwen2ConfigTest, RefusesWhatIsNotSupported) {
  auto error = [](std::string json) {
    return std::string(Qwen2Config::FromJson(json, "c.json").status().message());
  };
  std::string base = kDistillConfig;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  EXPECT_THAT(
      error(with("\"use_sliding_window\": false", "\"use_sliding_window\": true")),
      HasSubstr("field 'use_sliding_window' is true: sliding-window attention is not supported"));
  EXPECT_THAT(error(with("\"use_mrope\": false",
                         "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}")),
              HasSubstr("field 'rope_scaling' is {\"factor\":4.0,\"type\":\"yarn\"}: rope scaling "
                        "is not supported"));
  EXPECT_THAT(error(with("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"")),
              HasSubstr("field 'hidden_act' must be \"silu\""));
  EXPECT_THAT(error(with("\"model_type\": \"qwen2\"", "\"model_type\": \"llama\"")),
              HasSubstr("field 'model_type' must be \"qwen2\", got \"llama\""));
  EXPECT_THAT(error(with("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 5")),
              HasSubstr("num_attention_heads (12) is not a multiple of num_key_value_heads (5)"));
  EXPECT_THAT(error(with("\"hidden_size\": 1536,", "")),
              HasSubstr("c.json: field 'hidden_size' is missing"));
  EXPECT_THAT(error(with("\"torch_dtype\": \"bfloat16\"", "\"torch_dtype\": \"int8\"")),
              HasSubstr("field 'torch_dtype' is \"int8\""));
  std::string sliding_layers = kNewFormConfig;
  sliding_layers.replace(sliding_layers.find("[\"full_attention\", \"full_attention\"]"), 36,
                         "[\"full_attention\", \"sliding_attention\"]");
  EXPECT_THAT(error(sliding_layers), HasSubstr("field 'layer_types' has \"sliding_attention\""));
  std::string yarn = kNewFormConfig;
  yarn.replace(yarn.find("\"default\""), 9, "\"yarn\"");
  EXPECT_THAT(error(yarn), HasSubstr("has rope_type \"yarn\": only \"default\" is supported"));
  EXPECT_THAT(error("[1]"), HasSubstr("expected a JSON object"));
}

class ModelDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("model_dir_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(ModelDirTest, InitThenLoadIsBitExact) {
  for (const char* preset : {"tiny", "small"}) {
    const std::string dir = (root_ / preset).string();
    ASSERT_TRUE(InitModelDirectory(preset, dir, /*seed=*/3, /*overwrite=*/false).ok());
    for (const char* file :
         {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"}) {
      EXPECT_TRUE(fs::exists(fs::path(dir) / file)) << file;
    }
    absl::StatusOr<LoadedModel> loaded = LoadModelDirectory(dir, {});
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->config.vocab_size, 128);
    EXPECT_EQ(loaded->tokenizer->vocab_size(), 100);
    EXPECT_EQ(loaded->generation.eos_token_ids, std::vector<int32_t>{3});
    // The same seed gives the same weights, bit for bit, after a save and a load.
    auto fresh = *Qwen2Model::Create(loaded->config, {});
    fresh->InitializeRandom(3);
    const auto a = fresh->NamedParameters(), b = loaded->model->NamedParameters();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;
  }
  const int64_t tiny = LoadModelDirectory((root_ / "tiny").string(), {})->config.NumParameters();
  const int64_t small = LoadModelDirectory((root_ / "small").string(), {})->config.NumParameters();
  EXPECT_NEAR(tiny, 0.4e6, 0.05e6);
  EXPECT_NEAR(small, 6.3e6, 0.2e6);
  // An existing directory is not overwritten by accident.
  EXPECT_EQ(InitModelDirectory("tiny", (root_ / "tiny").string(), 3, false).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(InitModelDirectory("tiny", (root_ / "tiny").string(), 4, true).ok());
}

TEST_F(ModelDirTest, SaveLoadRoundTripsUntiedBf16AndSharded) {
  Qwen2Config c = *Qwen2Config::Preset("tiny", 128);
  c.tie_word_embeddings = false;
  c.dtype = "bfloat16";
  auto model = *Qwen2Model::Create(c, {});
  model->InitializeRandom(9);
  const std::string tokenizer = *DefaultTaskTokenizerJson();
  const std::string dir = (root_ / "untied").string();
  ASSERT_TRUE(SaveModelDirectory(dir, *model, tokenizer, {}).ok());
  // Loaded as bf16 and as fp32: both equal the fp32 weights rounded to bf16.
  for (at::ScalarType dtype : {at::kBFloat16, at::kFloat}) {
    absl::StatusOr<LoadedModel> loaded = LoadModelDirectory(dir, {dtype, at::kCPU});
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    const auto a = model->NamedParameters(), b = loaded->model->NamedParameters();
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(b.back().first, "lm_head.weight");
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(a[i].second.to(at::kBFloat16).to(at::kFloat).equal(b[i].second.to(at::kFloat)))
          << a[i].first;
    }
  }
  // Re-shard the same tensors into several files: loads the same.
  auto files = *CheckpointFiles::Open(dir);
  std::vector<TensorToWrite> tensors;
  for (const std::string& name : files->names()) {
    const auto* v = files->Find(name);
    tensors.push_back({name, v->dtype, v->shape, absl::Span<const uint8_t>(v->data, v->size)});
  }
  const std::string sharded = (root_ / "sharded").string();
  fs::create_directories(sharded);
  for (const char* f : {"config.json", "tokenizer.json", "generation_config.json"}) {
    fs::copy_file(fs::path(dir) / f, fs::path(sharded) / f);
  }
  ASSERT_TRUE(
      WriteShardedSafetensors(sharded, tensors, /*max_shard_bytes=*/64 << 10, {{"format", "pt"}})
          .ok());
  EXPECT_TRUE(fs::exists(fs::path(sharded) / "model.safetensors.index.json"));
  absl::StatusOr<LoadedModel> loaded = LoadModelDirectory(sharded, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->model->NamedParameters()[5].second.equal(
      LoadModelDirectory(dir, {})->model->NamedParameters()[5].second));
}

TEST_F(ModelDirTest, BaseModelLayoutLoads) {
  // A Qwen2Model checkpoint (no "model." prefix, no lm_head) loads into a tied model.
  const std::string dir = (root_ / "tiny").string();
  ASSERT_TRUE(InitModelDirectory("tiny", dir, 5, false).ok());
  auto files = *CheckpointFiles::Open(dir);
  std::vector<TensorToWrite> tensors;
  for (const std::string& name : files->names()) {
    const auto* v = files->Find(name);
    tensors.push_back(
        {name.substr(6), v->dtype, v->shape, absl::Span<const uint8_t>(v->data, v->size)});
  }
  const std::string base = (root_ / "base").string();
  fs::create_directories(base);
  for (const char* f : {"config.json", "tokenizer.json", "generation_config.json"}) {
    fs::copy_file(fs::path(dir) / f, fs::path(base) / f);
  }
  ASSERT_TRUE(WriteSafetensors((fs::path(base) / "model.safetensors").string(), tensors).ok());
  files.reset();
  absl::StatusOr<LoadedModel> loaded = LoadModelDirectory(base, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->model->NamedParameters()[0].second.equal(
      LoadModelDirectory(dir, {})->model->NamedParameters()[0].second));
}

TEST_F(ModelDirTest, ErrorsNameTheProblem) {
  EXPECT_THAT(std::string(LoadModelDirectory((root_ / "none").string(), {}).status().message()),
              HasSubstr("does not exist"));
  const std::string dir = (root_ / "tiny").string();
  ASSERT_TRUE(InitModelDirectory("tiny", dir, 5, false).ok());
  // A checkpoint missing one tensor and holding an extra one.
  auto files = *CheckpointFiles::Open(dir);
  std::vector<TensorToWrite> tensors;
  std::vector<float> extra(4, 0.0f);
  for (const std::string& name : files->names()) {
    if (name == "model.norm.weight") continue;
    const auto* v = files->Find(name);
    tensors.push_back({name, v->dtype, v->shape, absl::Span<const uint8_t>(v->data, v->size)});
  }
  tensors.push_back(
      {"lm_head.bias",
       Dtype::kF32,
       {4},
       absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(extra.data()), 16)});
  const std::string broken = (root_ / "broken").string();
  fs::create_directories(broken);
  for (const char* f : {"config.json", "tokenizer.json"})
    fs::copy_file(fs::path(dir) / f, fs::path(broken) / f);
  ASSERT_TRUE(WriteSafetensors((fs::path(broken) / "model.safetensors").string(), tensors).ok());
  files.reset();
  const std::string message(LoadModelDirectory(broken, {}).status().message());
  EXPECT_THAT(message, HasSubstr("1 missing tensor: model.norm.weight"));
  EXPECT_THAT(message, HasSubstr("1 unexpected tensor: lm_head.bias"));
  // A config the tokenizer does not fit.
  std::ofstream(fs::path(broken) / "config.json")
      << R"({"model_type": "qwen2", "vocab_size": 50, "hidden_size": 128,
    "intermediate_size": 384, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2})";
  EXPECT_THAT(std::string(LoadModelDirectory(broken, {}).status().message()),
              HasSubstr("the tokenizer has 100 tokens but the model only 50"));
}

// Random bytes where a model's tensors should be load as NaN and Inf values: refused, with
// the tensors named, instead of a model that generates "-nan" log-probabilities.
TEST_F(ModelDirTest, WeightsHoldingNaNOrInfAreRefused) {
  const std::string dir = (root_ / "tiny").string();
  ASSERT_TRUE(InitModelDirectory("tiny", dir, 5, false).ok());
  auto files = *CheckpointFiles::Open(dir);
  std::vector<std::vector<uint8_t>> data;
  std::vector<TensorToWrite> tensors;
  Rng rng(9);
  for (const std::string& name : files->names()) {
    const auto* v = files->Find(name);
    std::vector<uint8_t> bytes(v->data, v->data + v->size);
    if (name == "model.embed_tokens.weight") {  // thousands of values: some decode as NaN/Inf
      for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng.UniformInt(0, 255));
    }
    data.push_back(std::move(bytes));
    tensors.push_back({name, v->dtype, v->shape, absl::Span<const uint8_t>(data.back())});
  }
  const std::string broken = (root_ / "random_bytes").string();
  fs::create_directories(broken);
  for (const char* f : {"config.json", "tokenizer.json"})
    fs::copy_file(fs::path(dir) / f, fs::path(broken) / f);
  files.reset();
  ASSERT_TRUE(WriteSafetensors((fs::path(broken) / "model.safetensors").string(), tensors).ok());
  const absl::Status status = LoadModelDirectory(broken, {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("1 tensor(s) hold NaN or Inf values: model.embed_tokens.weight"));
  EXPECT_THAT(std::string(status.message()), HasSubstr(broken));
}

}  // namespace
}  // namespace deepsearch
