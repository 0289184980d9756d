#include "common/weights/weight_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>
#include <sys/file.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

#include "common/core/files.h"
#include "common/core/hash.h"
#include "common/core/status.h"
#include "common/weights/safetensors.h"

namespace deepsearch {
namespace {

constexpr char kVersionKey[] = "deepsearch.weight_version";
constexpr char kConfigKey[] = "deepsearch.model_config";
constexpr char kOrderKey[] = "deepsearch.tensor_order";
constexpr char kTensorChecksumsKey[] = "deepsearch.tensor_xxh3";
// The earlier layout's single checksum over the manifest-order payload.
constexpr char kPayloadChecksumKey[] = "deepsearch.payload_xxh3";
constexpr std::string_view kSparePrefix = ".spare-";

std::string Describe(const WeightTensor& t) {
  std::string shape;
  for (int64_t d : t.shape) absl::StrAppend(&shape, shape.empty() ? "" : ",", d);
  return absl::StrCat("'", t.name, "' ", std::string(DtypeName(t.dtype)), "[", shape, "] at ",
                      t.offset, "+", t.size, " xxh3 ", HashHex64(t.checksum));
}

// Fills each tensor's checksum from the file's bytes at `data_offset` + its offset, read
// through a buffer that stays in cache.
absl::Status HashTensors(int fd, uint64_t data_offset, const std::string& path,
                         std::vector<WeightTensor>& tensors) {
  constexpr size_t kBuffer = size_t{1} << 20;
  std::unique_ptr<char[]> buffer(new char[kBuffer]);
  for (WeightTensor& t : tensors) {
    StreamingHash64 hash;
    for (uint64_t done = 0; done < t.size;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kBuffer, t.size - done));
      const ssize_t got =
          ::pread(fd, buffer.get(), want, static_cast<off_t>(data_offset + t.offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return ErrnoError(errno, "cannot read", path);
      if (got == 0) {
        return absl::DataLossError(absl::StrCat("weight file ", path, ": ends inside its data"));
      }
      hash.Update(buffer.get(), static_cast<size_t>(got));
      done += static_cast<uint64_t>(got);
    }
    t.checksum = hash.Digest();
  }
  return absl::OkStatus();
}

// Closes a descriptor unless released.
struct OwnedFd {
  explicit OwnedFd(int fd) : fd(fd) {}
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int Release() { return std::exchange(fd, -1); }
  int fd;
};

// A mapped weight file and its descriptor, which holds the shared flock.
struct LockedMapping {
  LockedMapping(std::shared_ptr<const SafetensorsFile> file, int fd)
      : file(std::move(file)), fd(fd) {}
  ~LockedMapping() { ::close(fd); }
  LockedMapping(const LockedMapping&) = delete;
  LockedMapping& operator=(const LockedMapping&) = delete;
  std::shared_ptr<const SafetensorsFile> file;
  int fd;
};

}  // namespace

absl::Status WriteWeightFile(const WeightSet& set, const std::string& path, bool sync,
                             const std::string& reuse) {
  DS_RETURN_IF_ERROR(Annotate(set.Validate(/*verify_checksums=*/false),
                              absl::StrCat("writing weight file ", path)));
  std::vector<TensorToWrite> tensors;
  tensors.reserve(set.tensors.size());
  nlohmann::json order = nlohmann::json::array();
  nlohmann::json checksums = nlohmann::json::array();
  for (const WeightTensor& t : set.tensors) {
    const std::string_view bytes = set.Bytes(t);
    tensors.push_back(
        {t.name, t.dtype, t.shape,
         absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())});
    order.push_back(t.name);
    checksums.push_back(HashHex64(t.checksum));
  }
  const std::map<std::string, std::string> metadata = {
      {kVersionKey, std::to_string(set.version)},
      {kConfigKey, set.model_config_json},
      {kOrderKey, order.dump()},
      {kTensorChecksumsKey, checksums.dump()},
  };
  return WriteSafetensors(
      path, std::move(tensors), metadata,
      SafetensorsWriteOptions{.keep_order = true, .sync = sync, .reuse = reuse});
}

std::string SpareWeightFile(const std::string& dir) {
  std::error_code ec;
  for (const std::filesystem::directory_entry& entry :
       std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().starts_with(kSparePrefix)) return entry.path().string();
  }
  return "";
}

