// Role-scoped token files for tests: DIR/<role> holds "<role>-token" for each of the four
// roles, and the AuthConfig a server reads them with.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "common/core/runtime_config.h"
#include "common/rpc/auth.h"

namespace deepsearch::testing_rpc {

inline AuthConfig WriteRoleTokens(const std::string& dir) {
  std::filesystem::create_directories(dir);
  AuthConfig auth;
  for (rpc::Role role : rpc::kAllRoles) {
    const std::string name(rpc::RoleName(role));
    const std::string path = dir + "/" + name;
    std::ofstream(path) << name << "-token\n";
    switch (role) {
      case rpc::Role::kActor:
        auth.actor_tokens_file = path;
        break;
      case rpc::Role::kLearner:
        auth.learner_tokens_file = path;
        break;
      case rpc::Role::kClient:
        auth.client_tokens_file = path;
        break;
      case rpc::Role::kAdmin:
        auth.admin_tokens_file = path;
        break;
    }
  }
  return auth;
}

}  // namespace deepsearch::testing_rpc
