#include "cache_service/solution_store.h"

#include <cstring>
#include <set>
#include <string_view>
#include <utility>

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/core/hash.h"
#include "common/core/status.h"

namespace deepsearch {
namespace {

constexpr int kSchemaVersion = 1;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS problems(
  id TEXT PRIMARY KEY,
  fingerprint INTEGER NOT NULL,
  task TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS solutions(
  seq INTEGER PRIMARY KEY,
  problem_id TEXT NOT NULL,
  answer TEXT NOT NULL,
  response_hash INTEGER NOT NULL,
  response_tokens BLOB NOT NULL,
  response_text TEXT NOT NULL,
  weight_version INTEGER NOT NULL,
  trajectory_id TEXT NOT NULL,
  duplicates INTEGER NOT NULL DEFAULT 0,
  UNIQUE(problem_id, answer, response_hash)
);
)sql";

// The absl code of a SQLite result code.
absl::StatusCode CodeOf(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status SqlError(sqlite3* db, int rc, std::string_view what, const std::string& path) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return absl::Status(
      CodeOf(rc), absl::StrCat("solution store ", path, ": ", std::string(what), ": ", message));
}

// Resets a statement on scope exit, so it never holds a read transaction open.
class StatementScope {
 public:
  explicit StatementScope(sqlite3_stmt* s) : s_(s) {}
  ~StatementScope() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  StatementScope(const StatementScope&) = delete;
  StatementScope& operator=(const StatementScope&) = delete;

 private:
  sqlite3_stmt* s_;
};

void BindText(sqlite3_stmt* s, int index, std::string_view text) {
  sqlite3_bind_text64(s, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

std::string ColumnText(sqlite3_stmt* s, int column) {
  const unsigned char* p = sqlite3_column_text(s, column);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p),
                                    static_cast<size_t>(sqlite3_column_bytes(s, column)));
}

// Token ids as stored: int32 in the host's byte order (little-endian on every supported host).
std::string_view TokenBytes(const std::vector<int32_t>& tokens) {
  return {reinterpret_cast<const char*>(tokens.data()), tokens.size() * sizeof(int32_t)};
}

uint64_t Fingerprint(std::string_view task, std::string_view prompt, std::string_view answer) {
  std::string bytes;
  for (std::string_view part : {task, prompt, answer}) {
    absl::StrAppend(&bytes, part.size(), ":", std::string(part), ";");
  }
  return Hash64(bytes);
}

uint64_t ResponseHash(const SolutionToPut& s) {
  if (!s.response_tokens.empty()) return Hash64(TokenBytes(s.response_tokens));
  return Hash64(absl::StrCat("text:", s.response_text));
}

}  // namespace

struct SolutionStore::Verified {
  PutOutcome outcome;
  std::string task;  // the family's canonical spec
  uint64_t fingerprint = 0;
  std::string answer;
  uint64_t response_hash = 0;
};

SolutionStore::SolutionStore(std::string path, SolutionStoreOptions options, sqlite3* db)
    : path_(std::move(path)), options_(options), db_(db) {}

SolutionStore::~SolutionStore() {
  absl::MutexLock lock(&mu_);
  for (sqlite3_stmt* s :
       {find_problem_, insert_problem_, insert_solution_, count_duplicate_, lookup_}) {
    sqlite3_finalize(s);
  }
  sqlite3_close(db_);
}

absl::StatusOr<std::unique_ptr<SolutionStore>> SolutionStore::Open(const std::string& path,
                                                                   SolutionStoreOptions options) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status error = SqlError(db, rc, "cannot open", path);
    sqlite3_close(db);
    return error;
  }
  std::unique_ptr<SolutionStore> store(new SolutionStore(path, options, db));
  absl::MutexLock lock(&store->mu_);
  DS_RETURN_IF_ERROR(store->Prepare());
  DS_RETURN_IF_ERROR(store->LoadCounts());
  return store;
}

