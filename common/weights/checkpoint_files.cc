#include "common/weights/checkpoint_files.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

#include "common/core/status.h"
#include "common/weights/safetensors_internal.h"

namespace deepsearch {
namespace {

namespace fs = std::filesystem;

std::string JoinPath(const std::string& dir, std::string_view name) {
  return (fs::path(dir) / fs::path(std::string(name))).string();
}

// "model-00001-of-00002.safetensors"
std::string ShardFileName(size_t k, size_t n) {
  return absl::StrFormat("model-%05d-of-%05d.safetensors", k, n);
}

bool IsShardFileName(const std::string& name) {
  auto digits = [&name](size_t pos) {
    for (size_t i = pos; i < pos + 5; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(name[i]))) return false;
    }
    return true;
  };
  return name.size() == 32 && name.compare(0, 6, "model-") == 0 && digits(6) &&
         name.compare(11, 4, "-of-") == 0 && digits(15) &&
         name.compare(20, 12, ".safetensors") == 0;
}

// A weight_map value must name a file inside the checkpoint directory.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return safetensors_internal::ErrnoError(errno, "cannot open", path);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return safetensors_internal::ErrnoError(errno, "cannot read", path);
  return std::move(contents).str();
}

std::string Plural(size_t count, std::string_view noun) {
  return absl::StrCat(count, " ", std::string(noun), count == 1 ? "" : "s");
}

// Removes the checkpoint files in `dir` that are not in `keep`: model.safetensors, the index
// and model-*-of-*.safetensors shards.
absl::Status RemoveStaleCheckpointFiles(const std::string& dir, const std::set<std::string>& keep) {
  std::error_code error;
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    const bool checkpoint_file =
        name == kSafetensorsSingleFile || name == kSafetensorsIndexFile || IsShardFileName(name);
    if (checkpoint_file && !keep.contains(name)) stale.push_back(it->path());
  }
  if (error) {
    return absl::ErrnoToStatus(error.value(), absl::StrCat("cannot list directory ", dir));
  }
  for (const fs::path& path : stale) {
    if (!fs::remove(path, error) && error) {
      return absl::ErrnoToStatus(
          error.value(), absl::StrCat("cannot remove stale checkpoint file ", path.string()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointFiles>> CheckpointFiles::Open(const std::string& dir) {
  std::unique_ptr<CheckpointFiles> checkpoint(new CheckpointFiles(dir));
  const std::string index_path = JoinPath(dir, kSafetensorsIndexFile);
  const std::string single_path = JoinPath(dir, kSafetensorsSingleFile);
  std::error_code error;
  if (fs::exists(index_path, error)) {
    DS_RETURN_IF_ERROR(checkpoint->OpenSharded(index_path));
    return checkpoint;
  }
  if (fs::exists(single_path, error)) {
    DS_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(single_path));
    checkpoint->AddTensors(*file);
    checkpoint->files_.push_back(std::move(file));
    return checkpoint;
  }
  return absl::NotFoundError(absl::StrCat(dir, ": no checkpoint: neither ", kSafetensorsSingleFile,
                                          " nor ", kSafetensorsIndexFile, " exists there"));
}

absl::Status CheckpointFiles::OpenSharded(const std::string& index_path) {
  sharded_ = true;
  auto fault = [&index_path](const std::string& message) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": ", message));
  };
  DS_ASSIGN_OR_RETURN(const std::string text, ReadWholeFile(index_path));
  if (const size_t bad = safetensors_internal::FindInvalidUtf8(text); bad != std::string::npos) {
    return fault(absl::StrCat("the index is not valid UTF-8 (bad byte at offset ", bad, ")"));
  }
  absl::StatusOr<nlohmann::json> root = safetensors_internal::ParseStrictJson(text, "the index");
  if (!root.ok()) return fault(std::string(root.status().message()));
  if (!root->is_object()) {
    return fault(absl::StrCat("the index is ", safetensors_internal::JsonTypeName(*root),
                              ", expected a JSON object"));
  }
  if (!root->contains("weight_map")) return fault("the index has no \"weight_map\"");
  const nlohmann::json& weight_map = (*root)["weight_map"];
  if (!weight_map.is_object()) {
    return fault(absl::StrCat("weight_map is ", safetensors_internal::JsonTypeName(weight_map),
                              ", not an object"));
  }

  std::map<std::string, std::string> shard_of;             // tensor -> shard file
  std::map<std::string, std::vector<std::string>> listed;  // shard file -> tensors
  for (const auto& [name, shard] : weight_map.items()) {
    if (!shard.is_string()) {
      return fault(absl::StrCat("weight_map entry '", name, "' is ",
                                safetensors_internal::JsonTypeName(shard),
                                ", not a shard file name"));
    }
    const std::string file = shard.get<std::string>();
    if (!IsPlainFileName(file)) {
      return fault(absl::StrCat("weight_map entry '", name, "' names '", file,
                                "', which is not a file name inside the directory"));
    }
    shard_of.emplace(name, file);
    listed[file].push_back(name);
  }

  std::vector<std::string> missing, unlisted;
  for (const auto& [file, names] : listed) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> shard =
        SafetensorsFile::Open(JoinPath(dir_, file));
    if (!shard.ok()) {
      return Annotate(shard.status(), absl::StrCat(index_path, ": shard ", file));
    }
    for (const std::string& name : names) {
      if ((*shard)->Find(name) == nullptr)
        missing.push_back(absl::StrCat("'", name, "' in ", file));
    }
    for (const SafetensorsFile::TensorView& tensor : (*shard)->tensors()) {
      const auto it = shard_of.find(tensor.name);
      if (it == shard_of.end()) {
        unlisted.push_back(absl::StrCat("'", tensor.name, "' in ", file, ", not listed"));
      } else if (it->second != file) {
        unlisted.push_back(
            absl::StrCat("'", tensor.name, "' in ", file, ", listed for ", it->second));
      }
    }
    files_.push_back(*std::move(shard));
  }
  if (!missing.empty()) {
    return fault(
        absl::StrCat("weight_map lists ", Plural(missing.size(), "tensor"),
                     " that the shard named for it does not hold: ", absl::StrJoin(missing, "; ")));
  }
  if (!unlisted.empty()) {
    return fault(
        absl::StrCat("the shards hold ", Plural(unlisted.size(), "tensor"),
                     " that weight_map does not list for them: ", absl::StrJoin(unlisted, "; ")));
  }
  for (const auto& file : files_) AddTensors(*file);
  return absl::OkStatus();
}

