#include "common/rpc/auth.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

#include "common/core/logging.h"
#include "common/core/status.h"

namespace deepsearch::rpc {
namespace {

// Compares without an early exit, so timing does not reveal a prefix of the token.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

constexpr RoleSet kActor = {Role::kActor};
constexpr RoleSet kLearner = {Role::kLearner};
constexpr RoleSet kOperators = {Role::kClient, Role::kAdmin};
constexpr RoleSet kEveryone = {Role::kActor, Role::kLearner, Role::kClient, Role::kAdmin};

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kActor:
      return "actor";
    case Role::kLearner:
      return "learner";
    case Role::kClient:
      return "client";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

std::string RoleSet::ToString() const {
  std::vector<absl::string_view> names;
  for (Role r : kAllRoles) {
    if (Has(r)) names.push_back(RoleName(r));
  }
  return names.empty() ? "none" : absl::StrJoin(names, ", ");
}

const std::vector<MethodRoles>& MethodRoleTable() {
  static const auto* table = new std::vector<MethodRoles>{
      // Actors lease work and deliver what they found; nobody else does.
      {"deepsearch.v1.LearnerService/LeaseWork", kActor},
      {"deepsearch.v1.LearnerService/RenewLease", kActor},
      {"deepsearch.v1.LearnerService/StreamTrajectories", kActor},
      // Jobs are the clients' (and the operator's): an actor or a learner submits nothing.
      {"deepsearch.v1.ProblemService/SubmitProblemSet", kOperators},
      {"deepsearch.v1.ProblemService/GetJob", kOperators},
      {"deepsearch.v1.ProblemService/ListJobs", kOperators},
      {"deepsearch.v1.ProblemService/CancelJob", kOperators},
      {"deepsearch.v1.ProblemService/WatchJob", kOperators},
      // Verified solutions come from the actors that verified them; everyone may read.
      {"deepsearch.v1.CacheService/PutSolutions", kActor},
      {"deepsearch.v1.CacheService/LookupSolutions", kEveryone},
      {"deepsearch.v1.CacheService/GetCacheStats", kEveryone},
      // Only the learner publishes weights. Actors follow them (as the learner and an
      // operator may); anyone may fetch a version.
      {"deepsearch.v1.CacheService/PublishWeights", kLearner},
      {"deepsearch.v1.CacheService/SubscribeWeights", {Role::kActor, Role::kLearner, Role::kAdmin}},
      {"deepsearch.v1.CacheService/GetWeights", kEveryone},
  };
  return *table;
}

RoleSet AllowedRoles(absl::string_view method) {
  for (const MethodRoles& m : MethodRoleTable()) {
    if (m.method == method) return m.roles;
  }
  return RoleSet();
}

absl::StatusOr<std::vector<std::string>> ReadTokenFile(absl::string_view key,
                                                       const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(key, " ", path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    absl::string_view token = absl::StripAsciiWhitespace(line);
    if (!token.empty()) tokens.emplace_back(token);
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(key, " ", path, ": holds no token"));
  }
  return tokens;
}

TokenFile::TokenFile(std::string key, std::string path, absl::Duration reload_interval,
                     std::vector<std::string> tokens)
    : key_(std::move(key)),
      path_(std::move(path)),
      reload_interval_(reload_interval),
      tokens_(std::move(tokens)),
      read_at_(absl::Now()) {}

absl::StatusOr<std::shared_ptr<TokenFile>> TokenFile::Open(std::string key, std::string path,
                                                           absl::Duration reload_interval) {
  DS_ASSIGN_OR_RETURN(std::vector<std::string> tokens, ReadTokenFile(key, path));
  return std::shared_ptr<TokenFile>(
      new TokenFile(std::move(key), std::move(path), reload_interval, std::move(tokens)));
}

void TokenFile::MaybeReloadLocked() {
  const absl::Time now = absl::Now();
  if (now - read_at_ < reload_interval_) return;
  read_at_ = now;
  absl::StatusOr<std::vector<std::string>> tokens = ReadTokenFile(key_, path_);
  if (!tokens.ok()) {
    if (!reload_failed_) {
      log::Warning("auth: {}; keeping the {} token(s) read before", tokens.status().message(),
                   tokens_.size());
    }
    reload_failed_ = true;
    return;
  }
  if (*tokens != tokens_) log::Info("auth: {} {}: {} token(s) now", key_, path_, tokens->size());
  reload_failed_ = false;
  tokens_ = std::move(*tokens);
}

std::vector<std::string> TokenFile::Tokens() {
  absl::MutexLock lock(&mu_);
  MaybeReloadLocked();
  return tokens_;
}

bool TokenFile::Matches(absl::string_view token) {
  absl::MutexLock lock(&mu_);
  MaybeReloadLocked();
  bool match = false;
  for (const std::string& t : tokens_) match |= ConstantTimeEquals(token, t);
  return match;
}

std::string TokenFile::First() {
  absl::MutexLock lock(&mu_);
  MaybeReloadLocked();
  return tokens_.front();
}

// --- ServerAuth ----------------------------------------------------------------------------

struct ServerAuth::State {
  // Shared mode: a file, or a fixed token (from the environment or the constructor).
  std::shared_ptr<TokenFile> shared_file;
  std::string shared_token;
  // Role mode: one file per role that has one.
  std::vector<std::pair<Role, std::shared_ptr<TokenFile>>> roles;
};

ServerAuth::ServerAuth(std::string token) {
  if (token.empty()) return;
  auto state = std::make_shared<State>();
  state->shared_token = std::move(token);
  state_ = std::move(state);
}

absl::StatusOr<ServerAuth> ServerAuth::FromConfig(const AuthConfig& auth) {
  auto state = std::make_shared<State>();
  const std::pair<Role, const std::string*> role_files[] = {
      {Role::kActor, &auth.actor_tokens_file},
      {Role::kLearner, &auth.learner_tokens_file},
      {Role::kClient, &auth.client_tokens_file},
      {Role::kAdmin, &auth.admin_tokens_file},
  };
  for (const auto& [role, path] : role_files) {
    if (path->empty()) continue;
    DS_ASSIGN_OR_RETURN(std::shared_ptr<TokenFile> file,
                        TokenFile::Open(absl::StrCat("rpc.auth.", RoleName(role), "_tokens_file"),
                                        *path, auth.reload_interval));
    state->roles.emplace_back(role, std::move(file));
  }
  if (state->roles.empty()) {
    if (!auth.token_file.empty()) {
      DS_ASSIGN_OR_RETURN(
          state->shared_file,
          TokenFile::Open("rpc.auth.token_file", auth.token_file, auth.reload_interval));
    } else {
      state->shared_token = ReadAuthTokenFromEnv(auth);
      if (state->shared_token.empty()) return ServerAuth();
    }
  }
  return ServerAuth(std::shared_ptr<const State>(std::move(state)));
}

bool ServerAuth::enabled() const { return state_ != nullptr; }
bool ServerAuth::role_scoped() const { return state_ != nullptr && !state_->roles.empty(); }

grpc::Status ServerAuth::Check(const grpc::ServerContextBase& context, absl::string_view method,
                               Caller* caller) const {
  const auto fill = [&](std::string role) {
    if (caller != nullptr) *caller = Caller{std::move(role), PeerHost(context.peer())};
  };
  if (state_ == nullptr) {
    fill("anonymous");
    return grpc::Status::OK;
  }
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing 'authorization: Bearer <token>' metadata");
  }
  const absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "Bearer ";
  if (value.substr(0, kBearer.size()) != kBearer) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token");
  }
  const absl::string_view token = value.substr(kBearer.size());
  if (state_->roles.empty()) {
    const bool match = state_->shared_file != nullptr
                           ? state_->shared_file->Matches(token)
                           : ConstantTimeEquals(token, state_->shared_token);
    if (!match) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token");
    fill("shared");
    return grpc::Status::OK;
  }
  for (const auto& [role, file] : state_->roles) {
    if (!file->Matches(token)) continue;
    const RoleSet allowed = AllowedRoles(method);
    if (!allowed.Has(role)) {
      return grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          absl::StrCat(method, ": the ", RoleName(role),
                       " role may not call this method (allowed: ", allowed.ToString(), ")"));
    }
    fill(std::string(RoleName(role)));
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token");
}

std::string PeerHost(absl::string_view peer) {
  // "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:/path".
  const size_t scheme = peer.find(':');
  absl::string_view rest = scheme == absl::string_view::npos ? peer : peer.substr(scheme + 1);
  if (absl::StartsWith(peer, "unix:")) return std::string(rest);
  const size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos) rest = rest.substr(0, colon);
  if (rest.size() >= 2 && rest.front() == '[' && rest.back() == ']') {
    rest = rest.substr(1, rest.size() - 2);
  }
  return std::string(rest);
}

}  // namespace deepsearch::rpc
