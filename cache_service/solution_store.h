// The durable store of verified solutions (ARCHITECTURE §4.5, DEEPSEARCH_SPEC §2): actors send
// the responses their verifier accepted; the store re-verifies each with the problem's own
// verifier, dedupes, and keeps them so that a solved problem is trained from its cached
// solutions instead of being searched again.
//
//   DS_ASSIGN_OR_RETURN(auto store, SolutionStore::Open(dir + "/solutions.db", options));
//   DS_ASSIGN_OR_RETURN(std::vector<PutOutcome> out, store->Put(solutions));  // durable now
//   DS_ASSIGN_OR_RETURN(auto found, store->Lookup({"p-1", "p-2"}, /*max_per_problem=*/8));
//
// Put, for each solution in order:
//   * re-verification: the task family named by problem.task (MakeTaskFamily) grades
//     response_text; anything but +1 is rejected with the verifier's reason. So are a missing
//     problem id or response, an unknown task spec, and a response over max_response_bytes.
//   * problem identity: the first stored solution of a problem id records a fingerprint of
//     its task, prompt and answer; a later solution that names the same id with other
//     content is rejected (a problem id can never collect solutions of another problem).
//   * dedupe key: problem id + the verifier's normalised answer + XXH3-64 of the response
//     tokens (of the text when no tokens are given). A repeat is not stored again; the
//     stored one's `duplicates` count goes up.
// The accepted solutions of one call are written in one SQLite transaction and Put returns
// only after it committed with synchronous=FULL in WAL mode: an acknowledged solution
// survives kill -9 and power loss. When the commit fails nothing of the call is stored and
// Put returns the error.
//
// Why SQLite (Debian's libsqlite3): the data are small rows (a solution is a few KB), a put
// is a multi-row transaction with a uniqueness rule and a counter update, and lookups go by
// a secondary key (problem id) — what SQL gives with one index, where a key-value store
// would need hand-made composite keys. One file, readable with the sqlite3 shell.
//
// Thread-safe: verification runs concurrently; database access is serialised.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "common/tasks/problem.h"
#include "common/tasks/task.h"

struct sqlite3;
struct sqlite3_stmt;

namespace deepsearch {

struct SolutionToPut {
  Problem problem;
  std::vector<int32_t> response_tokens;
  std::string response_text;
  int64_t weight_version = 0;
  std::string trajectory_id;
};

enum class PutStatus { kStored, kDuplicate, kRejected };

struct PutOutcome {
  std::string problem_id;
  PutStatus status = PutStatus::kRejected;
  std::string reason;  // kRejected: why
};

struct StoredSolutionRecord {
  std::vector<int32_t> response_tokens;
  std::string response_text;
  std::string answer;  // the verifier's normalised answer
  int64_t weight_version = 0;
  int64_t duplicates = 0;  // submissions of the same solution after the first

  friend bool operator==(const StoredSolutionRecord&, const StoredSolutionRecord&) = default;
};

struct SolutionStoreStats {
  int64_t problems = 0;     // problems with at least one stored solution
  int64_t solutions = 0;    // stored solutions
  int64_t duplicates = 0;   // repeats counted, over the store's life
  int64_t rejected = 0;     // since this process opened the store
  int64_t lookups = 0;      // problem ids looked up since open
  int64_t lookup_hits = 0;  // of those, ids with at least one solution
};

struct SolutionStoreOptions {
  int32_t max_response_bytes = 1 << 20;
};

class SolutionStore {
 public:
  // Opens (creating when absent) the database at `path`. Errors name the path: a file that is
  // not a SQLite database, one with another schema, an unwritable location.
  static absl::StatusOr<std::unique_ptr<SolutionStore>> Open(const std::string& path,
                                                             SolutionStoreOptions options = {});
  ~SolutionStore();
  SolutionStore(const SolutionStore&) = delete;
  SolutionStore& operator=(const SolutionStore&) = delete;

  // One outcome per solution, in order (see the file comment). An error (the commit failed)
  // means nothing of the call was stored.
  absl::StatusOr<std::vector<PutOutcome>> Put(const std::vector<SolutionToPut>& solutions);

  // The stored solutions of each id that has any, oldest first, at most max_per_problem each
  // (0: all). Ids without solutions are absent from the map.
  absl::StatusOr<std::map<std::string, std::vector<StoredSolutionRecord>>> Lookup(
      const std::vector<std::string>& problem_ids, int32_t max_per_problem);

  SolutionStoreStats stats() const;
  const std::string& path() const { return path_; }

 private:
  struct Verified;
  SolutionStore(std::string path, SolutionStoreOptions options, sqlite3* db);
  absl::Status Prepare() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadCounts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The verifier of `task`, made once per spec.
  absl::StatusOr<const TaskFamily*> Family(const std::string& task);
  // Re-verifies one solution; the outcome's status is kRejected when it fails.
  Verified Verify(const SolutionToPut& solution);
  // One verified solution into the open transaction: its problem (new, or the same
  // fingerprint; another one rejects it), then the solution (stored, or counted a duplicate).
  // An SQL error is returned as it is; Put rolls the transaction back.
  struct PutCounts {
    int64_t problems = 0, stored = 0, duplicates = 0;
  };
  absl::Status WriteLocked(const SolutionToPut& s, Verified& v, PutCounts& counts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const SolutionStoreOptions options_;

  mutable absl::Mutex families_mu_;
  std::map<std::string, std::unique_ptr<TaskFamily>> families_ ABSL_GUARDED_BY(families_mu_);

  mutable absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  sqlite3_stmt* find_problem_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* insert_problem_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* insert_solution_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* count_duplicate_ ABSL_GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* lookup_ ABSL_GUARDED_BY(mu_) = nullptr;
  SolutionStoreStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deepsearch
