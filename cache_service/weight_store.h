// The weight versions the cache service holds and forwards (ARCHITECTURE §3, §6): the learner
// publishes each new version; the store keeps the newest K on disk and hands every subscriber
// the newest version as a full copy or as a delta against the version it holds.
//
//   DS_ASSIGN_OR_RETURN(auto store, WeightStore::Open({.dir = dir + "/weights"}));
//   DS_RETURN_IF_ERROR(store->Publish(std::move(received)));      // durable on return
//   int64_t v = store->WaitNewer(have, absl::Now() + absl::Milliseconds(200));
//   DS_ASSIGN_OR_RETURN(auto encoded, store->Encoded(v, /*base=*/have));  // shared, cached
//
// Publish takes a version two ways. Streamed bytes (a full copy, or a delta against a kept
// version) are decoded, every checksum verified, and written as `weights-<version>.safetensors`
// (a weight file, common/weights/weight_file.h: temp file, rename). A file reference
// (kFile) names a weight file the publisher wrote into the import directory on this file
// system: every byte is checked against the header's manifest and the file is renamed into
// place, so a learner on the same host hands a version over without a copy. Either way the
// version becomes visible once its whole file is in place, then the file and directory are
// fsync'ed, and only then does Publish return: an acknowledged version is durable, and
// subscribers on this host read it while the disk catches up. A version that is not newer
// than the newest is refused. The oldest files beyond `keep_versions` are pruned: retired as
// spares into the import directory (at most `spare_files`, and only when no reader here or
// elsewhere maps them: common/weights/weight_file.h; WriteWeightFile overwrites them in
// place), else deleted.
// Open reads the kept files back (checking every tensor's checksum); the newest ones that do
// not read back whole (torn by a machine crash before their fsync: never acknowledged) are set
// aside as `.corrupt`, and the store continues at the newest good version.
//
// Subscribers that share this file system are handed the stored file by reference
// (FileReference) and map it; a file never changes while kept or mapped.
//
// Encodings are made once per (version, base) and shared by every subscriber that asks for
// the same pair (a bounded cache, newest first), so fanning a version out to N actors costs
// one encoding. A delta is made when the base is kept and has the same layout; otherwise the
// full copy is returned.
//
// Memory: the newest version stays in memory (as a mapping of its file when it was imported or
// read back), older kept ones are mapped when a delta or a GetWeights needs them (the last one
// read is kept), plus the cached encodings.
//
// Thread-safe. Publishes are serialised; readers never wait for a publish in progress.
#pragma once

#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "common/weights/weight_set.h"

namespace deepsearch {

struct WeightStoreOptions {
  std::string dir;
  int32_t keep_versions = 3;
  int32_t zstd_level = 3;
  // Encodings kept for subscribers ((version, base) pairs).
  int32_t cached_encodings = 8;
  // Pruned version files kept in the import directory as spares, overwritten by the next
  // version written there (by the store or a publisher) so their page-cache pages are reused.
  int32_t spare_files = 2;
  // Where publishers on this file system put weight files to hand over by reference; only
  // files directly in it are taken, and it must be on the same file system as `dir`.
  // Empty: <dir>/incoming.
  std::string import_dir = {};
};

struct WeightStoreStats {
  int64_t latest_version = 0;  // 0: none
  int32_t versions_kept = 0;
  int64_t published = 0;         // versions accepted since open
  int64_t publish_rejected = 0;  // versions refused since open
  int64_t encodings_made = 0;    // full and delta, since open
  int64_t deltas_made = 0;
};

class WeightStore {
 public:
  // Creates `dir` and the import directory when absent and loads the versions kept there
  // (the newest ones that do not read back whole are set aside; see the file comment).
  // Errors name the directory or file: one that cannot be created, listed or read.
  static absl::StatusOr<std::unique_ptr<WeightStore>> Open(WeightStoreOptions options);

