// The writer: the mirror of huggingface/safetensors' prepare + serialize
// (safetensors/src/tensor.rs). prepare sorts the tensors by dtype, descending in the Dtype
// enum's order, then by name; packs their offsets from 0; serialises the header with
// "__metadata__" first (when given) and each entry as {"dtype","shape","data_offsets"} in
// compact JSON; and pads it with spaces (0x20) to a multiple of 8 bytes. The file is the
// little-endian u64 header length, the header, then the tensors' bytes in that order.
#include <algorithm>
#include <cstdint>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/core/status.h"
#include "common/weights/safetensors.h"
#include "common/weights/safetensors_internal.h"

namespace deepsearch {
namespace safetensors_internal {

absl::Status ValidateTensorsToWrite(const std::vector<TensorToWrite>& tensors,
                                    const std::map<std::string, std::string>& metadata,
                                    std::string_view target) {
  const std::string prefix = absl::StrCat(std::string(target), ": ");
  std::set<std::string_view> names;
  for (const TensorToWrite& tensor : tensors) {
    if (tensor.name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(prefix, "a tensor has an empty name"));
    }
    if (FindInvalidUtf8(tensor.name) != std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "tensor name '", tensor.name, "' is not valid UTF-8"));
    }
    const std::string what = absl::StrCat(prefix, "tensor '", tensor.name, "'");
    if (tensor.name == "__metadata__") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": the name is reserved for the metadata map"));
    }
    if (!names.insert(tensor.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": the name is given twice"));
    }
    if (static_cast<size_t>(tensor.dtype) >= std::size(kAllDtypes)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": invalid dtype value ", static_cast<int>(tensor.dtype)));
    }
    uint64_t count = 1;
    bool overflow = false;
    for (size_t i = 0; i < tensor.shape.size(); ++i) {
      if (tensor.shape[i] < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": shape[", i, "] is negative (", tensor.shape[i], ")"));
      }
      overflow =
          overflow || __builtin_mul_overflow(count, static_cast<uint64_t>(tensor.shape[i]), &count);
    }
    uint64_t bytes = 0;
    overflow = overflow || __builtin_mul_overflow(count, DtypeSize(tensor.dtype), &bytes);
    const std::string shape = absl::StrCat("[", absl::StrJoin(tensor.shape, ", "), "]");
    if (overflow) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": the byte count of shape ", shape, " overflows 64 bits"));
    }
    if (tensor.data.size() != bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": data is ", tensor.data.size(), " bytes, but shape ", shape, " of ",
                       std::string(DtypeName(tensor.dtype)), " needs ", bytes));
    }
  }
  for (const auto& [key, value] : metadata) {
    if (FindInvalidUtf8(key) != std::string_view::npos ||
        FindInvalidUtf8(value) != std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "metadata entry '", key, "' is not valid UTF-8"));
    }
  }
  return absl::OkStatus();
}

}  // namespace safetensors_internal

namespace {

// The 8-byte length and the padded header for `tensors`, which it sorts into file order.
absl::StatusOr<std::string> Prepare(std::vector<TensorToWrite>& tensors,
                                    const std::map<std::string, std::string>& metadata,
                                    std::string_view target, bool keep_order = false) {
  DS_RETURN_IF_ERROR(safetensors_internal::ValidateTensorsToWrite(tensors, metadata, target));
  if (!keep_order) {
    std::sort(tensors.begin(), tensors.end(), [](const TensorToWrite& a, const TensorToWrite& b) {
      if (a.dtype != b.dtype) return a.dtype > b.dtype;
      return a.name < b.name;
    });
  }

  // Compact JSON, assembled in file order; nlohmann escapes the strings as serde_json does
  // ('"', '\\' and control characters; other characters stay raw UTF-8).
  std::string json = "{";
  if (!metadata.empty()) {
    json += "\"__metadata__\":";
    json += nlohmann::json(metadata).dump();  // keys in byte order
  }
  uint64_t offset = 0;
  for (const TensorToWrite& tensor : tensors) {
    if (json.size() > 1) json += ',';
    absl::StrAppend(&json, nlohmann::json(tensor.name).dump(), ":{\"dtype\":\"",
                    std::string(DtypeName(tensor.dtype)), "\",\"shape\":[",
                    absl::StrJoin(tensor.shape, ","), "],\"data_offsets\":[", offset, ",",
                    offset + tensor.data.size(), "]}");
    offset += tensor.data.size();
  }
  json += '}';
  json.resize((json.size() + 7) / 8 * 8, ' ');
  if (json.size() > safetensors_internal::kMaxHeaderSize) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(target), ": the header would be ",
                                                   json.size(), " bytes, over the limit of ",
                                                   safetensors_internal::kMaxHeaderSize));
  }
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i, n >>= 8) out[static_cast<size_t>(i)] = static_cast<char>(n & 0xFF);
  out += json;
  return out;
}

std::string_view AsChars(absl::Span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

absl::StatusOr<std::string> SerializeSafetensors(
    std::vector<TensorToWrite> tensors, const std::map<std::string, std::string>& metadata) {
  DS_ASSIGN_OR_RETURN(std::string out, Prepare(tensors, metadata, "SerializeSafetensors"));
  size_t total = out.size();
  for (const TensorToWrite& tensor : tensors) total += tensor.data.size();
  out.reserve(total);
  for (const TensorToWrite& tensor : tensors) out.append(AsChars(tensor.data));
  return out;
}

absl::Status WriteSafetensors(const std::string& path, std::vector<TensorToWrite> tensors,
                              const std::map<std::string, std::string>& metadata) {
  return WriteSafetensors(path, std::move(tensors), metadata, SafetensorsWriteOptions{});
}

absl::Status WriteSafetensors(const std::string& path, std::vector<TensorToWrite> tensors,
                              const std::map<std::string, std::string>& metadata,
                              const SafetensorsWriteOptions& options) {
  DS_ASSIGN_OR_RETURN(const std::string header,
                      Prepare(tensors, metadata, path, options.keep_order));
  std::vector<std::string_view> pieces;
  pieces.reserve(tensors.size() + 1);
  pieces.push_back(header);
  for (const TensorToWrite& tensor : tensors) pieces.push_back(AsChars(tensor.data));
  return safetensors_internal::WriteFileAtomically(path, pieces, options.sync, options.reuse);
}

}  // namespace deepsearch
