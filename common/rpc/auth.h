// Who may call what: bearer tokens, the roles they stand for, and the table of the roles each
// RPC accepts.
//
// Three modes, chosen by the rpc.auth config (AuthConfig):
//   none      no token anywhere: every call passes (a laptop, `deepsearch run` on loopback);
//   shared    one token (auth.token_file or auth.token_env): its holder may call everything;
//   roles     auth.{actor,learner,client,admin}_tokens_file set on the server: a call's token
//             names its role, and the method must accept that role (kMethodRoles below).
//
// Token files hold one token per line (blank lines ignored). A server accepts every token a
// role's file lists and a client sends the first line of its own token_file, so tokens rotate
// without a restart: add the new token to the servers' files, then swap it in at the clients,
// then drop the old one. Every file is re-read at most once per auth.reload_interval; a
// re-read that fails (a Secret being swapped) keeps the tokens last read and logs it.
//
//   DS_ASSIGN_OR_RETURN(ServerAuth auth, ServerAuth::FromConfig(config.rpc.auth));
//   if (grpc::Status s = auth.Check(*context, kLeaseWorkMethod); !s.ok()) return s;
//
// Refusals: UNAUTHENTICATED for a missing or unknown token (the message never echoes it),
// PERMISSION_DENIED for a known token whose role the method does not accept (the message
// names the method, the role and the roles that may call it). Health checks stay open.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/server_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "common/core/runtime_config.h"

namespace deepsearch::rpc {

enum class Role : uint8_t { kActor = 0, kLearner = 1, kClient = 2, kAdmin = 3 };
inline constexpr Role kAllRoles[] = {Role::kActor, Role::kLearner, Role::kClient, Role::kAdmin};

absl::string_view RoleName(Role role);  // "actor", ...

// A set of roles, as a bit mask.
class RoleSet {
 public:
  constexpr RoleSet() = default;
  constexpr RoleSet(std::initializer_list<Role> roles) {
    for (Role r : roles) bits_ |= Bit(r);
  }
  constexpr bool Has(Role role) const { return (bits_ & Bit(role)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  std::string ToString() const;  // "actor, learner"; "none"

 private:
  static constexpr uint8_t Bit(Role r) { return static_cast<uint8_t>(1u << static_cast<int>(r)); }
  uint8_t bits_ = 0;
};

// The roles each RPC of the deepsearch.v1 services accepts, by its full method name
// ("deepsearch.v1.CacheService/PublishWeights"). One table, so that docs/RELIABILITY.md,
// the handlers and the method x role tests cannot disagree.
struct MethodRoles {
  absl::string_view method;
  RoleSet roles;
};
const std::vector<MethodRoles>& MethodRoleTable();
// The roles `method` accepts; none for a method the table does not list (fail closed).
RoleSet AllowedRoles(absl::string_view method);

// A file of tokens (one per line), re-read at most once per `reload_interval`. Thread-safe.
class TokenFile {
 public:
  // Reads the file now; NOT_FOUND or INVALID_ARGUMENT (no token in it) name `key` and `path`.
  static absl::StatusOr<std::shared_ptr<TokenFile>> Open(std::string key, std::string path,
                                                         absl::Duration reload_interval);

  // The tokens as last read, after a re-read if one is due.
  std::vector<std::string> Tokens();
  // Whether `token` is one of them (constant time in the tokens' contents).
  bool Matches(absl::string_view token);
  // The first token: the one a client sends.
  std::string First();

 private:
  TokenFile(std::string key, std::string path, absl::Duration reload_interval,
            std::vector<std::string> tokens);
  void MaybeReloadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string key_;
  const std::string path_;
  const absl::Duration reload_interval_;
  absl::Mutex mu_;
  std::vector<std::string> tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time read_at_ ABSL_GUARDED_BY(mu_);
  bool reload_failed_ ABSL_GUARDED_BY(mu_) = false;
};

// Reads a token file's contents: its non-empty lines, trimmed. Errors name `key` and `path`.
absl::StatusOr<std::vector<std::string>> ReadTokenFile(absl::string_view key,
                                                       const std::string& path);

// Who made a call, as ServerAuth::Check found it: the role ("actor"; "shared" for the holder
// of the shared token, "anonymous" when auth is off) and the peer's host, together the key
// per-caller limits count by ("actor@127.0.0.1").
struct Caller {
  std::string role;
  std::string host;

  std::string key() const { return role + "@" + host; }
};

// Checks the "authorization: Bearer <token>" metadata of incoming calls against the mode
// above. Copies share the token files. Thread-safe.
class ServerAuth {
 public:
  // Reads every file `auth` names now: a missing or empty one is an error at start-up.
  static absl::StatusOr<ServerAuth> FromConfig(const AuthConfig& auth);

  // Shared mode with `token`; an empty token disables authentication.
  explicit ServerAuth(std::string token = "");

  bool enabled() const;
  bool role_scoped() const;

  // OK if the call may run `method`; UNAUTHENTICATED or PERMISSION_DENIED otherwise (see
  // the top of this file). Fills `caller` when given and the call passes.
  grpc::Status Check(const grpc::ServerContextBase& context, absl::string_view method,
                     Caller* caller = nullptr) const;

 private:
  struct State;
  explicit ServerAuth(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  std::shared_ptr<const State> state_;
};

// The host part of a gRPC peer string ("ipv4:127.0.0.1:5000" -> "127.0.0.1").
std::string PeerHost(absl::string_view peer);

}  // namespace deepsearch::rpc
