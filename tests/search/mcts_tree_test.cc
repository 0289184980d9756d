// The MCTS tree's rules against DEEPSEARCH_SPEC §1.3-§1.6 and §3.1: the worked example of
// §1.4 (values to 1e-4), UCT and frontier selection with their tie-breaks, the collection
// rule, terminal detection, token scores, and every ablation switch.
#include "search/mcts_tree.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deepsearch {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;

constexpr double kTol = 1e-4;

// A chunk of `length` tokens with a constant log-prob; eos marks an early end.
ChildChunk Chunk(int32_t length, float logprob = -1.0f, bool eos = false, int64_t version = 1) {
  ChildChunk c;
  c.tokens.assign(static_cast<size_t>(length), 7);
  c.logprobs.assign(static_cast<size_t>(length), logprob);
  c.eos = eos;
  c.weight_version = version;
  return c;
}

std::vector<ChildChunk> Chunks(int32_t n, int32_t length = 4) {
  std::vector<ChildChunk> out;
  for (int32_t i = 0; i < n; ++i) out.push_back(Chunk(length));
  return out;
}

void MarkVerified(MctsTree& tree, int32_t id, double reward) {
  MctsNode& n = tree.mutable_node(id);
  n.reward = reward;
  n.verdict = reward > 0 ? Verdict::Correct("1", "1") : Verdict::Incorrect("2", "1", "wrong");
}

// The example of spec §1.4: width 8, d_T = 64; the first dive root -> d1 -> d2 -> d3 ends in
// an incorrect leaf at depth 4 (the first child of the d3 expansion, its siblings open).
struct WorkedExample {
  MctsTree tree{SearchParams{}};
  int32_t d1 = -1, d2 = -1, d3 = -1, leaf = -1;
  std::vector<int32_t> d1s, d2s, d3s, d4s;

  WorkedExample() {
    d1s = tree.AddChildren(MctsTree::kRoot, Chunks(8));
    d1 = tree.SelectUct(MctsTree::kRoot);
    d2s = tree.AddChildren(d1, Chunks(8));
    d2 = tree.SelectUct(d1);
    d3s = tree.AddChildren(d2, Chunks(8));
    d3 = tree.SelectUct(d2);
    std::vector<ChildChunk> last = Chunks(8);
    last[0] = Chunk(2, -0.5f, /*eos=*/true);
    d4s = tree.AddChildren(d3, std::move(last));
    leaf = d4s[0];
    MarkVerified(tree, leaf, -1.0);
    tree.Backup(leaf, -1.0);
  }
};

TEST(MctsTreeTest, WorkedExampleFirstBackup) {
  WorkedExample ex;
  // Local UCT among fresh children (all q = 0, N = 1) is the first generated child.
  EXPECT_EQ(ex.d1, ex.d1s[0]);
  EXPECT_EQ(ex.d2, ex.d2s[0]);
  EXPECT_EQ(ex.d3, ex.d3s[0]);
  const MctsTree& t = ex.tree;
  struct Row {
    int32_t id;
    double q;
    int32_t n;
    double mean;
  };
  for (const Row& row :
       {Row{MctsTree::kRoot, -0.2, 1, -0.2}, Row{ex.d1, -0.4, 2, -0.2}, Row{ex.d2, -0.6, 2, -0.3},
        Row{ex.d3, -0.8, 2, -0.4}, Row{ex.leaf, -1.0, 1, -1.0}}) {
    SCOPED_TRACE(row.id);
    EXPECT_NEAR(t.node(row.id).value, row.q, kTol);
    EXPECT_EQ(t.node(row.id).visits, row.n);
    EXPECT_NEAR(t.node(row.id).Q(), row.mean, kTol);
  }
  // Frontier scores of the first unexpanded sibling at each depth.
  EXPECT_NEAR(t.FrontierScore(ex.d1s[1]), -0.077700, kTol);
  EXPECT_NEAR(t.FrontierScore(ex.d2s[1]), -0.077182, kTol);
  EXPECT_NEAR(t.FrontierScore(ex.d3s[1]), -0.114360, kTol);
  EXPECT_NEAR(t.FrontierScore(ex.d4s[1]), -0.149480, kTol);
  // The winner: the first depth-2 sibling.
  EXPECT_EQ(t.SelectGlobal(), ex.d2s[1]);
}

