// Writes the seeds the project's own encoders make for the fuzzers whose inputs are binary
// or generated: OUT/<fuzzer>/<name>. tests/check_fuzz.py runs it before every smoke run; the
// seeds of text formats come from tests/data and configs/ directly.
//
//   make_seeds OUT
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "deepsearch/v1/cache_service.pb.h"
#include "deepsearch/v1/learner_service.pb.h"
#include "deepsearch/v1/problem_service.pb.h"

#include "common/core/rng.h"
#include "common/model/qwen2_config.h"
#include "common/rpc/weight_stream.h"
#include "common/tasks/dataset.h"
#include "common/tasks/task.h"
#include "common/tokenizer/char_tokenizer.h"
#include "common/weights/weight_set.h"

namespace ds = deepsearch;
namespace fs = std::filesystem;

namespace {

fs::path g_out;

void Write(const std::string& fuzzer, const std::string& name, const std::string& bytes) {
  fs::create_directories(g_out / fuzzer);
  std::ofstream(g_out / fuzzer / name, std::ios::binary) << bytes;
}

ds::WeightSet Set(int64_t version, uint64_t seed) {
  ds::Rng rng(seed);
  auto bytes = [&](size_t n) {
    std::string b(n, '\0');
    for (char& c : b) c = static_cast<char>(rng.Next() & 0xff);
    return b;
  };
  ds::WeightSet set;
  set.version = version;
  set.model_config_json = R"({"model_type": "qwen2", "hidden_size": 8})";
  (void)set.Add("model.embed_tokens.weight", ds::Dtype::kBF16, {16, 8}, bytes(256));
  (void)set.Add("model.norm.weight", ds::Dtype::kF32, {8}, bytes(32));
  return set;
}

// Chunks of 96 payload bytes, each with the fuzzer's 2-byte length in front.
std::string Stream(const ds::EncodedWeights& weights) {
  std::string out;
  ds::rpc::WriteWeightChunks(weights, 96, [&](const ds::v1::WeightChunk& chunk) {
    const std::string wire = chunk.SerializeAsString();
    out.push_back(static_cast<char>(wire.size() & 0xff));
    out.push_back(static_cast<char>(wire.size() >> 8));
    out += wire;
    return true;
  });
  return out;
}

ds::v1::Trajectory Trajectory() {
  ds::v1::Trajectory t;
  t.set_trajectory_id("lease-1.1/0");
  t.set_lease_id("lease-1");
  t.set_job_id("job-1");
  t.set_problem_id("p1");
  t.set_tree_id("lease-1.1");
  for (int id : {5, 6, 7}) t.add_prompt_tokens(id);
  for (int id : {8, 9}) {
    t.add_response_tokens(id);
    t.add_behavior_logprobs(-0.5f);
    t.add_token_scores(0.25f);
  }
  t.add_step_ends(2);
  t.mutable_verdict()->set_outcome(ds::v1::Verdict::OUTCOME_CORRECT);
  t.mutable_verdict()->set_predicted("7");
  ds::v1::VersionRange* r = t.add_versions();
  r->set_begin(0);
  r->set_end(2);
  r->set_weight_version(3);
  t.set_final_score(1.0f);
  t.set_response_text("= 7");
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds OUT\n";
    return 2;
  }
  g_out = argv[1];
  const ds::WeightSet v1 = Set(1, 1), v2 = Set(2, 2);
  Write("fuzz_weight_stream", "full", Stream(ds::EncodeFull(v1)));
  auto delta = ds::EncodeDelta(v2, v1);
  if (delta.ok())
    Write("fuzz_weight_stream", "full_then_delta", Stream(ds::EncodeFull(v1)) + Stream(*delta));

  ds::v1::TrajectoryBatch batch;
  *batch.add_trajectories() = Trajectory();
  Write("fuzz_requests", "trajectories", std::string(1, '\0') + batch.SerializeAsString());
  ds::v1::SubmitProblemSetRequest submit;
  submit.set_kind(ds::v1::JOB_KIND_TRAIN);
  submit.set_name("fuzz");
  submit.set_client_request_id("r1");
  submit.mutable_options()->set_samples_per_problem(4);
  submit.mutable_options()->set_solve_mode("rollout");
  ds::v1::Problem* p = submit.add_problems();
  p->set_id("p1");
  p->set_prompt("1 + 2 =");
  p->set_answer("3");
  p->set_task("addition");
  Write("fuzz_requests", "submit", std::string(1, '\1') + submit.SerializeAsString());
  ds::v1::ListJobsRequest list;
  list.set_state_filter(ds::v1::JOB_STATE_RUNNING);
  Write("fuzz_requests", "list", std::string(1, '\2') + list.SerializeAsString());
  ds::v1::PutSolutionsRequest put;
  ds::v1::Solution* s = put.add_solutions();
  *s->mutable_problem() = *p;
  s->set_response_text("= 3");
  Write("fuzz_requests", "put", std::string(1, '\3') + put.SerializeAsString());

  auto tokenizer = ds::DefaultTaskTokenizerJson();
  if (tokenizer.ok()) Write("fuzz_tokenizer", "task_tokenizer.json", *tokenizer);
  auto config = ds::Qwen2Config::Preset("tiny", 128);
  if (config.ok()) Write("fuzz_model_config", "tiny.json", config->ToJson());

  std::ostringstream problems;
  for (const std::string& name : ds::TaskFamilyNames()) {
    auto family = ds::MakeTaskFamily(name);
    if (!family.ok() || !(*family)->generates()) continue;
    ds::Rng rng(7);
    for (int i = 0; i < 2; ++i) ds::WriteProblemJsonl((*family)->Generate(rng), problems);
  }
  Write("fuzz_problems", "families.jsonl", problems.str());
  std::cout << "make_seeds: seeds in " << g_out.string() << "\n";
  return 0;
}
