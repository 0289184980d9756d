#include "cache_service/weight_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <future>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/core/files.h"
#include "common/core/hash.h"
#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/weights/weight_file.h"

namespace deepsearch {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPrefix = "weights-";
constexpr std::string_view kSuffix = ".safetensors";

// The version of a file called weights-<version>.safetensors, or 0.
int64_t VersionOfFile(const std::string& name) {
  if (name.size() <= kPrefix.size() + kSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSuffix)) {
    return 0;
  }
  int64_t version = 0;
  const std::string_view digits =
      std::string_view(name).substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  if (!absl::SimpleAtoi(std::string(digits), &version) || version <= 0) return 0;
  return version;
}

}  // namespace

struct WeightStore::EncodingSlot {
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::StatusOr<std::shared_ptr<const EncodedWeights>> result ABSL_GUARDED_BY(mu) =
      absl::UnknownError("not encoded");
};

std::string WeightStore::PathOf(int64_t version) const {
  char name[64];
  std::snprintf(name, sizeof(name), "weights-%012" PRId64 ".safetensors", version);
  return (fs::path(options_.dir) / name).string();
}

absl::StatusOr<std::unique_ptr<WeightStore>> WeightStore::Open(WeightStoreOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("weight store: no directory");
  if (options.keep_versions < 1) {
    return absl::InvalidArgumentError("weight store: keep_versions must be >= 1");
  }
  std::error_code ec;
  options.dir = fs::absolute(options.dir, ec).lexically_normal().string();
  if (options.import_dir.empty())
    options.import_dir = (fs::path(options.dir) / "incoming").string();
  for (const std::string& dir : {options.dir, options.import_dir}) {
    fs::create_directories(dir, ec);
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("weight store: cannot create ", dir, ": ", ec.message()));
    }
  }
  options.import_dir = fs::weakly_canonical(options.import_dir, ec).string();
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("weight store: cannot resolve ", options.import_dir, ": ", ec.message()));
  }
  std::unique_ptr<WeightStore> store(new WeightStore(std::move(options)));
  std::vector<int64_t> versions;
  for (const fs::directory_entry& entry : fs::directory_iterator(store->options_.dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (const int64_t v = VersionOfFile(name); v > 0) {
      versions.push_back(v);
    } else if (name.starts_with(".weights-") && name.find(".tmp.") != std::string::npos) {
      // The temporary file of a publish that was killed before its rename: never visible.
      fs::remove(entry.path(), ec);
    }
  }
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("weight store: cannot list ", store->options_.dir, ": ", ec.message()));
  }
  std::sort(versions.begin(), versions.end());
  // The newest version that reads back whole. A version is visible before it is fsync'ed, so
  // a machine crash can tear the newest ones (never an acknowledged one): those are set
  // aside as <name>.corrupt, and the store continues from the newest good one.
  std::shared_ptr<const WeightSet> latest;
  while (!versions.empty()) {
    absl::StatusOr<std::shared_ptr<const WeightSet>> loaded = store->Load(versions.back());
    if (loaded.ok()) {
      latest = *std::move(loaded);
      break;
    }
    if (!absl::IsDataLoss(loaded.status()) && !absl::IsInvalidArgument(loaded.status())) {
      return loaded.status();
    }
    const std::string path = store->PathOf(versions.back());
    log::Warning("weight store: setting aside {}: {}", path, loaded.status().message());
    fs::rename(path, path + ".corrupt", ec);
    if (ec) {
      return absl::DataLossError(absl::StrCat("weight store: ", loaded.status().message(),
                                              "; and it cannot be set aside: ", ec.message()));
    }
    versions.pop_back();
  }
  absl::MutexLock lock(&store->mu_);
  store->versions_ = std::move(versions);
  store->latest_ = std::move(latest);
  store->stats_.latest_version = store->versions_.empty() ? 0 : store->versions_.back();
  store->stats_.versions_kept = static_cast<int32_t>(store->versions_.size());
  return store;
}

absl::StatusOr<std::shared_ptr<const WeightSet>> WeightStore::Load(int64_t version) const {
  DS_ASSIGN_OR_RETURN(WeightSet set, ReadWeightFile(PathOf(version), {.version = version}));
  return std::make_shared<const WeightSet>(std::move(set));
}

