// Weight sets on the wire: an EncodedWeights (common/weights/weight_set.h) as a stream of
// deepsearch.v1.WeightChunk messages (a header, data chunks in order, a trailer; for the FILE
// encoding a header, one file chunk naming the weight file, a trailer), and the receiving side
// that reassembles and checks one.
//
//   // sender (PublishWeights client, SubscribeWeights/GetWeights server)
//   if (!WriteWeightChunks(encoded, 1 << 20, [&](const v1::WeightChunk& c) { return
//   writer->Write(c); })) ...
//   // receiver
//   WeightChunkAssembler assembler(max_bytes);
//   while (reader->Read(&chunk)) {
//     DS_RETURN_IF_ERROR(assembler.Add(chunk));
//     if (assembler.complete()) { DS_ASSIGN_OR_RETURN(EncodedWeights w, assembler.Take()); ... }
//   }
//
// The assembler refuses, with a message naming the fault: data or a trailer before a header,
// a second header before the trailer, a data chunk whose offset is not the next byte, more
// data than the header's encoded_bytes or than max_bytes, an unknown dtype or encoding in
// the header, a trailer before all data arrived, and a trailer checksum that does not match
// the bytes received; for FILE, announced data bytes, a file chunk in another encoding, a
// second one or one without a path, and a trailer before it. (Whether the named file holds
// the header's tensors is DecodeWeights' check.) After an error it must be Reset() before reuse. A
// receiver therefore never sees a half-received version.
//
// Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "deepsearch/v1/cache_service.pb.h"

#include "common/core/hash.h"
#include "common/weights/weight_set.h"

namespace deepsearch::rpc {

// The wire dtype of a tensor dtype: F32, BF16 and F16 only; InvalidArgument naming the dtype
// for any other.
absl::StatusOr<deepsearch::v1::TensorDtype> ToWireDtype(Dtype dtype);
// The inverse; InvalidArgument naming the value for TENSOR_DTYPE_UNSPECIFIED or an unknown one.
absl::StatusOr<Dtype> FromWireDtype(deepsearch::v1::TensorDtype dtype);

// The header chunk of `weights` (everything but the data). A tensor of a dtype the wire lacks
// goes out as TENSOR_DTYPE_UNSPECIFIED, which every assembler refuses naming the tensor.
deepsearch::v1::WeightChunk WeightHeaderChunk(const EncodedWeights& weights);

// Writes header, data chunks of at most chunk_bytes (> 0), and trailer (weights.data_checksum)
// through `write`; stops and returns false as soon as `write` returns false (a broken
// stream). Blocks as long as `write` does.
bool WriteWeightChunks(const EncodedWeights& weights, size_t chunk_bytes,
                       const std::function<bool(const deepsearch::v1::WeightChunk&)>& write);

class WeightChunkAssembler {
 public:
  // max_bytes: the largest encoded payload accepted.
  explicit WeightChunkAssembler(uint64_t max_bytes);

  absl::Status Add(const deepsearch::v1::WeightChunk& chunk);
  // A header was received and is waiting for more chunks.
  bool in_progress() const;
  // The trailer arrived and matched: Take() returns the version.
  bool complete() const;
  // The assembled version; resets the assembler for the next one. Requires complete().
  EncodedWeights Take();
  void Reset();

 private:
  // Add's parts, one per kind of chunk; `version` names the version in progress. A refusal
  // is returned as it is; Add marks the assembler failed.
  absl::Status AddHeader(const deepsearch::v1::WeightHeader& header, const std::string& version);
  absl::Status AddData(const deepsearch::v1::WeightChunk& chunk, const std::string& version);
  absl::Status AddFile(const deepsearch::v1::WeightFile& file, const std::string& version);
  absl::Status AddTrailer(const deepsearch::v1::WeightTrailer& trailer, const std::string& version);

  uint64_t max_bytes_;
  bool have_header_ = false;
  bool complete_ = false;
  bool failed_ = false;
  EncodedWeights current_;
  uint64_t expected_bytes_ = 0;
  std::unique_ptr<StreamingHash64> hash_;  // of the data received so far
};

}  // namespace deepsearch::rpc
