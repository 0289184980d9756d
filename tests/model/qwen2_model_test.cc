// The Qwen2 model: parity with a naive second implementation written straight from the
// reference formulas, KV-cached decoding against full recomputation, batched against
// one-by-one, forks, slot compaction, padding, and the low-precision dtypes.
#include "common/model/qwen2_model.h"

#include <cmath>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "common/core/rng.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

Qwen2Config SmallConfig(bool tied) {
  Qwen2Config c;
  c.vocab_size = 67;  // odd on purpose
  c.hidden_size = 48;
  c.intermediate_size = 80;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;  // GQA, 3 query heads per KV head
  c.head_dim = 8;
  c.rope_theta = 1000.0;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = tied;
  c.max_position_embeddings = 512;
  c.initializer_range = 0.2;  // large weights: differences show
  return c;
}

std::unique_ptr<Qwen2Model> MakeModel(const Qwen2Config& c, uint64_t seed,
                                      at::ScalarType dtype = at::kFloat) {
  auto model = Qwen2Model::Create(c, {dtype, at::kCPU});
  EXPECT_TRUE(model.ok()) << model.status();
  (*model)->InitializeRandom(seed);
  // Non-trivial norms and biases, so every term of the formulas matters.
  c10::NoGradGuard no_grad;
  Rng rng(seed + 1);
  for (auto& [name, t] : (*model)->NamedParameters()) {
    if (name.find("norm") != std::string::npos || name.find("bias") != std::string::npos) {
      std::vector<float> v(static_cast<size_t>(t.numel()));
      for (float& x : v) x = static_cast<float>(1.0 + 0.3 * rng.Normal());
      t.copy_(at::from_blob(v.data(), t.sizes(), at::kFloat));
    }
  }
  return std::move(*model);
}

at::Tensor Ids(const std::vector<int32_t>& tokens) {
  std::vector<int64_t> v(tokens.begin(), tokens.end());
  return at::from_blob(v.data(), {1, static_cast<int64_t>(v.size())}, at::kLong).clone();
}

// The last-position logits of a full forward over `tokens`.
at::Tensor FullLastLogits(const Qwen2Model& model, const std::vector<int32_t>& tokens) {
  at::Tensor logits =
      model.Forward(Ids(tokens), at::full({1}, static_cast<int64_t>(tokens.size()), at::kLong));
  return logits[0][static_cast<int64_t>(tokens.size()) - 1];
}

double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>();
}

// A naive Qwen2 forward for one unpadded sequence, written independently of the model code
// from transformers' modeling_qwen2.py: per-head loops, repeat_kv by head index, rotate_half,
// an explicit causal mask, fp32 softmax.
at::Tensor NaiveForward(const Qwen2Model& model, const std::vector<int32_t>& tokens) {
  const Qwen2Config& c = model.config();
  std::map<std::string, at::Tensor> w;
  for (auto& [name, t] : model.NamedParameters()) w[name] = t.to(at::kFloat);
  if (c.tie_word_embeddings) w["lm_head.weight"] = w["model.embed_tokens.weight"];
  const int64_t t_len = static_cast<int64_t>(tokens.size()), d = c.head_dim;
  auto rms = [&](const at::Tensor& x, const at::Tensor& weight) {
    return weight * (x / at::sqrt(x.pow(2).mean({-1}, true) + c.rms_norm_eps));
  };
  std::vector<double> inv_freq;
  for (int64_t j = 0; j < d / 2; ++j) {
    inv_freq.push_back(1.0 /
                       std::pow(static_cast<float>(c.rope_theta), static_cast<float>(2 * j) / d));
  }
  auto rope = [&](const at::Tensor& x /* [T, D] */) {
    at::Tensor out = at::empty_like(x);
    for (int64_t p = 0; p < t_len; ++p) {
      for (int64_t j = 0; j < d; ++j) {
        const double angle =
            static_cast<float>(p) * static_cast<float>(inv_freq[static_cast<size_t>(j % (d / 2))]);
        const double rotated =
            j < d / 2 ? -x[p][j + d / 2].item<double>() : x[p][j - d / 2].item<double>();
        out[p][j] = x[p][j].item<double>() * std::cos(angle) + rotated * std::sin(angle);
      }
    }
    return out;
  };
  at::Tensor x = w["model.embed_tokens.weight"].index_select(0, Ids(tokens)[0]);  // [T, H]
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    auto p = [&](const std::string& rest) {
      return w[absl::StrCat("model.layers.", l, ".", rest)];
    };
    const at::Tensor h = rms(x, p("input_layernorm.weight"));
    const at::Tensor q =
        at::matmul(h, p("self_attn.q_proj.weight").t()) + p("self_attn.q_proj.bias");
    const at::Tensor k =
        at::matmul(h, p("self_attn.k_proj.weight").t()) + p("self_attn.k_proj.bias");
    const at::Tensor v =
        at::matmul(h, p("self_attn.v_proj.weight").t()) + p("self_attn.v_proj.bias");
    std::vector<at::Tensor> heads;
    for (int64_t head = 0; head < c.num_attention_heads; ++head) {
      const int64_t kv_head = head / (c.num_attention_heads / c.num_key_value_heads);
      const at::Tensor qh = rope(q.narrow(1, head * d, d));
      const at::Tensor kh = rope(k.narrow(1, kv_head * d, d));
      const at::Tensor vh = v.narrow(1, kv_head * d, d);
      at::Tensor scores = at::matmul(qh, kh.t()) / std::sqrt(static_cast<double>(d));
      for (int64_t i = 0; i < t_len; ++i) {
        for (int64_t j = i + 1; j < t_len; ++j) scores[i][j] = -INFINITY;
      }
      heads.push_back(at::matmul(at::softmax(scores, -1), vh));
    }
    x = x + at::matmul(at::cat(heads, 1), p("self_attn.o_proj.weight").t());
    const at::Tensor h2 = rms(x, p("post_attention_layernorm.weight"));
    const at::Tensor gate = at::matmul(h2, p("mlp.gate_proj.weight").t());
    const at::Tensor up = at::matmul(h2, p("mlp.up_proj.weight").t());
    x = x + at::matmul(gate * at::sigmoid(gate) * up, p("mlp.down_proj.weight").t());
  }
  return at::matmul(rms(x, w["model.norm.weight"]), w["lm_head.weight"].t());  // [T, V]
}