TEST(MctsTreeTest, WorkedExampleCorrectLeafOverwritesNegativeAncestors) {
  WorkedExample ex;
  MctsTree& t = ex.tree;
  int32_t current = t.SelectGlobal();
  ASSERT_EQ(current, ex.d2s[1]);
  std::vector<int32_t> path = {current};
  while (t.node(current).depth < 5) {  // dive to depth 5 through first children
    t.AddChildren(current, Chunks(8));
    current = t.SelectUct(current);
    path.push_back(current);
  }
  std::vector<ChildChunk> last = Chunks(8);
  last[3] = Chunk(3, -0.1f, /*eos=*/true);
  const int32_t leaf = t.AddChildren(current, std::move(last))[3];
  ASSERT_EQ(t.node(leaf).depth, 6);
  MarkVerified(t, leaf, 1.0);
  t.Backup(leaf, 1.0);
  path.push_back(leaf);

  EXPECT_NEAR(t.node(MctsTree::kRoot).value, 1.0 / 7, kTol);
  EXPECT_EQ(t.node(MctsTree::kRoot).visits, 2);
  EXPECT_NEAR(t.node(ex.d1).value, 2.0 / 7, kTol);
  EXPECT_EQ(t.node(ex.d1).visits, 3);
  const double expected[] = {0.4286, 0.5714, 0.7143, 0.8571, 1.0};
  ASSERT_EQ(path.size(), 5u);
  for (size_t i = 0; i < path.size(); ++i)
    EXPECT_NEAR(t.node(path[i]).value, expected[i], kTol) << i;
  // The old negative branch below d1 keeps its values (never on a correct path).
  EXPECT_NEAR(t.node(ex.d2).value, -0.6, kTol);
  // Token scores (§3.1): tanh of the final q for every node but the leaf, the leaf's raw
  // value, no overlong penalty at this length.
  const ScoredTrajectory s = t.Score(leaf);
  ASSERT_EQ(s.step_ends.size(), 6u);  // d1, d2', d3', d4', d5', leaf
  EXPECT_THAT(s.step_ends, ElementsAre(4, 8, 12, 16, 20, 23));
  EXPECT_NEAR(s.token_scores[0], std::tanh(2.0 / 7), 1e-6);
  EXPECT_NEAR(s.token_scores[4], std::tanh(3.0 / 7), 1e-6);
  EXPECT_NEAR(s.token_scores[19], std::tanh(6.0 / 7), 1e-6);
  EXPECT_NEAR(s.token_scores[20], 1.0, 1e-6);
  EXPECT_NEAR(s.token_scores[22], 1.0, 1e-6);
  EXPECT_NEAR(s.final_score, 1.0, 1e-9);
  EXPECT_EQ(s.response_tokens.size(), 23u);
  EXPECT_EQ(s.logprobs.size(), 23u);
  EXPECT_TRUE(s.verdict.correct);
}

TEST(MctsTreeTest, ConstrainedUpdateKeepsPositiveValuesOnWrongPaths) {
  MctsTree t{SearchParams{}};
  const std::vector<int32_t> kids = t.AddChildren(MctsTree::kRoot, Chunks(2));
  std::vector<ChildChunk> leaves = {Chunk(1, -1, true), Chunk(1, -1, true)};
  const std::vector<int32_t> ls = t.AddChildren(kids[0], std::move(leaves));
  t.Backup(ls[0], 1.0);  // depth 2: gammas 1/3, 2/3, 1
  EXPECT_NEAR(t.node(kids[0]).value, 2.0 / 3, 1e-12);
  t.Backup(ls[1], -1.0);  // old > 0, new < 0: kept
  EXPECT_NEAR(t.node(kids[0]).value, 2.0 / 3, 1e-12);
  EXPECT_NEAR(t.node(MctsTree::kRoot).value, 1.0 / 3, 1e-12);
  EXPECT_EQ(t.node(kids[0]).visits, 3);           // creation + two backups
  EXPECT_NEAR(t.node(ls[1]).value, -1.0, 1e-12);  // 0 * -1 >= 0: accumulates
}

