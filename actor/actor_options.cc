#include "actor/actor_options.h"

namespace deepsearch {

void ActorOptions::Bind(ConfigBinder& b) {
  b.Field("actor_id", actor_id, "Name of this actor in leases and logs (empty: <hostname>-<pid>)");
  b.Field("learner_address", learner_address, "host:port of the learner's LearnerService");
  b.Field("cache_address", cache_address,
          "host:port of the cache service (empty: no solution cache, no weights)");
  b.Field("prompt_template", prompt_template,
          "How a problem statement is put to the policy; {prompt} marks it");
  b.Field("max_trees", max_trees, "Leases (trees) held at once").Range(1, 1 << 20);
  b.Field("max_prompt_tokens", max_prompt_tokens, "Longest prompt accepted; longer leases fail")
      .Range(1, 1 << 24);
  b.Field("search_threads", search_threads,
          "Threads for tree bookkeeping (verification, backup, selection)")
      .Range(1, 256);
  b.Field("follow_weights", follow_weights,
          "Subscribe to new weight versions from the cache service");
  b.Field("put_solutions", put_solutions, "Send verified correct solutions to the cache service");
  b.Field("renew_interval", renew_interval, "How often leases in progress are renewed").Positive();
  b.Field("rpc_timeout", rpc_timeout, "Deadline of unary calls to the learner and the cache")
      .Positive();
  b.Field("ack_timeout", ack_timeout,
          "A trajectory stream with a batch unacknowledged this long is reopened (batches resent)")
      .Positive();
  b.Field("idle_poll", idle_poll, "Wait before asking again when the learner had no work")
      .Positive();
  b.Field("backoff_initial", backoff_initial, "First retry delay while a peer is down").Positive();
  b.Field("backoff_max", backoff_max, "Longest retry delay while a peer is down").Positive();
  b.Field("status_interval", status_interval, "Period of the status line in the log (0: off)");
  b.Field("max_batch_bytes", max_batch_bytes, "Largest trajectory batch sent to the learner")
      .Range(1024, 1ll << 31);
  b.Field("max_pending_solutions", max_pending_solutions,
          "Solutions queued for the cache; the oldest drop beyond")
      .Range(1, 1 << 24);
  b.Field("weights_by_file", weights_by_file,
          "Take weight versions as references to the cache service's files (it must be on this "
          "host, or its store mounted at the same path); falls back to streams if they cannot "
          "be read");
  b.Field("max_weight_bytes", max_weight_bytes,
          "Largest weight version accepted from the cache service")
      .Range(1, 1ll << 40);
  b.Field("shutdown_drain", shutdown_drain,
          "On SIGTERM, how long running trees may finish before cancellation");
}

}  // namespace deepsearch
