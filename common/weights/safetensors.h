// safetensors: the checkpoint format of Hugging Face models. Reads a file through a read-only
// memory map (or from bytes in memory) and writes one atomically. No torch here: the model
// loader turns the views into tensors.
//
// This reimplements the format and the validation of the reference implementation,
// huggingface/safetensors (safetensors/src/tensor.rs: SafeTensors::read_metadata,
// Metadata::validate, Dtype, prepare/serialize). A file is
//
//   [N: u64 little-endian][N bytes: a UTF-8 JSON object][the data buffer]
//
// and the JSON maps each tensor name to {"dtype": "BF16", "shape": [d0, ...],
// "data_offsets": [begin, end]} (byte offsets into the data buffer, end exclusive), plus an
// optional "__metadata__" string-to-string map. The reader accepts what the reference reader
// accepts: N <= 100,000,000; the entries, sorted by offsets, tile the data buffer from 0 to
// its end with no gap and no overlap; end - begin == prod(shape) * dtype size, with the
// product checked for overflow; shape [] is a scalar, a 0 in the shape an empty tensor.
// Like the reference (whose check for a leading '{' is still commented out) it accepts
// whitespace before the opening brace, ignores unknown fields inside a tensor entry and
// treats "__metadata__": null as no metadata. It is stricter in two places: a key repeated
// in one JSON object is refused (serde_json keeps one silently), and a dimension above the
// int64 range is refused (the reference accepts it when another dimension is 0 and the
// running product stays in range). Every fault has its own message naming the file and,
// where there is one, the tensor.
//
// The writer is the reference writer's mirror, byte for byte: tensors sorted by dtype in
// descending enum order and then by name, offsets packed from 0, compact JSON with
// "__metadata__" first (when there is metadata; its keys sorted), tensor fields in the
// order dtype, shape, data_offsets, and the header padded with spaces to a multiple of
// 8 bytes so that every tensor starts aligned.
//
// Not supported: the sub-byte and newer dtypes (F4, F6_E2M3, F6_E3M2, F8_E8M0, C64), which
// are refused by name; big-endian hosts (the bytes are handed out as stored, little-endian);
// slicing a tensor without reading it whole. Sharded checkpoint directories are in
// checkpoint_files.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace deepsearch {

// The element types of the format, in the reference's enum order (the writer sorts by it).
enum class Dtype {
  kBool,
  kU8,
  kI8,
  kF8E5M2,
  kF8E4M3,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64,
};

inline constexpr Dtype kAllDtypes[] = {
    Dtype::kBool, Dtype::kU8,  Dtype::kI8,  Dtype::kF8E5M2, Dtype::kF8E4M3,
    Dtype::kI16,  Dtype::kU16, Dtype::kF16, Dtype::kBF16,   Dtype::kI32,
    Dtype::kU32,  Dtype::kF32, Dtype::kF64, Dtype::kI64,    Dtype::kU64,
};

// Bytes per element: 1, 2, 4 or 8.
size_t DtypeSize(Dtype dtype);
// The name used in files: "BOOL", "U8", "F8_E5M2", "BF16", ...
std::string_view DtypeName(Dtype dtype);
// The inverse of DtypeName; InvalidArgument naming the string for anything else.
absl::StatusOr<Dtype> ParseDtype(std::string_view name);

// A validated safetensors file: its tensors as views into the file's bytes.
//
// Immutable once created, so any number of threads may read one concurrently. Not copyable
// or movable: views point into it.
class SafetensorsFile {
 public:
  // One tensor. `data` points at `size` bytes inside the file (little-endian, row-major), valid
  // while the SafetensorsFile lives. Alignment: the data buffer starts at file offset 8 + N,
  // which the reference writer (and ours) makes a multiple of 8, and the mapping is
  // page-aligned; files from other writers may leave a tensor unaligned.
  struct TensorView {
    std::string name;
    Dtype dtype;
    std::vector<int64_t> shape;  // [] for a scalar
    const uint8_t* data;
    size_t size;
    // The product of the shape (1 for a scalar, 0 for an empty tensor).
    int64_t num_elements() const;
  };

  // Maps the file at `path` read-only (MAP_PRIVATE; the descriptor is closed once mapped) and
  // validates it. Errors: NotFound / PermissionDenied / ... from the file system, naming the
  // path; InvalidArgument naming the path (and tensor) for every format fault. Blocks on I/O.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // The same for a descriptor the caller opened (read access) and keeps: it may go on reading
  // the very file that is mapped. `path` names it in messages.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Map(int fd, const std::string& path);

  // The same over bytes already in memory, which the object takes over. `source` stands for
  // the file name in messages.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBytes(std::string bytes,
                                                                    std::string source);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // The tensors in file-offset order. The vector and the views live as long as this object.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // The tensor called `name`, or nullptr. The pointer lives as long as this object.
  const TensorView* Find(std::string_view name) const;
  // The "__metadata__" map (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The path given to Open, or the source given to FromBytes.
  const std::string& source() const { return source_; }
  // N, the JSON header's length in bytes (padding included).
  uint64_t header_size() const { return header_size_; }
  // Bytes of tensor data: the file size minus 8 + N.
  uint64_t data_size() const { return data_size_; }

 private:
  explicit SafetensorsFile(std::string source) : source_(std::move(source)) {}
  // Validates bytes_[0, size_) and fills the tensors and metadata.
  absl::Status Parse();

  std::string source_;
  std::string owned_;        // FromBytes: the bytes
  void* mapping_ = nullptr;  // Open: the mapping (nullptr for an empty file)
  size_t mapping_size_ = 0;  //
  const uint8_t* bytes_ = nullptr;
  size_t size_ = 0;
  uint64_t header_size_ = 0;
  uint64_t data_size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// One tensor to write. `data` must stay valid until the write returns; it holds exactly
// prod(shape) * DtypeSize(dtype) bytes, little-endian, row-major.
struct TensorToWrite {
  std::string name;
  Dtype dtype;
  std::vector<int64_t> shape;
  absl::Span<const uint8_t> data;
};

// The complete file for `tensors` and `metadata`, laid out as the reference writer lays it
// out (see the top of this file). InvalidArgument, naming the tensor, for an empty name, the
// name "__metadata__", a repeated name, a name or metadata string that is not valid UTF-8,
// a negative dimension, data of the wrong size, or a header over 100,000,000 bytes.
absl::StatusOr<std::string> SerializeSafetensors(
    std::vector<TensorToWrite> tensors, const std::map<std::string, std::string>& metadata = {});

// Writes the same bytes to `path` atomically (a temporary file in the same directory,
// fsync, rename, fsync of the directory): a reader sees the old file or the new one. Streams
// the tensor data from the spans without assembling the file in memory. Blocks on I/O.
absl::Status WriteSafetensors(const std::string& path, std::vector<TensorToWrite> tensors,
                              const std::map<std::string, std::string>& metadata = {});

struct SafetensorsWriteOptions {
  // Lay the tensors out in the order given instead of the reference writer's (dtype, then
  // name): still a valid file, whose data section is then the given tensors concatenated.
  bool keep_order = false;
  // false: no fsyncs (see WriteFileAtomically); the file is still renamed into place whole.
  bool sync = true;
  // An unused file to overwrite in place (WriteFileAtomically's `reuse`); empty: none.
  std::string reuse = {};
};
absl::Status WriteSafetensors(const std::string& path, std::vector<TensorToWrite> tensors,
                              const std::map<std::string, std::string>& metadata,
                              const SafetensorsWriteOptions& options);

}  // namespace deepsearch
