// Model directories in the Hugging Face layout: config.json, model.safetensors (or shards
// with model.safetensors.index.json), tokenizer.json and generation_config.json.
//
// A real Qwen2-family checkpoint (Qwen2.5, DeepSeek-R1-Distill-Qwen, ...) and a tiny model
// this project trains from scratch load through the same code: the config is parsed and
// checked, every tensor is read from the memory-mapped safetensors files and converted to
// the requested dtype and device, and the tokenizer is built from tokenizer.json.
//
// Saving writes the four files into a temporary directory next to the target, syncs them,
// and renames it into place: a reader never sees a half-written model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/model/qwen2_config.h"
#include "common/model/qwen2_model.h"
#include "common/tokenizer/tokenizer.h"

namespace deepsearch {

// generation_config.json: the ids that end generation and the default sampling settings.
struct GenerationConfig {
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;
  int32_t pad_token_id = -1;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;

  static absl::StatusOr<GenerationConfig> FromJson(std::string_view json, std::string_view source);
  std::string ToJson() const;
};

struct LoadedModel {
  Qwen2Config config;
  GenerationConfig generation;
  std::unique_ptr<Qwen2Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

// Loads a model directory. Errors name the file and, for tensors, every missing, unexpected
// or misshapen tensor. generation_config.json is optional (the EOS ids then come from
// config.json).
absl::StatusOr<LoadedModel> LoadModelDirectory(const std::string& dir, const ModelOptions& options);

// Writes `model` with its tokenizer (tokenizer.json text) and generation settings to `dir`,
// replacing what is there. Tensors are stored in the config's dtype.
absl::Status SaveModelDirectory(const std::string& dir, const Qwen2Model& model,
                                std::string_view tokenizer_json,
                                const GenerationConfig& generation);

// Writes a randomly initialised model of a preset ("tiny", "small") with the default task
// tokenizer to `dir` (which must not exist or be empty, unless `overwrite`).
absl::Status InitModelDirectory(std::string_view preset, const std::string& dir, uint64_t seed,
                                bool overwrite);

}  // namespace deepsearch