const std::vector<int32_t> kPrompt = {3, 17, 42, 5, 66, 0, 9};

TEST(Qwen2ModelTest, MatchesNaiveReferenceImplementation) {
  for (bool tied : {false, true}) {
    auto model = MakeModel(SmallConfig(tied), 7);
    const at::Tensor ours = model->Forward(Ids(kPrompt), at::full({1}, 7, at::kLong))[0];
    const at::Tensor naive = NaiveForward(*model, kPrompt);
    EXPECT_LE(MaxAbsDiff(ours, naive), 1e-4) << "tied=" << tied;
    EXPECT_GT(ours.abs().max().item<double>(), 0.5);  // not a degenerate model
  }
}

TEST(Qwen2ModelTest, CachedDecodingEqualsFullRecomputation) {
  for (bool tied : {false, true}) {
    auto model = MakeModel(SmallConfig(tied), 11);
    KvCache cache = model->NewCache(1);  // one block, so the pool has to grow mid-run
    const KvCache::SequenceId seq = cache.Create();
    std::vector<int32_t> tokens(kPrompt.begin(), kPrompt.begin() + 4);
    // Prefill 4, then a 3-token chunk on top of the cached prefix, then 12 single tokens.
    auto logits = model->Step(cache, std::vector<StepInput>{{seq, tokens}});
    ASSERT_TRUE(logits.ok()) << logits.status();
    EXPECT_LE(MaxAbsDiff((*logits)[0], FullLastLogits(*model, tokens)), 1e-5);
    const std::vector<int32_t> chunk(kPrompt.begin() + 4, kPrompt.end());
    logits = model->Step(cache, std::vector<StepInput>{{seq, chunk}});
    ASSERT_TRUE(logits.ok());
    tokens.insert(tokens.end(), chunk.begin(), chunk.end());
    EXPECT_LE(MaxAbsDiff((*logits)[0], FullLastLogits(*model, tokens)), 1e-5);
    for (int i = 0; i < 12; ++i) {
      const int32_t next = static_cast<int32_t>((*logits)[0].argmax().item<int64_t>());
      tokens.push_back(next);
      logits = model->Step(
          cache, std::vector<StepInput>{{seq, absl::Span<const int32_t>(&tokens.back(), 1)}});
      ASSERT_TRUE(logits.ok());
      EXPECT_LE(MaxAbsDiff((*logits)[0], FullLastLogits(*model, tokens)), 1e-5) << "step " << i;
    }
    EXPECT_EQ(cache.Length(seq), static_cast<int64_t>(tokens.size()));
  }
}

