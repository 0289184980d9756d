// Leases: issue, renew, expire and re-issue with a new attempt, stale trajectories refused,
// duplicates counted once, completion when the whole tree is in, failure after max attempts,
// cancellation.
#include "learner/lease_manager.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

LeaseSpec Spec(std::string job, int32_t k = 2) {
  LeaseSpec s;
  s.job_id = std::move(job);
  s.problem.id = "p1";
  s.num_trajectories = k;
  return s;
}

TrajectoryRecord Record(const std::string& lease_id, int32_t attempt, int32_t index,
                        int32_t length = 3) {
  TrajectoryRecord r;
  r.lease_id = lease_id;
  r.tree_id = lease_id + "." + std::to_string(attempt);
  r.trajectory_id = r.tree_id + "/" + std::to_string(index);
  r.sequence.response_tokens.assign(static_cast<size_t>(length), 5);
  r.sequence.token_scores.assign(static_cast<size_t>(length), 0.5f);
  r.sequence.behavior_logprobs.assign(static_cast<size_t>(length), -1.0f);
  return r;
}

TEST(LeaseManagerTest, IssueIngestCompleteInOrder) {
  LeaseManager m({.lease_duration = absl::Seconds(10), .max_attempts = 3});
  const std::string a = m.Add(Spec("job"));
  const std::string b = m.Add(Spec("job"));
  EXPECT_EQ(a, "job-0");
  std::vector<IssuedLease> issued = m.Issue("actor-1", 1, kT0);
  ASSERT_EQ(issued.size(), 1u);
  EXPECT_EQ(issued[0].lease_id, a);  // oldest first
  EXPECT_EQ(issued[0].attempt, 1);
  EXPECT_EQ(issued[0].deadline, kT0 + absl::Seconds(10));
  EXPECT_EQ(m.counts().pending, 1);
  EXPECT_EQ(m.counts().issued, 1);

  std::vector<IngestResult> r = m.Ingest({Record(a, 1, 0), Record(a, 1, 1)});
  EXPECT_EQ(r[0].outcome, IngestOutcome::kAccepted);
  EXPECT_EQ(r[1].outcome, IngestOutcome::kAccepted);
  EXPECT_TRUE(m.TakeCompleted().empty());  // the actor has not said it is done
  m.Complete("actor-1", a);
  std::vector<CompletedTree> done = m.TakeCompleted();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].tree_id, a + ".1");
  ASSERT_EQ(done[0].trajectories.size(), 2u);
  EXPECT_EQ(done[0].trajectories[1].trajectory_id, a + ".1/1");
  EXPECT_EQ(done[0].trajectories[0].sequence.group_id, a + ".1");
  // A re-send after completion is a duplicate, not an error.
  EXPECT_EQ(m.Ingest({Record(a, 1, 0)})[0].outcome, IngestOutcome::kDuplicate);
  EXPECT_EQ(m.Outstanding("job"), 1);
  (void)b;
}

TEST(LeaseManagerTest, CompletionWaitsForTheLastTrajectory) {
  LeaseManager m({});
  const std::string a = m.Add(Spec("job", 3));
  m.Issue("x", 5, kT0);
  m.Ingest({Record(a, 1, 2)});
  m.Complete("x", a);
  EXPECT_TRUE(m.TakeCompleted().empty());
  m.Ingest({Record(a, 1, 0), Record(a, 1, 1)});
  EXPECT_EQ(m.TakeCompleted().size(), 1u);
}

TEST(LeaseManagerTest, ExpiryReissuesWithANewAttemptAndStaleTreesAreRefused) {
  LeaseManager m({.lease_duration = absl::Seconds(10), .max_attempts = 3});
  const std::string a = m.Add(Spec("job"));
  m.Issue("slow", 1, kT0);
  // Renewal keeps it alive past the first deadline.
  std::vector<LeaseRenewal> ren = m.Renew("slow", {a}, kT0 + absl::Seconds(8));
  ASSERT_TRUE(ren[0].renewed);
  EXPECT_EQ(ren[0].deadline, kT0 + absl::Seconds(18));
  EXPECT_TRUE(m.Issue("other", 1, kT0 + absl::Seconds(15)).empty());
  // Past the deadline: the next Issue hands it to another actor as attempt 2.
  std::vector<IssuedLease> again = m.Issue("fast", 1, kT0 + absl::Seconds(19));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempt, 2);
  EXPECT_EQ(m.counts().expired, 1);
  // The first actor learns it lost the lease, and its late trajectories are stale.
  ren = m.Renew("slow", {a}, kT0 + absl::Seconds(20));
  EXPECT_FALSE(ren[0].renewed);
  EXPECT_THAT(ren[0].reason, HasSubstr("issued again"));
  std::vector<IngestResult> late = m.Ingest({Record(a, 1, 0)});
  EXPECT_EQ(late[0].outcome, IngestOutcome::kRejected);
  EXPECT_THAT(late[0].reason, HasSubstr("stale attempt"));
  m.Complete("slow", a);  // ignored: not its lease any more
  m.Ingest({Record(a, 2, 0), Record(a, 2, 1)});
  EXPECT_TRUE(m.TakeCompleted().empty());
  m.Complete("fast", a);
  std::vector<CompletedTree> done = m.TakeCompleted();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].tree_id, a + ".2");
}

