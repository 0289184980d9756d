// Weight sets for the cache service's tests.
#pragma once

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "common/core/rng.h"
#include "common/weights/weight_set.h"

namespace deepsearch {

// A two-tensor set (bf16 and f32); versions after the first change a tenth of the values.
inline WeightSet MakeSet(int64_t version, int n = 4096) {
  Rng rng(42);
  std::string bf16(static_cast<size_t>(n) * 2, '\0'), f32(static_cast<size_t>(n) * 4, '\0');
  for (char& c : bf16) c = static_cast<char>(rng.Next());
  for (char& c : f32) c = static_cast<char>(rng.Next());
  Rng change(static_cast<uint64_t>(version));
  for (int64_t v = 1; v < version; ++v) {
    for (int i = 0; i < n / 10; ++i) {
      bf16[change.Next() % bf16.size()] ^= 1;
      f32[change.Next() % f32.size()] ^= 1;
    }
  }
  WeightSet set;
  set.version = version;
  set.model_config_json = R"({"model_type": "qwen2"})";
  EXPECT_TRUE(set.Add("model.embed_tokens.weight", Dtype::kBF16, {n / 64, 64}, bf16).ok());
  EXPECT_TRUE(set.Add("model.norm.weight", Dtype::kF32, {n}, f32).ok());
  return set;
}

inline void ExpectSameSet(const WeightSet& a, const WeightSet& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.model_config_json, b.model_config_json);
  EXPECT_EQ(a.tensors, b.tensors);
  EXPECT_TRUE(a.data() == b.data());
}

}  // namespace deepsearch