TEST(MctsTreeTest, VanillaUpdateFloorsSignChangesAtZero) {
  SearchParams p;
  p.q_update = QUpdate::kVanilla;
  MctsTree t{p};
  const std::vector<int32_t> kids = t.AddChildren(MctsTree::kRoot, Chunks(1));
  const std::vector<int32_t> ls =
      t.AddChildren(kids[0], {Chunk(1, -1, true), Chunk(1, -1, true), Chunk(1, -1, true)});
  t.Backup(ls[0], -1.0);  // root -1/3, kid -2/3
  EXPECT_NEAR(t.node(kids[0]).value, -2.0 / 3, 1e-12);
  t.Backup(ls[1], 1.0);  // sign change: max(-2/3 + 2/3, 0) = 0 (constrained would give 2/3)
  EXPECT_NEAR(t.node(kids[0]).value, 0.0, 1e-12);
  EXPECT_NEAR(t.node(MctsTree::kRoot).value, 0.0, 1e-12);
  t.Backup(ls[2], -1.0);  // 0 * -1 >= 0: accumulates
  EXPECT_NEAR(t.node(kids[0]).value, -2.0 / 3, 1e-12);

  MctsTree c{SearchParams{}};
  const std::vector<int32_t> ck = c.AddChildren(MctsTree::kRoot, Chunks(1));
  const std::vector<int32_t> cl = c.AddChildren(ck[0], {Chunk(1, -1, true), Chunk(1, -1, true)});
  c.Backup(cl[0], -1.0);
  c.Backup(cl[1], 1.0);
  EXPECT_NEAR(c.node(ck[0]).value, 2.0 / 3, 1e-12);
}

TEST(MctsTreeTest, GammaFloorAppliesToShallowNodesOfDeepPaths) {
  SearchParams p;
  p.max_depth = 30;
  MctsTree t{p};
  int32_t current = MctsTree::kRoot;
  std::vector<int32_t> path;
  for (int d = 1; d < 20; ++d) {
    current = t.AddChildren(current, Chunks(1))[0];
    path.push_back(current);
  }
  const int32_t leaf = t.AddChildren(current, {Chunk(1, -1, true)})[0];  // depth 20
  t.Backup(leaf, 1.0);
  EXPECT_NEAR(t.node(MctsTree::kRoot).value, 0.1, 1e-12);  // max(1/21, 0.1)
  EXPECT_NEAR(t.node(path[0]).value, 0.1, 1e-12);          // max(2/21, 0.1)
  EXPECT_NEAR(t.node(path[1]).value, 3.0 / 21, 1e-12);
}

TEST(MctsTreeTest, TerminalDetection) {
  SearchParams p;
  p.max_depth = 2;
  MctsTree t{p};
  // Depth 1: EOS makes a terminal at any length; a full chunk does not.
  const std::vector<int32_t> d1 =
      t.AddChildren(MctsTree::kRoot, {Chunk(4), Chunk(1, -1, true), Chunk(4, -1, true)});
  EXPECT_FALSE(t.node(d1[0]).terminal);
  EXPECT_TRUE(t.node(d1[1]).terminal);
  EXPECT_TRUE(t.node(d1[2]).terminal);  // EOS on the chunk's last token counts too
  EXPECT_EQ(t.node(d1[0]).visits, 1);   // the creation visit
  EXPECT_EQ(t.node(d1[1]).visits, 0);
  // Depth 2 = d_T: every child is terminal, EOS or not.
  const std::vector<int32_t> d2 = t.AddChildren(d1[0], {Chunk(4), Chunk(2, -1, true)});
  EXPECT_TRUE(t.node(d2[0]).terminal);
  EXPECT_FALSE(t.node(d2[0]).eos);
  EXPECT_TRUE(t.node(d2[1]).terminal);
  EXPECT_EQ(t.node(d2[0]).visits, 0);
  // No frontier left: the root is never on it.
  EXPECT_EQ(t.SelectGlobal(), -1);
  EXPECT_EQ(t.SelectUct(d1[0]), -1);  // all children terminal
}

