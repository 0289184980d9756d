// The Qwen2 architecture's hyperparameters, read from and written to a Hugging Face
// config.json (transformers' configuration_qwen2.py), plus the project's built-in presets.
//
// Both field forms are accepted: the classic one (`rope_theta`, `rope_scaling: null`,
// `torch_dtype`, `use_sliding_window`) and transformers >= 5's (`rope_parameters:
// {rope_theta, rope_type: "default"}`, `layer_types`, `dtype`). Supported: full causal
// attention with NeoX-style RoPE ("default" rope type), GQA, q/k/v biases, SwiGLU, tied or
// untied embeddings. Refused with an error naming the field: sliding-window attention,
// any rope scaling (yarn, linear, dynamic, ...), activations other than silu, other
// architectures. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace deepsearch {

struct Qwen2Config {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless the file says otherwise
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 32768;
  bool tie_word_embeddings = false;
  // The storage dtype named by the file: "float32", "bfloat16" or "float16".
  std::string dtype = "float32";
  int64_t bos_token_id = -1;           // -1: none given
  std::vector<int64_t> eos_token_ids;  // config.json's eos_token_id (int or list)
  double initializer_range = 0.02;

  int64_t num_kv_groups() const { return num_attention_heads / num_key_value_heads; }
  // Parameters in the checkpoint (lm_head counted only when untied).
  int64_t NumParameters() const;

  // Parses config.json text. `source` names the file in errors.
  static absl::StatusOr<Qwen2Config> FromJson(std::string_view json, std::string_view source);
  // The classic form, readable by transformers 4.x and 5.x.
  std::string ToJson() const;
  // Checks internal consistency (positive sizes, heads divisible by KV heads, even head_dim).
  absl::Status Validate() const;
  // OK when `other` computes the same function shapes: every field that shapes a tensor or the
  // forward pass (sizes, heads, norm epsilon, RoPE base, tying) is equal. The storage dtype,
  // token ids and initializer do not count. The error names the first field that differs.
  absl::Status CheckSameArchitecture(const Qwen2Config& other) const;

  // Built-in presets for models trained from scratch here. `vocab_size` comes from the
  // tokenizer. "tiny": 2 layers, d=128, ~0.4M parameters; "small": 4 layers, d=384, ~6M.
  static absl::StatusOr<Qwen2Config> Preset(std::string_view name, int64_t vocab_size);
};

}  // namespace deepsearch