TEST(Qwen2ModelTest, BatchedEqualsOneByOne) {
  auto model = MakeModel(SmallConfig(false), 13);
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 2, 3}, {60, 61, 62, 63, 64, 65, 66, 10, 11}, {7}};
  // One by one.
  std::vector<std::vector<at::Tensor>> alone(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    KvCache cache = model->NewCache();
    const KvCache::SequenceId seq = cache.Create();
    auto logits = model->Step(cache, std::vector<StepInput>{{seq, prompts[i]}});
    ASSERT_TRUE(logits.ok());
    alone[i].push_back((*logits)[0]);
    for (int32_t step = 0; step < 6; ++step) {
      const int32_t token = (step * 7 + static_cast<int32_t>(i)) % 67;
      logits =
          model->Step(cache, std::vector<StepInput>{{seq, absl::Span<const int32_t>(&token, 1)}});
      ASSERT_TRUE(logits.ok());
      alone[i].push_back((*logits)[0]);
    }
  }
  // Together: one prefill of all three (padded), then decode steps over the batch.
  KvCache cache = model->NewCache();
  std::vector<KvCache::SequenceId> seqs;
  std::vector<StepInput> prefill;
  for (const auto& p : prompts) {
    seqs.push_back(cache.Create());
    prefill.push_back({seqs.back(), p});
  }
  auto logits = model->Step(cache, prefill);
  ASSERT_TRUE(logits.ok());
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_LE(MaxAbsDiff((*logits)[static_cast<int64_t>(i)], alone[i][0]), 1e-5);
  for (int32_t step = 0; step < 6; ++step) {
    std::vector<int32_t> tokens(prompts.size());
    std::vector<StepInput> decode;
    for (size_t i = 0; i < prompts.size(); ++i)
      tokens[i] = (step * 7 + static_cast<int32_t>(i)) % 67;
    // Inputs in reverse order: the model sorts by slot and un-permutes the result.
    for (size_t i = prompts.size(); i-- > 0;)
      decode.push_back({seqs[i], absl::Span<const int32_t>(&tokens[i], 1)});
    logits = model->Step(cache, decode);
    ASSERT_TRUE(logits.ok());
    for (size_t i = 0; i < prompts.size(); ++i) {
      const int64_t row = static_cast<int64_t>(prompts.size() - 1 - i);
      EXPECT_LE(MaxAbsDiff((*logits)[row], alone[i][static_cast<size_t>(step + 1)]), 1e-5)
          << "seq " << i;
    }
  }
}

TEST(Qwen2ModelTest, ForkedSequencesShareThePrefixAndDiverge) {
  auto model = MakeModel(SmallConfig(true), 17);
  KvCache cache = model->NewCache(2);
  const KvCache::SequenceId parent = cache.Create(/*weight_version=*/3);
  ASSERT_TRUE(model->Step(cache, std::vector<StepInput>{{parent, kPrompt}}).ok());
  const KvCache::SequenceId a = cache.Fork(parent), b = cache.Fork(parent);
  EXPECT_EQ(cache.Length(a), 7);
  EXPECT_EQ(cache.WeightVersion(b), 3);
  const int32_t ta = 20, tb = 30, tp = 40;
  auto logits =
      model->Step(cache, std::vector<StepInput>{{a, absl::Span<const int32_t>(&ta, 1)},
                                                {b, absl::Span<const int32_t>(&tb, 1)},
                                                {parent, absl::Span<const int32_t>(&tp, 1)}});
  ASSERT_TRUE(logits.ok());
  auto with = [](int32_t t) {
    std::vector<int32_t> v = kPrompt;
    v.push_back(t);
    return v;
  };
  EXPECT_LE(MaxAbsDiff((*logits)[0], FullLastLogits(*model, with(ta))), 1e-5);
  EXPECT_LE(MaxAbsDiff((*logits)[1], FullLastLogits(*model, with(tb))), 1e-5);
  EXPECT_LE(MaxAbsDiff((*logits)[2], FullLastLogits(*model, with(tp))), 1e-5);

  // Releasing a sequence leaves the others (and the blocks they share) intact.
  cache.Release(a);
  EXPECT_EQ(cache.num_sequences(), 2);
  const int32_t tb2 = 31;
  logits = model->Step(cache, std::vector<StepInput>{{b, absl::Span<const int32_t>(&tb2, 1)}});
  ASSERT_TRUE(logits.ok());
  std::vector<int32_t> b_tokens = with(tb);
  b_tokens.push_back(tb2);
  EXPECT_LE(MaxAbsDiff((*logits)[0], FullLastLogits(*model, b_tokens)), 1e-5);
  EXPECT_GE(cache.BytesAllocated(), cache.BytesInUse());
}

