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

absl::StatusOr<std::vector<std::vector<GeneratedSample>>> Generator::Generate(
    absl::Span<const GenerationRequest> requests) {
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest& r = requests[i];
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("request ", i, ": ", what));
    };
    if (r.prompt.empty()) return bad("empty prompt");
    if (r.num_samples < 1)
      return bad(absl::StrCat("num_samples must be >= 1, got ", r.num_samples));
    if (absl::Status s = r.sampling.Validate(); !s.ok()) return bad(s.message());
    if (!r.sampling.stop_strings.empty() && !options_.token_bytes)
      return bad("stop strings need a tokenizer");
    for (int32_t t : r.prompt) {
      if (t < 0 || t >= model_.config().vocab_size)
        return bad(absl::StrCat("prompt token ", t, " out of range"));
    }
  }

  std::vector<std::vector<GeneratedSample>> results(requests.size());
  for (size_t i = 0; i < requests.size(); ++i)
    results[i].resize(static_cast<size_t>(requests[i].num_samples));
  KvCache cache = model_.NewCache();
  std::deque<int32_t> waiting;
  for (size_t i = 0; i < requests.size(); ++i) waiting.push_back(static_cast<int32_t>(i));
  std::vector<Live> live;
  at::Tensor logits;  // [rows, vocab], rows indexed by Live::logits_row

  try {
    while (!waiting.empty() || !live.empty()) {
      // Admit waiting requests while there is room: prefill their prompts in one step.
      std::vector<int32_t> admitted;
      int64_t planned = static_cast<int64_t>(live.size());
      while (
          !waiting.empty() &&
          (planned == 0 || planned + requests[static_cast<size_t>(waiting.front())].num_samples <=
                               options_.max_batch)) {
        planned += requests[static_cast<size_t>(waiting.front())].num_samples;
        admitted.push_back(waiting.front());
        waiting.pop_front();
      }
      if (!admitted.empty()) {
        std::vector<StepInput> prefill;
        for (int32_t r : admitted) {
          prefill.push_back({cache.Create(), requests[static_cast<size_t>(r)].prompt});
        }
        DS_ASSIGN_OR_RETURN(at::Tensor prefill_logits, model_.Step(cache, prefill));
        // Rows: live samples keep theirs (0..live-1 after the decode step below); admitted
        // samples read the prefill rows, appended after them.
        const int32_t base = logits.defined() ? static_cast<int32_t>(logits.size(0)) : 0;
        logits = logits.defined() ? at::cat({logits, prefill_logits}) : prefill_logits;
        for (size_t k = 0; k < admitted.size(); ++k) {
          const GenerationRequest& r = requests[static_cast<size_t>(admitted[k])];
          const Rng root(r.sampling.seed);
          for (int32_t j = 0; j < r.num_samples; ++j) {
            Live s;
            s.request = admitted[k];
            s.sample = j;
            s.sequence = j == 0 ? prefill[k].sequence : cache.Fork(prefill[k].sequence);
            s.rng = root.Fork(static_cast<uint64_t>(j));
            s.logits_row = base + static_cast<int64_t>(k);
            s.stop.emplace(r.sampling, options_.eos_token_ids, options_.token_bytes);
            live.push_back(std::move(s));
          }
        }
      }

      // One token for every live sample; then its stop rule.
      std::vector<SampleSlot> slots;
      for (Live& s : live)
        slots.push_back({s.logits_row, &requests[static_cast<size_t>(s.request)].sampling, &s.rng});
      const std::vector<SampledToken> sampled = SampleRows(logits, slots, options_.vocab_limit);
      std::vector<int32_t> next_tokens(live.size());
      std::vector<bool> done(live.size(), false);
      for (size_t k = 0; k < live.size(); ++k) {
        Live& s = live[k];
        GeneratedSample& out =
            results[static_cast<size_t>(s.request)][static_cast<size_t>(s.sample)];
        if (!std::isfinite(sampled[k].logprob)) {
          return absl::DataLossError(absl::StrCat(
              "the model's logits are not finite (log-probability ", sampled[k].logprob,
              " at token ", out.tokens.size() + 1, " of sample ", s.sample + 1,
              "): its weights are broken (NaN, Inf or overflowing values)"));
        }
        out.tokens.push_back(sampled[k].token);
        out.logprobs.push_back(sampled[k].logprob);
        out.entropies.push_back(sampled[k].entropy);
        next_tokens[k] = sampled[k].token;
        if (const std::optional<FinishReason> finish = s.stop->Push(sampled[k].token)) {
          out.finish = *finish;
          done[k] = true;
        }
      }
      std::vector<Live> still;
      std::vector<int32_t> still_tokens;
      std::vector<StepInput> decode;
      for (size_t k = 0; k < live.size(); ++k) {
        if (done[k]) {
          cache.Release(live[k].sequence);
        } else {
          still.push_back(std::move(live[k]));
          still_tokens.push_back(next_tokens[k]);
        }
      }
      live = std::move(still);
      logits = at::Tensor();
      if (live.empty()) continue;

      for (size_t k = 0; k < live.size(); ++k) {
        decode.push_back({live[k].sequence, absl::Span<const int32_t>(&still_tokens[k], 1)});
        live[k].logits_row = static_cast<int32_t>(k);
      }
      DS_ASSIGN_OR_RETURN(logits, model_.Step(cache, decode));
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("Generate: ", e.what_without_backtrace()));
  }
  return results;
}

}  // namespace deepsearch
