#include "search/mcts_tree.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/core/logging.h"

namespace deepsearch {

double MctsNode::ChunkNll() const {
  if (logprobs.empty()) return 0.0;
  double sum = 0.0;
  for (float lp : logprobs) sum -= lp;
  return sum / static_cast<double>(logprobs.size());
}

MctsTree::MctsTree(SearchParams params) : params_(std::move(params)) { nodes_.emplace_back(); }

std::vector<int32_t> MctsTree::AddChildren(int32_t parent, std::vector<ChildChunk> chunks) {
  DS_CHECK(parent >= 0 && parent < size()) << "no node " << parent;
  const int32_t depth = node(parent).depth + 1;
  std::vector<int32_t> ids;
  for (ChildChunk& c : chunks) {
    MctsNode n;
    n.parent = parent;
    n.depth = depth;
    n.tokens = std::move(c.tokens);
    n.logprobs = std::move(c.logprobs);
    n.weight_version = c.weight_version;
    n.handle = c.handle;
    n.eos = c.eos;
    n.terminal = c.eos || depth >= params_.max_depth;
    // The creation visit: non-terminal children start with N = 1, q = 0.
    n.visits = n.terminal ? 0 : 1;
    const int32_t id = size();
    nodes_.push_back(std::move(n));
    nodes_[static_cast<size_t>(parent)].children.push_back(id);
    ids.push_back(id);
  }
  return ids;
}

void MctsTree::Backup(int32_t leaf, double reward) {
  const int32_t leaf_depth = node(leaf).depth;
  for (int32_t id = leaf; id >= 0; id = node(id).parent) {
    MctsNode& n = nodes_[static_cast<size_t>(id)];
    const double gamma =
        std::max(static_cast<double>(n.depth + 1) / (leaf_depth + 1), params_.gamma_min);
    const double old = n.value;
    const double update = gamma * reward;
    if (old * reward >= 0) {
      n.value = old + update;
    } else if (params_.q_update == QUpdate::kVanilla) {
      n.value = std::max(old + update, 0.0);
    } else if (reward > 0) {
      n.value = update;  // a correct path overrides an old negative value
    } else {
      n.value = old;  // old > 0: a wrong path does not undo a correct one
    }
    ++n.visits;
  }
}

int32_t MctsTree::SelectUct(int32_t parent) const {
  const MctsNode& p = node(parent);
  int32_t best = -1;
  double best_score = -std::numeric_limits<double>::infinity();
  for (int32_t c : p.children) {
    const MctsNode& child = node(c);
    if (child.terminal) continue;  // -inf
    double u = 0.0;
    if (p.visits > 0 && child.visits > 0) {
      u = params_.uct_lambda * std::sqrt(std::log(static_cast<double>(p.visits)) / child.visits);
    }
    const double score = child.Q() + u;
    if (best == -1 || score > best_score) {  // strict: the first child wins ties
      best = c;
      best_score = score;
    }
  }
  return best;
}

double MctsTree::FrontierScore(int32_t id) const {
  const MctsNode& n = node(id);
  const MctsNode& parent = node(n.parent);
  double depth_bonus = 0.0;
  switch (params_.depth_bonus) {
    case DepthBonus::kSqrt:
      depth_bonus = std::sqrt(static_cast<double>(n.depth) / params_.max_depth);
      break;
    case DepthBonus::kLog:
      depth_bonus = std::log(static_cast<double>(n.depth) + 1.0);
      break;
    case DepthBonus::kConstant:
      depth_bonus = static_cast<double>(n.depth);
      break;
  }
  double score =
      params_.lambda_quality * std::tanh(parent.Q()) + params_.lambda_depth * depth_bonus;
  if (params_.entropy_bonus) score += params_.lambda_entropy * n.ChunkNll();
  return score;
}

int32_t MctsTree::SelectGlobal() const {
  // DFS pre-order from the root, children in creation order; strict > keeps the first best.
  int32_t best = -1;
  double best_score = 0.0;
  std::vector<int32_t> stack = {kRoot};
  while (!stack.empty()) {
    const int32_t id = stack.back();
    stack.pop_back();
    const MctsNode& n = node(id);
    if (id != kRoot && !n.terminal && n.children.empty()) {
      const double score = FrontierScore(id);
      if (best == -1 || score > best_score) {
        best = id;
        best_score = score;
      }
    }
    for (auto it = n.children.rbegin(); it != n.children.rend(); ++it) stack.push_back(*it);
  }
  return best;
}

int32_t MctsTree::DescendUct() const {
  int32_t id = kRoot;
  while (!node(id).children.empty()) {
    const int32_t next = SelectUct(id);
    if (next == -1) return -1;
    id = next;
  }
  return id;
}

int32_t MctsTree::ChooseLeaf(const std::vector<int32_t>& terminals, Rng& rng) const {
  DS_CHECK(!terminals.empty()) << "ChooseLeaf without terminals";
  std::vector<int32_t> pool;
  for (int32_t id : terminals) {
    if (node(id).reward > 0) pool.push_back(id);
  }
  const bool correct = !pool.empty();
  if (!correct) {
    for (int32_t id : terminals) {
      if (node(id).reward == -1.0) pool.push_back(id);
    }
  }
  if (pool.empty()) pool = terminals;
  // Correct leaves: always the most confident. Negatives: as the ablation says.
  if (!correct && params_.negative_choice == NegativeChoice::kRandom) {
    return pool[static_cast<size_t>(rng.UniformInt(0, static_cast<int64_t>(pool.size()) - 1))];
  }
  const bool least = !correct && params_.negative_choice == NegativeChoice::kLeastConfident;
  int32_t best = pool.front();
  double best_nll = PathMeanNll(best);
  for (size_t i = 1; i < pool.size(); ++i) {
    const double nll = PathMeanNll(pool[i]);
    if (least ? nll > best_nll : nll < best_nll) {
      best = pool[i];
      best_nll = nll;
    }
  }
  return best;
}

std::vector<int32_t> MctsTree::Path(int32_t id) const {
  std::vector<int32_t> path;
  for (int32_t n = id; n != kRoot && n >= 0; n = node(n).parent) path.push_back(n);
  std::reverse(path.begin(), path.end());
  return path;
}

std::vector<int32_t> MctsTree::PathTokens(int32_t id) const {
  std::vector<int32_t> tokens;
  for (int32_t n : Path(id))
    tokens.insert(tokens.end(), node(n).tokens.begin(), node(n).tokens.end());
  return tokens;
}

double MctsTree::PathMeanNll(int32_t id) const {
  double sum = 0.0;
  int64_t count = 0;
  for (int32_t n : Path(id)) {
    for (float lp : node(n).logprobs) sum -= lp;
    count += static_cast<int64_t>(node(n).logprobs.size());
  }
  return count > 0 ? sum / static_cast<double>(count) : 0.0;
}

double OverlongPenalty(const SearchParams& params, int64_t length) {
  if (length <= params.max_response_tokens - params.overlong_buffer) return 0.0;
  if (length >= params.max_response_tokens) return -params.overlong_factor;
  const double excess =
      static_cast<double>(length - (params.max_response_tokens - params.overlong_buffer));
  return -excess / params.overlong_buffer * params.overlong_factor;
}

ScoredTrajectory MctsTree::Score(int32_t leaf) const {
  ScoredTrajectory t;
  t.leaf = leaf;
  const std::vector<int32_t> path = Path(leaf);
  for (int32_t n : path) {
    const MctsNode& m = node(n);
    t.response_tokens.insert(t.response_tokens.end(), m.tokens.begin(), m.tokens.end());
    t.logprobs.insert(t.logprobs.end(), m.logprobs.begin(), m.logprobs.end());
    t.step_ends.push_back(static_cast<int32_t>(t.response_tokens.size()));
    if (!t.versions.empty() && t.versions.back().first == m.weight_version) {
      t.versions.back().second = t.step_ends.back();
    } else {
      t.versions.push_back({m.weight_version, t.step_ends.back()});
    }
  }
  const double penalty = OverlongPenalty(params_, static_cast<int64_t>(t.response_tokens.size()));
  for (int32_t n : path) {
    const MctsNode& m = node(n);
    // Intermediate nodes: the soft-clipped final q; the leaf: its raw value.
    const double q =
        n == leaf ? m.value : std::tanh(m.value / params_.q_soft_clip_temperature) * params_.q_max;
    const float score = static_cast<float>(q + penalty);
    t.token_scores.insert(t.token_scores.end(), m.tokens.size(), score);
  }
  t.final_score = node(leaf).value + penalty;
  if (node(leaf).verdict) t.verdict = *node(leaf).verdict;
  t.incomplete = node(leaf).incomplete;
  t.reward = node(leaf).reward;
  return t;
}

}  // namespace deepsearch