absl::Status SolutionStore::Prepare() {
  sqlite3* const db = db_;  // the lambdas below run under the caller's lock
  auto exec = [&](const std::string& sql, std::string_view what) -> absl::Status {
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
    sqlite3_free(message);
    if (rc != SQLITE_OK) return SqlError(db, rc, what, path_);
    return absl::OkStatus();
  };
  sqlite3_busy_timeout(db_, 5000);
  // A file that is not a database fails here ("file is not a database").
  DS_RETURN_IF_ERROR(exec("PRAGMA journal_mode=WAL", "setting WAL mode"));
  // FULL: a commit returns after the WAL is fsync'ed, so an acknowledged put is durable.
  DS_RETURN_IF_ERROR(exec("PRAGMA synchronous=FULL", "setting synchronous=FULL"));

  int version = 0;
  {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &s, nullptr);
    if (rc != SQLITE_OK) return SqlError(db_, rc, "reading the schema version", path_);
    if (sqlite3_step(s) == SQLITE_ROW) version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
  }
  if (version == 0) {
    DS_RETURN_IF_ERROR(exec(absl::StrCat("BEGIN IMMEDIATE;", kSchema,
                                         "PRAGMA user_version=", kSchemaVersion, ";COMMIT;"),
                            "creating the schema"));
  } else if (version != kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("solution store ", path_, ": schema version ",
                                                      version, ", this build reads ",
                                                      kSchemaVersion));
  }

  auto prepare = [&](const char* sql, sqlite3_stmt** out) -> absl::Status {
    const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, nullptr);
    if (rc != SQLITE_OK) return SqlError(db, rc, absl::StrCat("preparing `", sql, "`"), path_);
    return absl::OkStatus();
  };
  DS_RETURN_IF_ERROR(prepare("SELECT fingerprint FROM problems WHERE id = ?1", &find_problem_));
  DS_RETURN_IF_ERROR(
      prepare("INSERT INTO problems(id, fingerprint, task) VALUES (?1, ?2, ?3)", &insert_problem_));
  DS_RETURN_IF_ERROR(
      prepare("INSERT OR IGNORE INTO solutions(problem_id, answer, response_hash, response_tokens, "
              "response_text, weight_version, trajectory_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
              &insert_solution_));
  DS_RETURN_IF_ERROR(
      prepare("UPDATE solutions SET duplicates = duplicates + 1 "
              "WHERE problem_id = ?1 AND answer = ?2 AND response_hash = ?3",
              &count_duplicate_));
  DS_RETURN_IF_ERROR(prepare(
      "SELECT response_tokens, response_text, answer, weight_version, duplicates FROM solutions "
      "WHERE problem_id = ?1 ORDER BY seq LIMIT ?2",
      &lookup_));
  return absl::OkStatus();
}

absl::Status SolutionStore::LoadCounts() {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_,
                              "SELECT (SELECT COUNT(*) FROM problems), (SELECT COUNT(*) FROM "
                              "solutions), (SELECT COALESCE(SUM(duplicates), 0) FROM solutions)",
                              -1, &s, nullptr);
  if (rc != SQLITE_OK) return SqlError(db_, rc, "counting", path_);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    stats_.problems = sqlite3_column_int64(s, 0);
    stats_.solutions = sqlite3_column_int64(s, 1);
    stats_.duplicates = sqlite3_column_int64(s, 2);
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) return SqlError(db_, rc, "counting", path_);
  return absl::OkStatus();
}

absl::StatusOr<const TaskFamily*> SolutionStore::Family(const std::string& task) {
  absl::MutexLock lock(&families_mu_);
  auto it = families_.find(task);
  if (it != families_.end()) return it->second.get();
  DS_ASSIGN_OR_RETURN(std::unique_ptr<TaskFamily> family, MakeTaskFamily(task));
  // Bounded: a client naming endless distinct specs cannot grow the map without limit.
  if (families_.size() >= 1024) families_.clear();
  return families_.emplace(task, std::move(family)).first->second.get();
}