TEST(MctsTreeTest, UctPrefersValueThenExploresThenBreaksTiesToTheFirstChild) {
  MctsTree t{SearchParams{}};
  const std::vector<int32_t> kids = t.AddChildren(MctsTree::kRoot, Chunks(3));
  // Root N = 0: no exploration term; all Q = 0: the first child.
  EXPECT_EQ(t.SelectUct(MctsTree::kRoot), kids[0]);
  // Give the second child a better Q.
  t.mutable_node(kids[1]).value = 0.5;
  EXPECT_EQ(t.SelectUct(MctsTree::kRoot), kids[1]);
  // With N_parent > 0 the exploration term favours the less visited child:
  // root N = 4; kid0 N = 1 (u = 2 sqrt(ln 4)), kid1 N = 4 (Q = 0.125, u = 2 sqrt(ln 4 / 4)).
  t.mutable_node(MctsTree::kRoot).visits = 4;
  t.mutable_node(kids[1]).visits = 4;
  t.mutable_node(kids[2]).visits = 2;
  EXPECT_EQ(t.SelectUct(MctsTree::kRoot), kids[0]);
  // Terminal children are never chosen (-inf), even with the best value.
  MctsTree u{SearchParams{}};
  const std::vector<int32_t> k2 = u.AddChildren(MctsTree::kRoot, {Chunk(1, -1, true), Chunk(3)});
  u.mutable_node(k2[0]).value = 5;
  EXPECT_EQ(u.SelectUct(MctsTree::kRoot), k2[1]);
}

TEST(MctsTreeTest, GlobalSelectionBreaksTiesInDfsPreOrderNotCreationOrder) {
  MctsTree t{SearchParams{}};
  const std::vector<int32_t> kids = t.AddChildren(MctsTree::kRoot, Chunks(2));
  // Expand the second child first: its children get the smaller ids.
  const std::vector<int32_t> b = t.AddChildren(kids[1], Chunks(2));
  const std::vector<int32_t> a = t.AddChildren(kids[0], Chunks(2));
  ASSERT_LT(b[0], a[0]);
  // All candidates have Q_parent = 0 at depth 2: equal scores; DFS visits kids[0]'s subtree
  // first.
  EXPECT_EQ(t.FrontierScore(a[0]), t.FrontierScore(b[0]));
  EXPECT_EQ(t.SelectGlobal(), a[0]);
  // A better parent wins regardless of order.
  t.mutable_node(kids[1]).value = 0.3;
  EXPECT_EQ(t.SelectGlobal(), b[0]);
}

TEST(MctsTreeTest, DepthBonusVariants) {
  SearchParams p;
  MctsTree t{p};
  const int32_t kid = t.AddChildren(MctsTree::kRoot, Chunks(1))[0];
  const int32_t grandkid = t.AddChildren(kid, Chunks(1))[0];  // depth 2, parent Q = 0
  EXPECT_NEAR(t.FrontierScore(grandkid), 0.01 * std::sqrt(2.0 / 64), 1e-12);
  p.depth_bonus = DepthBonus::kLog;
  MctsTree tl{p};
  const int32_t kl = tl.AddChildren(tl.AddChildren(MctsTree::kRoot, Chunks(1))[0], Chunks(1))[0];
  EXPECT_NEAR(tl.FrontierScore(kl), 0.01 * std::log(3.0), 1e-12);
  p.depth_bonus = DepthBonus::kConstant;
  MctsTree tc{p};
  const int32_t kc = tc.AddChildren(tc.AddChildren(MctsTree::kRoot, Chunks(1))[0], Chunks(1))[0];
  EXPECT_NEAR(tc.FrontierScore(kc), 0.02, 1e-12);
}

TEST(MctsTreeTest, EntropyBonusOnlyWhenSwitchedOn) {
  for (bool on : {false, true}) {
    SearchParams p;
    p.entropy_bonus = on;
    MctsTree t{p};
    // Two siblings: the second is less confident (chunk NLL 2 vs 0.5).
    const std::vector<int32_t> kids =
        t.AddChildren(MctsTree::kRoot, {Chunk(4, -0.5f), Chunk(4, -2.0f)});
    EXPECT_NEAR(t.FrontierScore(kids[1]) - t.FrontierScore(kids[0]), on ? 0.4 * 1.5 : 0.0, 1e-6);
    EXPECT_EQ(t.SelectGlobal(), on ? kids[1] : kids[0]);
  }
}

