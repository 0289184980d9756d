#include "common/rpc/weight_stream.h"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

#include "common/core/logging.h"
#include "common/core/status.h"

namespace deepsearch::rpc {
namespace {

absl::StatusOr<WeightEncoding> FromWireEncoding(v1::WeightEncoding encoding) {
  switch (encoding) {
    case v1::WEIGHT_ENCODING_FULL:
      return WeightEncoding::kFull;
    case v1::WEIGHT_ENCODING_DELTA:
      return WeightEncoding::kDelta;
    case v1::WEIGHT_ENCODING_FILE:
      return WeightEncoding::kFile;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown weight encoding ", static_cast<int>(encoding)));
  }
}

v1::WeightEncoding ToWireEncoding(WeightEncoding encoding) {
  switch (encoding) {
    case WeightEncoding::kDelta:
      return v1::WEIGHT_ENCODING_DELTA;
    case WeightEncoding::kFile:
      return v1::WEIGHT_ENCODING_FILE;
    default:
      return v1::WEIGHT_ENCODING_FULL;
  }
}

// `value`, or its error with `context` in front.
template <typename T>
absl::StatusOr<T> In(absl::StatusOr<T> value, std::string_view context) {
  if (!value.ok()) return Annotate(value.status(), context);
  return value;
}

}  // namespace

absl::StatusOr<v1::TensorDtype> ToWireDtype(Dtype dtype) {
  switch (dtype) {
    case Dtype::kF32:
      return v1::TENSOR_DTYPE_F32;
    case Dtype::kBF16:
      return v1::TENSOR_DTYPE_BF16;
    case Dtype::kF16:
      return v1::TENSOR_DTYPE_F16;
    default:
      return absl::InvalidArgumentError(absl::StrCat("dtype ", std::string(DtypeName(dtype)),
                                                     " cannot be sent (F32, BF16 or F16 only)"));
  }
}

absl::StatusOr<Dtype> FromWireDtype(v1::TensorDtype dtype) {
  switch (dtype) {
    case v1::TENSOR_DTYPE_F32:
      return Dtype::kF32;
    case v1::TENSOR_DTYPE_BF16:
      return Dtype::kBF16;
    case v1::TENSOR_DTYPE_F16:
      return Dtype::kF16;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown tensor dtype ", static_cast<int>(dtype)));
  }
}

v1::WeightChunk WeightHeaderChunk(const EncodedWeights& weights) {
  v1::WeightChunk chunk;
  v1::WeightHeader& header = *chunk.mutable_header();
  header.set_version(weights.version);
  header.set_encoding(ToWireEncoding(weights.encoding));
  header.set_base_version(weights.base_version);
  header.mutable_tensors()->Reserve(static_cast<int>(weights.tensors.size()));
  for (const WeightTensor& t : weights.tensors) {
    v1::TensorSpec& spec = *header.add_tensors();
    spec.set_name(t.name);
    spec.set_dtype(ToWireDtype(t.dtype).value_or(v1::TENSOR_DTYPE_UNSPECIFIED));
    spec.mutable_shape()->Add(t.shape.begin(), t.shape.end());
    spec.set_offset(t.offset);
    spec.set_size(t.size);
    spec.set_checksum(t.checksum);
  }
  header.set_total_bytes(weights.total_bytes);
  header.set_encoded_bytes(weights.data.size());
  header.set_model_config_json(weights.model_config_json);
  return chunk;
}

bool WriteWeightChunks(const EncodedWeights& weights, size_t chunk_bytes,
                       const std::function<bool(const v1::WeightChunk&)>& write) {
  DS_CHECK(chunk_bytes > 0) << "chunk_bytes must be positive";
  if (!write(WeightHeaderChunk(weights))) return false;
  v1::WeightChunk chunk;
  if (weights.encoding == WeightEncoding::kFile) {
    chunk.mutable_file()->set_path(weights.file_path);
    if (!write(chunk)) return false;
    chunk.Clear();
  }
  for (size_t offset = 0; offset < weights.data.size(); offset += chunk_bytes) {
    const size_t size = std::min(chunk_bytes, weights.data.size() - offset);
    chunk.mutable_data()->assign(weights.data, offset, size);
    chunk.set_offset(offset);
    if (!write(chunk)) return false;
  }
  chunk.Clear();
  chunk.mutable_trailer()->set_encoded_checksum(weights.data_checksum);
  return write(chunk);
}

WeightChunkAssembler::WeightChunkAssembler(uint64_t max_bytes) : max_bytes_(max_bytes) {}

bool WeightChunkAssembler::in_progress() const { return have_header_ && !complete_ && !failed_; }

bool WeightChunkAssembler::complete() const { return complete_; }

void WeightChunkAssembler::Reset() {
  have_header_ = false;
  complete_ = false;
  failed_ = false;
  current_ = EncodedWeights();
  expected_bytes_ = 0;
  hash_.reset();
}

EncodedWeights WeightChunkAssembler::Take() {
  DS_CHECK(complete_) << "WeightChunkAssembler::Take before the trailer";
  EncodedWeights weights = std::move(current_);
  Reset();
  return weights;
}

absl::Status WeightChunkAssembler::Add(const v1::WeightChunk& chunk) {
  if (failed_) {
    return absl::FailedPreconditionError(
        "weight stream: the assembler failed on an earlier chunk; Reset() it first");
  }
  if (complete_) {
    return absl::FailedPreconditionError(
        absl::StrCat("weight stream: a chunk after the trailer of version ", current_.version,
                     "; Take() it first"));
  }
  const std::string version =
      have_header_ ? absl::StrCat("version ", current_.version) : std::string("no version");
  absl::Status status;
  switch (chunk.part_case()) {
    case v1::WeightChunk::kHeader:
      status = AddHeader(chunk.header(), version);
      break;
    case v1::WeightChunk::kData:
      status = AddData(chunk, version);
      break;
    case v1::WeightChunk::kFile:
      status = AddFile(chunk.file(), version);
      break;
    case v1::WeightChunk::kTrailer:
      status = AddTrailer(chunk.trailer(), version);
      break;
    default:
      status = absl::InvalidArgumentError(absl::StrCat(version, ": an empty chunk"));
  }
  // Every refusal leaves the assembler failed until Reset().
  if (!status.ok()) {
    failed_ = true;
    return Annotate(status, "weight stream");
  }
  return absl::OkStatus();
}

absl::Status WeightChunkAssembler::AddHeader(const v1::WeightHeader& header,
                                             const std::string& version) {
  if (have_header_) {
    return absl::InvalidArgumentError(absl::StrCat("a second header (version ", header.version(),
                                                   ") while ", version, " is in progress"));
  }
  const std::string what = absl::StrCat("version ", header.version());
  if (header.encoded_bytes() > max_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(what, " has ", header.encoded_bytes(),
                                                     " encoded bytes, more than the limit of ",
                                                     max_bytes_));
  }
  EncodedWeights w;
  w.version = header.version();
  DS_ASSIGN_OR_RETURN(w.encoding, In(FromWireEncoding(header.encoding()), what));
  if (w.encoding == WeightEncoding::kFile && header.encoded_bytes() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": FILE-encoded, yet ", header.encoded_bytes(), " encoded bytes announced"));
  }
  w.base_version = header.base_version();
  w.model_config_json = header.model_config_json();
  w.total_bytes = header.total_bytes();
  w.tensors.reserve(static_cast<size_t>(header.tensors_size()));
  for (const v1::TensorSpec& spec : header.tensors()) {
    WeightTensor& t = w.tensors.emplace_back();
    DS_ASSIGN_OR_RETURN(t.dtype, In(FromWireDtype(spec.dtype()),
                                    absl::StrCat(what, ": tensor '", spec.name(), "'")));
    t.name = spec.name();
    t.shape.assign(spec.shape().begin(), spec.shape().end());
    t.offset = spec.offset();
    t.size = spec.size();
    t.checksum = spec.checksum();
  }
  current_ = std::move(w);
  expected_bytes_ = header.encoded_bytes();
  try {
    current_.data.reserve(expected_bytes_);
  } catch (const std::exception&) {  // std::bad_alloc, std::length_error
    return absl::ResourceExhaustedError(absl::StrCat(
        what, " announces ", expected_bytes_, " encoded bytes; this process cannot allocate them"));
  }
  hash_ = std::make_unique<StreamingHash64>();
  have_header_ = true;
  return absl::OkStatus();
}

