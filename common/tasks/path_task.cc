// The "path" task family: shortest paths in small weighted undirected graphs.
//
// Spec: path:degree=3,max_weight=9,nodes=6,optimal=true
//   nodes       3..20 (default 6), named A, B, C, ...
//   degree      the average degree the generator aims for, 2..19 (default 3): a random
//               spanning tree (so the graph is connected), then random extra edges up to
//               round(nodes*degree/2) edges, or every pair when that is more
//   max_weight  edge weights are uniform in [1, max_weight], 1..99 (default 9)
//   optimal     true: the path must be a shortest one; false: any simple path from s to t
//               (default true)
//
// Prompt: the edges in order, then the query; t is not a neighbour of s when some node is
// not (so the answer takes more than one hop):
//   "Edges: A-B 3, A-C 5, B-C 1, C-F 2. Shortest path from A to F?\n"
// ("Path from A to F?" without `optimal`). Answer: the length of a shortest path ("7").
// Response: one hop per line, "X-Y w total t" (from X to Y, the edge's weight, the length so
// far), then the path's length, boxed:
//   A-B 3 total 3
//   B-C 1 total 4
//   C-F 2 total 6
//   \boxed{6}
// Without `optimal`, any simple path's length is accepted; Problem::answer is still the
// shortest length.
//
// The verifier reads the graph from the prompt (nodes A..T, positive weights, no repeated
// edge) and checks every hop: it leaves the node the path is at (s first), the edge exists
// with the stated weight, the node reached is new, and the running total is right. The path
// must end at t, its length must be the shortest (Dijkstra) when `optimal`, and the boxed
// answer must be the path's length.
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/tasks/families.h"
#include "common/tasks/response_format.h"

namespace deepsearch {
namespace {

constexpr int kMaxNodes = 20;
constexpr int64_t kMaxWeight = 99;
constexpr int64_t kNoEdge = 0;
constexpr int64_t kUnreachable = std::numeric_limits<int64_t>::max();

char NodeName(int node) { return static_cast<char>('A' + node); }

struct Graph {
  int nodes = 0;           // names A.. up to the largest letter used
  std::vector<int64_t> w;  // nodes x nodes, kNoEdge where there is none
  int source = 0;
  int target = 0;

  int64_t Weight(int u, int v) const { return w[u * nodes + v]; }
  void SetWeight(int u, int v, int64_t weight) {
    w[u * nodes + v] = weight;
    w[v * nodes + u] = weight;
  }
};

// Dijkstra from the source: distances and predecessors (the unvisited node with the least
// distance, then the lowest name, goes next; ties keep the first predecessor found).
struct ShortestPaths {
  std::vector<int64_t> distance;
  std::vector<int> previous;
};

ShortestPaths Dijkstra(const Graph& g) {
  ShortestPaths sp{std::vector<int64_t>(g.nodes, kUnreachable), std::vector<int>(g.nodes, -1)};
  std::vector<bool> done(g.nodes, false);
  sp.distance[g.source] = 0;
  while (true) {
    int u = -1;
    for (int v = 0; v < g.nodes; ++v) {
      if (!done[v] && sp.distance[v] != kUnreachable &&
          (u < 0 || sp.distance[v] < sp.distance[u])) {
        u = v;
      }
    }
    if (u < 0) break;
    done[u] = true;
    for (int v = 0; v < g.nodes; ++v) {
      const int64_t weight = g.Weight(u, v);
      if (weight == kNoEdge || done[v]) continue;
      if (sp.distance[u] + weight < sp.distance[v]) {
        sp.distance[v] = sp.distance[u] + weight;
        sp.previous[v] = u;
      }
    }
  }
  return sp;
}

// One hop as written: "X-Y w total t".
struct Hop {
  int from = 0;
  int to = 0;
  int64_t weight = 0;
  int64_t total = 0;
};

std::optional<int> ConsumeNode(std::string_view& text) {
  if (text.empty() || text[0] < 'A' || text[0] >= 'A' + kMaxNodes) return std::nullopt;
  const int node = text[0] - 'A';
  text.remove_prefix(1);
  return node;
}

std::optional<Hop> ParseHop(std::string_view text) {
  Hop hop;
  const std::optional<int> from = ConsumeNode(text);
  if (!from || !ConsumePrefix(text, "-")) return std::nullopt;
  const std::optional<int> to = ConsumeNode(text);
  if (!to || !ConsumePrefix(text, " ")) return std::nullopt;
  const std::optional<int64_t> weight = ConsumeNumber(text);
  if (!weight || !ConsumePrefix(text, " total ")) return std::nullopt;
  const std::optional<int64_t> total = ParseNumber(text);
  if (!total) return std::nullopt;
  hop.from = *from;
  hop.to = *to;
  hop.weight = *weight;
  hop.total = *total;
  return hop;
}

std::string EdgeName(int u, int v) { return {NodeName(u), '-', NodeName(v)}; }

class PathTask final : public TaskFamily {
 public:
  PathTask(int nodes, int degree, int64_t max_weight, bool optimal)
      : nodes_(nodes), degree_(degree), max_weight_(max_weight), optimal_(optimal) {}

