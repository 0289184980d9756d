// The outer loop of a training job: screening into a hard subset (Pass1@K <= 25%), steps over
// shuffled epochs, replay admission by the round's fraction correct (and the Pass1@K variant),
// re-screening, the stopping rules, and a checkpoint round trip.
#include "learner/train_program.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

std::vector<std::string> Ids(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(absl::StrCat("p", i));
  return ids;
}

std::vector<std::string> Names(const std::vector<TrainProgram::StepProblem>& step) {
  std::vector<std::string> out;
  for (const auto& s : step) out.push_back(s.problem_id);
  return out;
}

TrainProgramConfig Small() {
  TrainProgramConfig c;
  c.batch_problems = 2;
  c.steps_per_round = 2;
  c.seed = 7;
  return c;
}

TEST(TrainProgramTest, ScreeningKeepsProblemsWithAtMostOneOfFourCorrect) {
  TrainProgram p = *TrainProgram::Create("job", Ids(6), Small());
  EXPECT_EQ(p.phase(), TrainProgram::Phase::kScreening);
  EXPECT_THAT(p.TakeScreening(), ElementsAre("p0", "p1", "p2", "p3", "p4", "p5"));
  EXPECT_TRUE(p.TakeScreening().empty());  // handed out once
  p.OnScreened("p0", 4, 0);
  p.OnScreened("p1", 4, 1);
  p.OnScreened("p2", 4, 2);
  p.OnScreened("p3", 4, 4);
  p.OnScreeningFailed("p4");
  EXPECT_EQ(p.phase(), TrainProgram::Phase::kScreening);
  p.OnScreened("p5", 4, 1);
  EXPECT_EQ(p.phase(), TrainProgram::Phase::kTraining);
  EXPECT_THAT(p.hard_subset(), ElementsAre("p0", "p1", "p5"));
  ASSERT_EQ(p.rounds().size(), 1u);
  EXPECT_EQ(p.rounds()[0].screened, 6);
  EXPECT_EQ(p.rounds()[0].hard, 3);
}

TrainProgram Screened(TrainProgramConfig config = Small()) {
  TrainProgram p = *TrainProgram::Create("job", Ids(4), config);
  p.TakeScreening();
  for (const std::string& id : Ids(4)) p.OnScreened(id, 4, id == "p3" ? 3 : 0);
  return p;  // hard: p0 p1 p2
}

TEST(TrainProgramTest, StepsWalkShuffledEpochsOneStepAtATime) {
  TrainProgramConfig c = Small();
  c.steps_per_round = 100;
  TrainProgram p = Screened(c);
  const std::vector<std::string> first = Names(p.NextStep());
  ASSERT_EQ(first.size(), 2u);
  EXPECT_NE(first[0], first[1]);
  EXPECT_TRUE(p.NextStep().empty());  // the step is not done yet
  p.StepDone(0);
  const std::vector<std::string> second = Names(p.NextStep());
  ASSERT_EQ(second.size(), 2u);
  EXPECT_NE(second[0], second[1]);
  // Three problems, two per step: the first epoch's last problem opens the second step.
  std::set<std::string> epoch(first.begin(), first.end());
  epoch.insert(second[0]);
  EXPECT_EQ(epoch.size(), 3u);
  // The same seed walks the same way.
  TrainProgram q = Screened(c);
  EXPECT_EQ(Names(q.NextStep()), first);
  EXPECT_EQ(p.training_kind(), LeaseKind::kSearch);
}

TEST(TrainProgramTest, RoundFractionAdmissionThenRescreening) {
  TrainProgram p = Screened();
  for (int s = 0; s < 2; ++s) {
    const std::vector<TrainProgram::StepProblem> step = p.NextStep();
    for (const auto& sp : step) EXPECT_FALSE(sp.use_solution_cache);
    p.StepDone(0);
  }
  // Nothing was reported: nobody admitted; round 1 screens the hard subset again.
  EXPECT_EQ(p.phase(), TrainProgram::Phase::kScreening);
  EXPECT_EQ(p.round(), 1);
  EXPECT_TRUE(p.replay_buffer().empty());

  TrainProgram q = Screened();
  q.NextStep();
  q.OnTrainingTree("p0", 8, 1);  // 1/8 <= 0.25: admitted
  q.OnTrainingTree("p1", 8, 4);  // 1/2: too easy
  q.OnTrainingTree("p2", 8, 0);  // never solved: nothing to cache
  q.StepDone(0);
  q.NextStep();
  q.OnTrainingTree("p0", 7, 0);  // fresh 15, correct 1: still admitted
  q.StepDone(0);
  EXPECT_THAT(q.replay_buffer(), UnorderedElementsAre("p0"));
  EXPECT_EQ(q.rounds()[0].admitted, 1);
  EXPECT_EQ(q.rounds()[0].steps, 2);
  EXPECT_THAT(q.TakeScreening(), ElementsAre("p0", "p1", "p2"));
  q.OnScreened("p0", 4, 1);
  q.OnScreened("p1", 4, 2);  // mastered: leaves
  q.OnScreened("p2", 4, 0);
  EXPECT_THAT(q.hard_subset(), ElementsAre("p0", "p2"));
  ASSERT_EQ(q.rounds().size(), 2u);
  EXPECT_EQ(q.rounds()[1].cached, 1);
  for (const auto& sp : q.NextStep()) EXPECT_EQ(sp.use_solution_cache, sp.problem_id == "p0");
}

