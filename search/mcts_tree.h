// The search tree of DeepSearch's MCTS_full and the algorithm's rules, exactly as the
// reference code runs them (DEEPSEARCH_SPEC §1.3-1.6, §3.1):
//
//   * Nodes are chunks of at most step_tokens generated tokens; the root (depth 0) is the
//     prompt. A child is terminal when its chunk ended with EOS or it sits at depth d_T.
//   * Every non-terminal child gets one visit at creation (N = 1, q = 0); the root gets none.
//   * Backup of a leaf's reward r (+1 correct, -1 otherwise) to every node on its path, leaf to
//     root inclusive, with gamma = max((k + 1) / (d + 1), gamma_min) for a node at depth k on a
//     path whose leaf is at depth d, and N += 1:
//       constrained: q*r >= 0 -> q + gamma r;  r > 0 -> gamma r;  q > 0 -> q (kept);
//       vanilla:     q*r >= 0 -> q + gamma r;  otherwise max(q + gamma r, 0).
//   * Local UCT among a node's children: Q(s) + lambda sqrt(ln N_parent / N(s)), Q = q / N,
//     the exploration term 0 when N_parent or N(s) is 0, terminal children -inf, argmax with
//     the first child winning ties.
//   * Global frontier: every non-terminal node but the root without children, scored
//     lambda1 tanh(Q_parent) + lambda2 H + lambda3 D(d) (H, the mean NLL of the node's own
//     chunk, only with entropy_bonus), argmax with ties to the first node in DFS pre-order.
//   * Collection: of an expansion's terminal children, the correct ones if any, else those
//     with reward -1, else all; among them the lowest mean NLL over the whole root-to-leaf
//     response (ablations: highest, or random). One leaf per expansion.
//   * Token scores of a collected leaf's path, from the final q values: tanh(q / eps_q) q_max
//     for every node but the leaf, the leaf's raw value for the leaf, plus on every token the
//     overlong penalty min(-(L - (L_max - buffer)) / buffer * factor, 0) for a response of L
//     tokens.
//
// Resolved here where the reference is silent: when the frontier is empty the root is
// expanded again (its children grow by another n); an EOS is honoured wherever it falls
// in a chunk.
//
// Torch-free and single-threaded: one tree is touched by one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "search/search_params.h"

#include "common/core/rng.h"
#include "common/tasks/problem.h"

namespace deepsearch {

struct MctsNode {
  int32_t parent = -1;
  int32_t depth = 0;
  std::vector<int32_t> children;  // in creation order
  std::vector<int32_t> tokens;    // this node's chunk
  std::vector<float> logprobs;    // of those tokens, at sampling time
  int64_t weight_version = 0;     // the weights that sampled the chunk
  int64_t handle = 0;             // the policy's name for prompt + path up to here
  bool terminal = false;
  bool eos = false;    // terminal by EOS (not by depth)
  int32_t visits = 0;  // N
  double value = 0.0;  // q: an accumulated sum
  // Terminals, once verified: the verdict and the reward it earns (+1 correct, -1
  // incorrect, incomplete_score when truncated without an answer).
  std::optional<Verdict> verdict;
  double reward = 0.0;
  bool incomplete = false;
  bool collected = false;

  double Q() const { return visits > 0 ? value / visits : 0.0; }
  // Mean negative log-prob of this node's own chunk (the frontier's entropy term).
  double ChunkNll() const;
};

// One child from an expansion.
struct ChildChunk {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  bool eos = false;
  int64_t weight_version = 0;
  int64_t handle = 0;
};

// A collected root-to-leaf path, ready for training (spec §3.1).
struct ScoredTrajectory {
  int32_t leaf = -1;
  std::vector<int32_t> response_tokens;
  std::vector<float> logprobs;
  std::vector<float> token_scores;
  std::vector<int32_t> step_ends;  // exclusive end offset of each node's chunk
  // (weight version, end offset) per node chunk, merged where consecutive versions agree.
  std::vector<std::pair<int64_t, int32_t>> versions;
  Verdict verdict;
  bool incomplete = false;
  double reward = 0.0;       // the leaf's reward: +1, -1, or incomplete_score
  double final_score = 0.0;  // the last token's score: leaf value + overlong penalty
  // Filled by the runner: the decoded response, and whether it is a cached solution.
  std::string response_text;
  bool from_cache = false;
};

// The overlong penalty of a response of `length` tokens (DAPO's soft punishment, spec §3.1):
// min(-(length - (max_response_tokens - overlong_buffer)) / overlong_buffer * factor, 0),
// clamped at -factor for responses beyond max_response_tokens.
double OverlongPenalty(const SearchParams& params, int64_t length);

class MctsTree {
 public:
  explicit MctsTree(SearchParams params);

  static constexpr int32_t kRoot = 0;
  const MctsNode& node(int32_t id) const { return nodes_[static_cast<size_t>(id)]; }
  MctsNode& mutable_node(int32_t id) { return nodes_[static_cast<size_t>(id)]; }
  int32_t size() const { return static_cast<int32_t>(nodes_.size()); }
  const SearchParams& params() const { return params_; }

  // Adds the children of one expansion of `parent`: depth, terminal flag, creation visit.
  // Returns their ids in order.
  std::vector<int32_t> AddChildren(int32_t parent, std::vector<ChildChunk> chunks);

  // Backs `reward` up from `leaf` to the root (inclusive).
  void Backup(int32_t leaf, double reward);

  // Local UCT among the children of `parent`; -1 when it has none or all are terminal.
  int32_t SelectUct(int32_t parent) const;
  // The best frontier node (see the file comment); -1 when the frontier is empty.
  int32_t SelectGlobal() const;
  // The frontier score of a node.
  double FrontierScore(int32_t id) const;
  // UCT descent from the root to a node without children (the "uct" backtrace ablation);
  // -1 when every path ends in terminals.
  int32_t DescendUct() const;

  // Of an expansion's verified terminal children (reward set), the one to back up and
  // collect: the correct ones if any, else those with reward -1, else all; then the most
  // confident (or as negative_choice says, for negatives).
  int32_t ChooseLeaf(const std::vector<int32_t>& terminals, Rng& rng) const;

  // The ids on the path from the root's child down to `id`, and their concatenated chunks.
  std::vector<int32_t> Path(int32_t id) const;
  std::vector<int32_t> PathTokens(int32_t id) const;
  // Mean negative log-prob over every response token from the root to `id`.
  double PathMeanNll(int32_t id) const;

  // The training view of a collected leaf, from the current (final) q values.
  ScoredTrajectory Score(int32_t leaf) const;

 private:
  SearchParams params_;
  std::vector<MctsNode> nodes_;
};

}  // namespace deepsearch