  // Decodes, checks and stores one version (see the file comment). A version already stored
  // with the same tensors (their checksums), or one older than every kept version, is
  // AlreadyExists: a learner resumed from a checkpoint republishes what it published before.
  // Errors: FailedPrecondition for a kept version with other weights, any other version not
  // newer than the newest, a delta whose base is not kept; DataLoss and
  // InvalidArgument from decoding (the message names what did not match); for a file
  // reference, PermissionDenied for a path outside the import directory, InvalidArgument for
  // one that is not a regular file, DataLoss for a file that does not hold the header's
  // version and manifest (such a file is deleted); the file system's error when writing
  // fails. On any error nothing becomes visible. An error after the version became visible
  // (the fsync failed) says so: the version stays, not yet durable.
  absl::Status Publish(EncodedWeights encoded);

  // The newest version (0: none).
  int64_t latest_version() const;
  // The kept versions, oldest first.
  std::vector<int64_t> versions() const;

  // Waits until a version newer than `have` is visible, `deadline` passes, or Close() is
  // called; returns the newest version (which is <= have on timeout or close).
  int64_t WaitNewer(int64_t have, absl::Time deadline) const;
  // Wakes every waiter for good (server shutdown).
  void Close();
  bool closed() const;

  // `version` encoded for a receiver that holds `base` (0: none): a delta against `base` when
  // it is kept and has the same layout, else the full set. NotFound (listing the kept
  // versions) when `version` is not kept.
  absl::StatusOr<std::shared_ptr<const EncodedWeights>> Encoded(int64_t version, int64_t base);

  // The decoded set of a kept version.
  absl::StatusOr<std::shared_ptr<const WeightSet>> Get(int64_t version);

  // `version` as a reference to its stored file (WeightEncoding::kFile, an absolute path), for
  // a receiver that shares this file system. NotFound when it is not kept.
  absl::StatusOr<std::shared_ptr<const EncodedWeights>> FileReference(int64_t version);

  // The directories in use (absolute).
  const std::string& dir() const { return options_.dir; }
  const std::string& import_dir() const { return options_.import_dir; }

  WeightStoreStats stats() const;

 private:
  struct EncodingSlot;
  explicit WeightStore(WeightStoreOptions options) : options_(std::move(options)) {}
  std::string PathOf(int64_t version) const;
  // `path` when it names a regular file directly in the import directory.
  absl::StatusOr<std::string> ImportPath(const std::string& path) const;
  absl::StatusOr<std::shared_ptr<const WeightSet>> Load(int64_t version) const;
  absl::Status NotKept(int64_t version) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Publish's steps. Admit: OK for a version newer than every kept one; ALREADY_EXISTS for
  // one older than every kept one, or kept with the same weights (nothing to store); else
  // the refusal.
  absl::Status Admit(const EncodedWeights& encoded) ABSL_LOCKS_EXCLUDED(mu_);
  // An imported file: checked against the manifest, moved to `path` (then `imported` is
  // cleared), its fsync started in `synced`. The version is not yet visible.
  absl::StatusOr<std::shared_ptr<const WeightSet>> MoveIn(const EncodedWeights& encoded,
                                                          std::string& imported,
                                                          const std::string& path,
                                                          std::future<absl::Status>& synced) const;
  // Inline bytes or a delta: decoded (against its base) and written to `path`, not synced.
  absl::StatusOr<std::shared_ptr<const WeightSet>> DecodeAndWrite(EncodedWeights encoded,
                                                                  const std::string& path)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Makes `version` visible as the newest; returns the versions pruned beyond keep_versions
  // (their encodings dropped; their files still to retire).
  std::vector<int64_t> InstallLocked(int64_t version, std::shared_ptr<const WeightSet> set)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const WeightStoreOptions options_;

  absl::Mutex publish_mu_;  // one publish at a time; taken before mu_

  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;                       // a new version, or closed
  std::vector<int64_t> versions_ ABSL_GUARDED_BY(mu_);  // kept, ascending
  std::shared_ptr<const WeightSet> latest_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const WeightSet> loaded_ ABSL_GUARDED_BY(mu_);  // last older version read
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  WeightStoreStats stats_ ABSL_GUARDED_BY(mu_);
  // (version, base) -> its encoding, made once; newest-first eviction order in encoding_order_.
  std::map<std::pair<int64_t, int64_t>, std::shared_ptr<EncodingSlot>> encodings_
      ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<int64_t, int64_t>> encoding_order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deepsearch
