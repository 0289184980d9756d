#include "common/weights/weight_set.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/core/hash.h"
#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/weights/byte_planes.h"
#include "common/weights/weight_file.h"

namespace deepsearch {
namespace {

using weights_internal::JoinPlane;
using weights_internal::JoinPlanes;
using weights_internal::SplitPlane;
using weights_internal::SplitPlanes;
using weights_internal::WithElementSize;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::string Quoted(std::string_view name) { return absl::StrCat("'", std::string(name), "'"); }

std::string Name(Dtype dtype) { return std::string(DtypeName(dtype)); }

// prod(shape) * DtypeSize(dtype), refusing a negative dimension and overflow.
absl::StatusOr<uint64_t> ExpectedBytes(std::string_view name, Dtype dtype,
                                       const std::vector<int64_t>& shape) {
  uint64_t bytes = DtypeSize(dtype);
  for (const int64_t dim : shape) {
    if (dim < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor ", Quoted(name), ": negative dimension in shape ", ShapeString(shape)));
    }
    const auto d = static_cast<uint64_t>(dim);
    if (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / d) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", Quoted(name), ": shape ", ShapeString(shape), " overflows"));
    }
    bytes *= d;
  }
  return bytes;
}

// Checks a manifest against a payload of `payload_bytes`: unique non-empty names, sizes that
// match shapes and dtypes, offsets that tile [0, payload_bytes) in order.
absl::Status ValidateManifest(const std::vector<WeightTensor>& tensors, uint64_t payload_bytes) {
  absl::flat_hash_set<std::string_view> names;
  names.reserve(tensors.size());
  uint64_t next = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const WeightTensor& t = tensors[i];
    if (t.name.empty())
      return absl::InvalidArgumentError(absl::StrCat("tensor #", i, ": empty name"));
    if (!names.insert(t.name).second)
      return absl::InvalidArgumentError(absl::StrCat("tensor ", Quoted(t.name), ": repeated name"));
    DS_ASSIGN_OR_RETURN(const uint64_t expected, ExpectedBytes(t.name, t.dtype, t.shape));
    if (t.size != expected) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", Quoted(t.name), ": size ", t.size,
                                                     " bytes, but ", Name(t.dtype), " ",
                                                     ShapeString(t.shape), " takes ", expected));
    }
    if (t.offset != next) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", Quoted(t.name), ": offset ",
                                                     t.offset, ", expected ", next,
                                                     " (tensors must tile the payload in order)"));
    }
    if (t.size > payload_bytes - next) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", Quoted(t.name), ": bytes [",
                                                     t.offset, ", ", t.offset + t.size,
                                                     ") run past the payload's ", payload_bytes));
    }
    next += t.size;
  }
  if (next != payload_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the tensors cover ", next, " bytes of a payload of ", payload_bytes));
  }
  return absl::OkStatus();
}

// OK when `a` and `b` have the same names, dtypes and shapes in the same order; otherwise
// InvalidArgument naming the first difference (`what_a` / `what_b` name the sides).
absl::Status CompareLayouts(const std::vector<WeightTensor>& a, const std::vector<WeightTensor>& b,
                            std::string_view what_a, std::string_view what_b) {
  const std::string sa(what_a), sb(what_b);
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i].name != b[i].name) {
      return absl::InvalidArgumentError(absl::StrCat("tensor #", i, " is ", Quoted(a[i].name),
                                                     " in the ", sa, " but ", Quoted(b[i].name),
                                                     " in the ", sb));
    }
    if (a[i].dtype != b[i].dtype) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", Quoted(a[i].name), ": dtype ",
                                                     Name(a[i].dtype), " in the ", sa, " but ",
                                                     Name(b[i].dtype), " in the ", sb));
    }
    if (a[i].shape != b[i].shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", Quoted(a[i].name), ": shape ", ShapeString(a[i].shape),
                       " in the ", sa, " but ", ShapeString(b[i].shape), " in the ", sb));
    }
  }
  if (a.size() != b.size()) {
    const bool a_longer = a.size() > b.size();
    const WeightTensor& extra = a_longer ? a[b.size()] : b[a.size()];
    return absl::InvalidArgumentError(
        absl::StrCat("the ", sa, " has ", a.size(), " tensors, the ", sb, " ", b.size(),
                     ": tensor ", Quoted(extra.name), " is only in the ", a_longer ? sa : sb));
  }
  return absl::OkStatus();
}

