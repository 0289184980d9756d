// The Qwen2 decoder-only transformer (Qwen2ForCausalLM), written on ATen, for inference with
// a KV cache and for training with autograd.
//
// Reference: transformers' modeling_qwen2.py, followed operation by operation:
//   x = embed_tokens[ids]
//   per layer:  h = RMSNorm(x);  q,k,v = h Wq^T + bq, h Wk^T + bk, h Wv^T + bv
//               q,k = RoPE(q,k)  (NeoX "rotate_half" layout, inv_freq = 1/theta^(2j/D) in fp32)
//               a = softmax_fp32(q k^T / sqrt(D) + causal mask) v   (GQA: head h uses KV head
//               h/n_rep) x = x + a Wo^T;  h = RMSNorm(x);  x = x + down(silu(gate(h)) * up(h))
//   logits = RMSNorm(x) lm_head^T   (lm_head is embed_tokens when tied)
// RMSNorm: y = w * (x_fp32 * rsqrt(mean(x_fp32^2) + eps)).to(dtype) — the cast precedes the
// weight multiply, as in the reference, for bit-level parity in bf16/fp16.
//
// Storage: q/k/v and gate/up are fused into one matrix each (one GEMM instead of three or
// two); the Hugging Face tensor names map to views of the fused storage, so loading, saving
// and the optimizer all see the reference layout.
//
// Threading: a model is used by one thread at a time (its engine or its trainer); methods
// that only read weights (Forward, Step) may run concurrently only on different KV caches
// while nothing modifies the weights.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

#include "common/model/gemm_cpu.h"
#include "common/model/kv_cache.h"
#include "common/model/qwen2_config.h"
#include "common/model/torch_pch.h"

namespace deepsearch {

struct ModelOptions {
  at::ScalarType dtype = at::kFloat;  // kFloat, kBFloat16 or kHalf
  at::Device device = at::kCPU;
};

// Parses "float32" / "bfloat16" / "float16" (and "fp32", "bf16", "fp16").
absl::StatusOr<at::ScalarType> ParseModelDtype(std::string_view name);
// Parses "cpu", "cuda", "cuda:1".
absl::StatusOr<at::Device> ParseDevice(std::string_view name);

// One step's input for a sequence of a KV cache: tokens appended to it (a prompt or an
// uncached suffix for prefill, one token while decoding).
struct StepInput {
  KvCache::SequenceId sequence;
  absl::Span<const int32_t> tokens;
};

class Qwen2Model {
 public:
  // A model with zero-filled weights (fill them with InitializeRandom or LoadTensors).
  static absl::StatusOr<std::unique_ptr<Qwen2Model>> Create(const Qwen2Config& config,
                                                            const ModelOptions& options);

  const Qwen2Config& config() const { return config_; }
  const ModelOptions& options() const { return options_; }

  // The reference initialisation: weights ~ N(0, initializer_range), biases 0, norms 1, drawn
  // from the project's own RNG so a seed gives the same model on every platform and device.
  void InitializeRandom(uint64_t seed);

  // Every parameter under its Hugging Face name, in checkpoint order; views of the model's
  // storage (writes go into the model). lm_head.weight is absent when embeddings are tied.
  std::vector<std::pair<std::string, at::Tensor>> NamedParameters() const;
  // The HF names NamedParameters() returns, without the tensors.
  std::vector<std::string> ParameterNames() const;
  // The tensors an optimizer updates (the fused storage; each appears once).
  std::vector<at::Tensor> Parameters() const;

  // Copies tensors into the parameters, converting dtype and device. `lookup` returns the
  // tensor stored under a HF name (either "model.x" or, for base-model checkpoints, "x"), or
  // an undefined tensor. Every parameter must be found with the right shape; the error names
  // each missing name and each shape mismatch.
  absl::Status LoadTensors(const std::function<at::Tensor(const std::string&)>& lookup);

  // Forward over whole sequences without a cache (training, evaluation, parity checks).
  // ids: [B, T] int64, right-padded; lengths: [B] int64, the real length of each row.
  // Returns logits [B, T, vocab_size] as float32, zero at padded positions. Records autograd
  // when grad mode is on. Only attention sees the padding: the rest runs on the real tokens.
  at::Tensor Forward(const at::Tensor& ids, const at::Tensor& lengths) const;

