#include "trainer/train_batch.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "common/core/status.h"

namespace deepsearch {

std::vector<std::vector<float>> ComputeAdvantages(const std::vector<TrainSequence>& sequences,
                                                  AdvantageNorm norm, float eps) {
  // Per group: the mean and the population std of the final scores, in double, as the
  // reference code's compute_mcts_outcome_advantage does (sibling_mean_std: torch mean and
  // std(unbiased=False) over the tree's final scores).
  struct Group {
    double sum = 0.0;
    double sum_sq_dev = 0.0;
    int64_t n = 0;
    double mean = 0.0;
    double std = 1.0;
  };
  std::map<std::string, Group> groups;
  for (const TrainSequence& s : sequences) {
    Group& g = groups[s.group_id];
    g.sum += s.final_score;
    ++g.n;
  }
  for (auto& [id, g] : groups) {
    if (g.n > 1) g.mean = g.sum / static_cast<double>(g.n);
  }
  for (const TrainSequence& s : sequences) {
    Group& g = groups[s.group_id];
    const double d = s.final_score - g.mean;
    g.sum_sq_dev += d * d;
  }
  for (auto& [id, g] : groups) {
    if (g.n > 1) g.std = std::sqrt(g.sum_sq_dev / static_cast<double>(g.n));
  }

  std::vector<std::vector<float>> advantages;
  advantages.reserve(sequences.size());
  for (const TrainSequence& s : sequences) {
    const Group& g = groups[s.group_id];
    const double scale = norm == AdvantageNorm::kMeanStd ? 1.0 / (g.std + eps) : 1.0;
    std::vector<float>& a = advantages.emplace_back();
    a.reserve(s.token_scores.size());
    for (float score : s.token_scores)
      a.push_back(static_cast<float>((static_cast<double>(score) - g.mean) * scale));
  }
  return advantages;
}

GroupSummary SummarizeGroups(const std::vector<TrainSequence>& batch,
                             const std::vector<bool>& correct,
                             const std::vector<std::vector<float>>& advantages) {
  std::map<std::string_view, bool> any_correct;  // group -> some trajectory is correct
  for (size_t i = 0; i < batch.size(); ++i) {
    bool& any = any_correct[batch[i].group_id];
    any = any || (i < correct.size() && correct[i]);
  }
  GroupSummary summary;
  summary.groups = static_cast<int32_t>(any_correct.size());
  double sum = 0.0;
  for (size_t i = 0; i < batch.size() && i < advantages.size(); ++i) {
    if (any_correct.at(batch[i].group_id)) continue;
    for (float a : advantages[i]) sum += a;
    summary.all_wrong_tokens += static_cast<int64_t>(advantages[i].size());
  }
  for (const auto& [id, any] : any_correct) summary.all_wrong_groups += any ? 0 : 1;
  if (summary.all_wrong_tokens > 0)
    summary.all_wrong_mean_advantage = sum / static_cast<double>(summary.all_wrong_tokens);
  return summary;
}

StepPlan PlanStep(const std::vector<TrainSequence>& batch, AdvantageNorm norm, int32_t mini_batches,
                  int rank, int world_size) {
  StepPlan plan;
  plan.advantages = ComputeAdvantages(batch, norm);
  const size_t n = batch.size();
  const size_t parts = std::min(static_cast<size_t>(std::max(mini_batches, 1)), n);
  plan.mini_batches.resize(parts);
  for (size_t k = 0; k < parts; ++k) {
    const size_t begin = k * n / parts, end = (k + 1) * n / parts;
    std::vector<size_t>& mine = plan.mini_batches[k];
    if (world_size <= 1) {
      for (size_t i = begin; i < end; ++i) mine.push_back(i);
      continue;
    }
    std::vector<size_t> order(end - begin);
    std::iota(order.begin(), order.end(), begin);
    auto tokens = [&](size_t i) {
      return batch[i].prompt_tokens.size() + batch[i].response_tokens.size();
    };
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return tokens(a) > tokens(b); });
    std::vector<size_t> load(static_cast<size_t>(world_size), 0);
    for (size_t i : order) {
      const size_t to =
          static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
      load[to] += tokens(i);
      if (to == static_cast<size_t>(rank)) mine.push_back(i);
    }
    std::sort(mine.begin(), mine.end());
  }
  return plan;
}