// The delta stream is, per tensor in manifest order, the byte planes of target XOR base
// (byte_planes.h). Both sides hold one tensor's planes at a time in a scratch buffer of at
// most kWholeTensorBytes (one pass over target and base per tensor); a larger tensor goes
// plane by plane in pieces of kPieceElements (a pass per plane).
constexpr size_t kWholeTensorBytes = size_t{16} << 20;
constexpr size_t kPieceElements = size_t{1} << 20;

// The scratch buffer's size for `tensors`: their largest, up to kWholeTensorBytes.
size_t ScratchBytes(const std::vector<WeightTensor>& tensors) {
  size_t largest = 0;
  for (const WeightTensor& t : tensors) largest = std::max<size_t>(largest, t.size);
  return std::min(largest, kWholeTensorBytes);
}

// Calls f(plane, first element, element count) for the pieces of a tensor of n elements of
// E bytes, in stream order, stopping at the first error.
template <size_t E, typename F>
absl::Status ForEachPiece(size_t n, F&& f) {
  for (size_t p = 0; p < E; ++p) {
    for (size_t first = 0; first < n; first += kPieceElements)
      DS_RETURN_IF_ERROR(f(p, first, std::min(kPieceElements, n - first)));
  }
  return absl::OkStatus();
}

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

std::string ZstdError(size_t code) { return ZSTD_getErrorName(code); }

// One tensor's bytes against its checksum.
absl::Status VerifyChecksum(const WeightTensor& t, std::string_view bytes) {
  const uint64_t actual = Hash64(bytes);
  if (actual == t.checksum) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("tensor ", Quoted(t.name), ": checksum ",
                                          HashHex64(actual), ", the manifest says ",
                                          HashHex64(t.checksum)));
}

// Every tensor's bytes against its checksum: DataLoss naming the first that differs.
absl::Status VerifyChecksums(const WeightSet& set) {
  for (const WeightTensor& t : set.tensors) DS_RETURN_IF_ERROR(VerifyChecksum(t, set.Bytes(t)));
  return absl::OkStatus();
}