TEST(TrainProgramTest, Pass1AdmissionNeedsTheProblemToStayHard) {
  TrainProgramConfig c = Small();
  c.admission = ReplayAdmission::kPass1;
  TrainProgram p = Screened(c);
  p.NextStep();
  p.OnTrainingTree("p0", 8, 3);  // found by search
  p.OnTrainingTree("p1", 8, 2);  // found by search
  p.StepDone(0);
  p.NextStep();
  p.StepDone(0);
  EXPECT_TRUE(p.replay_buffer().empty());  // decided at the next screening
  p.TakeScreening();
  p.OnScreened("p0", 4, 1);  // still hard: admitted
  p.OnScreened("p1", 4, 3);  // learned: not
  p.OnScreened("p2", 4, 0);  // hard but never found
  EXPECT_THAT(p.replay_buffer(), UnorderedElementsAre("p0"));
  EXPECT_EQ(p.rounds()[0].admitted, 1);
}

TEST(TrainProgramTest, StoppingRules) {
  TrainProgramConfig c = Small();
  c.max_steps = 3;
  TrainProgram p = Screened(c);
  for (int s = 0; s < 2; ++s) {
    p.NextStep();
    p.StepDone(0);
  }
  p.TakeScreening();
  for (const char* id : {"p0", "p1", "p2"}) p.OnScreened(id, 4, 0);
  p.NextStep();
  p.StepDone(0);
  EXPECT_EQ(p.phase(), TrainProgram::Phase::kDone);
  EXPECT_EQ(p.step(), 3);

  c = Small();
  c.max_rounds = 1;
  TrainProgram q = Screened(c);
  q.NextStep();
  q.StepDone(0);
  q.NextStep();
  q.StepDone(0);
  EXPECT_EQ(q.phase(), TrainProgram::Phase::kDone);

  // Everything mastered at screening: done at once.
  TrainProgram r = *TrainProgram::Create("job", Ids(2), Small());
  r.TakeScreening();
  r.OnScreened("p0", 4, 4);
  r.OnScreened("p1", 4, 2);
  EXPECT_EQ(r.phase(), TrainProgram::Phase::kDone);
}

TEST(TrainProgramTest, GrpoWithoutScreeningTrainsOnEverything) {
  TrainProgramConfig c = Small();
  c.algorithm = Algorithm::kGrpo;
  c.screen = false;
  c.batch_problems = 10;  // more than the set: each problem once per step
  TrainProgram p = *TrainProgram::Create("job", Ids(3), c);
  EXPECT_EQ(p.phase(), TrainProgram::Phase::kTraining);
  EXPECT_EQ(p.training_kind(), LeaseKind::kRollout);
  EXPECT_EQ(p.NextStep().size(), 3u);
  EXPECT_FALSE(TrainProgram::Create("job", {}, Small()).ok());
  EXPECT_EQ(ParseAlgorithm("grpo"), Algorithm::kGrpo);
  EXPECT_EQ(AlgorithmName(Algorithm::kDeepSearch), "deepsearch");
  EXPECT_FALSE(ParseAlgorithm("ppo").has_value());
}

TEST(TrainProgramTest, TokenBudgetEndsTheJobAfterTheStepThatReachesIt) {
  TrainProgramConfig c = Small();
  c.steps_per_round = 100;
  c.max_generated_tokens = 1000;
  TrainProgram p = Screened(c);
  p.NextStep();
  p.StepDone(400);  // screening + step 1
  EXPECT_FALSE(p.OutOfTokens());
  EXPECT_EQ(p.phase(), TrainProgram::Phase::kTraining);
  p.NextStep();
  p.StepDone(999);
  EXPECT_EQ(p.phase(), TrainProgram::Phase::kTraining);
  p.NextStep();
  p.StepDone(1000);  // the budget is reached: no further step
  EXPECT_TRUE(p.OutOfTokens());
  EXPECT_EQ(p.phase(), TrainProgram::Phase::kDone);
  EXPECT_EQ(p.step(), 3);
  EXPECT_TRUE(p.NextStep().empty());
  // The budget and the count survive a checkpoint.
  absl::StatusOr<TrainProgram> q = TrainProgram::FromJson(p.ToJson(), "job");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->config().max_generated_tokens, 1000);
  EXPECT_TRUE(q->OutOfTokens());

  // A budget spent by the end of a round also ends the job instead of re-screening.
  TrainProgramConfig r = Small();  // 2 steps per round
  r.max_generated_tokens = 50;
  TrainProgram t = Screened(r);
  t.NextStep();
  t.StepDone(10);
  t.NextStep();
  t.StepDone(60);
  EXPECT_EQ(t.phase(), TrainProgram::Phase::kDone);
}

TEST(TrainProgramTest, CheckpointRoundTripContinuesIdentically) {
  TrainProgram p = Screened();
  p.NextStep();
  p.OnTrainingTree("p0", 8, 1);
  p.StepDone(0);
  const std::string saved = p.ToJson();
  absl::StatusOr<TrainProgram> q = TrainProgram::FromJson(saved, "job");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->ToJson(), saved);
  EXPECT_EQ(Names(q->NextStep()), Names(p.NextStep()));
  q->StepDone(0);
  p.StepDone(0);
  EXPECT_EQ(q->ToJson(), p.ToJson());
  EXPECT_EQ(TrainProgram::FromJson("{", "job").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(TrainProgram::FromJson("{\"phase\": 1}", "job").status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace deepsearch