void CheckpointFiles::AddTensors(const SafetensorsFile& file) {
  for (const SafetensorsFile::TensorView& tensor : file.tensors()) {
    tensors_.emplace(tensor.name, &tensor);
    total_bytes_ += tensor.size;
  }
}

const SafetensorsFile::TensorView* CheckpointFiles::Find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

std::vector<std::string> CheckpointFiles::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;
}

absl::Status WriteShardedSafetensors(const std::string& dir, std::vector<TensorToWrite> tensors,
                                     uint64_t max_shard_bytes,
                                     const std::map<std::string, std::string>& metadata) {
  if (max_shard_bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": max_shard_bytes must be positive, got 0"));
  }
  DS_RETURN_IF_ERROR(safetensors_internal::ValidateTensorsToWrite(tensors, metadata, dir));

  // Greedy, in the caller's order, as save_pretrained splits a state dict.
  std::vector<std::vector<TensorToWrite>> shards;
  uint64_t shard_bytes = 0;
  for (TensorToWrite& tensor : tensors) {
    if (shards.empty() ||
        (!shards.back().empty() && shard_bytes + tensor.data.size() > max_shard_bytes)) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shard_bytes += tensor.data.size();
    shards.back().push_back(std::move(tensor));
  }
  if (shards.empty()) shards.emplace_back();
  if (shards.size() > 99999) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": ", shards.size(), " shards of at most ", max_shard_bytes,
                     " bytes would be needed; shard file names allow 99999"));
  }

  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::ErrnoToStatus(error.value(), absl::StrCat("cannot create directory ", dir));
  }

  if (shards.size() == 1) {
    DS_RETURN_IF_ERROR(
        WriteSafetensors(JoinPath(dir, kSafetensorsSingleFile), std::move(shards[0]), metadata));
    return RemoveStaleCheckpointFiles(dir, {kSafetensorsSingleFile});
  }

  std::set<std::string> written;
  std::map<std::string, std::string> weight_map;
  uint64_t total_size = 0;
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string file = ShardFileName(k + 1, shards.size());
    for (const TensorToWrite& tensor : shards[k]) {
      weight_map.emplace(tensor.name, file);
      total_size += tensor.data.size();
    }
    DS_RETURN_IF_ERROR(WriteSafetensors(JoinPath(dir, file), std::move(shards[k]), metadata));
    written.insert(file);
  }
  nlohmann::json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  const std::string text = index.dump(2) + "\n";
  DS_RETURN_IF_ERROR(safetensors_internal::WriteFileAtomically(JoinPath(dir, kSafetensorsIndexFile),
                                                               std::string_view(text)));
  written.insert(kSafetensorsIndexFile);
  return RemoveStaleCheckpointFiles(dir, written);
}

absl::Status CheckTensorNames(const std::vector<std::string>& expected,
                              const std::vector<std::string>& present) {
  const std::set<std::string> want(expected.begin(), expected.end());
  const std::set<std::string> have(present.begin(), present.end());
  std::vector<std::string> missing, unexpected;
  std::set_difference(want.begin(), want.end(), have.begin(), have.end(),
                      std::back_inserter(missing));
  std::set_difference(have.begin(), have.end(), want.begin(), want.end(),
                      std::back_inserter(unexpected));
  if (missing.empty() && unexpected.empty()) return absl::OkStatus();
  std::vector<std::string> parts;
  if (!missing.empty()) {
    parts.push_back(absl::StrCat(missing.size(), " missing ",
                                 missing.size() == 1 ? "tensor" : "tensors", ": ",
                                 absl::StrJoin(missing, ", ")));
  }
  if (!unexpected.empty()) {
    parts.push_back(absl::StrCat(unexpected.size(), " unexpected ",
                                 unexpected.size() == 1 ? "tensor" : "tensors", ": ",
                                 absl::StrJoin(unexpected, ", ")));
  }
  return absl::InvalidArgumentError(absl::StrCat("checkpoint: ", absl::StrJoin(parts, "; ")));
}

}  // namespace deepsearch
