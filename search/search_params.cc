#include "search/search_params.h"

#include "absl/strings/str_cat.h"

namespace deepsearch {

void SearchParams::Bind(ConfigBinder& b) {
  b.Field("max_depth", max_depth, "d_T: maximum tree depth (the root is depth 0)").Range(1, 4096);
  b.Field("step_tokens", step_tokens, "Most tokens per tree node").Range(1, 1 << 20);
  b.Field("step_delimiter", step_delimiter,
          "Optional text that also ends a node (empty: fixed-length steps)");
  b.Field("expansion_width", expansion_width, "n: children generated per expansion").Range(1, 256);
  b.Field("trajectories_per_tree", trajectories_per_tree, "K: terminal leaves collected per tree")
      .Range(1, 1024);
  b.Field("uct_lambda", uct_lambda, "Exploration constant of local UCT").Min(0.0);
  b.Field("gamma_min", gamma_min, "Floor of the depth-decay weight of backups").Range(0.0, 1.0);
  b.Field("lambda_quality", lambda_quality, "λ1: weight of tanh(Q_parent) in the frontier score");
  b.Field("lambda_entropy", lambda_entropy,
          "λ2: weight of the node's mean NLL (with entropy_bonus)");
  b.Field("lambda_depth", lambda_depth, "λ3: weight of the depth bonus");
  b.Field("entropy_bonus", entropy_bonus, "Include the entropy term in the frontier score");
  b.Enum(
      "depth_bonus", depth_bonus,
      {{"sqrt", DepthBonus::kSqrt}, {"log", DepthBonus::kLog}, {"constant", DepthBonus::kConstant}},
      "D(d): sqrt(d/d_T), log(d+1) or d");
  b.Enum("backtrace", backtrace, {{"global", Backtrace::kGlobal}, {"uct", Backtrace::kUct}},
         "After a backup: global frontier selection or UCT from the root");
  b.Enum("q_update", q_update,
         {{"constrained", QUpdate::kConstrained}, {"vanilla", QUpdate::kVanilla}},
         "Node-value update on backup");
  b.Enum("negative_choice", negative_choice,
         {{"most_confident", NegativeChoice::kMostConfident},
          {"least_confident", NegativeChoice::kLeastConfident},
          {"random", NegativeChoice::kRandom}},
         "Leaf backed up when no leaf of an expansion is correct");
  b.Field("incomplete_score", incomplete_score,
          "Reward of a truncated trajectory without an answer");
  b.Field("q_soft_clip_temperature", q_soft_clip_temperature, "ε_q of the tanh soft clip")
      .Positive();
  b.Field("q_max", q_max, "q_max of the tanh soft clip").Positive();
  b.Field("max_response_tokens", max_response_tokens,
          "Longest response; the overlong penalty ends here")
      .Range(1, 1 << 24);
  b.Field("overlong_buffer", overlong_buffer,
          "Tokens before max_response_tokens where the penalty ramps")
      .Range(0, 1 << 24);
  b.Field("overlong_factor", overlong_factor, "Largest overlong penalty").Min(0.0);
  b.Require(overlong_buffer <= max_response_tokens, "overlong_buffer",
            "must not exceed max_response_tokens");
  // A search trajectory is at most max_depth nodes of step_tokens (spec: step length =
  // response length / d_T); a deeper tree would grow responses past the longest one.
  b.Require(static_cast<int64_t>(max_depth) * step_tokens <= max_response_tokens, "max_depth",
            "times step_tokens must not exceed max_response_tokens (the spec's step length is "
            "max_response_tokens / max_depth)");
}

absl::Status SearchParams::Validate() const {
  if (max_depth < 1 || step_tokens < 1 || expansion_width < 1 || trajectories_per_tree < 1) {
    return absl::InvalidArgumentError(
        "search: max_depth, step_tokens, expansion_width and trajectories_per_tree "
        "must be >= 1");
  }
  if (overlong_buffer > max_response_tokens || overlong_buffer < 0) {
    return absl::InvalidArgumentError(absl::StrCat("search: overlong_buffer (", overlong_buffer,
                                                   ") must be in [0, max_response_tokens]"));
  }
  if (!(q_soft_clip_temperature > 0) || !(q_max > 0) || gamma_min < 0 || gamma_min > 1) {
    return absl::InvalidArgumentError(
        "search: q_soft_clip_temperature and q_max must be > 0, gamma_min in [0, 1]");
  }
  return absl::OkStatus();
}

void SamplingConfig::Bind(ConfigBinder& b) {
  b.Field("temperature", temperature, "Softmax temperature of every sample").Positive();
  b.Field("top_p", top_p, "Nucleus sampling mass (1: off)").Range(0.0f, 1.0f).Positive();
  b.Field("top_k", top_k, "Keep the k most likely tokens (0: off)").Min(0);
}

SamplingParams SamplingConfig::ToParams(uint64_t seed) const {
  SamplingParams p;
  p.temperature = temperature;
  p.top_p = top_p;
  p.top_k = top_k;
  p.seed = seed;
  return p;
}

}  // namespace deepsearch