  // Appends each input's tokens to its sequence in `cache` and returns the logits after the
  // last appended token of each input, [inputs.size(), vocab_size] float32, in input order.
  // Prefill (many tokens) and decode (one token) use the same call; keep them in separate
  // calls for speed (the batch is padded to its longest input). No autograd. Errors: unknown
  // or repeated sequence, empty input, token id out of range, context beyond
  // max_position_embeddings, a full cache (RESOURCE_EXHAUSTED); on an error no sequence's
  // length changes.
  absl::StatusOr<at::Tensor> Step(KvCache& cache, absl::Span<const StepInput> inputs) const;

  // A KV cache shaped for this model, in the layout its fastest Step path reads (tiled keys
  // for fp32 on CPU, token-major otherwise). A cache of the other layout also works: Step
  // then runs ATen's dense path. max_blocks 0: the pool grows without bound.
  KvCache NewCache(int64_t initial_blocks = 64, int64_t max_blocks = 0) const;
  // Whether NewCache caches take the fused CPU path (fp32 on CPU).
  bool UsesCpuKernels() const;

 private:
  struct Layer {
    at::Tensor input_norm;      // [H]
    at::Tensor qkv_weight;      // [(nH + 2 nKV) D, H]: q rows, then k, then v
    at::Tensor qkv_bias;        // [(nH + 2 nKV) D]
    at::Tensor o_weight;        // [H, nH D]
    at::Tensor post_norm;       // [H]
    at::Tensor gate_up_weight;  // [2 I, H]: gate rows, then up
    at::Tensor down_weight;     // [H, I]
  };

  struct StepPlan;

  Qwen2Model(const Qwen2Config& config, const ModelOptions& options);
  absl::StatusOr<StepPlan> PlanStep(KvCache& cache, absl::Span<const StepInput> inputs) const;
  // Step's two executors: ATen throughout (any dtype and device), and fused CPU kernels for
  // fp32 on CPU. Both return the logits in slot order.
  at::Tensor StepDense(KvCache& cache, const StepPlan& plan) const;
  at::Tensor StepCpuFp32(KvCache& cache, const StepPlan& plan) const;

  // Weights packed for gemm_cpu, rebuilt whenever a parameter tensor has changed since the
  // last packing (ATen's version counters count every in-place write, through views too).
  struct PackedLayer {
    gemm_cpu::PackedWeight qkv, o, gate_up, down;
  };
  struct Packed {
    std::vector<int64_t> versions;
    std::vector<PackedLayer> layers;
    gemm_cpu::PackedWeight lm_head;
  };
  std::vector<int64_t> ParameterVersions() const;
  // The current packing (repacked first if stale). Thread-safe.
  std::shared_ptr<const Packed> CurrentPacking() const;
  // cos/sin for `positions` (any shape), in the model dtype, shape positions.sizes() + [D].
  std::pair<at::Tensor, at::Tensor> Rotary(const at::Tensor& positions) const;
  // The query/key/value projections with RoPE applied: q [B, S, nH, D], k and v [B, S, nKV, D].
  struct Projected {
    at::Tensor q, k, v;
  };
  Projected Project(const Layer& layer, const at::Tensor& h, const at::Tensor& cos,
                    const at::Tensor& sin) const;
  // softmax_fp32(q k^T / sqrt(D), masked) v over explicit keys/values [B, nKV, T, D], with
  // allowed [B, 1, 1, S, T]; returns [B, S, nH * D] before o_proj.
  at::Tensor AttendDense(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                         const at::Tensor& allowed) const;
  at::Tensor Mlp(const Layer& layer, const at::Tensor& h) const;

  Qwen2Config config_;
  ModelOptions options_;
  at::Tensor embed_;       // [V, H]
  at::Tensor final_norm_;  // [H]
  at::Tensor lm_head_;     // [V, H]; the same tensor as embed_ when tied
  std::vector<Layer> layers_;
  at::Tensor inv_freq_;  // [D/2] float32
  mutable absl::Mutex packed_mu_;
  mutable std::shared_ptr<const Packed> packed_ ABSL_GUARDED_BY(packed_mu_);
};

}  // namespace deepsearch