// The zstd frame of the delta stream of `target` against `base` (same layout, validated).
// Written through the streaming API with the content size pledged, so the frame records it
// and ZSTD_decompress could read it in one call too; the planes never exist whole.
absl::StatusOr<std::string> CompressDelta(const WeightSet& target, const WeightSet& base,
                                          int zstd_level) {
  std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
  DS_CHECK(cctx != nullptr) << "ZSTD_createCCtx failed";
  size_t rc = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, zstd_level);
  if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setPledgedSrcSize(cctx.get(), target.data().size());
  if (ZSTD_isError(rc)) {
    return absl::InvalidArgumentError(absl::StrCat("zstd level ", zstd_level, ": ", ZstdError(rc)));
  }
  const size_t out_step = ZSTD_CStreamOutSize();
  std::string data(std::max<size_t>(out_step, target.data().size() / 16), '\0');
  size_t written = 0;
  // Feeds `size` bytes (or, for ZSTD_e_end, the end of the frame) to the compressor.
  auto compress = [&](const uint8_t* bytes, size_t size, ZSTD_EndDirective mode) -> absl::Status {
    ZSTD_inBuffer in{bytes, size, 0};
    while (true) {
      if (data.size() - written < out_step)
        data.resize(std::max(2 * data.size(), written + out_step));
      ZSTD_outBuffer out{data.data() + written, data.size() - written, 0};
      const size_t left = ZSTD_compressStream2(cctx.get(), &out, &in, mode);
      written += out.pos;
      if (ZSTD_isError(left)) {
        return absl::InternalError(absl::StrCat("zstd compression: ", ZstdError(left)));
      }
      if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) return absl::OkStatus();
    }
  };
  const size_t scratch_bytes = ScratchBytes(target.tensors);
  const std::unique_ptr<uint8_t[]> scratch(new uint8_t[scratch_bytes]);
  for (const WeightTensor& t : target.tensors) {
    const auto* a = reinterpret_cast<const uint8_t*>(target.data().data()) + t.offset;
    const auto* b = reinterpret_cast<const uint8_t*>(base.data().data()) + t.offset;
    DS_RETURN_IF_ERROR(WithElementSize(DtypeSize(t.dtype), [&](auto e) -> absl::Status {
      constexpr size_t kE = decltype(e)::value;
      if (t.size <= scratch_bytes) {
        SplitPlanes<kE>(a, b, t.size / kE, scratch.get());
        return compress(scratch.get(), t.size, ZSTD_e_continue);
      }
      return ForEachPiece<kE>(t.size / kE, [&](size_t p, size_t first, size_t count) {
        SplitPlane<kE>(a, b, p, first, count, scratch.get());
        return compress(scratch.get(), count, ZSTD_e_continue);
      });
    }));
  }
  DS_RETURN_IF_ERROR(compress(nullptr, 0, ZSTD_e_end));
  data.resize(written);
  if (data.capacity() > 2 * data.size() + out_step) data.shrink_to_fit();
  return data;
}

