#include "actor/trajectory_outbox.h"

#include <utility>

namespace deepsearch {

TrajectoryOutbox::TrajectoryOutbox(std::string actor_id, int64_t max_batch_bytes)
    : actor_id_(std::move(actor_id)), max_batch_bytes_(max_batch_bytes) {}

void TrajectoryOutbox::Add(Item item) { queued_.push_back(std::move(item)); }

std::vector<v1::TrajectoryBatch> TrajectoryOutbox::Reopen() {
  std::vector<v1::TrajectoryBatch> resend;
  for (auto& [seq, batch] : unacked_) resend.push_back(std::move(batch));
  unacked_.clear();
  sequence_ = 0;
  for (v1::TrajectoryBatch& batch : resend) {
    batch.set_sequence(++sequence_);
    unacked_[sequence_] = batch;
    ++resent_;
  }
  return resend;
}

std::optional<v1::TrajectoryBatch> TrajectoryOutbox::NextBatch() {
  if (queued_.empty()) return std::nullopt;
  v1::TrajectoryBatch batch;
  int64_t bytes = 0;
  bool empty = true;
  while (!queued_.empty()) {
    Item& item = queued_.front();
    int64_t item_bytes = 0;
    for (const v1::Trajectory& t : item.trajectories)
      item_bytes += static_cast<int64_t>(t.ByteSizeLong());
    if (!empty && bytes + item_bytes > max_batch_bytes_) break;
    bytes += item_bytes;
    empty = false;
    for (v1::Trajectory& t : item.trajectories) *batch.add_trajectories() = std::move(t);
    for (std::string& id : item.completed) batch.add_completed_lease_ids(std::move(id));
    for (v1::LeaseFailure& f : item.failures) *batch.add_failed_leases() = std::move(f);
    queued_.pop_front();
  }
  batch.set_actor_id(actor_id_);
  batch.set_sequence(++sequence_);
  unacked_[sequence_] = batch;
  return batch;
}

std::optional<TrajectoryOutbox::Acked> TrajectoryOutbox::Ack(const v1::TrajectoryAck& ack) {
  auto it = unacked_.find(ack.sequence());
  if (it == unacked_.end()) return std::nullopt;
  unacked_.erase(it);
  return Acked{ack.accepted(), ack.duplicates(), ack.rejections_size()};
}

}  // namespace deepsearch
