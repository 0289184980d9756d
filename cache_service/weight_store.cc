#include "cache_service/weight_store.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"

#include "common/core/files.h"
#include "common/core/hash.h"
#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/model/safetensors.h"

namespace deepsearch {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPrefix = "weights-";
constexpr std::string_view kSuffix = ".safetensors";
constexpr char kVersionKey[] = "deepsearch.weight_version";
constexpr char kConfigKey[] = "deepsearch.model_config";
constexpr char kOrderKey[] = "deepsearch.tensor_order";
constexpr char kChecksumKey[] = "deepsearch.payload_xxh3";

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
  fs::create_directories(options.dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("weight store: cannot create ", options.dir, ": ", ec.message()));
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
  std::shared_ptr<const WeightSet> latest;
  if (!versions.empty()) {
    DS_ASSIGN_OR_RETURN(latest, store->Load(versions.back()));
  }
  absl::MutexLock lock(&store->mu_);
  store->versions_ = std::move(versions);
  store->latest_ = std::move(latest);
  store->stats_.latest_version = store->versions_.empty() ? 0 : store->versions_.back();
  store->stats_.versions_kept = static_cast<int32_t>(store->versions_.size());
  return store;
}

absl::StatusOr<std::shared_ptr<const WeightSet>> WeightStore::Load(int64_t version) const {
  const std::string path = PathOf(version);
  DS_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(path));
  const std::map<std::string, std::string>& meta = file->metadata();
  auto field = [&](const char* key) -> absl::StatusOr<std::string> {
    auto it = meta.find(key);
    if (it == meta.end()) {
      return absl::DataLossError(absl::StrCat("weight file ", path, ": no metadata '", key, "'"));
    }
    return it->second;
  };
  DS_ASSIGN_OR_RETURN(const std::string version_text, field(kVersionKey));
  DS_ASSIGN_OR_RETURN(const std::string order_text, field(kOrderKey));
  DS_ASSIGN_OR_RETURN(const std::string checksum_text, field(kChecksumKey));
  auto set = std::make_shared<WeightSet>();
  if (!absl::SimpleAtoi(version_text, &set->version) || set->version != version) {
    return absl::DataLossError(absl::StrCat("weight file ", path, ": metadata version '",
                                            version_text, "' does not match the file name"));
  }
  if (auto it = meta.find(kConfigKey); it != meta.end()) set->model_config_json = it->second;
  const nlohmann::json order = nlohmann::json::parse(order_text, nullptr, false);
  if (!order.is_array() || order.size() != file->tensors().size()) {
    return absl::DataLossError(
        absl::StrCat("weight file ", path, ": '", kOrderKey, "' does not list its tensors"));
  }
  uint64_t total = 0;
  for (const SafetensorsFile::TensorView& t : file->tensors()) total += t.size;
  set->payload.reserve(total);
  for (const nlohmann::json& name : order) {
    const SafetensorsFile::TensorView* t =
        name.is_string() ? file->Find(name.get<std::string>()) : nullptr;
    if (t == nullptr) {
      return absl::DataLossError(absl::StrCat("weight file ", path, ": '", kOrderKey,
                                              "' names a tensor the file lacks: ", name.dump()));
    }
    DS_RETURN_IF_ERROR(
        set->Add(t->name, t->dtype, t->shape, {reinterpret_cast<const char*>(t->data), t->size}));
  }
  const std::string checksum = HashHex64(Hash64(set->payload));
  if (checksum != checksum_text) {
    return absl::DataLossError(absl::StrCat("weight file ", path, ": payload checksum ", checksum,
                                            ", the file records ", checksum_text));
  }
  return std::shared_ptr<const WeightSet>(std::move(set));
}

absl::Status WeightStore::NotKept(int64_t version) const {
  return absl::NotFoundError(absl::StrCat(
      "weight version ", version,
      " is not kept (kept: ", versions_.empty() ? "none" : absl::StrJoin(versions_, ", "), ")"));
}

