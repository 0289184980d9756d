// The weight versions the cache service holds and forwards (ARCHITECTURE §3, §6): the learner
// publishes each new version; the store keeps the newest K on disk and hands every subscriber
// the newest version as a full copy or as a delta against the version it holds.
//
//   DS_ASSIGN_OR_RETURN(auto store, WeightStore::Open({.dir = dir + "/weights"}));
//   DS_RETURN_IF_ERROR(store->Publish(std::move(received)));      // visible once durable
//   int64_t v = store->WaitNewer(have, absl::Now() + absl::Milliseconds(200));
//   DS_ASSIGN_OR_RETURN(auto encoded, store->Encoded(v, /*base=*/have));  // shared, cached
//
// Publish decodes what it receives (a full copy, or a delta against a kept version),
// verifying every checksum, refuses a version that is not newer than the newest one, writes
// the set as `weights-<version>.safetensors` atomically (temp file, fsync, rename, fsync of
// the directory), and only then makes it visible: a subscriber never sees a version that is
// not complete and durable. The oldest files beyond `keep_versions` are deleted afterwards.
// Open reads the kept files back (each file's payload checksum is verified), so a restarted
// service continues at its newest version.
//
// File format: safetensors (the tensors in the reference writer's order) with metadata
// "deepsearch.weight_version", "deepsearch.model_config" (the config.json), and
// "deepsearch.tensor_order" (a JSON list of the names in the set's manifest order) and
// "deepsearch.payload_xxh3" (16 hex digits over the manifest-order payload).
//
// Encodings are made once per (version, base) and shared by every subscriber that asks for
// the same pair (a bounded cache, newest first), so fanning a version out to N actors costs
// one encoding. A delta is made when the base is kept and has the same layout; otherwise the
// full copy is returned.
//
// Memory: the newest version stays in memory, older kept ones are read from disk when a delta
// or a GetWeights needs them (the last one read is kept), plus the cached encodings.
//
// Thread-safe. Publishes are serialised; readers never wait for a publish in progress.
#pragma once

#include <cstdint>
#include <deque>
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
  // Creates `dir` when absent and loads the versions kept there. Errors name the file: an
  // unreadable or corrupted version file (its checksum does not match).
  static absl::StatusOr<std::unique_ptr<WeightStore>> Open(WeightStoreOptions options);

  // Decodes, checks and stores one version (see the file comment). A version already stored
  // with the same tensors (their checksums), or one older than every kept version, is
  // AlreadyExists: a learner resumed from a checkpoint republishes what it published before.
  // Errors: FailedPrecondition for a kept version with other weights, any other version not
  // newer than the newest, a delta whose base is not kept; DataLoss and
  // InvalidArgument from decoding (the message names what did not match); the file system's
  // error when writing fails. On any error nothing becomes visible.
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

  WeightStoreStats stats() const;

 private:
  struct EncodingSlot;
  explicit WeightStore(WeightStoreOptions options) : options_(std::move(options)) {}
  std::string PathOf(int64_t version) const;
  absl::StatusOr<std::shared_ptr<const WeightSet>> Load(int64_t version) const;
  absl::Status NotKept(int64_t version) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

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