  std::string name() const override { return "path"; }
  std::string spec() const override {
    return absl::StrCat("path:degree=", degree_, ",max_weight=", max_weight_, ",nodes=", nodes_,
                        ",optimal=", optimal_ ? "true" : "false");
  }

  Problem Generate(Rng& rng) const override {
    Graph g;
    g.nodes = nodes_;
    g.w.assign(static_cast<size_t>(nodes_) * nodes_, kNoEdge);
    auto add = [&](int u, int v) { g.SetWeight(u, v, rng.UniformInt(1, max_weight_)); };
    std::vector<int> order(nodes_);
    for (int i = 0; i < nodes_; ++i) order[i] = i;
    for (int i = nodes_ - 1; i > 0; --i) std::swap(order[i], order[rng.UniformInt(0, i)]);
    for (int i = 1; i < nodes_; ++i) add(order[i], order[rng.UniformInt(0, i - 1)]);
    const int pairs = nodes_ * (nodes_ - 1) / 2;
    const int edges = std::min(pairs, std::max(nodes_ - 1, (nodes_ * degree_ + 1) / 2));
    for (int count = nodes_ - 1; count < edges;) {
      const int u = static_cast<int>(rng.UniformInt(0, nodes_ - 1));
      const int v = static_cast<int>(rng.UniformInt(0, nodes_ - 1));
      if (u == v || g.Weight(u, v) != kNoEdge) continue;
      add(u, v);
      ++count;
    }
    g.source = static_cast<int>(rng.UniformInt(0, nodes_ - 1));
    std::vector<int> far, other;
    for (int v = 0; v < nodes_; ++v) {
      if (v == g.source) continue;
      (g.Weight(g.source, v) == kNoEdge ? far : other).push_back(v);
    }
    const std::vector<int>& pool = far.empty() ? other : far;
    g.target = pool[rng.UniformInt(0, static_cast<int64_t>(pool.size()) - 1)];

    std::vector<std::string> list;
    for (int u = 0; u < nodes_; ++u) {
      for (int v = u + 1; v < nodes_; ++v) {
        if (g.Weight(u, v) != kNoEdge)
          list.push_back(absl::StrCat(EdgeName(u, v), " ", g.Weight(u, v)));
      }
    }
    Problem p;
    p.prompt = absl::StrCat(
        "Edges: ", absl::StrJoin(list, ", "), ". ", optimal_ ? "Shortest path" : "Path", " from ",
        std::string(1, NodeName(g.source)), " to ", std::string(1, NodeName(g.target)), "?\n");
    p.answer = absl::StrCat(Dijkstra(g).distance[g.target]);
    p.task = spec();
    p.id = StableProblemId(p.prompt, p.answer);
    return p;
  }

  std::optional<std::string> Solve(const Problem& problem) const override {
    const absl::StatusOr<Graph> g = ParseProblem(problem);
    if (!g.ok()) return std::nullopt;
    const ShortestPaths sp = Dijkstra(*g);
    if (sp.distance[g->target] == kUnreachable) return std::nullopt;
    std::vector<int> path = {g->target};
    while (path.back() != g->source) path.push_back(sp.previous[path.back()]);
    std::reverse(path.begin(), path.end());
    std::vector<std::string> lines;
    int64_t total = 0;
    for (size_t i = 1; i < path.size(); ++i) {
      const int64_t weight = g->Weight(path[i - 1], path[i]);
      total += weight;
      lines.push_back(absl::StrCat(EdgeName(path[i - 1], path[i]), " ", weight, " total ", total));
    }
    return RenderStepResponse(lines, absl::StrCat(total));
  }

  Verdict Verify(const Problem& problem, std::string_view response) const override {
    const absl::StatusOr<Graph> g = ParseProblem(problem);
    if (!g.ok()) return RejectResponse(problem, response, std::string(g.status().message()));
    const absl::StatusOr<StepResponse> parsed = ParseStepResponse(response);
    if (!parsed.ok()) {
      return RejectResponse(problem, response, std::string(parsed.status().message()));
    }
    const std::string predicted(parsed->answer);
    auto fail = [&](std::string reason) {
      return Verdict::Incorrect(predicted, problem.answer, std::move(reason));
    };
    if (parsed->steps.empty()) return fail("no steps");
    std::vector<bool> visited(g->nodes, false);
    int at = g->source;
    visited[at] = true;
    int64_t total = 0;
    for (size_t i = 0; i < parsed->steps.size(); ++i) {
      const std::string where = absl::StrCat("step ", i + 1, ": ");
      const std::string_view text = parsed->steps[i];
      const std::optional<Hop> hop = ParseHop(text);
      if (!hop) {
        return fail(absl::StrCat(where, "malformed '", std::string(text),
                                 "' (expected X-Y weight total length)"));
      }
      if (hop->from != at) {
        return fail(absl::StrCat(where, "starts at ", std::string(1, NodeName(hop->from)),
                                 ", but the path is at ", std::string(1, NodeName(at))));
      }
      const int64_t weight =
          hop->to < g->nodes && hop->from != hop->to ? g->Weight(hop->from, hop->to) : kNoEdge;
      if (weight == kNoEdge) {
        return fail(absl::StrCat(where, "there is no edge ", EdgeName(hop->from, hop->to)));
      }
      if (hop->weight != weight) {
        return fail(absl::StrCat(where, "edge ", EdgeName(hop->from, hop->to), " weighs ", weight,
                                 ", not ", hop->weight));
      }
      if (visited[hop->to]) {
        return fail(absl::StrCat(where, std::string(1, NodeName(hop->to)), " is visited twice"));
      }
      visited[hop->to] = true;
      total += weight;
      if (hop->total != total) {
        return fail(absl::StrCat(where, "the total is ", total, ", not ", hop->total));
      }
      at = hop->to;
    }
    if (at != g->target) {
      return fail(absl::StrCat("the path ends at ", std::string(1, NodeName(at)), ", not ",
                               std::string(1, NodeName(g->target))));
    }
    if (optimal_) {
      const int64_t shortest = Dijkstra(*g).distance[g->target];
      if (total != shortest) {
        return fail(absl::StrCat("length ", total, " is not the shortest (", shortest, ")"));
      }
    }
    if (predicted != absl::StrCat(total)) {
      return fail(absl::StrCat("boxed answer ", predicted, ", path length ", total));
    }
    return Verdict::Correct(predicted, problem.answer);
  }

