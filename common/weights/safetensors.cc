// The dtype table and the reader. The checks follow huggingface/safetensors'
// SafeTensors::read_metadata and Metadata::validate (safetensors/src/tensor.rs), in order:
// header length field, header size limit, header inside the file, UTF-8, JSON, the entries,
// then contiguity of the sorted offsets and the buffer's exact length.
#include "common/weights/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/weights/safetensors_internal.h"

namespace deepsearch {
namespace {

using safetensors_internal::JsonTypeName;
using safetensors_internal::kMaxHeaderSize;

struct DtypeInfo {
  Dtype dtype;
  std::string_view name;
  size_t size;
};

constexpr DtypeInfo kDtypeTable[] = {
    {Dtype::kBool, "BOOL", 1},      {Dtype::kU8, "U8", 1},          {Dtype::kI8, "I8", 1},
    {Dtype::kF8E5M2, "F8_E5M2", 1}, {Dtype::kF8E4M3, "F8_E4M3", 1}, {Dtype::kI16, "I16", 2},
    {Dtype::kU16, "U16", 2},        {Dtype::kF16, "F16", 2},        {Dtype::kBF16, "BF16", 2},
    {Dtype::kI32, "I32", 4},        {Dtype::kU32, "U32", 4},        {Dtype::kF32, "F32", 4},
    {Dtype::kF64, "F64", 8},        {Dtype::kI64, "I64", 8},        {Dtype::kU64, "U64", 8},
};

// Info() indexes the table by the enum's value.
constexpr bool TableFollowsTheEnum() {
  for (size_t i = 0; i < std::size(kDtypeTable); ++i) {
    if (static_cast<size_t>(kDtypeTable[i].dtype) != i) return false;
  }
  return std::size(kDtypeTable) == std::size(kAllDtypes);
}
static_assert(TableFollowsTheEnum());

const DtypeInfo& Info(Dtype dtype) {
  const auto index = static_cast<size_t>(dtype);
  DS_CHECK(index < std::size(kDtypeTable)) << "not a Dtype: " << index;
  return kDtypeTable[index];
}

uint64_t LoadLittleEndian64(const uint8_t* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | p[i];
  return value;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// One tensor entry of the header, checked on its own.
struct Entry {
  std::string name;
  Dtype dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct Header {
  std::map<std::string, std::string> metadata;
  std::vector<Entry> entries;
};

// A JSON value that must be a non-negative integer (the reference's usize). `what` names it
// in messages ("tensor 'w': shape[1]").
absl::StatusOr<uint64_t> ReadUnsigned(const nlohmann::json& value, const std::string& what) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is negative (", value.dump(), ")"));
  }
  if (value.is_number_float()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not an integer (", value.dump(), ")"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, " is ", JsonTypeName(value), ", not an integer"));
}

absl::StatusOr<Entry> ParseEntry(const std::string& name, const nlohmann::json& value) {
  const std::string tensor = absl::StrCat("tensor '", name, "'");
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(tensor, ": the entry is ", JsonTypeName(value), ", not an object"));
  }
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(field)) {
      return absl::InvalidArgumentError(absl::StrCat(tensor, ": the entry has no \"", field, "\""));
    }
  }
  Entry entry;
  entry.name = name;

  const nlohmann::json& dtype = value["dtype"];
  if (!dtype.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(tensor, ": dtype is ", JsonTypeName(dtype), ", not a string"));
  }
  absl::StatusOr<Dtype> parsed_dtype = ParseDtype(dtype.get<std::string>());
  if (!parsed_dtype.ok()) return Annotate(parsed_dtype.status(), tensor);
  entry.dtype = *parsed_dtype;

  const nlohmann::json& shape = value["shape"];
  if (!shape.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(tensor, ": shape is ", JsonTypeName(shape), ", not an array"));
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    const std::string what = absl::StrCat(tensor, ": shape[", i, "]");
    DS_ASSIGN_OR_RETURN(const uint64_t dim, ReadUnsigned(shape[i], what));
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is ", dim, ", above the int64 range"));
    }
    entry.shape.push_back(static_cast<int64_t>(dim));
  }

  const nlohmann::json& offsets = value["data_offsets"];
  if (!offsets.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        tensor, ": data_offsets is ", JsonTypeName(offsets), ", not a pair [begin, end]"));
  }
  if (offsets.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(tensor, ": data_offsets must be a pair [begin, end], got ", offsets.size(),
                     offsets.size() == 1 ? " number" : " numbers"));
  }
  DS_ASSIGN_OR_RETURN(entry.begin, ReadUnsigned(offsets[0], tensor + ": data_offsets[0]"));
  DS_ASSIGN_OR_RETURN(entry.end, ReadUnsigned(offsets[1], tensor + ": data_offsets[1]"));
  if (entry.begin > entry.end) {
    return absl::InvalidArgumentError(
        absl::StrCat(tensor, ": data_offsets begin ", entry.begin, " is after end ", entry.end));
  }

  // The element count, then the byte count, each checked for overflow, folding left to
  // right as the reference does (so [2^32, 2^32, 0] overflows before reaching the 0).
  uint64_t count = 1;
  bool overflow = false;
  for (int64_t dim : entry.shape) {
    overflow = overflow || __builtin_mul_overflow(count, static_cast<uint64_t>(dim), &count);
  }
  uint64_t bytes = 0;
  overflow = overflow || __builtin_mul_overflow(count, DtypeSize(entry.dtype), &bytes);
  if (overflow) {
    return absl::InvalidArgumentError(
        absl::StrCat(tensor, ": the byte count of shape ", ShapeString(entry.shape), " in ",
                     std::string(DtypeName(entry.dtype)), " overflows 64 bits"));
  }
  if (entry.end - entry.begin != bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(tensor, ": data_offsets [", entry.begin, ", ", entry.end, "] hold ",
                     entry.end - entry.begin, " bytes, but shape ", ShapeString(entry.shape),
                     " of ", std::string(DtypeName(entry.dtype)), " needs ", bytes));
  }
  return entry;
}

