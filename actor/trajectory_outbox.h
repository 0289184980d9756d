// The actor's side of the acked trajectory stream (ARCHITECTURE §3, StreamTrajectories): what
// finished trees hand in, cut into batches of at most max_batch_bytes, numbered per stream,
// kept until the learner acks them, and sent again (renumbered, first) on the next stream
// after one breaks. Delivery is at-least-once; the learner dedupes by trajectory id.
//
//   outbox.Add({trajectories, completed lease ids, lease failures});
//   for (batch : outbox.Reopen()) stream->Write(batch);      // a new stream: resends first
//   while (auto batch = outbox.NextBatch()) stream->Write(*batch);
//   outbox.Ack(ack);                                         // from the stream's reader
//
// A batch holds whole items: an item larger than max_batch_bytes goes alone. No gRPC here,
// only the messages, so the bookkeeping is tested without a stream.
//
// Thread-compatible: the actor guards it with its lock.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "deepsearch/v1/learner_service.pb.h"

namespace deepsearch {

class TrajectoryOutbox {
 public:
  // What one tree (or one failed lease) hands in.
  struct Item {
    std::vector<v1::Trajectory> trajectories;
    std::vector<std::string> completed;  // lease ids
    std::vector<v1::LeaseFailure> failures;
  };
  // What an ack said of its batch.
  struct Acked {
    int64_t accepted = 0;
    int64_t duplicates = 0;
    int64_t rejected = 0;
  };

  TrajectoryOutbox(std::string actor_id, int64_t max_batch_bytes);

  void Add(Item item);
  // Items not yet in a batch.
  bool HasQueued() const { return !queued_.empty(); }
  // Anything queued or sent and not acked.
  bool Pending() const { return !queued_.empty() || !unacked_.empty(); }
  // Batches sent on the current stream and not acknowledged yet.
  bool HasUnacked() const { return !unacked_.empty(); }
  // Items queued plus batches unacked (for the shutdown report).
  size_t PendingCount() const { return queued_.size() + unacked_.size(); }

  // A new stream: numbering restarts at 1, and the batches the last one left unacked come
  // back renumbered, in their order, to be written before anything new.
  std::vector<v1::TrajectoryBatch> Reopen();
  // The next batch of queued items, numbered and kept as unacked; nullopt when none queued.
  std::optional<v1::TrajectoryBatch> NextBatch();
  // Settles the batch `ack` names; nullopt for a sequence that is not unacked (a repeat).
  std::optional<Acked> Ack(const v1::TrajectoryAck& ack);

  int64_t resent() const { return resent_; }

 private:
  const std::string actor_id_;
  const int64_t max_batch_bytes_;
  std::deque<Item> queued_;
  std::map<int64_t, v1::TrajectoryBatch> unacked_;  // by sequence on the current stream
  int64_t sequence_ = 0;
  int64_t resent_ = 0;
};

}  // namespace deepsearch