absl::Status WeightChunkAssembler::AddData(const v1::WeightChunk& chunk,
                                           const std::string& version) {
  if (!have_header_) return absl::InvalidArgumentError("a data chunk before the header");
  const std::string& data = chunk.data();
  const uint64_t received = current_.data.size();
  if (chunk.offset() != received) {
    return absl::InvalidArgumentError(absl::StrCat(version, ": a data chunk at offset ",
                                                   chunk.offset(), ", expected ", received));
  }
  if (data.size() > expected_bytes_ - received || data.size() > max_bytes_ - received) {
    return absl::InvalidArgumentError(absl::StrCat(version, ": ", received + data.size(),
                                                   " bytes of data, more than the ",
                                                   expected_bytes_, " the header announced"));
  }
  current_.data.append(data);
  hash_->Update(data);
  return absl::OkStatus();
}

absl::Status WeightChunkAssembler::AddFile(const v1::WeightFile& file, const std::string& version) {
  if (!have_header_) return absl::InvalidArgumentError("a file chunk before the header");
  if (current_.encoding != WeightEncoding::kFile) {
    return absl::InvalidArgumentError(
        absl::StrCat(version, ": a file chunk in a stream that is not FILE-encoded"));
  }
  if (!current_.file_path.empty())
    return absl::InvalidArgumentError(absl::StrCat(version, ": a second file chunk"));
  if (file.path().empty())
    return absl::InvalidArgumentError(absl::StrCat(version, ": a file chunk without a path"));
  current_.file_path = file.path();
  return absl::OkStatus();
}

absl::Status WeightChunkAssembler::AddTrailer(const v1::WeightTrailer& trailer,
                                              const std::string& version) {
  if (!have_header_) return absl::InvalidArgumentError("a trailer before the header");
  if (current_.encoding == WeightEncoding::kFile && current_.file_path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(version, ": the trailer of a FILE-encoded stream before its file chunk"));
  }
  if (current_.data.size() != expected_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat(
        version, ": the trailer after ", current_.data.size(), " of ", expected_bytes_, " bytes"));
  }
  const uint64_t received = hash_->Digest();
  if (trailer.encoded_checksum() != received) {
    return absl::DataLossError(
        absl::StrCat(version, ": the trailer's checksum ", HashHex64(trailer.encoded_checksum()),
                     " does not match the received bytes' ", HashHex64(received)));
  }
  current_.data_checksum = received;
  complete_ = true;
  return absl::OkStatus();
}

}  // namespace deepsearch::rpc