TEST(LeaseManagerTest, RenewingAnOverdueLeaseExpiresIt) {
  LeaseManager m({.lease_duration = absl::Seconds(10), .max_attempts = 3});
  const std::string a = m.Add(Spec("job"));
  m.Issue("x", 1, kT0);
  std::vector<LeaseRenewal> ren = m.Renew("x", {a, "nope"}, kT0 + absl::Seconds(11));
  EXPECT_FALSE(ren[0].renewed);
  EXPECT_THAT(ren[0].reason, HasSubstr("expired"));
  EXPECT_FALSE(ren[1].renewed);
  EXPECT_THAT(ren[1].reason, HasSubstr("unknown"));
  EXPECT_EQ(m.counts().pending, 1);
  EXPECT_EQ(m.counts().expired, 1);
}

TEST(LeaseManagerTest, FailuresRetryUntilMaxAttempts) {
  LeaseManager m({.lease_duration = absl::Seconds(10), .max_attempts = 2});
  const std::string a = m.Add(Spec("job"));
  m.Issue("x", 1, kT0);
  m.Fail("x", a, "prompt too long");
  EXPECT_EQ(m.counts().expired, 0);  // given up, not expired
  std::vector<IssuedLease> again = m.Issue("y", 1, kT0);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempt, 2);
  m.Fail("y", a, "prompt too long");
  EXPECT_TRUE(m.Issue("z", 1, kT0).empty());
  std::vector<FailedLease> failed = m.TakeFailed();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].lease_id, a);
  EXPECT_THAT(failed[0].reason, HasSubstr("actor y: prompt too long"));
  EXPECT_EQ(m.Outstanding("job"), 0);
}

TEST(LeaseManagerTest, MalformedAndUnknownTrajectoriesAreRefusedWithTheReason) {
  LeaseManager m({});
  const std::string a = m.Add(Spec("job"));
  m.Issue("x", 1, kT0);
  TrajectoryRecord bad_scores = Record(a, 1, 0);
  bad_scores.sequence.token_scores.pop_back();
  TrajectoryRecord bad_index = Record(a, 1, 7);
  TrajectoryRecord bad_id = Record(a, 1, 1);
  bad_id.trajectory_id = "whatever";
  TrajectoryRecord unknown = Record("job-99", 1, 0);
  std::vector<IngestResult> r = m.Ingest({bad_scores, bad_index, bad_id, unknown});
  EXPECT_THAT(r[0].reason, HasSubstr("malformed: 3 response tokens, 2 scores"));
  EXPECT_THAT(r[1].reason, HasSubstr("index 7 is outside"));
  EXPECT_THAT(r[2].reason, HasSubstr("is not '<tree_id>/<index>'"));
  EXPECT_THAT(r[3].reason, HasSubstr("unknown"));
  for (const IngestResult& x : r) EXPECT_EQ(x.outcome, IngestOutcome::kRejected);
  // A refused trajectory is not remembered: a corrected one is accepted.
  EXPECT_EQ(m.Ingest({Record(a, 1, 0)})[0].outcome, IngestOutcome::kAccepted);
}

TEST(LeaseManagerTest, CancelJobDropsEverything) {
  LeaseManager m({});
  const std::string a = m.Add(Spec("j1"));
  m.Add(Spec("j1"));
  const std::string c = m.Add(Spec("j2"));
  m.Issue("x", 1, kT0);  // a
  EXPECT_EQ(m.CancelJob("j1"), 2);
  std::vector<IssuedLease> next = m.Issue("x", 5, kT0);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].lease_id, c);
  EXPECT_EQ(m.Ingest({Record(a, 1, 0)})[0].outcome, IngestOutcome::kRejected);
  EXPECT_FALSE(m.Renew("x", {a}, kT0)[0].renewed);
}

}  // namespace
}  // namespace deepsearch
