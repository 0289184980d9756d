// Weight sets: a model's tensors as bytes, tagged with a weight version, and their encodings
// for the wire (ARCHITECTURE §5, cache_service.proto): the learner publishes versions, the
// cache service stores and forwards them, actors install them into their engines.
//
//   WeightSet set;                                   // or ExportWeights(model, ...) (torch)
//   set.version = 7;
//   DS_RETURN_IF_ERROR(set.Add("model.norm.weight", Dtype::kBF16, {64}, bytes));
//   EncodedWeights full = EncodeFull(set);
//   DS_ASSIGN_OR_RETURN(EncodedWeights delta, EncodeDelta(set, previous));
//   DS_ASSIGN_OR_RETURN(WeightSet again, DecodeWeights(std::move(delta), &previous));
//
// A set's payload is its tensors' bytes (little-endian, row-major) concatenated in manifest
// order; each manifest entry records offset, size and the XXH3-64 checksum of its bytes.
//
// Encodings:
//   kFull   the payload as is.
//   kDelta  against a base version with the same layout (names, dtypes and shapes in the same
//           order): per tensor, target XOR base, its bytes regrouped into planes by byte
//           position within an element (all first bytes, then all second bytes, ...: the
//           unchanged exponent bytes of a small update become long zero runs), the tensors'
//           planes concatenated in manifest order and compressed as one zstd frame.
// Decoding verifies the encoded checksum, the decoded size, and every tensor's checksum, so a
// set that decodes is bit-exact.
//
// Cost: EncodeFull and a full DecodeWeights move the payload and hash it (no copy). The delta
// codec streams through zstd one tensor at a time (a tensor over 16 MiB one plane piece at a
// time), so beside its input and output it holds at most 16 MiB; its speed is zstd's
// (docs/BENCHMARKS.md, "Weight sets").
//
// Torch-free. Thread-compatible (values; no shared state).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "common/weights/safetensors.h"  // Dtype

namespace deepsearch {

struct WeightTensor {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;  // [] for a scalar
  uint64_t offset = 0;         // in the payload
  uint64_t size = 0;           // bytes: prod(shape) * DtypeSize(dtype)
  uint64_t checksum = 0;       // XXH3-64 of the bytes

  friend bool operator==(const WeightTensor&, const WeightTensor&) = default;
};

struct WeightSet {
  int64_t version = 0;
  // The model's config.json, so a receiver can check that the architecture matches.
  std::string model_config_json;
  std::vector<WeightTensor> tensors;
  // The payload when the set owns it (built by Add, decoded from a stream); empty when it
  // views bytes held elsewhere. Read it through data(), which picks the one in use.
  std::string payload;
  // The payload as a read-only view of bytes that `mapping` keeps alive (a stored weight file
  // mapped by ReadWeightFile, common/weights/weight_file.h): copies of the set share it.
  std::shared_ptr<const void> mapping;
  std::string_view mapped;

  // The payload's bytes: `mapped` when the set views a mapping, else `payload`.
  std::string_view data() const { return mapping != nullptr ? mapped : std::string_view(payload); }
  // Appends a tensor, copying its bytes and filling offset, size and checksum. Errors: an
  // empty or repeated name, a negative dimension, bytes that do not match the shape, a set
  // that views a mapping.
  absl::Status Add(std::string name, Dtype dtype, std::vector<int64_t> shape,
                   std::string_view bytes);
  // The entry named `name`, or nullptr.
  const WeightTensor* Find(std::string_view name) const;
  // The bytes of one entry (a view into the payload).
  std::string_view Bytes(const WeightTensor& tensor) const;
  // Checks the manifest against the payload: unique non-empty names, sizes that match shapes
  // and dtypes, offsets that tile the payload in order from 0, and (when verify_checksums)
  // every checksum. The message names the first bad tensor.
  absl::Status Validate(bool verify_checksums = true) const;
  // Whether `other` has the same names, dtypes and shapes in the same order.
  bool SameLayout(const WeightSet& other) const;
};

enum class WeightEncoding { kFull, kDelta, kFile };

// A weight set as sent: the decoded set's manifest plus the encoded payload.
struct EncodedWeights {
  int64_t version = 0;
  WeightEncoding encoding = WeightEncoding::kFull;
  int64_t base_version = 0;  // kDelta: the version the delta applies to
  std::string model_config_json;
  std::vector<WeightTensor> tensors;  // the decoded set's manifest
  uint64_t total_bytes = 0;           // the decoded payload's size
  std::string data;                   // the encoded payload (kFile: empty)
  uint64_t data_checksum = 0;         // XXH3-64 of `data`
  // kFile: a weight file (common/weights/weight_file.h) on a file system the receiver shares,
  // whose data section is the payload; nothing else travels.
  std::string file_path;
};

// The full encoding. Moves an owned payload (no copy); copies a mapped one.
EncodedWeights EncodeFull(WeightSet set);
// The delta of `target` against `base` (see the file comment). InvalidArgument when the
// layouts differ (the message names the first difference); zstd_level as zstd counts (1-19).
absl::StatusOr<EncodedWeights> EncodeDelta(const WeightSet& target, const WeightSet& base,
                                           int zstd_level = 3);
// Reconstructs the set. `base` is required for kDelta and must be the set of base_version
// with the manifest's layout. kFile maps the named file (ReadWeightFile) and checks it holds
// this manifest's tensors and checksums: the set views the mapping, nothing is copied.
// Errors (DataLoss for corrupted bytes, FailedPrecondition for a missing or wrong base,
// InvalidArgument for a malformed manifest, the file system's for a file that cannot be
// opened) name what did not match.
absl::StatusOr<WeightSet> DecodeWeights(EncodedWeights encoded, const WeightSet* base);

}  // namespace deepsearch