 private:
  // The graph and query of a prompt in this family's format; t must be reachable and, with
  // `optimal`, the answer must be the shortest length.
  absl::StatusOr<Graph> ParseProblem(const Problem& problem) const {
    const std::string question = optimal_ ? "Shortest path from " : "Path from ";
    auto malformed = [&] {
      return absl::InvalidArgumentError(
          absl::StrCat("problem: the prompt is not of the form 'Edges: A-B 3, B-C 5. ", question,
                       "A to C?\\n'"));
    };
    std::string_view text = problem.prompt;
    if (!ConsumePrefix(text, "Edges: ")) return malformed();
    struct Edge {
      int u, v;
      int64_t weight;
    };
    std::vector<Edge> edges;
    Graph g;
    while (true) {
      const std::optional<int> u = ConsumeNode(text);
      if (!u || !ConsumePrefix(text, "-")) return malformed();
      const std::optional<int> v = ConsumeNode(text);
      if (!v || !ConsumePrefix(text, " ")) return malformed();
      const std::optional<int64_t> weight = ConsumeNumber(text);
      if (!weight || *u == *v || *weight < 1 || *weight > kMaxWeight) return malformed();
      edges.push_back({*u, *v, *weight});
      g.nodes = std::max({g.nodes, *u + 1, *v + 1});
      if (ConsumePrefix(text, ". ")) break;
      if (!ConsumePrefix(text, ", ")) return malformed();
    }
    if (!ConsumePrefix(text, question)) return malformed();
    const std::optional<int> s = ConsumeNode(text);
    if (!s || !ConsumePrefix(text, " to ")) return malformed();
    const std::optional<int> t = ConsumeNode(text);
    if (!t || text != "?\n" || *s == *t) return malformed();
    g.nodes = std::max({g.nodes, *s + 1, *t + 1});
    g.source = *s;
    g.target = *t;
    g.w.assign(static_cast<size_t>(g.nodes) * g.nodes, kNoEdge);
    for (const Edge& e : edges) {
      if (g.Weight(e.u, e.v) != kNoEdge) {
        return absl::InvalidArgumentError(
            absl::StrCat("problem: edge ", EdgeName(e.u, e.v), " is listed twice"));
      }
      g.SetWeight(e.u, e.v, e.weight);
    }
    const int64_t shortest = Dijkstra(g).distance[g.target];
    if (shortest == kUnreachable) {
      return absl::InvalidArgumentError(absl::StrCat("problem: ", std::string(1, NodeName(*t)),
                                                     " cannot be reached from ",
                                                     std::string(1, NodeName(*s))));
    }
    if (optimal_ && problem.answer != absl::StrCat(shortest)) {
      return absl::InvalidArgumentError(absl::StrCat("problem: the answer '", problem.answer,
                                                     "' is not the shortest length ", shortest));
    }
    return g;
  }

  const int nodes_;
  const int degree_;
  const int64_t max_weight_;
  const bool optimal_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TaskFamily>> MakePathTask(TaskOptions& options) {
  const absl::StatusOr<int64_t> nodes = options.Int("nodes", 6, 3, kMaxNodes);
  if (!nodes.ok()) return nodes.status();
  const absl::StatusOr<int64_t> degree = options.Int("degree", 3, 2, kMaxNodes - 1);
  if (!degree.ok()) return degree.status();
  const absl::StatusOr<int64_t> max_weight = options.Int("max_weight", 9, 1, kMaxWeight);
  if (!max_weight.ok()) return max_weight.status();
  const absl::StatusOr<bool> optimal = options.Bool("optimal", true);
  if (!optimal.ok()) return optimal.status();
  return std::unique_ptr<TaskFamily>(
      new PathTask(static_cast<int>(*nodes), static_cast<int>(*degree), *max_weight, *optimal));
}

}  // namespace deepsearch