// The fused CPU path (tiled-key caches) against ATen's dense path (token-major caches) on the
// same fp32 model: prefill with a cached prefix, padded batches, forks and compaction.
TEST(Qwen2ModelTest, CpuKernelPathMatchesDensePath) {
  auto model = MakeModel(SmallConfig(false), 29);
  ASSERT_TRUE(model->UsesCpuKernels());
  const Qwen2Config& c = model->config();
  KvCache tiled(c, at::kFloat, at::kCPU, KvLayout::kTiledKeys, 1);
  KvCache dense(c, at::kFloat, at::kCPU, KvLayout::kTokenMajor, 1);
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}, {20}, {30, 31}};
  auto run = [&](KvCache& cache) {
    std::vector<at::Tensor> out;
    std::vector<KvCache::SequenceId> seqs;
    std::vector<StepInput> prefill;
    for (const auto& p : prompts) {
      seqs.push_back(cache.Create());
      prefill.push_back({seqs.back(), p});
    }
    out.push_back(*model->Step(cache, prefill));
    seqs.push_back(cache.Fork(seqs[0]));
    cache.Release(seqs[1]);
    const std::vector<int32_t> more = {40, 41, 42};
    const int32_t one = 50;
    out.push_back(
        *model->Step(cache, std::vector<StepInput>{{seqs[0], more},
                                                   {seqs[3], absl::Span<const int32_t>(&one, 1)},
                                                   {seqs[2], absl::Span<const int32_t>(&one, 1)}}));
    for (int i = 0; i < 20; ++i) {  // past several key tiles
      const int32_t t = 3 + i;
      out.push_back(
          *model->Step(cache, std::vector<StepInput>{{seqs[3], absl::Span<const int32_t>(&t, 1)},
                                                     {seqs[0], absl::Span<const int32_t>(&t, 1)}}));
    }
    return out;
  };
  const std::vector<at::Tensor> a = run(tiled), b = run(dense);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_LE(MaxAbsDiff(a[i], b[i]), 1e-5) << "call " << i;
}

TEST(Qwen2ModelTest, StepSeesWeightChangesMadeThroughViews) {
  // The fused path packs weights for its GEMM; a write through a parameter view (as a
  // checkpoint load or an optimizer does) must repack them.
  auto model = MakeModel(SmallConfig(true), 31);
  KvCache cache = model->NewCache();
  const KvCache::SequenceId seq = cache.Create();
  ASSERT_TRUE(model->Step(cache, std::vector<StepInput>{{seq, kPrompt}}).ok());
  {
    c10::NoGradGuard no_grad;
    for (auto& [name, t] : model->NamedParameters()) {
      if (name == "model.layers.1.mlp.up_proj.weight" ||
          name == "model.layers.0.self_attn.k_proj.bias")
        t.mul_(-2.0);
    }
  }
  cache.Release(seq);
  const KvCache::SequenceId again = cache.Create();
  auto logits = model->Step(cache, std::vector<StepInput>{{again, kPrompt}});
  ASSERT_TRUE(logits.ok());
  EXPECT_LE(MaxAbsDiff((*logits)[0], FullLastLogits(*model, kPrompt)), 1e-5);
}

TEST(Qwen2ModelTest, RightPaddedRowsMatchUnpaddedOnes) {
  auto model = MakeModel(SmallConfig(false), 19);
  const std::vector<int32_t> short_seq = {4, 8, 15};
  at::Tensor ids = at::zeros({2, 7}, at::kLong);
  ids[0].copy_(Ids(kPrompt)[0]);
  for (int64_t i = 0; i < 3; ++i) ids[1][i] = short_seq[static_cast<size_t>(i)];
  const at::Tensor lengths = at::tensor(std::vector<int64_t>{7, 3}, at::kLong);
  const at::Tensor batched = model->Forward(ids, lengths);
  const at::Tensor single = model->Forward(Ids(short_seq), at::full({1}, 3, at::kLong));
  EXPECT_LE(MaxAbsDiff(batched[1].narrow(0, 0, 3), single[0]), 1e-5);
  EXPECT_FALSE(batched.isnan().any().item<bool>());
}