TEST(MctsTreeTest, CollectionPrefersCorrectThenMostConfident) {
  MctsTree t{SearchParams{}};
  Rng rng(1);
  // Path NLLs: a 1.0 incorrect, b 0.2 incorrect, c 0.9 correct, d 0.5 correct.
  const std::vector<int32_t> ids = t.AddChildren(
      MctsTree::kRoot,
      {Chunk(2, -1.0f, true), Chunk(2, -0.2f, true), Chunk(2, -0.9f, true), Chunk(2, -0.5f, true)});
  MarkVerified(t, ids[0], -1);
  MarkVerified(t, ids[1], -1);
  MarkVerified(t, ids[2], 1);
  MarkVerified(t, ids[3], 1);
  EXPECT_EQ(t.ChooseLeaf(ids, rng), ids[3]);  // correct beats the more confident wrong one
  EXPECT_EQ(t.ChooseLeaf({ids[0], ids[1]}, rng), ids[1]);
  // Incomplete leaves (reward incomplete_score != -1) only when nothing scored -1.
  SearchParams p;
  p.incomplete_score = -0.5;
  MctsTree u{p};
  const std::vector<int32_t> v =
      u.AddChildren(MctsTree::kRoot, {Chunk(2, -0.1f, true), Chunk(2, -2.0f, true)});
  MarkVerified(u, v[0], -0.5);
  MarkVerified(u, v[1], -1.0);
  EXPECT_EQ(u.ChooseLeaf(v, rng), v[1]);
  EXPECT_EQ(u.ChooseLeaf({v[0]}, rng), v[0]);
}

TEST(MctsTreeTest, CollectionUsesTheWholePathNotTheLeafChunk) {
  MctsTree t{SearchParams{}};
  // Parent A is confident, parent B is not; their leaves the reverse.
  const std::vector<int32_t> parents =
      t.AddChildren(MctsTree::kRoot, {Chunk(8, -0.1f), Chunk(8, -3.0f)});
  const int32_t la = t.AddChildren(parents[0], {Chunk(2, -1.0f, true)})[0];
  const int32_t lb = t.AddChildren(parents[1], {Chunk(2, -0.5f, true)})[0];
  EXPECT_NEAR(t.PathMeanNll(la), (8 * 0.1 + 2 * 1.0) / 10, 1e-6);
  MarkVerified(t, la, -1);
  MarkVerified(t, lb, -1);
  Rng rng(1);
  EXPECT_EQ(t.ChooseLeaf({lb, la}, rng), la);
}

TEST(MctsTreeTest, NegativeChoiceAblations) {
  auto build = [](NegativeChoice choice) {
    SearchParams p;
    p.negative_choice = choice;
    return MctsTree{p};
  };
  for (NegativeChoice choice :
       {NegativeChoice::kMostConfident, NegativeChoice::kLeastConfident, NegativeChoice::kRandom}) {
    MctsTree t = build(choice);
    std::vector<ChildChunk> leaves;
    for (int i = 0; i < 6; ++i) leaves.push_back(Chunk(2, -0.1f * static_cast<float>(i + 1), true));
    const std::vector<int32_t> ids = t.AddChildren(MctsTree::kRoot, std::move(leaves));
    for (int32_t id : ids) MarkVerified(t, id, -1);
    Rng rng(3);
    if (choice == NegativeChoice::kMostConfident) {
      EXPECT_EQ(t.ChooseLeaf(ids, rng), ids[0]);
    } else if (choice == NegativeChoice::kLeastConfident) {
      EXPECT_EQ(t.ChooseLeaf(ids, rng), ids[5]);
    } else {
      std::set<int32_t> seen;
      for (int i = 0; i < 200; ++i) seen.insert(t.ChooseLeaf(ids, rng));
      EXPECT_EQ(seen.size(), ids.size());  // every negative gets picked sometimes
    }
    // Correct leaves are always taken most-confident first, whatever the ablation.
    MarkVerified(t, ids[4], 1);
    MarkVerified(t, ids[2], 1);
    EXPECT_EQ(t.ChooseLeaf(ids, rng), ids[2]);
  }
}