absl::StatusOr<Header> ParseHeader(const nlohmann::json& root) {
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the header is ", JsonTypeName(root), ", expected a JSON object"));
  }
  Header header;
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;  // serde reads null as no metadata
      if (!value.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat("__metadata__ is ", JsonTypeName(value), ", not an object of strings"));
      }
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) {
          return absl::InvalidArgumentError(absl::StrCat("__metadata__ value for key '", meta_key,
                                                         "' is ", JsonTypeName(meta_value),
                                                         ", not a string"));
        }
        header.metadata.emplace(meta_key, meta_value.get<std::string>());
      }
      continue;
    }
    DS_ASSIGN_OR_RETURN(Entry entry, ParseEntry(key, value));
    header.entries.push_back(std::move(entry));
  }
  return header;
}

}  // namespace

size_t DtypeSize(Dtype dtype) { return Info(dtype).size; }

std::string_view DtypeName(Dtype dtype) { return Info(dtype).name; }

absl::StatusOr<Dtype> ParseDtype(std::string_view name) {
  for (const DtypeInfo& info : kDtypeTable) {
    if (info.name == name) return info.dtype;
  }
  std::vector<std::string> names;
  for (const DtypeInfo& info : kDtypeTable) names.emplace_back(info.name);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown dtype \"", std::string(name), "\" (supported: ", absl::StrJoin(names, ", "), ")"));
}