absl::Status WeightStore::NotKept(int64_t version) const {
  return absl::NotFoundError(absl::StrCat(
      "weight version ", version,
      " is not kept (kept: ", versions_.empty() ? "none" : absl::StrJoin(versions_, ", "), ")"));
}

absl::StatusOr<std::string> WeightStore::ImportPath(const std::string& path) const {
  std::error_code ec;
  const fs::path file(path);
  if (!file.is_absolute() || !file.has_filename()) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not an absolute file path"));
  }
  const fs::path dir = fs::weakly_canonical(file.parent_path(), ec);
  if (ec || dir.string() != options_.import_dir) {
    return absl::PermissionDeniedError(absl::StrCat(path, " is not in the import directory ",
                                                    options_.import_dir,
                                                    " (cache.weight_import_dir)"));
  }
  const fs::file_status status = fs::symlink_status(file, ec);
  if (ec || !fs::is_regular_file(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ec ? absl::StrCat(": ", ec.message()) : " is not a regular file"));
  }
  return (dir / file.filename()).string();
}

absl::Status WeightStore::Admit(const EncodedWeights& encoded) {
  const int64_t version = encoded.version;
  int64_t latest = 0, oldest = 0;
  bool kept = false;
  {
    absl::MutexLock lock(&mu_);
    latest = versions_.empty() ? 0 : versions_.back();
    oldest = versions_.empty() ? 0 : versions_.front();
    kept = std::find(versions_.begin(), versions_.end(), version) != versions_.end();
  }
  if (version <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight version ", version, ": versions start at 1"));
  }
  if (version < oldest) {
    // A learner that resumed from an older checkpoint republishes what it had published.
    return absl::AlreadyExistsError(absl::StrCat("weight version ", version,
                                                 " is older than every kept version (oldest ",
                                                 oldest, "); nothing to store"));
  }
  if (kept) {
    // The same version again: fine when it is the same weights (a restarted learner), refused
    // when it is other ones (versions name weights; they never change).
    absl::StatusOr<std::shared_ptr<const WeightSet>> stored = Get(version);
    if (stored.ok() && (*stored)->tensors == encoded.tensors) {
      return absl::AlreadyExistsError(
          absl::StrCat("weight version ", version, " is already stored, with these weights"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("weight version ", version, " is stored with other weights (the newest is ",
                     latest, "); versions must increase"));
  }
  if (version <= latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "weight version ", version, " is not newer than the newest stored version ", latest));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const WeightSet>> WeightStore::MoveIn(
    const EncodedWeights& encoded, std::string& imported, const std::string& path,
    std::future<absl::Status>& synced) const {
  const int64_t version = encoded.version;
  const int fd = ::open(imported.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot open", imported);
  synced = std::async(std::launch::async, [fd, file = imported] {
    absl::Status s = ::fsync(fd) == 0 ? absl::OkStatus() : ErrnoError(errno, "cannot fsync", file);
    ::close(fd);
    return s;
  });
  auto fail = [&](absl::Status status) {
    synced.wait();
    return status;
  };
  // The publisher wrote the file on this file system: check every byte against the header's
  // manifest, then move it in. Nothing is copied.
  absl::StatusOr<WeightSet> mapped =
      ReadWeightFile(imported, {.version = version, .manifest = &encoded.tensors});
  if (!mapped.ok()) return fail(mapped.status());
  if (mapped->model_config_json != encoded.model_config_json) {
    return fail(
        absl::InvalidArgumentError(absl::StrCat(imported, " records another model config")));
  }
  if (std::rename(imported.c_str(), path.c_str()) != 0) {
    return fail(Annotate(ErrnoError(errno, absl::StrCat("cannot move ", imported, " to"), path),
                         "the import directory must be on the store's file system"));
  }
  imported.clear();
  return std::make_shared<const WeightSet>(*std::move(mapped));
}

absl::StatusOr<std::shared_ptr<const WeightSet>> WeightStore::DecodeAndWrite(
    EncodedWeights encoded, const std::string& path) {
  std::shared_ptr<const WeightSet> base;
  if (encoded.encoding == WeightEncoding::kDelta) {
    absl::StatusOr<std::shared_ptr<const WeightSet>> b = Get(encoded.base_version);
    if (!b.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "a delta against version ", encoded.base_version, ": ", b.status().message()));
    }
    base = *std::move(b);
  }
  DS_ASSIGN_OR_RETURN(WeightSet decoded, DecodeWeights(std::move(encoded), base.get()));
  auto set = std::make_shared<const WeightSet>(std::move(decoded));
  DS_RETURN_IF_ERROR(
      Annotate(WriteWeightFile(*set, path, /*sync=*/false, SpareWeightFile(options_.import_dir)),
               "storing it"));
  return set;
}

std::vector<int64_t> WeightStore::InstallLocked(int64_t version,
                                                std::shared_ptr<const WeightSet> set) {
  std::vector<int64_t> pruned;
  versions_.push_back(version);
  latest_ = std::move(set);
  while (versions_.size() > static_cast<size_t>(options_.keep_versions)) {
    pruned.push_back(versions_.front());
    versions_.erase(versions_.begin());
  }
  auto is_pruned = [&](int64_t v) {
    return std::find(pruned.begin(), pruned.end(), v) != pruned.end();
  };
  if (loaded_ != nullptr && is_pruned(loaded_->version)) loaded_.reset();
  for (auto it = encodings_.begin(); it != encodings_.end();)
    it = is_pruned(it->first.first) || is_pruned(it->first.second) ? encodings_.erase(it)
                                                                   : std::next(it);
  for (auto it = encoding_order_.begin(); it != encoding_order_.end();)
    it = encodings_.count(*it) == 0 ? encoding_order_.erase(it) : std::next(it);
  ++stats_.published;
  stats_.latest_version = version;
  stats_.versions_kept = static_cast<int32_t>(versions_.size());
  changed_.SignalAll();
  return pruned;
}

absl::Status WeightStore::Publish(EncodedWeights encoded) {
  absl::MutexLock publish_lock(&publish_mu_);
  const int64_t version = encoded.version;
  const std::string what = absl::StrCat("weight version ", version);
  // A file handed over for import belongs to the store from here: moved in, or deleted.
  std::string imported;
  auto discard_import = [&] {
    if (imported.empty()) return;
    std::error_code ec;
    fs::remove(imported, ec);
  };
  auto refuse = [&](const absl::Status& status) {
    discard_import();
    absl::MutexLock lock(&mu_);
    ++stats_.publish_rejected;
    return status;
  };
  if (encoded.encoding == WeightEncoding::kFile) {
    absl::StatusOr<std::string> path = ImportPath(encoded.file_path);
    if (!path.ok()) return refuse(Annotate(path.status(), what));
    imported = *std::move(path);
  }
  if (absl::Status admitted = Admit(encoded); !admitted.ok()) {
    if (!absl::IsAlreadyExists(admitted)) return refuse(admitted);
    discard_import();  // already stored: not a refusal
    return admitted;
  }
  const std::string path = PathOf(version);
  // An imported file is fsync'ed on a thread of its own while it is checked and made visible.
  std::future<absl::Status> file_synced;
  absl::StatusOr<std::shared_ptr<const WeightSet>> set =
      imported.empty() ? DecodeAndWrite(std::move(encoded), path)
                       : MoveIn(encoded, imported, path, file_synced);
  if (!set.ok()) return refuse(Annotate(set.status(), what));

  // Visible as soon as the whole file is in place, then durable before the publisher hears
  // back: subscribers on this host start reading while the disk catches up.
  std::vector<int64_t> pruned;
  {
    absl::MutexLock lock(&mu_);
    pruned = InstallLocked(version, *std::move(set));
  }
  for (int64_t v : pruned) {
    const absl::Status retired =
        RetireWeightFile(PathOf(v), options_.import_dir, options_.spare_files);
    if (!retired.ok()) log::Warning("weight store: {}", retired.message());
  }
  // An imported file's fsync is already under way; a written one's starts here.
  absl::Status durable = file_synced.valid() ? file_synced.get() : SyncFile(path);
  if (durable.ok()) durable = SyncDirectory(options_.dir);
  if (!durable.ok()) {
    // Visible but not durable: a restart may set it aside (Open). The publisher hears of it.
    return Annotate(durable, absl::StrCat(what, " is visible but not durable"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const EncodedWeights>> WeightStore::FileReference(int64_t version) {
  DS_ASSIGN_OR_RETURN(std::shared_ptr<const WeightSet> set, Get(version));
  return std::make_shared<const EncodedWeights>(deepsearch::FileReference(*set, PathOf(version)));
}

int64_t WeightStore::latest_version() const {
  absl::MutexLock lock(&mu_);
  return versions_.empty() ? 0 : versions_.back();
}

std::vector<int64_t> WeightStore::versions() const {
  absl::MutexLock lock(&mu_);
  return versions_;
}

int64_t WeightStore::WaitNewer(int64_t have, absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  while (!closed_ && (versions_.empty() ? int64_t{0} : versions_.back()) <= have) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) break;
  }
  return versions_.empty() ? int64_t{0} : versions_.back();
}

void WeightStore::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  changed_.SignalAll();
}

bool WeightStore::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

absl::StatusOr<std::shared_ptr<const WeightSet>> WeightStore::Get(int64_t version) {
  {
    absl::MutexLock lock(&mu_);
    if (latest_ != nullptr && latest_->version == version) return latest_;
    if (loaded_ != nullptr && loaded_->version == version) return loaded_;
    if (std::find(versions_.begin(), versions_.end(), version) == versions_.end()) {
      return NotKept(version);
    }
  }
  DS_ASSIGN_OR_RETURN(std::shared_ptr<const WeightSet> set, Load(version));
  absl::MutexLock lock(&mu_);
  loaded_ = set;
  return set;
}

absl::StatusOr<std::shared_ptr<const EncodedWeights>> WeightStore::Encoded(int64_t version,
                                                                           int64_t base) {
  std::shared_ptr<EncodingSlot> slot;
  {
    absl::MutexLock lock(&mu_);
    if (std::find(versions_.begin(), versions_.end(), version) == versions_.end()) {
      return NotKept(version);
    }
    if (base >= version || std::find(versions_.begin(), versions_.end(), base) == versions_.end()) {
      base = 0;
    }
    const std::pair<int64_t, int64_t> key(version, base);
    std::shared_ptr<EncodingSlot>& entry = encodings_[key];
    if (entry == nullptr) {
      entry = std::make_shared<EncodingSlot>();
      encoding_order_.push_front(key);
      while (encoding_order_.size() > static_cast<size_t>(std::max(1, options_.cached_encodings))) {
        encodings_.erase(encoding_order_.back());  // holders keep theirs alive
        encoding_order_.pop_back();
      }
    }
    slot = entry;
  }
  absl::MutexLock slot_lock(&slot->mu);
  if (slot->done) return slot->result;
  // Made once: concurrent subscribers for the same pair wait here for this result.
  DS_ASSIGN_OR_RETURN(std::shared_ptr<const WeightSet> target, Get(version));
  std::shared_ptr<const EncodedWeights> result;
  bool delta = false;
  if (base != 0) {
    absl::StatusOr<std::shared_ptr<const WeightSet>> b = Get(base);
    if (b.ok() && target->SameLayout(**b)) {
      absl::StatusOr<EncodedWeights> d = EncodeDelta(*target, **b, options_.zstd_level);
      if (d.ok()) {
        result = std::make_shared<const EncodedWeights>(*std::move(d));
        delta = true;
      } else {
        log::Warning("weight store: delta {} against {}: {}; sending the full set", version, base,
                     d.status().message());
      }
    }
  }
  if (result == nullptr && base != 0) {
    // No delta: the full copy, shared with every other receiver. Slots are locked in the
    // order (version, base) before (version, 0), so this cannot deadlock.
    slot->result = Encoded(version, 0);
    slot->done = true;
    return slot->result;
  }
  if (result == nullptr) {
    result = std::make_shared<const EncodedWeights>(EncodeFull(WeightSet(*target)));
  }
  slot->done = true;
  slot->result = result;
  absl::MutexLock lock(&mu_);
  ++stats_.encodings_made;
  if (delta) ++stats_.deltas_made;
  return result;
}

WeightStoreStats WeightStore::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace deepsearch
