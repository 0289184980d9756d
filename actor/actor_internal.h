// Actor's private parts shared by its files (actor.cc, actor_delivery.cc,
// weight_follower.cc); not part of its interface.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deepsearch/v1/cache_service.grpc.pb.h"
#include "deepsearch/v1/learner_service.grpc.pb.h"

#include "actor/actor.h"
#include "common/rpc/channel.h"

namespace deepsearch {

struct Actor::Clients {
  std::optional<rpc::RpcClient> learner;
  std::optional<rpc::RpcClient> cache;
  std::unique_ptr<v1::LearnerService::Stub> learner_stub;
  std::unique_ptr<v1::CacheService::Stub> cache_stub;
};

struct Actor::LeaseState {
  v1::Lease lease;
  std::string tree_id;
  std::vector<int32_t> prompt_tokens;
  bool revoked = false;
};

}  // namespace deepsearch
