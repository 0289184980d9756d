// The actor process's settings (the `actor` section of the config file). Torch- and
// gRPC-free, so the configuration builds everywhere; actor/actor.h runs them.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "search/prompt_format.h"

#include "common/core/config.h"

namespace deepsearch {

struct ActorOptions {
  std::string actor_id;         // empty: "<hostname>-<pid>"
  std::string learner_address;  // host:port of the LearnerService
  std::string cache_address;    // host:port of the CacheService; empty: none
  std::string prompt_template = std::string(PromptFormat::kTaskDefault);
  int32_t max_trees = 64;  // leases (trees) held at once
  int32_t max_prompt_tokens = 4096;
  int32_t search_threads = 1;  // tree bookkeeping threads
  bool follow_weights = true;
  // The cache service's weight files are readable here at the paths it names (the same host,
  // or its store mounted at the same path): take versions by reference, not as streamed bytes.
  // Falls back to streams for good when a named file cannot be read.
  bool weights_by_file = false;
  bool put_solutions = true;
  absl::Duration renew_interval = absl::Seconds(10);
  absl::Duration rpc_timeout = absl::Seconds(10);
  // A trajectory stream whose oldest batch has waited this long for its ack is cancelled and
  // opened again (its batches are resent; the learner drops repeats by trajectory id): a
  // learner that is alive to keepalives but stuck does not hold trajectories forever.
  absl::Duration ack_timeout = absl::Minutes(2);
  absl::Duration idle_poll =
      absl::Milliseconds(500);  // when the learner has no work and no retry_after
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(10);
  absl::Duration status_interval = absl::Seconds(30);  // the periodic status line; 0: off
  int64_t max_batch_bytes = 4ll << 20;
  int32_t max_pending_solutions = 10000;
  int64_t max_weight_bytes = 64ll << 30;
  absl::Duration shutdown_drain = absl::Seconds(30);  // on SIGTERM: let trees finish this long

  void Bind(ConfigBinder& b);
};

}  // namespace deepsearch
