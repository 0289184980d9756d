#include "actor/trajectory_outbox.h"

#include <string>

#include "gtest/gtest.h"

namespace deepsearch {
namespace {

// One tree's item: `n` trajectories of about `bytes` bytes each, and its lease completed.
TrajectoryOutbox::Item Tree(const std::string& lease, int n, size_t bytes) {
  TrajectoryOutbox::Item item;
  for (int i = 0; i < n; ++i) {
    v1::Trajectory t;
    t.set_trajectory_id(lease + ".1/" + std::to_string(i));
    t.set_response_text(std::string(bytes, 'x'));
    item.trajectories.push_back(std::move(t));
  }
  item.completed.push_back(lease);
  return item;
}

v1::TrajectoryAck AckOf(int64_t sequence, int32_t accepted, int32_t duplicates = 0) {
  v1::TrajectoryAck ack;
  ack.set_sequence(sequence);
  ack.set_accepted(accepted);
  ack.set_duplicates(duplicates);
  return ack;
}

TEST(TrajectoryOutboxTest, BatchesWholeItemsUpToTheByteLimit) {
  TrajectoryOutbox outbox("actor-1", /*max_batch_bytes=*/2500);
  EXPECT_FALSE(outbox.NextBatch().has_value());
  outbox.Add(Tree("a", 2, 1000));  // ~2 KB
  outbox.Add(Tree("b", 1, 1000));  // would pass the limit with a: the next batch
  outbox.Add(Tree("c", 4, 1000));  // larger than the limit on its own: goes alone
  outbox.Add(Tree("d", 0, 0));     // a full batch takes nothing more, even an empty item
  ASSERT_TRUE(outbox.Pending());
  std::optional<v1::TrajectoryBatch> first = outbox.NextBatch();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->actor_id(), "actor-1");
  EXPECT_EQ(first->sequence(), 1);
  EXPECT_EQ(first->trajectories_size(), 2);
  EXPECT_EQ(first->completed_lease_ids(0), "a");
  std::optional<v1::TrajectoryBatch> second = outbox.NextBatch();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->sequence(), 2);
  EXPECT_EQ(second->trajectories_size(), 1);
  std::optional<v1::TrajectoryBatch> third = outbox.NextBatch();
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->trajectories_size(), 4);
  EXPECT_EQ(third->completed_lease_ids_size(), 1);
  std::optional<v1::TrajectoryBatch> fourth = outbox.NextBatch();
  ASSERT_TRUE(fourth.has_value());
  EXPECT_EQ(fourth->trajectories_size(), 0);
  EXPECT_EQ(fourth->completed_lease_ids(0), "d");
  EXPECT_FALSE(outbox.HasQueued());
  EXPECT_EQ(outbox.PendingCount(), 4u);  // all four unacked
}

TEST(TrajectoryOutboxTest, AcksSettleTheirBatchOnceAndABrokenStreamResendsTheRestFirst) {
  TrajectoryOutbox outbox("actor-1", 1 << 20);
  outbox.Add(Tree("a", 1, 10));
  ASSERT_TRUE(outbox.NextBatch().has_value());  // 1
  outbox.Add(Tree("b", 1, 10));
  ASSERT_TRUE(outbox.NextBatch().has_value());  // 2
  outbox.Add(Tree("c", 1, 10));
  ASSERT_TRUE(outbox.NextBatch().has_value());  // 3
  std::optional<TrajectoryOutbox::Acked> acked = outbox.Ack(AckOf(2, 1));
  ASSERT_TRUE(acked.has_value());
  EXPECT_EQ(acked->accepted, 1);
  EXPECT_FALSE(outbox.Ack(AckOf(2, 1)).has_value());   // a repeat settles nothing
  EXPECT_FALSE(outbox.Ack(AckOf(99, 1)).has_value());  // nor an unknown sequence
  // The stream breaks with 1 and 3 unacked; on the next one they go first, as 1 and 2.
  outbox.Add(Tree("d", 1, 10));
  std::vector<v1::TrajectoryBatch> resend = outbox.Reopen();
  ASSERT_EQ(resend.size(), 2u);
  EXPECT_EQ(resend[0].sequence(), 1);
  EXPECT_EQ(resend[0].completed_lease_ids(0), "a");
  EXPECT_EQ(resend[1].sequence(), 2);
  EXPECT_EQ(resend[1].completed_lease_ids(0), "c");
  EXPECT_EQ(outbox.resent(), 2);
  std::optional<v1::TrajectoryBatch> next = outbox.NextBatch();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->sequence(), 3);
  EXPECT_EQ(next->completed_lease_ids(0), "d");
  // Acks on the new stream use its numbering.
  EXPECT_TRUE(outbox.Ack(AckOf(1, 1)).has_value());
  EXPECT_TRUE(outbox.Ack(AckOf(2, 0, 1)).has_value());
  EXPECT_TRUE(outbox.Ack(AckOf(3, 1)).has_value());
  EXPECT_FALSE(outbox.Pending());
}

}  // namespace
}  // namespace deepsearch