TEST(MctsTreeTest, DescendUctFollowsValues) {
  MctsTree t{SearchParams{}};
  const std::vector<int32_t> kids = t.AddChildren(MctsTree::kRoot, Chunks(2));
  const std::vector<int32_t> a = t.AddChildren(kids[0], Chunks(2));
  const std::vector<int32_t> b = t.AddChildren(kids[1], Chunks(2));
  EXPECT_EQ(t.DescendUct(), a[0]);
  t.mutable_node(kids[1]).value = 1.0;
  t.mutable_node(b[1]).value = 1.0;
  EXPECT_EQ(t.DescendUct(), b[1]);
}

TEST(MctsTreeTest, OverlongPenalty) {
  const SearchParams p;  // 16384, 4096, 1.0
  EXPECT_EQ(OverlongPenalty(p, 100), 0.0);
  EXPECT_EQ(OverlongPenalty(p, 12288), 0.0);
  EXPECT_NEAR(OverlongPenalty(p, 14336), -0.5, 1e-12);
  EXPECT_NEAR(OverlongPenalty(p, 16384), -1.0, 1e-12);
  EXPECT_NEAR(OverlongPenalty(p, 20000), -1.0, 1e-12);
  SearchParams q;
  q.max_response_tokens = 10;
  q.overlong_buffer = 4;
  q.overlong_factor = 2.0;
  EXPECT_NEAR(OverlongPenalty(q, 7), -0.5, 1e-12);  // -(7 - 6) / 4 * 2
  q.overlong_buffer = 0;  // no ramp: only responses beyond the maximum lose the full factor
  EXPECT_EQ(OverlongPenalty(q, 10), 0.0);
  EXPECT_EQ(OverlongPenalty(q, 11), -2.0);
}

TEST(MctsTreeTest, SoftClipTemperatureAndMaximum) {
  SearchParams p;
  p.q_soft_clip_temperature = 2.0;
  p.q_max = 0.5;
  MctsTree t{p};
  const int32_t a = t.AddChildren(MctsTree::kRoot, {Chunk(2)})[0];
  const int32_t leaf = t.AddChildren(a, {Chunk(2, -1, true)})[0];
  t.Backup(leaf, 1.0);  // a: 2/3, leaf 1
  const ScoredTrajectory s = t.Score(leaf);
  EXPECT_NEAR(s.token_scores[0], std::tanh((2.0 / 3) / 2.0) * 0.5, 1e-6);
  EXPECT_NEAR(s.token_scores[2], 1.0, 1e-6);  // the leaf keeps its raw value
}

TEST(MctsTreeTest, TokenScoresCarryThePenaltyOnEveryStepAndVersionsPerChunk) {
  SearchParams p;
  p.max_response_tokens = 8;
  p.overlong_buffer = 4;  // responses over 4 tokens are penalised
  MctsTree t{p};
  std::vector<ChildChunk> first;
  first.push_back(Chunk(3, -0.1f, false, /*version=*/1));
  const int32_t a = t.AddChildren(MctsTree::kRoot, std::move(first))[0];
  std::vector<ChildChunk> second;
  second.push_back(Chunk(3, -0.1f, true, /*version=*/2));
  const int32_t leaf = t.AddChildren(a, std::move(second))[0];
  MarkVerified(t, leaf, -1);
  t.Backup(leaf, -1.0);  // a: -2/3; leaf -1
  const ScoredTrajectory s = t.Score(leaf);
  const double pen = -(6.0 - 4.0) / 4.0;
  ASSERT_EQ(s.token_scores.size(), 6u);
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(s.token_scores[static_cast<size_t>(i)], std::tanh(-2.0 / 3) + pen, 1e-6);
  for (int i = 3; i < 6; ++i) EXPECT_NEAR(s.token_scores[static_cast<size_t>(i)], -1.0 + pen, 1e-6);
  EXPECT_NEAR(s.final_score, -1.5, 1e-9);
  ASSERT_EQ(s.versions.size(), 2u);
  EXPECT_EQ(s.versions[0], (std::pair<int64_t, int32_t>{1, 3}));
  EXPECT_EQ(s.versions[1], (std::pair<int64_t, int32_t>{2, 6}));
  EXPECT_THAT(s.logprobs, Each(-0.1f));
}

}  // namespace
}  // namespace deepsearch
