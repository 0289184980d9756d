// The data-parallel command channel (world_size > 1; learner.data_parallel). Rank 0 drives:
// before every piece of collective work it broadcasts a header {command, payload bytes} and
// then the payload; the other ranks wait in RunTrainingWorker (learner.h) and do the same
// work. Commands are whole units, so the ranks always agree on which collective comes next:
//   start      payload: JSON of rank 0's model config.json and the trainer's vocab_limit;
//              then Trainer::SyncWithRankZero;
//   step       payload: the step's batch (EncodeTrainSequences); then Trainer::Step on it;
//   heartbeat  nothing: sent while rank 0 is idle, so that a waiting rank's collective never
//              reaches the group's timeout;
//   stop       nothing: the run is over, the other ranks exit.
//
// A command that cannot be sent breaks the group: the channel calls `on_failure` (the
// learner stops; the process should exit and the group restart as a whole).
//
// Thread-safe: the driver sends start, step and stop; the channel's own thread sends the
// heartbeats. The collective work that follows a command runs under the channel's lock
// (Run's `work`), so no heartbeat interleaves with it. Torch stays out of this header.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "trainer/gradient_reducer.h"

namespace deepsearch {

enum class RankCommand : int64_t { kStart = 1, kStep = 2, kHeartbeat = 3, kStop = 4 };

class RankChannel {
 public:
  // `timeout`: the group's collective timeout; heartbeats go out at a quarter of it (30 s at
  // most) while rank 0 sends nothing else.
  RankChannel(GradientReducer& reducer, absl::Duration timeout,
              std::function<void(const absl::Status&)> on_failure);
  ~RankChannel();  // Close

  // Sends `command` with `payload`, then runs `work` (the collective work the command
  // announces; may be null) before any other command goes out.
  absl::Status Run(RankCommand command, const std::string& payload,
                   const std::function<void()>& work = nullptr);
  void StartHeartbeat();
  // Stops the heartbeat thread (not from it). Idempotent.
  void Close();
  // Wakes the heartbeat thread to stop; safe from any thread, the heartbeat's included.
  void StopHeartbeat();

 private:
  void HeartbeatLoop();

  GradientReducer& reducer_;
  const absl::Duration interval_;
  const std::function<void(const absl::Status&)> on_failure_;

  absl::Mutex mu_;  // one command and its work at a time
  absl::Time last_command_ ABSL_GUARDED_BY(mu_);

  absl::Mutex stop_mu_;
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;
  absl::CondVar stop_cv_;
  std::thread heartbeat_;
};

}  // namespace deepsearch