TEST(Qwen2ModelTest, LowPrecisionTracksFloat32) {
  auto reference = MakeModel(SmallConfig(false), 23);
  const at::Tensor expected = FullLastLogits(*reference, kPrompt);
  for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    auto created = Qwen2Model::Create(SmallConfig(false), {dtype, at::kCPU});
    if (!created.ok()) {
      // LibTorch 1.13 has no float16 GEMM on CPU: refused up front, with a clear message.
      EXPECT_EQ(dtype, at::kHalf) << created.status();
      EXPECT_THAT(std::string(created.status().message()),
                  HasSubstr("cannot multiply Half matrices on cpu"));
      continue;
    }
    auto model = std::move(*created);
    ASSERT_TRUE(model
                    ->LoadTensors([&](const std::string& name) {
                      for (auto& [n, t] : reference->NamedParameters()) {
                        if (n == name) return t;
                      }
                      return at::Tensor();
                    })
                    .ok());
    const at::Tensor full = FullLastLogits(*model, kPrompt);
    KvCache cache = model->NewCache();
    auto cached = model->Step(cache, std::vector<StepInput>{{cache.Create(), kPrompt}});
    ASSERT_TRUE(cached.ok());
    const double scale = expected.abs().max().item<double>();
    EXPECT_LE(MaxAbsDiff(full, expected), 0.1 * scale) << c10::toString(dtype);
    EXPECT_LE(MaxAbsDiff((*cached)[0], full), 0.05 * scale) << c10::toString(dtype);
  }
}

TEST(Qwen2ModelTest, NamesAndParameterCounts) {
  auto untied = MakeModel(SmallConfig(false), 1);
  auto tied = MakeModel(SmallConfig(true), 1);
  EXPECT_EQ(untied->NamedParameters().size(), 1 + 2 * 12 + 1 + 1u);
  EXPECT_EQ(tied->NamedParameters().back().first, "model.norm.weight");
  int64_t total = 0;
  for (auto& [name, t] : untied->NamedParameters()) total += t.numel();
  EXPECT_EQ(total, SmallConfig(false).NumParameters());
  EXPECT_THAT(untied->ParameterNames(),
              ::testing::Contains("model.layers.1.self_attn.k_proj.bias"));
}

TEST(Qwen2ModelTest, LoadTensorsNamesEveryMissingAndMisshapenTensor) {
  auto model = MakeModel(SmallConfig(false), 1);
  absl::Status s = model->LoadTensors([&](const std::string& name) {
    if (name == "model.norm.weight" || name == "lm_head.weight") return at::Tensor();
    if (name == "model.layers.0.mlp.up_proj.weight") return at::zeros({3, 3});
    for (auto& [n, t] : model->NamedParameters()) {
      if (n == name) return at::zeros_like(t);
    }
    return at::Tensor();  // no base-model ("norm.weight") names either
  });
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("2 missing tensor(s): model.norm.weight, lm_head.weight"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("; 1 tensor(s) with the wrong shape: model.layers.0.mlp.up_proj.weight: "
                        "expected [80, 48], got [3, 3]"));
  // Base-model checkpoints name tensors without the "model." prefix.
  auto base = MakeModel(SmallConfig(false), 2);
  ASSERT_TRUE(model
                  ->LoadTensors([&](const std::string& name) {
                    for (auto& [n, t] : base->NamedParameters()) {
                      if (n == "model." + name || (n == name && n == "lm_head.weight")) return t;
                    }
                    return at::Tensor();
                  })
                  .ok());
  EXPECT_TRUE(model->NamedParameters()[0].second.equal(base->NamedParameters()[0].second));
}

TEST(Qwen2ModelTest, StepRejectsBadInput) {
  auto model = MakeModel(SmallConfig(false), 1);
  KvCache cache = model->NewCache();
  const KvCache::SequenceId seq = cache.Create();
  const std::vector<int32_t> bad = {1, 67};
  EXPECT_THAT(
      std::string(model->Step(cache, std::vector<StepInput>{{seq, bad}}).status().message()),
      HasSubstr("token id 67 out of range [0, 67)"));
  EXPECT_THAT(
      std::string(
          model->Step(cache, std::vector<StepInput>{{seq + 100, kPrompt}}).status().message()),
      HasSubstr("unknown KV sequence"));
  EXPECT_THAT(std::string(model->Step(cache, std::vector<StepInput>{{seq, {}}}).status().message()),
              HasSubstr("no tokens"));
  std::vector<int32_t> long_prompt(600, 1);
  EXPECT_THAT(
      std::string(
          model->Step(cache, std::vector<StepInput>{{seq, long_prompt}}).status().message()),
      HasSubstr("exceeds max_position_embeddings 512"));
  EXPECT_EQ(cache.Length(seq), 0);  // failed steps leave the cache as it was
}

}  // namespace
}  // namespace deepsearch
