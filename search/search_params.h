// The constants of DeepSearch's tree search (DEEPSEARCH_SPEC §1.3-1.6, §3.1), with the
// paper's defaults, and the ablation switches of its experiments (§5, Tables 3-5).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

#include "common/core/config.h"
#include "common/sampling/sampler.h"

namespace deepsearch {

// Where the search goes after a terminal leaf was backed up.
enum class Backtrace {
  kGlobal,  // global frontier selection (§1.5), the paper's method
  kUct,     // re-select from the root with local UCT (the "vanilla UCT" ablation)
};
// The node-value update on backup (§1.4).
enum class QUpdate {
  kConstrained,  // the sign-constrained update, the paper's method
  kVanilla,      // accumulate, floored at 0 on a sign change ("vanilla DeepSearch")
};
// Which leaf of an expansion is backed up when none is correct (Table 5).
enum class NegativeChoice {
  kMostConfident,   // lowest mean NLL over the whole path, the paper's method
  kLeastConfident,  // highest mean NLL
  kRandom,
};
// The depth bonus D(d) of the frontier score.
enum class DepthBonus {
  kSqrt,      // sqrt(d / d_T), the paper's default
  kLog,       // log(d + 1)
  kConstant,  // d
};

struct SearchParams {
  int32_t max_depth = 64;             // d_T; the root is depth 0
  int32_t step_tokens = 256;          // most tokens per node
  std::string step_delimiter;         // optional: a node also ends after this text
  int32_t expansion_width = 8;        // n: children per expansion
  int32_t trajectories_per_tree = 8;  // K: leaves collected per tree
  double uct_lambda = 2.0;            // λ of local UCT
  double gamma_min = 0.1;             // floor of the depth-decay weight
  double lambda_quality = 0.4;        // λ1: weight of tanh(Q_parent)
  double lambda_entropy = 0.4;  // λ2: weight of the node's mean NLL (only with entropy_bonus)
  double lambda_depth = 0.01;   // λ3: weight of D(d)
  bool entropy_bonus = false;   // the final configuration leaves it off
  DepthBonus depth_bonus = DepthBonus::kSqrt;
  Backtrace backtrace = Backtrace::kGlobal;
  QUpdate q_update = QUpdate::kConstrained;
  NegativeChoice negative_choice = NegativeChoice::kMostConfident;
  double incomplete_score = -1.0;        // reward of a truncated trajectory without an answer
  double q_soft_clip_temperature = 1.0;  // ε_q of tanh(q / ε_q) * q_max
  double q_max = 1.0;
  // Overlong penalty (DAPO's soft punishment): responses longer than
  // max_response_tokens - overlong_buffer lose up to overlong_factor, on every token.
  int32_t max_response_tokens = 16384;
  int32_t overlong_buffer = 4096;
  double overlong_factor = 1.0;

  void Bind(ConfigBinder& b);
  // Cross-field checks (e.g. the overlong buffer within the maximum length).
  absl::Status Validate() const;
};

// The sampling settings of rollouts and expansions (the paper: T = 1.0, top_p = 1.0, no
// top-k), as they appear in config files.
struct SamplingConfig {
  float temperature = 1.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;

  void Bind(ConfigBinder& b);
  // These settings with `seed`; max_new_tokens is the search mode's to set.
  SamplingParams ToParams(uint64_t seed) const;
};

}  // namespace deepsearch