absl::Status RetireWeightFile(const std::string& path, const std::string& dir, int max_spares) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int spares = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    spares += entry.path().filename().string().starts_with(kSparePrefix);
  }
  if (!ec && spares < max_spares) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    // No reader holds it: the rename happens under the exclusive lock.
    if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      static std::atomic<uint64_t> counter{0};
      const std::string spare = (fs::path(dir) / absl::StrCat(std::string(kSparePrefix), ::getpid(),
                                                              ".", counter.fetch_add(1)))
                                    .string();
      const bool moved = std::rename(path.c_str(), spare.c_str()) == 0;
      ::close(fd);
      if (moved) return absl::OkStatus();
    } else if (fd >= 0) {
      ::close(fd);
    }
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoError(errno, "cannot delete", path);
  return absl::OkStatus();
}

EncodedWeights FileReference(const WeightSet& set, std::string path) {
  EncodedWeights e;
  e.version = set.version;
  e.encoding = WeightEncoding::kFile;
  e.model_config_json = set.model_config_json;
  e.tensors = set.tensors;
  e.total_bytes = set.data().size();
  e.data_checksum = Hash64(std::string_view());  // no data travels
  e.file_path = std::move(path);
  return e;
}

absl::Status SyncWeightFile(const std::string& path) {
  DS_RETURN_IF_ERROR(SyncFile(path));
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return SyncDirectory(parent.empty() ? "." : parent.string());
}