namespace {

static_assert(std::endian::native == std::endian::little,
              "the batch encoding is little-endian and written with memcpy");

constexpr uint32_t kBatchMagic = 0x42535044;  // "DPSB"
constexpr uint32_t kBatchFormat = 1;

class Writer {
 public:
  template <typename T>
  void Put(T value) {
    const size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &value, sizeof(T));
  }
  template <typename T>
  void PutArray(const std::vector<T>& values) {
    Put<uint64_t>(values.size());
    const size_t at = out_.size();
    out_.resize(at + values.size() * sizeof(T));
    if (!values.empty()) std::memcpy(out_.data() + at, values.data(), values.size() * sizeof(T));
  }
  void PutString(const std::string& s) {
    Put<uint64_t>(s.size());
    out_.append(s);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  template <typename T>
  absl::Status Get(T& value, std::string_view what) {
    if (bytes_.size() < sizeof(T)) return Short(what, sizeof(T));
    std::memcpy(&value, bytes_.data(), sizeof(T));
    bytes_.remove_prefix(sizeof(T));
    return absl::OkStatus();
  }
  template <typename T>
  absl::Status GetArray(std::vector<T>& values, std::string_view what) {
    uint64_t n = 0;
    DS_RETURN_IF_ERROR(Get(n, what));
    if (n > bytes_.size() / sizeof(T)) return Short(what, n * sizeof(T));
    values.resize(n);
    if (n > 0) std::memcpy(values.data(), bytes_.data(), n * sizeof(T));
    bytes_.remove_prefix(n * sizeof(T));
    return absl::OkStatus();
  }
  absl::Status GetString(std::string& s, std::string_view what) {
    uint64_t n = 0;
    DS_RETURN_IF_ERROR(Get(n, what));
    if (n > bytes_.size()) return Short(what, n);
    s.assign(bytes_.data(), n);
    bytes_.remove_prefix(n);
    return absl::OkStatus();
  }
  size_t left() const { return bytes_.size(); }

 private:
  absl::Status Short(std::string_view what, uint64_t wanted) const {
    return absl::InvalidArgumentError(absl::StrCat("encoded batch: ", std::string(what), " needs ",
                                                   wanted, " bytes, ", bytes_.size(), " left"));
  }
  std::string_view bytes_;
};

}  // namespace

std::string EncodeTrainSequences(const std::vector<TrainSequence>& batch) {
  Writer w;
  w.Put<uint32_t>(kBatchMagic);
  w.Put<uint32_t>(kBatchFormat);
  w.Put<uint64_t>(batch.size());
  for (const TrainSequence& s : batch) {
    w.PutString(s.group_id);
    w.PutArray(s.prompt_tokens);
    w.PutArray(s.response_tokens);
    w.PutArray(s.behavior_logprobs);
    w.PutArray(s.token_scores);
    w.Put<float>(s.final_score);
    w.Put<int64_t>(s.weight_version);
  }
  return w.Take();
}

absl::StatusOr<std::vector<TrainSequence>> DecodeTrainSequences(std::string_view bytes) {
  Reader r(bytes);
  uint32_t magic = 0, format = 0;
  uint64_t n = 0;
  DS_RETURN_IF_ERROR(r.Get(magic, "the magic number"));
  if (magic != kBatchMagic) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoded batch: bad magic number ", magic, " (not a batch)"));
  }
  DS_RETURN_IF_ERROR(r.Get(format, "the format"));
  if (format != kBatchFormat) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoded batch: format ", format, ", this build reads ", kBatchFormat));
  }
  DS_RETURN_IF_ERROR(r.Get(n, "the sequence count"));
  std::vector<TrainSequence> batch;
  for (uint64_t i = 0; i < n; ++i) {
    TrainSequence& s = batch.emplace_back();
    const std::string at = absl::StrCat("sequence ", i, ": ");
    DS_RETURN_IF_ERROR(r.GetString(s.group_id, at + "group id"));
    DS_RETURN_IF_ERROR(r.GetArray(s.prompt_tokens, at + "prompt"));
    DS_RETURN_IF_ERROR(r.GetArray(s.response_tokens, at + "response"));
    DS_RETURN_IF_ERROR(r.GetArray(s.behavior_logprobs, at + "behaviour log-probs"));
    DS_RETURN_IF_ERROR(r.GetArray(s.token_scores, at + "token scores"));
    DS_RETURN_IF_ERROR(r.Get(s.final_score, at + "final score"));
    DS_RETURN_IF_ERROR(r.Get(s.weight_version, at + "weight version"));
  }
  if (r.left() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoded batch: ", r.left(), " bytes after the last of ", n, " sequences"));
  }
  return batch;
}

}  // namespace deepsearch
