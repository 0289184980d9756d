// Round trips of the deepsearch.v1 messages through the wire format and JSON.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "deepsearch/v1/cache_service.pb.h"
#include "deepsearch/v1/common.pb.h"
#include "deepsearch/v1/learner_service.pb.h"
#include "deepsearch/v1/problem_service.pb.h"

namespace deepsearch {
namespace {

using google::protobuf::util::MessageDifferencer;

v1::Trajectory SampleTrajectory() {
  v1::Trajectory t;
  t.set_trajectory_id("lease-7/tree-0/3");
  t.set_lease_id("lease-7");
  t.set_job_id("job-1");
  t.set_problem_id("countdown-000123");
  t.set_tree_id("tree-0");
  for (int id : {101, 7, 42}) t.add_prompt_tokens(id);
  for (int i = 0; i < 6; ++i) {
    t.add_response_tokens(1000 + i);
    t.add_behavior_logprobs(-0.25f * static_cast<float>(i));
    t.add_token_scores(i < 3 ? 0.4621f : -1.0f);
  }
  t.add_step_ends(3);
  t.add_step_ends(6);
  t.mutable_verdict()->set_outcome(v1::Verdict::OUTCOME_INCORRECT);
  t.mutable_verdict()->set_reward(-1);
  t.mutable_verdict()->set_predicted("24");
  t.mutable_verdict()->set_reason("expected 25");
  auto* r1 = t.add_versions();
  r1->set_weight_version(3);
  r1->set_begin(0);
  r1->set_end(3);
  auto* r2 = t.add_versions();
  r2->set_weight_version(4);
  r2->set_begin(3);
  r2->set_end(6);
  t.set_final_score(-1.0f);
  t.set_response_text("8*3=24<step>");
  return t;
}

TEST(ProtoTest, TrajectoryRoundTripsThroughTheWireFormat) {
  const v1::Trajectory t = SampleTrajectory();
  std::string bytes;
  ASSERT_TRUE(t.SerializeToString(&bytes));
  v1::Trajectory back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  EXPECT_TRUE(MessageDifferencer::Equals(t, back)) << back.DebugString();
  EXPECT_EQ(back.versions(1).weight_version(), 4);
  EXPECT_FLOAT_EQ(back.behavior_logprobs(5), -1.25f);
}

TEST(ProtoTest, MessagesRoundTripThroughJson) {
  v1::TrajectoryBatch batch;
  batch.set_actor_id("actor-0");
  batch.set_sequence(17);
  *batch.add_trajectories() = SampleTrajectory();
  batch.add_completed_lease_ids("lease-7");
  auto* failure = batch.add_failed_leases();
  failure->set_lease_id("lease-9");
  failure->set_reason("prompt longer than the context");
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(batch, &json).ok());
  EXPECT_NE(json.find("\"actorId\":\"actor-0\""), std::string::npos) << json;
  v1::TrajectoryBatch back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &back).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(batch, back));
}

TEST(ProtoTest, LeaseAndJobCarryTheirParameters) {
  v1::Lease lease;
  lease.set_lease_id("l1");
  lease.set_mode(v1::LEASE_MODE_SEARCH);
  lease.mutable_problem()->set_prompt("Use 3 5 7 8 to make 24");
  lease.mutable_problem()->set_answer("24");
  lease.mutable_problem()->set_task("countdown:n=4,max=25");
  (*lease.mutable_problem()->mutable_metadata())["source"] = "synthetic";
  lease.mutable_search()->set_backtrace(v1::BACKTRACE_UCT);
  lease.mutable_search()->set_max_depth(16);
  lease.mutable_sampling()->set_temperature(1.0f);
  lease.mutable_deadline()->set_seconds(1700000000);
  v1::Lease back;
  ASSERT_TRUE(back.ParseFromString(lease.SerializeAsString()));
  EXPECT_TRUE(MessageDifferencer::Equals(lease, back));
  // Unset search fields read as zero: "take the paper's default".
  EXPECT_EQ(back.search().expansion_width(), 0);
  EXPECT_EQ(back.search().q_update(), v1::Q_UPDATE_UNSPECIFIED);

  v1::Job job;
  job.set_job_id("job-2");
  job.set_kind(v1::JOB_KIND_SOLVE);
  job.set_state(v1::JOB_STATE_RUNNING);
  auto* result = job.add_results();
  result->set_problem_id("p");
  (*result->mutable_pass_at_k())[1] = 0.25;
  (*result->mutable_pass_at_k())[4] = 0.75;
  v1::Job job_back;
  ASSERT_TRUE(job_back.ParseFromString(job.SerializeAsString()));
  EXPECT_TRUE(MessageDifferencer::Equals(job, job_back));
}

TEST(ProtoTest, WeightChunkIsOneOfHeaderDataTrailer) {
  v1::WeightChunk chunk;
  auto* header = chunk.mutable_header();
  header->set_version(5);
  header->set_encoding(v1::WEIGHT_ENCODING_DELTA);
  header->set_base_version(4);
  auto* tensor = header->add_tensors();
  tensor->set_name("model.embed_tokens.weight");
  tensor->set_dtype(v1::TENSOR_DTYPE_BF16);
  tensor->add_shape(64);
  tensor->add_shape(128);
  tensor->set_size(64 * 128 * 2);
  EXPECT_EQ(chunk.part_case(), v1::WeightChunk::kHeader);
  chunk.set_data(std::string(1024, '\x7f'));  // replaces the header
  chunk.set_offset(4096);
  EXPECT_EQ(chunk.part_case(), v1::WeightChunk::kData);
  EXPECT_FALSE(chunk.has_header());
  v1::WeightChunk back;
  ASSERT_TRUE(back.ParseFromString(chunk.SerializeAsString()));
  EXPECT_EQ(back.data().size(), 1024u);
  EXPECT_EQ(back.offset(), 4096u);
}

}  // namespace
}  // namespace deepsearch