SolutionStore::Verified SolutionStore::Verify(const SolutionToPut& s) {
  Verified v;
  v.outcome.problem_id = s.problem.id;
  auto reject = [&](std::string reason) {
    v.outcome.status = PutStatus::kRejected;
    v.outcome.reason = std::move(reason);
    return std::move(v);
  };
  if (s.problem.id.empty()) return reject("the problem has no id");
  if (s.response_text.empty()) return reject("empty response text");
  if (s.response_text.size() > static_cast<size_t>(options_.max_response_bytes)) {
    return reject(absl::StrCat("response text of ", s.response_text.size(), " bytes; at most ",
                               options_.max_response_bytes, " are stored"));
  }
  absl::StatusOr<const TaskFamily*> family = Family(s.problem.task);
  if (!family.ok()) {
    return reject(absl::StrCat("unknown task '", s.problem.task, "': ", family.status().message()));
  }
  const Verdict verdict = (*family)->Verify(s.problem, s.response_text);
  if (!verdict.correct) {
    return reject(absl::StrCat("re-verification failed: ",
                               verdict.reason.empty() ? "wrong answer" : verdict.reason));
  }
  v.outcome.status = PutStatus::kStored;
  v.task = (*family)->spec();
  v.fingerprint = Fingerprint(v.task, s.problem.prompt, s.problem.answer);
  v.answer = verdict.predicted;
  v.response_hash = ResponseHash(s);
  return v;
}

absl::Status SolutionStore::WriteLocked(const SolutionToPut& s, Verified& v, PutCounts& counts) {
  int rc = SQLITE_OK;
  {
    StatementScope scope(find_problem_);
    BindText(find_problem_, 1, s.problem.id);
    rc = sqlite3_step(find_problem_);
    if (rc == SQLITE_ROW) {
      if (static_cast<uint64_t>(sqlite3_column_int64(find_problem_, 0)) != v.fingerprint) {
        v.outcome.status = PutStatus::kRejected;
        v.outcome.reason = absl::StrCat("problem id '", s.problem.id,
                                        "' is stored with another task, prompt or answer");
        return absl::OkStatus();
      }
    } else if (rc == SQLITE_DONE) {
      StatementScope insert(insert_problem_);
      BindText(insert_problem_, 1, s.problem.id);
      sqlite3_bind_int64(insert_problem_, 2, static_cast<int64_t>(v.fingerprint));
      BindText(insert_problem_, 3, v.task);
      rc = sqlite3_step(insert_problem_);
      if (rc != SQLITE_DONE) return SqlError(db_, rc, "storing a problem", path_);
      ++counts.problems;
    } else {
      return SqlError(db_, rc, "finding a problem", path_);
    }
  }
  {
    StatementScope scope(insert_solution_);
    BindText(insert_solution_, 1, s.problem.id);
    BindText(insert_solution_, 2, v.answer);
    sqlite3_bind_int64(insert_solution_, 3, static_cast<int64_t>(v.response_hash));
    const std::string_view tokens = TokenBytes(s.response_tokens);
    if (tokens.empty()) {
      sqlite3_bind_zeroblob(insert_solution_, 4, 0);  // a null pointer would bind NULL
    } else {
      sqlite3_bind_blob64(insert_solution_, 4, tokens.data(), tokens.size(), SQLITE_TRANSIENT);
    }
    BindText(insert_solution_, 5, s.response_text);
    sqlite3_bind_int64(insert_solution_, 6, s.weight_version);
    BindText(insert_solution_, 7, s.trajectory_id);
    rc = sqlite3_step(insert_solution_);
    if (rc != SQLITE_DONE) return SqlError(db_, rc, "storing a solution", path_);
  }
  if (sqlite3_changes(db_) > 0) {
    ++counts.stored;
    return absl::OkStatus();
  }
  StatementScope scope(count_duplicate_);
  BindText(count_duplicate_, 1, s.problem.id);
  BindText(count_duplicate_, 2, v.answer);
  sqlite3_bind_int64(count_duplicate_, 3, static_cast<int64_t>(v.response_hash));
  rc = sqlite3_step(count_duplicate_);
  if (rc != SQLITE_DONE) return SqlError(db_, rc, "counting a duplicate", path_);
  v.outcome.status = PutStatus::kDuplicate;
  ++counts.duplicates;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PutOutcome>> SolutionStore::Put(
    const std::vector<SolutionToPut>& solutions) {
  std::vector<Verified> verified;
  verified.reserve(solutions.size());
  for (const SolutionToPut& s : solutions) verified.push_back(Verify(s));

  absl::MutexLock lock(&mu_);
  sqlite3* const db = db_;  // the lambda below runs under this lock
  auto exec = [db](const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); };
  int rc = exec("BEGIN IMMEDIATE");
  if (rc != SQLITE_OK) return SqlError(db_, rc, "beginning a transaction", path_);
  PutCounts counts;
  for (size_t i = 0; i < verified.size(); ++i) {
    if (verified[i].outcome.status == PutStatus::kRejected) continue;
    if (absl::Status s = WriteLocked(solutions[i], verified[i], counts); !s.ok()) {
      exec("ROLLBACK");
      return s;
    }
  }
  rc = exec("COMMIT");
  if (rc != SQLITE_OK) {
    absl::Status error = SqlError(db_, rc, "committing", path_);
    exec("ROLLBACK");
    return error;
  }

  std::vector<PutOutcome> outcomes;
  outcomes.reserve(verified.size());
  for (Verified& v : verified) {
    if (v.outcome.status == PutStatus::kRejected) ++stats_.rejected;
    outcomes.push_back(std::move(v.outcome));
  }
  stats_.problems += counts.problems;
  stats_.solutions += counts.stored;
  stats_.duplicates += counts.duplicates;
  return outcomes;
}

