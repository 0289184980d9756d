// Checkpoint directories in the layout Hugging Face's save_pretrained writes: either one
// model.safetensors, or shards model-00001-of-0000n.safetensors with an index
// model.safetensors.index.json =
//   {"metadata": {"total_size": N}, "weight_map": {"<tensor>": "<shard file>", ...}}.
// CheckpointFiles opens either layout as one name -> tensor view table; WriteShardedSafetensors
// writes one; CheckTensorNames compares the names a model expects with those a checkpoint
// holds, for the model loader. No torch here.
//
// Opening checks the index against the shards both ways: every tensor the weight_map lists
// is in its shard, and no shard holds a tensor the weight_map does not list for it. The
// index's "metadata" (total_size and whatever else a writer put there) is not checked:
// writers count shared storage differently. When a directory holds both layouts the index
// wins (WriteShardedSafetensors never leaves both behind).
//
// Not supported: other weight formats (pytorch_model.bin, .pt), adapter files, remote hubs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "common/weights/safetensors.h"

namespace deepsearch {

inline constexpr char kSafetensorsSingleFile[] = "model.safetensors";
inline constexpr char kSafetensorsIndexFile[] = "model.safetensors.index.json";

// The tensors of a checkpoint directory, single-file or sharded, each file mapped once.
//
// Immutable once opened: any number of threads may read it concurrently. Views returned by
// Find stay valid while this object lives.
class CheckpointFiles {
 public:
  // Opens `dir`: through model.safetensors.index.json when present, else model.safetensors.
  // NotFound naming the directory and both file names when neither exists; the file-system
  // error naming the file when a shard cannot be opened; InvalidArgument naming the file
  // and tensor for a malformed index, a listed tensor missing from its shard, or a shard
  // tensor the index does not list for it. Blocks on I/O.
  static absl::StatusOr<std::unique_ptr<CheckpointFiles>> Open(const std::string& dir);

  CheckpointFiles(const CheckpointFiles&) = delete;
  CheckpointFiles& operator=(const CheckpointFiles&) = delete;

  // The tensor called `name`, or nullptr.
  const SafetensorsFile::TensorView* Find(std::string_view name) const;
  // Every tensor name, sorted.
  std::vector<std::string> names() const;
  // The sum of the tensors' data sizes in bytes.
  uint64_t total_bytes() const { return total_bytes_; }
  // Whether the directory was opened through an index.
  bool sharded() const { return sharded_; }
  // The opened files: one, or the shards in file-name order.
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  const std::string& dir() const { return dir_; }

 private:
  explicit CheckpointFiles(std::string dir) : dir_(std::move(dir)) {}
  absl::Status OpenSharded(const std::string& index_path);
  void AddTensors(const SafetensorsFile& file);

  std::string dir_;
  bool sharded_ = false;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile::TensorView*, std::less<>> tensors_;
  uint64_t total_bytes_ = 0;
};

// Writes `tensors` into `dir` (created if missing) as save_pretrained would: tensors are
// taken in the given order and a new shard starts when adding one would push the current
// shard's data past `max_shard_bytes` (a tensor larger than that gets a shard of its own).
// One shard is written as model.safetensors with no index; n > 1 shards as
// model-0000k-of-0000n.safetensors (5-digit numbers) plus model.safetensors.index.json, whose
// total_size is the sum of the tensors' data sizes. Every shard carries `metadata`.
// Every file is written atomically, the index last. Afterwards the directory holds exactly
// this checkpoint: a model.safetensors, an index, or model-*-of-*.safetensors shards left by
// an earlier checkpoint of another layout are removed. All inputs are validated before any
// file is written (see SerializeSafetensors; names must be unique across shards).
// InvalidArgument for max_shard_bytes == 0. Blocks on I/O.
absl::Status WriteShardedSafetensors(const std::string& dir, std::vector<TensorToWrite> tensors,
                                     uint64_t max_shard_bytes,
                                     const std::map<std::string, std::string>& metadata = {});

// OK when `present` holds exactly the names in `expected`; otherwise one InvalidArgument
// listing every missing and every unexpected name, each list sorted:
//   "checkpoint: 2 missing tensors: model.layers.3.mlp.up_proj.weight, model.norm.weight;
//    1 unexpected tensor: lm_head.bias"   (one line)
// Repeated names count once.
absl::Status CheckTensorNames(const std::vector<std::string>& expected,
                              const std::vector<std::string>& present);

}  // namespace deepsearch
