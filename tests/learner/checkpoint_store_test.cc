#include "learner/checkpoint_store.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

#include "common/core/files.h"

namespace deepsearch {
namespace {

namespace fs = std::filesystem;

class CheckpointStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("checkpoint_store_test." +
            std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A model writer that leaves one file, so a checkpoint's model can be told apart.
  static CheckpointStore::ModelWriter Writes(std::string text) {
    return [text](const std::string& model_dir) {
      fs::create_directories(model_dir);
      return WriteFileAtomically((fs::path(model_dir) / "weights.txt").string(), text);
    };
  }

  fs::path dir_;
};

RunState SampleState() {
  RunState s;
  s.weight_version = 7;
  s.training_steps = 12;
  RunState::Train& t = s.train.emplace();
  t.job_id = "job-000003";
  t.program = R"({"round": 2})";
  t.solved = {"p-1", "p-9"};
  t.trajectories = 96;
  t.generated_tokens = 40321;
  t.screening_tokens = 1200;
  t.trained_tokens = 30000;
  t.last_accuracy = 0.375;
  t.collecting = RunState::Train::Collecting{12, {{"p-2", false}, {"p-5", true}}};
  return s;
}

TEST(RunStateTest, RoundTripsEveryField) {
  const RunState s = SampleState();
  absl::StatusOr<RunState> back = DecodeRunState(EncodeRunState(s), "learner.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->weight_version, 7);
  EXPECT_EQ(back->training_steps, 12);
  ASSERT_TRUE(back->train.has_value());
  EXPECT_EQ(back->train->job_id, "job-000003");
  EXPECT_EQ(back->train->program, R"({"round": 2})");
  EXPECT_EQ(back->train->solved, (std::set<std::string>{"p-1", "p-9"}));
  EXPECT_EQ(back->train->trajectories, 96);
  EXPECT_EQ(back->train->generated_tokens, 40321);
  EXPECT_EQ(back->train->screening_tokens, 1200);
  EXPECT_EQ(back->train->trained_tokens, 30000);
  EXPECT_EQ(back->train->last_accuracy, 0.375);
  ASSERT_TRUE(back->train->collecting.has_value());
  EXPECT_EQ(back->train->collecting->step, 12);
  ASSERT_EQ(back->train->collecting->problems.size(), 2u);
  EXPECT_EQ(back->train->collecting->problems[1].problem_id, "p-5");
  EXPECT_TRUE(back->train->collecting->problems[1].use_solution_cache);
  // Without a running job.
  RunState idle;
  idle.weight_version = 3;
  back = DecodeRunState(EncodeRunState(idle), "learner.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->train.has_value());
}

TEST(RunStateTest, BadStatesAreDataLossNamingTheFile) {
  for (const std::string& text :
       {std::string("not json"), std::string(R"({"format": 1})"),
        std::string(R"({"format": 2, "weight_version": 1})"),
        std::string(R"({"format": 1, "weight_version": "x"})"),
        std::string(R"({"format": 1, "weight_version": 1, "train": {}})")}) {
    absl::StatusOr<RunState> s = DecodeRunState(text, "/state/learner.json");
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();
    EXPECT_NE(s.status().message().find("/state/learner.json"), std::string::npos) << s.status();
  }
}

TEST_F(CheckpointStoreTest, WritesNamesTheLatestAndKeepsTheNewest) {
  CheckpointStore store(dir_.string(), /*keep=*/2);
  ASSERT_TRUE(store.Init().ok());
  EXPECT_EQ(store.Latest(), "");
  EXPECT_EQ(LatestCheckpoint(dir_.string()), "");
  for (int64_t step : {2, 4, 6}) {
    RunState s = SampleState();
    s.training_steps = step;
    absl::StatusOr<std::string> written =
        store.Write(step, s, Writes("weights of step " + std::to_string(step)));
    ASSERT_TRUE(written.ok()) << written.status();
    EXPECT_EQ(*written, (dir_ / "checkpoints" / ("step-0000000" + std::to_string(step))).string());
    EXPECT_EQ(store.Latest(), *written);
  }
  EXPECT_EQ(LatestCheckpoint(dir_.string()), (dir_ / "checkpoints" / "step-00000006").string());
  EXPECT_FALSE(fs::exists(dir_ / "checkpoints" / "step-00000002"));  // pruned: keep 2
  EXPECT_TRUE(fs::exists(dir_ / "checkpoints" / "step-00000004"));
  absl::StatusOr<std::string> model = ReadFileToString(
      (fs::path(CheckpointStore::ModelDir(store.Latest())) / "weights.txt").string());
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(*model, "weights of step 6");
  absl::StatusOr<RunState> state = store.ReadState(store.Latest());
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->training_steps, 6);
}

TEST_F(CheckpointStoreTest, AFailedWriteLeavesThePreviousCheckpointLatest) {
  CheckpointStore store(dir_.string(), 3);
  ASSERT_TRUE(store.Init().ok());
  ASSERT_TRUE(store.Write(1, SampleState(), Writes("one")).ok());
  const std::string first = store.Latest();
  absl::StatusOr<std::string> failed = store.Write(
      2, SampleState(), [](const std::string&) { return absl::InternalError("disk full"); });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(), "disk full");
  EXPECT_EQ(store.Latest(), first);
  EXPECT_FALSE(fs::exists(dir_ / "checkpoints" / "step-00000002"));
  // LATEST naming a directory that is gone (removed by hand) means no checkpoint.
  fs::remove_all(first);
  EXPECT_EQ(store.Latest(), "");
}

}  // namespace
}  // namespace deepsearch