namespace {

// The file's tensors in the order its metadata lists them (the manifest's order).
absl::StatusOr<std::vector<const SafetensorsFile::TensorView*>> ListedTensors(
    const SafetensorsFile& file, const std::string& order_text, const std::string& what) {
  const nlohmann::json order = nlohmann::json::parse(order_text, nullptr, false);
  const std::vector<SafetensorsFile::TensorView>& in_file = file.tensors();
  if (!order.is_array() || order.size() != in_file.size()) {
    return absl::DataLossError(
        absl::StrCat(what, ": '", kOrderKey, "' does not list its ", in_file.size(), " tensors"));
  }
  std::vector<const SafetensorsFile::TensorView*> views;
  views.reserve(order.size());
  for (const nlohmann::json& name : order) {
    const SafetensorsFile::TensorView* t =
        name.is_string() ? file.Find(name.get<std::string>()) : nullptr;
    if (t == nullptr) {
      return absl::DataLossError(
          absl::StrCat(what, ": '", kOrderKey, "' names a tensor the file lacks: ", name.dump()));
    }
    views.push_back(t);
  }
  return views;
}

// The set's computed checksums against those the file records (per tensor, or of the whole
// payload for older files).
absl::Status CheckRecordedChecksums(const WeightSet& set, const std::string* per_tensor,
                                    const std::string* payload, const std::string& what) {
  if (per_tensor != nullptr) {
    const nlohmann::json recorded = nlohmann::json::parse(*per_tensor, nullptr, false);
    if (!recorded.is_array() || recorded.size() != set.tensors.size()) {
      return absl::DataLossError(
          absl::StrCat(what, ": '", kTensorChecksumsKey, "' does not list a checksum per tensor"));
    }
    for (size_t i = 0; i < set.tensors.size(); ++i) {
      const std::string computed = HashHex64(set.tensors[i].checksum);
      if (!recorded[i].is_string() || recorded[i].get<std::string>() != computed) {
        return absl::DataLossError(absl::StrCat(what, ": tensor '", set.tensors[i].name,
                                                "' has checksum ", computed, ", the file records ",
                                                recorded[i].dump()));
      }
    }
    return absl::OkStatus();
  }
  if (payload != nullptr) {
    const std::string computed = HashHex64(Hash64(set.data()));
    if (computed != *payload) {
      return absl::DataLossError(
          absl::StrCat(what, ": payload checksum ", computed, ", the file records ", *payload));
    }
    return absl::OkStatus();
  }
  return absl::DataLossError(
      absl::StrCat(what, ": no checksum metadata ('", kTensorChecksumsKey, "')"));
}

// The first difference between the expected manifest and the file's tensors, as DATA_LOSS.
absl::Status CheckManifest(const std::vector<WeightTensor>& expected,
                           const std::vector<WeightTensor>& got, const std::string& what) {
  for (size_t i = 0; i < std::max(expected.size(), got.size()); ++i) {
    if (i >= expected.size()) {
      return absl::DataLossError(absl::StrCat(what, ": holds tensor ", Describe(got[i]),
                                              " beyond the ", expected.size(), " expected"));
    }
    if (i >= got.size()) {
      return absl::DataLossError(
          absl::StrCat(what, ": lacks the expected tensor ", Describe(expected[i])));
    }
    if (!(expected[i] == got[i])) {
      return absl::DataLossError(absl::StrCat(what, ": tensor ", i, " is ", Describe(got[i]),
                                              ", expected ", Describe(expected[i])));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WeightSet> ReadWeightFile(const std::string& path, const WeightFileCheck& check) {
  OwnedFd owned(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  const int fd = owned.fd;
  if (fd < 0) return ErrnoError(errno, "cannot open", path);
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrCat("weight file ", path, " is being rewritten; ask for the version again"));
    }
    return ErrnoError(errno, "cannot lock", path);
  }
  DS_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> opened, SafetensorsFile::Map(fd, path));
  std::shared_ptr<const SafetensorsFile> file = std::move(opened);
  const std::string what = absl::StrCat("weight file ", path);
  const std::map<std::string, std::string>& meta = file->metadata();
  auto field = [&](const char* key) -> const std::string* {
    auto it = meta.find(key);
    return it == meta.end() ? nullptr : &it->second;
  };
  const std::string* version_text = field(kVersionKey);
  const std::string* order_text = field(kOrderKey);
  if (version_text == nullptr || order_text == nullptr) {
    return absl::DataLossError(absl::StrCat(what, ": no metadata '",
                                            version_text == nullptr ? kVersionKey : kOrderKey,
                                            "'; not a weight file"));
  }
  WeightSet set;
  if (!absl::SimpleAtoi(*version_text, &set.version) || set.version <= 0) {
    return absl::DataLossError(absl::StrCat(what, ": bad version '", *version_text, "'"));
  }
  if (check.version != 0 && set.version != check.version) {
    return absl::DataLossError(
        absl::StrCat(what, ": holds version ", set.version, ", expected ", check.version));
  }
  if (const std::string* config = field(kConfigKey)) set.model_config_json = *config;
  DS_ASSIGN_OR_RETURN(const std::vector<const SafetensorsFile::TensorView*> views,
                      ListedTensors(*file, *order_text, what));

  uint64_t offset = 0;
  bool in_order = true;  // the file's data section is the manifest-order payload
  set.tensors.reserve(views.size());
  for (const SafetensorsFile::TensorView* v : views) {
    in_order = in_order && v == &file->tensors()[set.tensors.size()];
    WeightTensor& t = set.tensors.emplace_back();
    t.name = v->name;
    t.dtype = v->dtype;
    t.shape = v->shape;
    t.offset = offset;
    t.size = v->size;
    offset += v->size;
  }
  // Every byte is checked: each tensor's hash, computed here, against the file's record.
  if (in_order) {
    // The bytes are hashed as read() copies them through a small buffer, not through the
    // mapping: on 4 KiB pages a first pass over a fresh mapping runs at a fraction of the
    // copy's speed (docs/BENCHMARKS.md). The descriptor is the mapped file's.
    DS_RETURN_IF_ERROR(HashTensors(fd, 8 + file->header_size(), path, set.tensors));
    set.mapped = views.empty() ? std::string_view()
                               : std::string_view(reinterpret_cast<const char*>(views[0]->data),
                                                  static_cast<size_t>(file->data_size()));
    // The mapping and the locked descriptor live as long as any copy of the set.
    set.mapping = std::make_shared<const LockedMapping>(std::move(file), owned.Release());
  } else {
    set.payload.reserve(offset);
    for (const SafetensorsFile::TensorView* v : views)
      set.payload.append(reinterpret_cast<const char*>(v->data), v->size);
    for (WeightTensor& t : set.tensors) t.checksum = Hash64(set.Bytes(t));
  }
  DS_RETURN_IF_ERROR(
      CheckRecordedChecksums(set, field(kTensorChecksumsKey), field(kPayloadChecksumKey), what));
  if (check.manifest != nullptr && *check.manifest != set.tensors)
    DS_RETURN_IF_ERROR(CheckManifest(*check.manifest, set.tensors, what));
  return set;
}

}  // namespace deepsearch
