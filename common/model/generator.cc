#include "common/model/generator.h"

#include <algorithm>
#include <cmath>
#include <deque>

#include "absl/strings/str_cat.h"

#include "common/core/logging.h"
#include "common/core/status.h"

namespace deepsearch {

namespace {

// One sample in flight.
struct Live {
  int32_t request = 0;
  int32_t sample = 0;
  KvCache::SequenceId sequence = 0;
  Rng rng{0};
  int64_t logits_row = 0;  // its row of the current logits
  std::optional<StopRule> stop;
};

}  // namespace

Generator::Generator(const Qwen2Model& model, GeneratorOptions options)
    : model_(model), options_(std::move(options)) {
  if (options_.vocab_limit <= 0 || options_.vocab_limit > model_.config().vocab_size) {
    options_.vocab_limit = model_.config().vocab_size;
  }
  options_.max_batch = std::max(options_.max_batch, 1);
}

namespace {

absl::Status ValidateRequests(absl::Span<const GenerationRequest> requests,
                              const GeneratorOptions& options, int64_t vocab_size) {
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest& r = requests[i];
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("request ", i, ": ", what));
    };
    if (r.prompt.empty()) return bad("empty prompt");
    if (r.num_samples < 1)
      return bad(absl::StrCat("num_samples must be >= 1, got ", r.num_samples));
    if (absl::Status s = r.sampling.Validate(); !s.ok()) return bad(s.message());
    if (!r.sampling.stop_strings.empty() && !options.token_bytes)
      return bad("stop strings need a tokenizer");
    for (int32_t t : r.prompt) {
      if (t < 0 || t >= vocab_size) return bad(absl::StrCat("prompt token ", t, " out of range"));
    }
  }
  return absl::OkStatus();
}

// What one Generate call has in flight.
struct Batch {
  Batch(absl::Span<const GenerationRequest> r, KvCache c) : requests(r), cache(std::move(c)) {}
  absl::Span<const GenerationRequest> requests;
  KvCache cache;
  std::deque<int32_t> waiting;
  std::vector<Live> live;
  at::Tensor logits;  // [rows, vocab], rows indexed by Live::logits_row
};

// Admits waiting requests while the batch has room and prefills their prompts in one step;
// their samples fork the prompt's KV and read its logits row, appended after the live rows.
absl::Status Admit(const Qwen2Model& model, const GeneratorOptions& options, Batch& b) {
  std::vector<int32_t> admitted;
  int64_t planned = static_cast<int64_t>(b.live.size());
  auto samples = [&](int32_t r) { return b.requests[static_cast<size_t>(r)].num_samples; };
  while (!b.waiting.empty() &&
         (planned == 0 || planned + samples(b.waiting.front()) <= options.max_batch)) {
    planned += samples(b.waiting.front());
    admitted.push_back(b.waiting.front());
    b.waiting.pop_front();
  }
  if (admitted.empty()) return absl::OkStatus();
  std::vector<StepInput> prefill;
  for (int32_t r : admitted)
    prefill.push_back({b.cache.Create(), b.requests[static_cast<size_t>(r)].prompt});
  DS_ASSIGN_OR_RETURN(at::Tensor prefill_logits, model.Step(b.cache, prefill));
  const int32_t base = b.logits.defined() ? static_cast<int32_t>(b.logits.size(0)) : 0;
  b.logits = b.logits.defined() ? at::cat({b.logits, prefill_logits}) : prefill_logits;
  for (size_t k = 0; k < admitted.size(); ++k) {
    const GenerationRequest& r = b.requests[static_cast<size_t>(admitted[k])];
    const Rng root(r.sampling.seed);
    for (int32_t j = 0; j < r.num_samples; ++j) {
      Live s;
      s.request = admitted[k];
      s.sample = j;
      s.sequence = j == 0 ? prefill[k].sequence : b.cache.Fork(prefill[k].sequence);
      s.rng = root.Fork(static_cast<uint64_t>(j));
      s.logits_row = base + static_cast<int64_t>(k);
      s.stop.emplace(r.sampling, options.eos_token_ids, options.token_bytes);
      b.live.push_back(std::move(s));
    }
  }
  return absl::OkStatus();
}

// One token for every live sample, appended to its result, then its stop rule: the samples
// still going, in order, with the token each feeds next. Finished samples release their KV.
absl::Status SampleOnce(const GeneratorOptions& options, Batch& b,
                        std::vector<std::vector<GeneratedSample>>& results,
                        std::vector<int32_t>& next_tokens) {
  std::vector<SampleSlot> slots;
  for (Live& s : b.live)
    slots.push_back({s.logits_row, &b.requests[static_cast<size_t>(s.request)].sampling, &s.rng});
  const std::vector<SampledToken> sampled = SampleRows(b.logits, slots, options.vocab_limit);
  std::vector<Live> still;
  next_tokens.clear();
  for (size_t k = 0; k < b.live.size(); ++k) {
    Live& s = b.live[k];
    GeneratedSample& out = results[static_cast<size_t>(s.request)][static_cast<size_t>(s.sample)];
    if (!std::isfinite(sampled[k].logprob)) {
      return absl::DataLossError(
          absl::StrCat("the model's logits are not finite (log-probability ", sampled[k].logprob,
                       " at token ", out.tokens.size() + 1, " of sample ", s.sample + 1,
                       "): its weights are broken (NaN, Inf or overflowing values)"));
    }
    out.tokens.push_back(sampled[k].token);
    out.logprobs.push_back(sampled[k].logprob);
    out.entropies.push_back(sampled[k].entropy);
    if (const std::optional<FinishReason> finish = s.stop->Push(sampled[k].token)) {
      out.finish = *finish;
      b.cache.Release(s.sequence);
    } else {
      still.push_back(std::move(s));
      next_tokens.push_back(sampled[k].token);
    }
  }
  b.live = std::move(still);
  b.logits = at::Tensor();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::vector<GeneratedSample>>> Generator::Generate(
    absl::Span<const GenerationRequest> requests) {
  DS_RETURN_IF_ERROR(ValidateRequests(requests, options_, model_.config().vocab_size));
  std::vector<std::vector<GeneratedSample>> results(requests.size());
  for (size_t i = 0; i < requests.size(); ++i)
    results[i].resize(static_cast<size_t>(requests[i].num_samples));
  Batch b(requests, model_.NewCache());
  for (size_t i = 0; i < requests.size(); ++i) b.waiting.push_back(static_cast<int32_t>(i));
  std::vector<int32_t> next_tokens;
  try {
    while (!b.waiting.empty() || !b.live.empty()) {
      DS_RETURN_IF_ERROR(Admit(model_, options_, b));
      DS_RETURN_IF_ERROR(SampleOnce(options_, b, results, next_tokens));
      if (b.live.empty()) continue;
      // The live samples' next tokens in one decode step; their rows are 0..live-1.
      std::vector<StepInput> decode;
      for (size_t k = 0; k < b.live.size(); ++k) {
        decode.push_back({b.live[k].sequence, absl::Span<const int32_t>(&next_tokens[k], 1)});
        b.live[k].logits_row = static_cast<int32_t>(k);
      }
      DS_ASSIGN_OR_RETURN(b.logits, model_.Step(b.cache, decode));
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("Generate: ", e.what_without_backtrace()));
  }
  return results;
}

}  // namespace deepsearch
