// The weight sets the weight benchmarks move around (weights_bench, cache_bench): bf16 in the
// tensor shapes of a Qwen2.5-0.5B checkpoint (vocabulary 151,936, hidden 896, intermediate
// 4,864, 14 query / 2 KV heads of 64, tied embeddings: 988 MB at 24 layers), scaled to a
// size by dropping layers and embedding rows; values ~N(0, 0.02), norms ~1. Two versions:
// the bf16 exports of f32 master weights before and after a simulated optimizer step that
// moves every weight by a relative `step` with a random sign (the bf16 bits change where the
// step crosses a rounding boundary).
//
//   const auto [before, after] = MakeQwenWeightSets(ScaledQwenShapes(256 << 20), 1e-3);
//
// Header-only; torch-free.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "common/core/rng.h"
#include "common/weights/weight_set.h"

namespace deepsearch::bench {

struct QwenShape {
  std::string name;
  std::vector<int64_t> dims;
  bool norm = false;  // values ~1 rather than ~N(0, 0.02)
};

// Qwen2.5-0.5B's tensors with `vocab` rows of embedding and `layers` layers.
inline std::vector<QwenShape> QwenShapes(int64_t vocab, int64_t layers) {
  constexpr int64_t kHidden = 896, kInter = 4864, kQ = 14 * 64, kKv = 2 * 64;
  std::vector<QwenShape> shapes = {{"model.embed_tokens.weight", {vocab, kHidden}}};
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    shapes.push_back({p + "input_layernorm.weight", {kHidden}, true});
    shapes.push_back({p + "self_attn.q_proj.weight", {kQ, kHidden}});
    shapes.push_back({p + "self_attn.q_proj.bias", {kQ}});
    shapes.push_back({p + "self_attn.k_proj.weight", {kKv, kHidden}});
    shapes.push_back({p + "self_attn.k_proj.bias", {kKv}});
    shapes.push_back({p + "self_attn.v_proj.weight", {kKv, kHidden}});
    shapes.push_back({p + "self_attn.v_proj.bias", {kKv}});
    shapes.push_back({p + "self_attn.o_proj.weight", {kHidden, kQ}});
    shapes.push_back({p + "post_attention_layernorm.weight", {kHidden}, true});
    shapes.push_back({p + "mlp.gate_proj.weight", {kInter, kHidden}});
    shapes.push_back({p + "mlp.up_proj.weight", {kInter, kHidden}});
    shapes.push_back({p + "mlp.down_proj.weight", {kHidden, kInter}});
  }
  shapes.push_back({"model.norm.weight", {kHidden}, true});
  return shapes;
}

// Bytes of the shapes in bf16.
inline uint64_t QwenBytes(const std::vector<QwenShape>& shapes) {
  uint64_t total = 0;
  for (const QwenShape& s : shapes) {
    uint64_t n = 2;
    for (const int64_t d : s.dims) n *= static_cast<uint64_t>(d);
    total += n;
  }
  return total;
}

// The 0.5B layout scaled to about `bytes`: as many whole layers as fit in the share layers
// have at full size, the rest embedding rows.
inline std::vector<QwenShape> ScaledQwenShapes(uint64_t bytes) {
  const uint64_t full = QwenBytes(QwenShapes(151936, 24));
  const auto layers = std::max<int64_t>(
      1, static_cast<int64_t>(24.0 * static_cast<double>(bytes) / static_cast<double>(full)));
  const uint64_t rest = bytes - std::min(bytes, QwenBytes(QwenShapes(0, layers)));
  return QwenShapes(std::max<int64_t>(64, static_cast<int64_t>(rest / (896 * 2))), layers);
}

inline uint16_t ToBf16(float value) {  // round to nearest even (finite values)
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

// xorshift64*: the project's Rng is too slow for a billion draws.
struct FastRng {
  uint64_t state;
  uint64_t Next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1DULL;
  }
};

// The bf16 export of f32 master weights before (version 1) and after (version 2) an optimizer
// step. The masters are a bf16 value (drawn from a table of normal draws: a billion normal
// draws are slow) plus random low bits; the step multiplies each by 1 +- `step`, random sign,
// and both sets round the masters to nearest even.
inline std::pair<WeightSet, WeightSet> MakeQwenWeightSets(const std::vector<QwenShape>& shapes,
                                                          double step) {
  const float up = static_cast<float>(1 + step), down = static_cast<float>(1 - step);
  Rng rng(1);
  std::vector<uint16_t> weights(1 << 16), norms(1 << 16);
  for (uint16_t& w : weights) w = ToBf16(static_cast<float>(0.02 * rng.Normal()));
  for (uint16_t& w : norms) w = ToBf16(static_cast<float>(1.0 + 0.1 * rng.Normal()));
  FastRng fast{12345};
  WeightSet before, after;
  before.version = 1;
  after.version = 2;
  before.payload.reserve(QwenBytes(shapes));
  after.payload.reserve(QwenBytes(shapes));
  std::vector<uint16_t> old_values, new_values;
  for (const QwenShape& s : shapes) {
    int64_t n = 1;
    for (const int64_t d : s.dims) n *= d;
    old_values.resize(static_cast<size_t>(n));
    new_values.resize(static_cast<size_t>(n));
    const std::vector<uint16_t>& table = s.norm ? norms : weights;
    for (size_t i = 0; i < old_values.size(); ++i) {
      const uint64_t r = fast.Next();
      const uint32_t bits = static_cast<uint32_t>(table[r & 0xFFFF]) << 16 | ((r >> 16) & 0xFFFF);
      float master;
      std::memcpy(&master, &bits, 4);
      old_values[i] = ToBf16(master);
      new_values[i] = ToBf16(master * ((r >> 32) & 1 ? up : down));
    }
    for (auto [set, values] : {std::pair{&before, &old_values}, std::pair{&after, &new_values}}) {
      const absl::Status added = set->Add(
          s.name, Dtype::kBF16, s.dims,
          std::string_view(reinterpret_cast<const char*>(values->data()), values->size() * 2));
      if (!added.ok()) std::fprintf(stderr, "%s\n", std::string(added.message()).c_str());
    }
  }
  return {std::move(before), std::move(after)};
}

}  // namespace deepsearch::bench