int64_t SafetensorsFile::TensorView::num_elements() const {
  // A 0 anywhere makes the count 0, even when the other dimensions multiply past int64 (the
  // reader admits that for empty tensors as long as the running product fits in 64 bits).
  uint64_t count = 1;
  for (int64_t dim : shape) {
    if (dim == 0) return 0;
    count *= static_cast<uint64_t>(dim);
  }
  return static_cast<int64_t>(count);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  using safetensors_internal::ErrnoError;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot open", path);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = Map(fd, path);
  ::close(fd);  // the mapping keeps the file alive
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Map(int fd,
                                                                      const std::string& path) {
  using safetensors_internal::ErrnoError;
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError(errno, "cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path));
  const auto size = static_cast<size_t>(st.st_size);
  if (size > 0) {
    void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) return ErrnoError(errno, "cannot mmap", path);
    file->mapping_ = mapping;
    file->mapping_size_ = size;
    file->bytes_ = static_cast<const uint8_t*>(mapping);
    file->size_ = size;
  }
  DS_RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(std::string bytes,
                                                                            std::string source) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(std::move(source)));
  // Move first, then point into the member: a moved short string changes address.
  file->owned_ = std::move(bytes);
  file->bytes_ = reinterpret_cast<const uint8_t*>(file->owned_.data());
  file->size_ = file->owned_.size();
  DS_RETURN_IF_ERROR(file->Parse());
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

const SafetensorsFile::TensorView* SafetensorsFile::Find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::Status SafetensorsFile::Parse() {
  auto fault = [this](const std::string& message) {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", message));
  };

  if (size_ < 8) {
    return fault(
        absl::StrCat("the file is ", size_, " bytes, shorter than the 8-byte header size field"));
  }
  const uint64_t n = LoadLittleEndian64(bytes_);
  if (n > kMaxHeaderSize) {
    return fault(
        absl::StrCat("header size ", n, " exceeds the limit of ", kMaxHeaderSize, " bytes"));
  }
  if (n > size_ - 8) {
    return fault(absl::StrCat("header size ", n, " runs past the end of the file (8 + ", n, " > ",
                              size_, " bytes)"));
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes_ + 8), n);
  if (const size_t bad = safetensors_internal::FindInvalidUtf8(text);
      bad != std::string_view::npos) {
    return fault(
        absl::StrCat("the header is not valid UTF-8 (bad byte at header offset ", bad, ")"));
  }
  absl::StatusOr<nlohmann::json> json = safetensors_internal::ParseStrictJson(text, "the header");
  if (!json.ok()) return fault(std::string(json.status().message()));
  absl::StatusOr<Header> header = ParseHeader(*json);
  if (!header.ok()) return fault(std::string(header.status().message()));

  // Metadata::validate: sorted by offsets, the entries must tile [0, end) exactly.
  std::vector<Entry>& entries = header->entries;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& entry : entries) {
    if (entry.begin > covered) {
      return fault(
          absl::StrCat("tensor '", entry.name, "': gap in the data buffer: it begins at byte ",
                       entry.begin, ", but ",
                       previous == nullptr ? "the buffer starts at byte 0"
                                           : absl::StrCat("the tensor before it, '", previous->name,
                                                          "', ends at byte ", covered)));
    }
    if (entry.begin < covered) {
      return fault(absl::StrCat("tensor '", entry.name, "' overlaps tensor '", previous->name,
                                "': it begins at byte ", entry.begin, ", before byte ", covered,
                                " where '", previous->name, "' ends"));
    }
    covered = entry.end;
    previous = &entry;
  }
  const uint64_t available = size_ - 8 - n;
  if (covered < available) {
    return fault(absl::StrCat("the data buffer holds ", available,
                              " bytes but the tensors cover only ", covered, ": ",
                              available - covered, " trailing bytes"));
  }
  if (covered > available) {
    return fault(absl::StrCat("the tensors need ", covered, " bytes of data but only ", available,
                              " follow the header: the file is truncated"));
  }

  header_size_ = n;
  data_size_ = available;
  metadata_ = std::move(header->metadata);
  const uint8_t* data = bytes_ + 8 + n;
  tensors_.reserve(entries.size());
  for (Entry& entry : entries) {
    index_.emplace(entry.name, tensors_.size());
    tensors_.push_back(TensorView{std::move(entry.name), entry.dtype, std::move(entry.shape),
                                  data + entry.begin,
                                  static_cast<size_t>(entry.end - entry.begin)});
  }
  return absl::OkStatus();
}

}  // namespace deepsearch