absl::Status WeightStore::Publish(EncodedWeights encoded) {
  absl::MutexLock publish_lock(&publish_mu_);
  const int64_t version = encoded.version;
  auto refuse = [&](absl::Status status) {
    absl::MutexLock lock(&mu_);
    ++stats_.publish_rejected;
    return status;
  };
  int64_t latest = 0;
  bool kept = false;
  {
    absl::MutexLock lock(&mu_);
    latest = versions_.empty() ? 0 : versions_.back();
    kept = std::find(versions_.begin(), versions_.end(), version) != versions_.end();
    if (version <= 0) {
      ++stats_.publish_rejected;
      return absl::InvalidArgumentError(
          absl::StrCat("weight version ", version, ": versions start at 1"));
    }
    if (version < latest && !kept && (versions_.empty() || version < versions_.front())) {
      // A learner that resumed from an older checkpoint republishes what it had published.
      return absl::AlreadyExistsError(absl::StrCat("weight version ", version,
                                                   " is older than every kept version (oldest ",
                                                   versions_.front(), "); nothing to store"));
    }
  }
  if (kept) {
    // The same version again: fine when it is the same weights (a restarted learner), refused
    // when it is other ones (versions name weights; they never change).
    absl::StatusOr<std::shared_ptr<const WeightSet>> stored = Get(version);
    if (stored.ok() && (*stored)->tensors == encoded.tensors) {
      return absl::AlreadyExistsError(
          absl::StrCat("weight version ", version, " is already stored, with these weights"));
    }
    return refuse(absl::FailedPreconditionError(
        absl::StrCat("weight version ", version, " is stored with other weights (the newest is ",
                     latest, "); versions must increase")));
  }
  if (version <= latest) {
    return refuse(absl::FailedPreconditionError(absl::StrCat(
        "weight version ", version, " is not newer than the newest stored version ", latest)));
  }
  std::shared_ptr<const WeightSet> base;
  if (encoded.encoding == WeightEncoding::kDelta) {
    absl::StatusOr<std::shared_ptr<const WeightSet>> b = Get(encoded.base_version);
    if (!b.ok()) {
      return refuse(absl::FailedPreconditionError(
          absl::StrCat("weight version ", version, " is a delta against version ",
                       encoded.base_version, ": ", b.status().message())));
    }
    base = *std::move(b);
  }
  // A full encoding's data are the payload: its verified checksum is the payload's.
  const bool full = encoded.encoding == WeightEncoding::kFull;
  const uint64_t full_checksum = encoded.data_checksum;
  absl::StatusOr<WeightSet> decoded = DecodeWeights(std::move(encoded), base.get());
  if (!decoded.ok())
    return refuse(Annotate(decoded.status(), absl::StrCat("weight version ", version)));
  auto set = std::make_shared<const WeightSet>(*std::move(decoded));

  // Durable before visible.
  std::vector<TensorToWrite> tensors;
  nlohmann::json order = nlohmann::json::array();
  tensors.reserve(set->tensors.size());
  for (const WeightTensor& t : set->tensors) {
    const std::string_view bytes = set->Bytes(t);
    tensors.push_back(
        {t.name, t.dtype, t.shape,
         absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())});
    order.push_back(t.name);
  }
  const std::map<std::string, std::string> metadata = {
      {kVersionKey, std::to_string(version)},
      {kConfigKey, set->model_config_json},
      {kOrderKey, order.dump()},
      {kChecksumKey, HashHex64(full ? full_checksum : Hash64(set->payload))},
  };
  if (absl::Status s = WriteSafetensors(PathOf(version), std::move(tensors), metadata); !s.ok()) {
    return refuse(Annotate(s, absl::StrCat("storing weight version ", version)));
  }

  std::vector<int64_t> pruned;
  {
    absl::MutexLock lock(&mu_);
    versions_.push_back(version);
    latest_ = set;
    while (versions_.size() > static_cast<size_t>(options_.keep_versions)) {
      pruned.push_back(versions_.front());
      versions_.erase(versions_.begin());
    }
    if (loaded_ != nullptr &&
        std::find(pruned.begin(), pruned.end(), loaded_->version) != pruned.end()) {
      loaded_.reset();
    }
    for (auto it = encodings_.begin(); it != encodings_.end();) {
      const bool stale = std::find(pruned.begin(), pruned.end(), it->first.first) != pruned.end() ||
                         std::find(pruned.begin(), pruned.end(), it->first.second) != pruned.end();
      it = stale ? encodings_.erase(it) : std::next(it);
    }
    std::erase_if(encoding_order_, [&](const auto& key) { return encodings_.count(key) == 0; });
    ++stats_.published;
    stats_.latest_version = version;
    stats_.versions_kept = static_cast<int32_t>(versions_.size());
    changed_.SignalAll();
  }
  for (int64_t v : pruned) {
    std::error_code ec;
    fs::remove(PathOf(v), ec);
    if (ec) log::Warning("weight store: cannot delete {}: {}", PathOf(v), ec.message());
  }
  if (!pruned.empty()) {
    if (absl::Status s = SyncDirectory(options_.dir); !s.ok()) {
      log::Warning("weight store: {}", s.message());
    }
  }
  return absl::OkStatus();
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
  auto latest = [&] { return versions_.empty() ? int64_t{0} : versions_.back(); };
  while (!closed_ && latest() <= have) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) break;
  }
  return latest();
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
