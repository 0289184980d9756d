#include "common/model/token_sampling.h"

#include <algorithm>

#include "common/core/logging.h"

namespace deepsearch {

std::vector<SampledToken> SampleRows(const at::Tensor& logits, absl::Span<const SampleSlot> slots,
                                     int64_t vocab_limit) {
  const int64_t n = static_cast<int64_t>(slots.size());
  std::vector<SampledToken> out(slots.size());
  if (n == 0) return out;
  std::vector<int64_t> rows(slots.size());
  std::vector<float> temperature(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    rows[i] = slots[i].row;
    temperature[i] = slots[i].params->temperature;
  }
  const auto device = logits.device();
  const at::Tensor rows_t =
      at::from_blob(rows.data(), {n}, at::kLong).to(device, at::kLong, false, true);
  const at::Tensor temp_t =
      at::from_blob(temperature.data(), {n, 1}, at::kFloat).to(device, at::kFloat, false, true);
  const at::Tensor scaled = logits.index_select(0, rows_t).narrow(1, 0, vocab_limit) / temp_t;
  const at::Tensor logp = at::log_softmax(scaled, -1);
  const at::Tensor entropy = -(logp.exp() * logp).sum(-1);
  const at::Tensor logp_cpu = logp.to(at::kCPU).contiguous();
  const at::Tensor entropy_cpu = entropy.to(at::kCPU).contiguous();
  const float* logp_data = logp_cpu.data_ptr<float>();
  const float* entropy_data = entropy_cpu.data_ptr<float>();
  for (size_t i = 0; i < slots.size(); ++i) {
    const absl::Span<const float> row(logp_data + i * static_cast<size_t>(vocab_limit),
                                      static_cast<size_t>(vocab_limit));
    const SamplingParams& p = *slots[i].params;
    const int32_t token = SampleToken(row, p.top_k, p.top_p, *slots[i].rng);
    out[i] = {token, row[static_cast<size_t>(token)], entropy_data[i]};
  }
  return out;
}

StopRule::StopRule(const SamplingParams& params, absl::Span<const int32_t> eos_ids,
                   std::function<std::string(int32_t)> token_bytes)
    : params_(&params), eos_(eos_ids.begin(), eos_ids.end()), token_bytes_(std::move(token_bytes)) {
  for (const std::string& stop : params.stop_strings)
    longest_stop_ = std::max(longest_stop_, stop.size());
  DS_CHECK(params.stop_strings.empty() || token_bytes_) << "stop strings need token bytes";
}

std::optional<FinishReason> StopRule::Push(int32_t token) {
  ++generated_;
  if (std::find(eos_.begin(), eos_.end(), token) != eos_.end()) return FinishReason::kEos;
  const std::vector<int32_t>& stops = params_->stop_token_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) return FinishReason::kStopToken;
  if (!params_->stop_strings.empty()) {
    const size_t before = tail_.size();
    tail_ += token_bytes_(token);
    for (const std::string& stop : params_->stop_strings) {
      // Only matches that end in the new bytes.
      const size_t from = before >= stop.size() - 1 ? before - (stop.size() - 1) : 0;
      if (tail_.find(stop, from) != std::string::npos) return FinishReason::kStopString;
    }
    if (tail_.size() > longest_stop_) tail_.erase(0, tail_.size() - longest_stop_);
  }
  if (generated_ >= params_->max_new_tokens) return FinishReason::kLength;
  return std::nullopt;
}

}  // namespace deepsearch