absl::StatusOr<std::map<std::string, std::vector<StoredSolutionRecord>>> SolutionStore::Lookup(
    const std::vector<std::string>& problem_ids, int32_t max_per_problem) {
  const std::set<std::string> ids(problem_ids.begin(), problem_ids.end());
  std::map<std::string, std::vector<StoredSolutionRecord>> found;
  absl::MutexLock lock(&mu_);
  for (const std::string& id : ids) {
    StatementScope scope(lookup_);
    BindText(lookup_, 1, id);
    sqlite3_bind_int64(lookup_, 2, max_per_problem > 0 ? max_per_problem : -1);
    std::vector<StoredSolutionRecord> records;
    int rc;
    while ((rc = sqlite3_step(lookup_)) == SQLITE_ROW) {
      StoredSolutionRecord& r = records.emplace_back();
      const auto* blob = static_cast<const char*>(sqlite3_column_blob(lookup_, 0));
      const size_t bytes = static_cast<size_t>(sqlite3_column_bytes(lookup_, 0));
      r.response_tokens.resize(bytes / sizeof(int32_t));
      if (bytes > 0) std::memcpy(r.response_tokens.data(), blob, r.response_tokens.size() * 4);
      r.response_text = ColumnText(lookup_, 1);
      r.answer = ColumnText(lookup_, 2);
      r.weight_version = sqlite3_column_int64(lookup_, 3);
      r.duplicates = sqlite3_column_int64(lookup_, 4);
    }
    if (rc != SQLITE_DONE) return SqlError(db_, rc, "looking up solutions", path_);
    ++stats_.lookups;
    if (!records.empty()) {
      ++stats_.lookup_hits;
      found.emplace(id, std::move(records));
    }
  }
  return found;
}

SolutionStoreStats SolutionStore::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace deepsearch
