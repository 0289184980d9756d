// Weight files: a WeightSet stored as a safetensors file that readers map and use in place.
// The cache service keeps its versions in these files, names them to subscribers that share
// its file system (WEIGHT_ENCODING_FILE), and takes them from a learner on the same host, so
// a version's bytes are written once and never cross a socket (docs/BENCHMARKS.md, "Cache
// service: weight fan-out").
//
//   DS_RETURN_IF_ERROR(WriteWeightFile(set, dir + "/weights-7.safetensors", /*sync=*/true));
//   DS_ASSIGN_OR_RETURN(WeightSet mapped, ReadWeightFile(path, {.version = 7}));
//   mapped.data();   // a view into the file's mapping, which the set keeps alive
//
// Layout: a valid safetensors file whose tensors lie in the set's manifest order (the format
// allows any order; the reference writer would sort them), so the file's data section is the
// set's payload. Metadata:
//   deepsearch.weight_version  the version, decimal
//   deepsearch.model_config    the config.json
//   deepsearch.tensor_order    JSON list of the tensor names in manifest order
//   deepsearch.tensor_xxh3     JSON list of each tensor's XXH3-64, 16 hex digits, same order
// Files of the earlier layout (tensors in the reference writer's order, a single
// "deepsearch.payload_xxh3" over the manifest-order payload) are still read: their payload
// is assembled in memory instead of mapped.
//
// Reading checks every byte: each tensor's XXH3-64 is computed from the mapping and compared
// with the file's list (and with an expected manifest when one is given), in one pass. A
// reader's mapping stays valid if the file is later deleted or replaced by a rename, so
// writers never modify a file in place.
//
// Torch-free. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "common/weights/weight_set.h"

namespace deepsearch {

// Writes `set` to `path` through a temporary file in the same directory and a rename, so a
// reader sees the whole file or none. sync: fsync the file before the rename and the
// directory after (durable on return); false leaves that to SyncWeightFile. Errors:
// InvalidArgument for a set whose manifest does not validate, the file system's naming the
// path.
// reuse: a spare file to overwrite in place (SpareWeightFile), or empty.
absl::Status WriteWeightFile(const WeightSet& set, const std::string& path, bool sync,
                             const std::string& reuse = "");

// The FILE encoding of `set` (WeightEncoding::kFile): its manifest and the path of a weight
// file that holds it, which a receiver on the same file system maps (DecodeWeights).
EncodedWeights FileReference(const WeightSet& set, std::string path);

// fsyncs the file at `path` and its directory.
absl::Status SyncWeightFile(const std::string& path);

// Spare files. A weight file nobody reads any more can be kept as a spare in a directory and
// overwritten by the next WriteWeightFile there, so that its page-cache pages are reused
// instead of freed and allocated again (on some machines most of the cost of a write:
// docs/BENCHMARKS.md). Spares are named ".spare-*"; a writer claims one by renaming it.
// Readers (ReadWeightFile) hold a shared flock while they map a file; a file is retired only
// when an exclusive flock on it succeeds, and a writer overwrites a claimed spare only under
// an exclusive flock, so a mapped file never changes. A reader that opened a file just before
// it was retired and overwritten finds the checksums wrong (DataLoss) and asks again.
//
// A spare in `dir`, or "" when there is none (or `dir` cannot be listed).
std::string SpareWeightFile(const std::string& dir);
// Moves the file at `path` into `dir` as a spare when `dir` holds fewer than `max_spares` and
// no reader holds it (the exclusive flock succeeds), else deletes it (readers keep theirs).
absl::Status RetireWeightFile(const std::string& path, const std::string& dir, int max_spares);

struct WeightFileCheck {
  // The version the file must hold (0: any).
  int64_t version = 0;
  // The manifest the file must hold (names, dtypes, shapes, offsets, sizes and checksums, in
  // order); nullptr: whatever the file records.
  const std::vector<WeightTensor>* manifest = nullptr;
};

// Maps and checks the file (see the file comment). The set views the mapping (no copy) for
// the manifest-order layout, or owns an assembled payload for the earlier one. While any copy
// of the set lives it holds a shared lock (flock) on the file, so that it is never retired as
// a spare or overwritten under the mapping. Errors name the
// path and what did not match: the file system's (NotFound, PermissionDenied, ...) when it
// cannot be opened; Unavailable while a writer holds it (a spare being overwritten: ask for
// the version again); InvalidArgument for a file that is not safetensors; DataLoss for missing
// or malformed metadata, a version or manifest other than `check` expects, or a checksum that
// does not match the bytes.
absl::StatusOr<WeightSet> ReadWeightFile(const std::string& path, const WeightFileCheck& check);

}  // namespace deepsearch