// Rebuilds set.payload (already sized) from the zstd frame `data` of a delta against `base`
// (same layout and size), verifying each tensor's checksum as soon as it is whole, while its
// bytes are still in cache.
absl::Status DecompressDelta(std::string_view data, const WeightSet& base, WeightSet& set) {
  const unsigned long long content = ZSTD_getFrameContentSize(data.data(), data.size());
  if (content != set.payload.size()) {
    return absl::DataLossError(
        absl::StrCat("the zstd frame ",
                     content == ZSTD_CONTENTSIZE_ERROR     ? std::string("is unreadable")
                     : content == ZSTD_CONTENTSIZE_UNKNOWN ? std::string("has no size")
                                                           : absl::StrCat("holds ", content),
                     ", expected ", set.payload.size(), " bytes"));
  }
  std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  DS_CHECK(dctx != nullptr) << "ZSTD_createDCtx failed";
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  size_t left = 1;  // ZSTD_decompressStream's last answer: 0 once the frame is complete
  // Decompresses exactly `size` bytes into `out`.
  auto decompress = [&](uint8_t* out, size_t size) -> absl::Status {
    ZSTD_outBuffer buffer{out, size, 0};
    while (buffer.pos < buffer.size) {
      const size_t in_before = in.pos, out_before = buffer.pos;
      left = ZSTD_decompressStream(dctx.get(), &buffer, &in);
      if (ZSTD_isError(left)) return absl::DataLossError(absl::StrCat("zstd: ", ZstdError(left)));
      if (in.pos == in_before && buffer.pos == out_before) {
        return absl::DataLossError(
            absl::StrCat("the zstd data ends after ", in.pos, " bytes, before the payload"));
      }
    }
    return absl::OkStatus();
  };
  const size_t scratch_bytes = ScratchBytes(set.tensors);
  const std::unique_ptr<uint8_t[]> scratch(new uint8_t[scratch_bytes]);
  for (const WeightTensor& t : set.tensors) {
    const auto* b = reinterpret_cast<const uint8_t*>(base.data().data()) + t.offset;
    auto* out = reinterpret_cast<uint8_t*>(set.payload.data()) + t.offset;
    DS_RETURN_IF_ERROR(WithElementSize(DtypeSize(t.dtype), [&](auto e) -> absl::Status {
      constexpr size_t kE = decltype(e)::value;
      if (t.size <= scratch_bytes) {
        DS_RETURN_IF_ERROR(decompress(scratch.get(), t.size));
        JoinPlanes<kE>(scratch.get(), b, t.size / kE, out);
        return absl::OkStatus();
      }
      return ForEachPiece<kE>(t.size / kE, [&](size_t p, size_t first, size_t count) {
        DS_RETURN_IF_ERROR(decompress(scratch.get(), count));
        JoinPlane<kE>(scratch.get(), b, p, first, count, out);
        return absl::OkStatus();
      });
    }));
    DS_RETURN_IF_ERROR(VerifyChecksum(t, set.Bytes(t)));
  }
  // The frame must end exactly here, with nothing after it.
  while (left != 0) {  // the frame's last block header may still be unread
    uint8_t none = 0;
    ZSTD_outBuffer empty{&none, 0, 0};
    const size_t in_before = in.pos;
    left = ZSTD_decompressStream(dctx.get(), &empty, &in);
    if (ZSTD_isError(left)) return absl::DataLossError(absl::StrCat("zstd: ", ZstdError(left)));
    if (in.pos == in_before) break;
  }
  if (left != 0 || in.pos != in.size) {
    return absl::DataLossError(absl::StrCat("the zstd data does not end with the payload (", in.pos,
                                            " of ", in.size, " bytes read)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WeightSet::Add(std::string name, Dtype dtype, std::vector<int64_t> shape,
                            std::string_view bytes) {
  if (mapping != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor ", Quoted(name), ": the set views a mapped file; it cannot grow"));
  }
  if (name.empty()) return absl::InvalidArgumentError("tensor with an empty name");
  if (Find(name) != nullptr)
    return absl::InvalidArgumentError(absl::StrCat("tensor ", Quoted(name), ": repeated name"));
  DS_ASSIGN_OR_RETURN(const uint64_t expected, ExpectedBytes(name, dtype, shape));
  if (bytes.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", Quoted(name), ": ", bytes.size(),
                                                   " bytes, but ", Name(dtype), " ",
                                                   ShapeString(shape), " takes ", expected));
  }
  WeightTensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.offset = payload.size();
  t.size = bytes.size();
  t.checksum = Hash64(bytes);
  payload.append(bytes);
  tensors.push_back(std::move(t));
  return absl::OkStatus();
}

const WeightTensor* WeightSet::Find(std::string_view name) const {
  for (const WeightTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string_view WeightSet::Bytes(const WeightTensor& tensor) const {
  const std::string_view bytes = data();
  DS_CHECK(tensor.offset <= bytes.size() && tensor.size <= bytes.size() - tensor.offset)
      << "tensor " << tensor.name << " lies outside the payload";
  return bytes.substr(tensor.offset, tensor.size);
}

absl::Status WeightSet::Validate(bool verify_checksums) const {
  DS_RETURN_IF_ERROR(ValidateManifest(tensors, data().size()));
  return verify_checksums ? VerifyChecksums(*this) : absl::OkStatus();
}

bool WeightSet::SameLayout(const WeightSet& other) const {
  return CompareLayouts(tensors, other.tensors, "first", "second").ok();
}

EncodedWeights EncodeFull(WeightSet set) {
  EncodedWeights e;
  e.version = set.version;
  e.encoding = WeightEncoding::kFull;
  e.model_config_json = std::move(set.model_config_json);
  e.tensors = std::move(set.tensors);
  e.total_bytes = set.data().size();
  if (set.mapping != nullptr) {
    e.data.assign(set.mapped);
  } else {
    e.data = std::move(set.payload);
  }
  e.data_checksum = Hash64(e.data);
  return e;
}

absl::StatusOr<EncodedWeights> EncodeDelta(const WeightSet& target, const WeightSet& base,
                                           int zstd_level) {
  DS_RETURN_IF_ERROR(Annotate(ValidateManifest(target.tensors, target.data().size()),
                              absl::StrCat("delta target (version ", target.version, ")")));
  DS_RETURN_IF_ERROR(Annotate(ValidateManifest(base.tensors, base.data().size()),
                              absl::StrCat("delta base (version ", base.version, ")")));
  DS_RETURN_IF_ERROR(Annotate(CompareLayouts(target.tensors, base.tensors,
                                             absl::StrCat("target (version ", target.version, ")"),
                                             absl::StrCat("base (version ", base.version, ")")),
                              "cannot encode a delta"));

  EncodedWeights e;
  e.version = target.version;
  e.encoding = WeightEncoding::kDelta;
  e.base_version = base.version;
  e.model_config_json = target.model_config_json;
  e.tensors = target.tensors;
  e.total_bytes = target.data().size();

  DS_ASSIGN_OR_RETURN(e.data, CompressDelta(target, base, zstd_level));
  e.data_checksum = Hash64(e.data);
  return e;
}

absl::StatusOr<WeightSet> DecodeWeights(EncodedWeights encoded, const WeightSet* base) {
  const std::string what = absl::StrCat("weight set version ", encoded.version);
  DS_RETURN_IF_ERROR(Annotate(ValidateManifest(encoded.tensors, encoded.total_bytes), what));
  const uint64_t checksum = Hash64(encoded.data);
  if (checksum != encoded.data_checksum) {
    return absl::DataLossError(absl::StrCat(what, ": encoded data checksum ", HashHex64(checksum),
                                            ", expected ", HashHex64(encoded.data_checksum)));
  }

  if (encoded.encoding == WeightEncoding::kFile) {
    if (encoded.file_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": a file reference without a path"));
    }
    absl::StatusOr<WeightSet> set = ReadWeightFile(
        encoded.file_path, {.version = encoded.version, .manifest = &encoded.tensors});
    if (!set.ok()) return Annotate(set.status(), what);
    if (set->model_config_json != encoded.model_config_json) {
      return absl::DataLossError(absl::StrCat(what, ": ", encoded.file_path,
                                              " records another model config than the header"));
    }
    return set;
  }

  WeightSet set;
  set.version = encoded.version;
  set.model_config_json = std::move(encoded.model_config_json);
  set.tensors = std::move(encoded.tensors);
  switch (encoded.encoding) {
    case WeightEncoding::kFull:
      if (encoded.data.size() != encoded.total_bytes) {
        return absl::DataLossError(absl::StrCat(what, ": full payload of ", encoded.data.size(),
                                                " bytes, the manifest says ", encoded.total_bytes));
      }
      set.payload = std::move(encoded.data);
      break;
    case WeightEncoding::kDelta: {
      const std::string against =
          absl::StrCat(what, ": delta against version ", encoded.base_version);
      if (base == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(against, ", but no base was given"));
      }
      if (base->version != encoded.base_version) {
        return absl::FailedPreconditionError(
            absl::StrCat(against, ", but the base given is version ", base->version));
      }
      if (absl::Status s = CompareLayouts(set.tensors, base->tensors, "delta", "base"); !s.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(against, ": ", s.message()));
      }
      if (base->data().size() != encoded.total_bytes) {
        return absl::FailedPreconditionError(
            absl::StrCat(against, ": the base holds ", base->data().size(),
                         " bytes, the delta decodes to ", encoded.total_bytes));
      }
      set.payload.resize(encoded.total_bytes);
      DS_RETURN_IF_ERROR(Annotate(DecompressDelta(encoded.data, *base, set), against));
      return set;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": unknown encoding ", static_cast<int>(encoded.encoding)));
  }
  DS_RETURN_IF_ERROR(Annotate(VerifyChecksums(set), what));
  return set;
}

}  // namespace deepsearch
