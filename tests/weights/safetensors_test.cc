// The safetensors reader and writer: every corrupt fixture refused with its own message, the
// valid fixtures read exactly, the writer byte-identical to the reference layout, round trips
// for every dtype, and views that outlive the file's directory entry.
#include "common/weights/safetensors.h"

#include <unistd.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "tests/weights/safetensors_testing.h"

namespace deepsearch {
namespace {

using ::deepsearch::testing_safetensors::Bytes;
using ::deepsearch::testing_safetensors::DataPath;
using ::deepsearch::testing_safetensors::LittleEndian;
using ::deepsearch::testing_safetensors::ReadFile;
using ::deepsearch::testing_safetensors::Span;
using ::deepsearch::testing_safetensors::TempDir;
using ::deepsearch::testing_safetensors::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The 8-byte little-endian length, the header text, and the data: a file by hand.
std::string FileBytes(uint64_t n, const std::string& header, const std::string& data = "") {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out + header + data;
}

// The same with n = the header's length, padded with spaces to a multiple of 8.
std::string PaddedFile(std::string header, const std::string& data = "") {
  header.resize((header.size() + 7) / 8 * 8, ' ');
  return FileBytes(header.size(), header, data);
}

absl::Status ParseBytes(const std::string& bytes) {
  return SafetensorsFile::FromBytes(bytes, "mem").status();
}

std::string Chars(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// ---------------------------------------------------------------------------------------
// Dtypes

TEST(DtypeTest, NamesAndSizesMatchTheFormat) {
  std::vector<std::string> names;
  std::vector<size_t> sizes;
  for (Dtype dtype : kAllDtypes) {
    names.emplace_back(DtypeName(dtype));
    sizes.push_back(DtypeSize(dtype));
  }
  EXPECT_THAT(names, ElementsAre("BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                                 "BF16", "I32", "U32", "F32", "F64", "I64", "U64"));
  EXPECT_THAT(sizes, ElementsAre(1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8));
  for (Dtype dtype : kAllDtypes) {
    absl::StatusOr<Dtype> parsed = ParseDtype(DtypeName(dtype));
    ASSERT_TRUE(parsed.ok()) << DtypeName(dtype);
    EXPECT_EQ(*parsed, dtype);
  }
}

TEST(DtypeTest, UnknownNamesAreRefusedByName) {
  for (const char* name : {"F8_E8M0", "F4", "F6_E2M3", "C64", "Q4", "bf16", ""}) {
    absl::StatusOr<Dtype> parsed = ParseDtype(name);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(),
                HasSubstr(absl::StrCat("unknown dtype \"", name, "\" (supported: BOOL, U8")));
  }
}

TEST(DtypeDeathTest, AValueOutsideTheEnumIsABrokenInvariant) {
  EXPECT_DEATH(DtypeSize(static_cast<Dtype>(99)), "not a Dtype: 99");
}

// ---------------------------------------------------------------------------------------
// Corrupt files: one fixture per fault, each with its own message.

struct CorruptCase {
  const char* file;  // under tests/data/safetensors/corrupt/, without ".safetensors"
  absl::StatusCode code;
  const char* message;  // the whole message after "<path>: ", or its start (see kPrefixOnly)
};

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

const CorruptCase kCorruptCases[] = {
    {"short_file", kInvalid, "the file is 3 bytes, shorter than the 8-byte header size field"},
    {"header_too_large", kInvalid, "header size 100000001 exceeds the limit of 100000000 bytes"},
    {"header_past_eof", kInvalid,
     "header size 64 runs past the end of the file (8 + 64 > 16 bytes)"},
    {"not_utf8", kInvalid, "the header is not valid UTF-8 (bad byte at header offset 2)"},
    {"not_json", kInvalid, "the header is not valid JSON: "},
    {"not_object", kInvalid, "the header is an array, expected a JSON object"},
    {"bad_metadata", kInvalid, "__metadata__ value for key 'format' is an integer, not a string"},
    {"entry_not_object", kInvalid, "tensor 'a': the entry is an array, not an object"},
    {"missing_offsets", kInvalid, "tensor 'a': the entry has no \"data_offsets\""},
    {"bad_dtype", kInvalid, "tensor 'a': unknown dtype \"F8_E8M0\" (supported: "},
    {"negative_dim", kInvalid, "tensor 'a': shape[1] is negative (-2)"},
    {"fractional_dim", kInvalid, "tensor 'a': shape[0] is not an integer (1.5)"},
    {"offsets_not_pair", kInvalid,
     "tensor 'a': data_offsets must be a pair [begin, end], got 3 numbers"},
    {"offsets_reversed", kInvalid, "tensor 'a': data_offsets begin 4 is after end 0"},
    {"shape_overflow", kInvalid,
     "tensor 'a': the byte count of shape [4294967296, 4294967296] in U8 overflows 64 bits"},
    {"size_mismatch", kInvalid,
     "tensor 'a': data_offsets [0, 12] hold 12 bytes, but shape [2, 2] of F32 needs 16"},
    {"duplicate_name", kInvalid, "key 'a' appears twice in the header"},
    {"gap", kInvalid,
     "tensor 'b': gap in the data buffer: it begins at byte 8, but the tensor before it, 'a', "
     "ends at byte 4"},
    {"overlap", kInvalid,
     "tensor 'b' overlaps tensor 'a': it begins at byte 4, before byte 8 where 'a' ends"},
    {"trailing_bytes", kInvalid,
     "the data buffer holds 8 bytes but the tensors cover only 4: 4 trailing bytes"},
    {"truncated_buffer", kInvalid,
     "the tensors need 16 bytes of data but only 12 follow the header: the file is truncated"},
    {"nesting_too_deep", kInvalid,
     "the header nests arrays and objects 128 deep; the limit is 127"},
};

// Cases whose message continues past the listed text (a parser's or a list's details).
bool PrefixOnly(const CorruptCase& c) {
  return std::string(c.file) == "not_json" || std::string(c.file) == "bad_dtype";
}

TEST(SafetensorsCorruptTest, EveryFixtureIsRefusedWithItsOwnMessage) {
  std::vector<std::string> messages;
  for (const CorruptCase& c : kCorruptCases) {
    SCOPED_TRACE(c.file);
    const std::string path = DataPath(absl::StrCat("corrupt/", c.file, ".safetensors"));
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> opened = SafetensorsFile::Open(path);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), c.code);
    const std::string message(opened.status().message());
    const std::string expected = absl::StrCat(path, ": ", c.message);
    if (PrefixOnly(c)) {
      EXPECT_THAT(message, StartsWith(expected));
    } else {
      EXPECT_EQ(message, expected);
    }
    // The in-memory reader says the same, with its source name.
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> from_bytes =
        SafetensorsFile::FromBytes(ReadFile(path), "bytes");
    ASSERT_FALSE(from_bytes.ok());
    EXPECT_EQ(from_bytes.status().code(), c.code);
    EXPECT_EQ(std::string(from_bytes.status().message()).substr(7),
              message.substr(path.size() + 2));
    messages.push_back(message);
  }
  // No fault's message matches another fault's text.
  for (size_t i = 0; i < std::size(kCorruptCases); ++i) {
    for (size_t j = 0; j < std::size(kCorruptCases); ++j) {
      if (i == j) continue;
      EXPECT_THAT(messages[i], ::testing::Not(HasSubstr(kCorruptCases[j].message)))
          << kCorruptCases[i].file << " vs " << kCorruptCases[j].file;
    }
  }
}

TEST(SafetensorsCorruptTest, NotJsonSaysWhereTheParserStopped) {
  const absl::Status status = ParseBytes(ReadFile(DataPath("corrupt/not_json.safetensors")));
  EXPECT_THAT(status.message(), HasSubstr("unexpected end of input"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("json.exception")));
}

// Found by fuzz/fuzz_safetensors (fuzz/regressions/fuzz_safetensors/number_overflow_in_header):
// a number too large for a double made the JSON parser throw out_of_range, which escaped and
// ended the process. It is an invalid header like any other.
TEST(SafetensorsCorruptTest, ANumberPastADoubleIsAnInvalidHeaderNotACrash) {
  const absl::Status status = ParseBytes(PaddedFile(R"({"__metadata__": {}, "x": 1e99999})"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("number overflow"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("json.exception")));
}

TEST(SafetensorsCorruptTest, FileSystemErrorsNameThePath) {
  TempDir dir;
  const std::string missing = dir.File("missing.safetensors");
  absl::Status status = SafetensorsFile::Open(missing).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("cannot open " + missing));

  status = SafetensorsFile::Open(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), dir.path() + ": not a regular file");

  const std::string empty = dir.File("empty.safetensors");
  WriteFile(empty, "");
  status = SafetensorsFile::Open(empty).status();
  EXPECT_EQ(status.message(),
            empty + ": the file is 0 bytes, shorter than the 8-byte header size field");
}

// Faults without a fixture of their own: the variants of the classes above.
TEST(SafetensorsCorruptTest, MoreFaultsInMemory) {
  const std::string u8 = R"("dtype":"U8","shape":[1],"data_offsets":[0,1])";
  struct Case {
    std::string bytes;
    std::string message;
  } cases[] = {
      {PaddedFile("\xEF\xBB\xBF{}"),
       "mem: the header is not valid JSON: it starts with a UTF-8 byte-order mark"},
      {PaddedFile("{} x"), "mem: the header is not valid JSON: "},
      {PaddedFile("{\"a\":{" + u8 + ",\"dtype\":\"U8\"}}", "\x01"),
       "mem: key 'dtype' appears twice in the header entry 'a'"},
      {PaddedFile(R"({"__metadata__":[1]})"),
       "mem: __metadata__ is an array, not an object of strings"},
      {PaddedFile(R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,1]}})", "\x01"),
       "mem: tensor 'a': dtype is an integer, not a string"},
      {PaddedFile(R"({"a":{"dtype":"U8","shape":"1","data_offsets":[0,1]}})", "\x01"),
       "mem: tensor 'a': shape is a string, not an array"},
      {PaddedFile(R"({"a":{"dtype":"U8","shape":[true],"data_offsets":[0,1]}})", "\x01"),
       "mem: tensor 'a': shape[0] is a boolean, not an integer"},
      {PaddedFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":{"b":0}}})", "\x01"),
       "mem: tensor 'a': data_offsets is an object, not a pair [begin, end]"},
      {PaddedFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", "\x01"),
       "mem: tensor 'a': data_offsets[0] is negative (-1)"},
      {PaddedFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "\x01"),
       "mem: tensor 'a': data_offsets must be a pair [begin, end], got 1 number"},
      {PaddedFile(R"({"a":{"shape":[1],"data_offsets":[0,1]}})", "\x01"),
       "mem: tensor 'a': the entry has no \"dtype\""},
      {PaddedFile(R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", "\x01"),
       "mem: tensor 'a': the entry has no \"shape\""},
      {PaddedFile(R"({"a":{"dtype":"U8","shape":[9223372036854775808,0],"data_offsets":[0,0]}})"),
       "mem: tensor 'a': shape[0] is 9223372036854775808, above the int64 range"},
      // The reference folds the product left to right: the overflow comes before the 0.
      {PaddedFile(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})"),
       "mem: tensor 'a': the byte count of shape [4294967296, 4294967296, 0] in U8 overflows "
       "64 bits"},
      // 2^62 elements fit, 2^62 * 8 bytes do not.
      {PaddedFile(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})"),
       "mem: tensor 'a': the byte count of shape [4611686018427387904] in F64 overflows 64 "
       "bits"},
      // The first tensor must begin at 0.
      {PaddedFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", "\x01\x02"),
       "mem: tensor 'a': gap in the data buffer: it begins at byte 1, but the buffer starts at "
       "byte 0"},
      // Two tensors on the same bytes.
      {PaddedFile(R"({"a":{)" + u8 + R"(},"b":{)" + u8 + "}}", "\x01"),
       "mem: tensor 'b' overlaps tensor 'a': it begins at byte 0, before byte 1 where 'a' ends"},
      // 2^64 - 1: no room for the 8 bytes before it.
      {FileBytes(~uint64_t{0}, "{}"),
       "mem: header size 18446744073709551615 exceeds the limit of 100000000 bytes"},
      // An overlong encoding of '/' (C0 AF) is not UTF-8.
      {PaddedFile("{\"\xC0\xAF\":1}"),
       "mem: the header is not valid UTF-8 (bad byte at header offset 2)"},
      // A UTF-16 surrogate encoded in UTF-8 (ED A0 80) is not UTF-8 either.
      {PaddedFile("{\"\xED\xA0\x80\":1}"),
       "mem: the header is not valid UTF-8 (bad byte at header offset 2)"},
  };
  for (const Case& c : cases) {
    const absl::Status status = ParseBytes(c.bytes);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(status.message()), StartsWith(c.message));
  }
}

TEST(SafetensorsCorruptTest, NestingLimitIsSerdeJsons) {
  // The object, the entry and 125 arrays: 127 levels pass; one more does not.
  auto nested = [](int arrays) {
    return PaddedFile(absl::StrCat(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":)",
                                   std::string(arrays, '['), std::string(arrays, ']'), "}}"),
                      "\x01");
  };
  EXPECT_TRUE(ParseBytes(nested(125)).ok());
  EXPECT_THAT(ParseBytes(nested(126)).message(),
              HasSubstr("the header nests arrays and objects 128 deep; the limit is 127"));
}

// ---------------------------------------------------------------------------------------
// Valid files

TEST(SafetensorsReadTest, ScalarAndEmpty) {
  const std::string path = DataPath("valid/scalar_and_empty.safetensors");
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const auto& tensors = (*file)->tensors();
  ASSERT_EQ(tensors.size(), 2u);
  // File-offset order: the empty tensor [0, 0) before the scalar [0, 4).
  EXPECT_EQ(tensors[0].name, "empty");
  EXPECT_EQ(tensors[0].dtype, Dtype::kF32);
  EXPECT_THAT(tensors[0].shape, ElementsAre(0, 3));
  EXPECT_EQ(tensors[0].num_elements(), 0);
  EXPECT_EQ(tensors[0].size, 0u);
  EXPECT_EQ(tensors[1].name, "scalar");
  EXPECT_EQ(tensors[1].dtype, Dtype::kF32);
  EXPECT_TRUE(tensors[1].shape.empty());
  EXPECT_EQ(tensors[1].num_elements(), 1);
  EXPECT_EQ(Bytes(tensors[1]), LittleEndian<float>({1.5f}));
  EXPECT_EQ((*file)->Find("scalar"), &tensors[1]);
  EXPECT_EQ((*file)->Find("absent"), nullptr);
  EXPECT_TRUE((*file)->metadata().empty());
  EXPECT_EQ((*file)->header_size() % 8, 0u);
  EXPECT_EQ((*file)->data_size(), 4u);
  EXPECT_EQ((*file)->source(), path);
}

TEST(SafetensorsReadTest, MixedDtypesAndMetadata) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(DataPath("valid/mixed.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  const auto& tensors = (*file)->tensors();
  ASSERT_EQ(tensors.size(), 3u);
  EXPECT_EQ(tensors[0].name, "ids");
  EXPECT_EQ(tensors[0].dtype, Dtype::kI64);
  EXPECT_THAT(tensors[0].shape, ElementsAre(2));
  EXPECT_EQ(Bytes(tensors[0]), LittleEndian<int64_t>({-1, int64_t{1} << 40}));
  EXPECT_EQ(tensors[1].name, "weight");
  EXPECT_EQ(tensors[1].dtype, Dtype::kF32);
  EXPECT_THAT(tensors[1].shape, ElementsAre(2, 2));
  EXPECT_EQ(tensors[1].num_elements(), 4);
  EXPECT_EQ(Bytes(tensors[1]), LittleEndian<float>({1, 2, 3, 4}));
  EXPECT_EQ(tensors[2].name, "bf");
  EXPECT_EQ(tensors[2].dtype, Dtype::kBF16);
  EXPECT_THAT(tensors[2].shape, ElementsAre(3));
  EXPECT_EQ(Bytes(tensors[2]), LittleEndian<uint16_t>({0x3F80, 0xC000, 0x3F00}));
  EXPECT_EQ((*file)->metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ((*file)->data_size(), 38u);
  // The mapping is page-aligned and the header padded: every tensor is aligned.
  for (const auto& tensor : tensors) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(tensor.data) % DtypeSize(tensor.dtype), 0u);
  }
}

TEST(SafetensorsReadTest, AnotherWritersLayout) {
  // Keys out of offset order, whitespace before '{', an unpadded header (N = 157).
  const std::string bytes = ReadFile(DataPath("valid/unpadded_unordered.safetensors"));
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::FromBytes(bytes, "unpadded");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->header_size(), 157u);
  const auto& tensors = (*file)->tensors();
  ASSERT_EQ(tensors.size(), 3u);
  EXPECT_EQ(tensors[0].name, "z");
  EXPECT_EQ(Bytes(tensors[0]), (std::vector<uint8_t>{1, 2}));
  EXPECT_EQ(tensors[1].name, "a");
  EXPECT_EQ(Bytes(tensors[1]), (std::vector<uint8_t>{3, 4, 5}));
  EXPECT_EQ(tensors[2].name, "m");
  EXPECT_TRUE(tensors[2].shape.empty());
  EXPECT_EQ(Bytes(tensors[2]), (std::vector<uint8_t>{6}));
}

TEST(SafetensorsReadTest, EdgeCasesTheReferenceAccepts) {
  // No tensors at all.
  EXPECT_TRUE(ParseBytes(PaddedFile("{}")).ok());
  // "__metadata__": null is no metadata.
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::FromBytes(PaddedFile(R"({"__metadata__":null})"), "m");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->metadata().empty());
  // Unknown fields in an entry are ignored; empty tensors may share an offset.
  file = SafetensorsFile::FromBytes(
      PaddedFile(R"({"e1":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"note":"x"},)"
                 R"("e2":{"dtype":"F64","shape":[2,0],"data_offsets":[0,0]},)"
                 R"("t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                 R"("e3":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[1,1]}})",
                 "\x09"),
      "m");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 4u);
  EXPECT_EQ((*file)->tensors()[0].name, "e1");
  EXPECT_EQ((*file)->tensors()[1].name, "e2");
  EXPECT_EQ((*file)->tensors()[2].name, "t");
  EXPECT_EQ((*file)->tensors()[3].name, "e3");
  EXPECT_EQ((*file)->Find("e3")->num_elements(), 0);
  EXPECT_EQ((*file)->Find("e2")->num_elements(), 0);
}

TEST(SafetensorsReadTest, ViewsOutliveTheDirectoryEntry) {
  TempDir dir;
  const std::string path = dir.File("w.safetensors");
  const std::vector<uint8_t> values = LittleEndian<float>({0.25f, -8.0f, 3.0f});
  ASSERT_TRUE(WriteSafetensors(path, {{"w", Dtype::kF32, {3}, Span(values)}}).ok());
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_TRUE(dir.List().empty());
  // The mapping holds the inode: the bytes are still there, and stay until the object dies.
  const SafetensorsFile::TensorView* w = (*file)->Find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(Bytes(*w), values);
  file->reset();
}

TEST(SafetensorsReadTest, ConcurrentReadersSeeTheSameBytes) {
  std::vector<uint8_t> big(1 << 16);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 131 + 7);
  absl::StatusOr<std::string> bytes =
      SerializeSafetensors({{"big", Dtype::kU8, {256, 256}, Span(big)},
                            {"small", Dtype::kU8, {3}, absl::MakeConstSpan(big.data(), 3)}});
  ASSERT_TRUE(bytes.ok());
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::FromBytes(*bytes, "shared");
  ASSERT_TRUE(file.ok());
  const SafetensorsFile& shared = **file;
  uint64_t expected = 0;
  for (uint8_t b : big) expected += b;
  std::vector<uint64_t> sums(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < sums.size(); ++t) {
    threads.emplace_back([&shared, &sums, t] {
      for (int round = 0; round < 20; ++round) {
        const SafetensorsFile::TensorView* view = shared.Find("big");
        uint64_t sum = 0;
        for (size_t i = 0; i < view->size; ++i) sum += view->data[i];
        sums[t] = sum;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(sums, ::testing::Each(expected));
}

// ---------------------------------------------------------------------------------------
// Writer

TEST(SafetensorsWriteTest, MatchesTheReferenceBytes) {
  // The reference's own test vectors (safetensors/src/tensor.rs): header text by hand.
  const std::vector<uint8_t> floats = LittleEndian<float>({0, 1, 2, 3, 4, 5});
  absl::StatusOr<std::string> out =
      SerializeSafetensors({{"attn.0", Dtype::kF32, {1, 2, 3}, Span(floats)}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            FileBytes(64, R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})",
                      Chars(floats)));

  // 65 bytes of JSON: 7 spaces pad the header to 72.
  out = SerializeSafetensors({{"attn0", Dtype::kF32, {1, 1, 2, 3}, Span(floats)}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, FileBytes(72,
                            R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})"
                            "       ",
                            Chars(floats)));

  out = SerializeSafetensors({});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, FileBytes(8, "{}      "));

  out = SerializeSafetensors({}, {{"framework", "pt"}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, FileBytes(40, R"({"__metadata__":{"framework":"pt"}})"
                                "     "));
}

TEST(SafetensorsWriteTest, SortsByDtypeDescendingThenName) {
  const std::vector<uint8_t> eight(8, 0xAB), two(2, 0xCD), one(1, 0xEF);
  absl::StatusOr<std::string> out = SerializeSafetensors({{"b", Dtype::kU8, {1}, Span(one)},
                                                          {"f64", Dtype::kF64, {1}, Span(eight)},
                                                          {"a", Dtype::kU8, {1}, Span(one)},
                                                          {"u64", Dtype::kU64, {1}, Span(eight)},
                                                          {"i64", Dtype::kI64, {1}, Span(eight)},
                                                          {"f16", Dtype::kF16, {1}, Span(two)},
                                                          {"bf16", Dtype::kBF16, {1}, Span(two)}},
                                                         {{"z", "last"}, {"format", "pt"}});
  ASSERT_TRUE(out.ok()) << out.status();
  // The enum order, descending: U64, I64, F64, BF16, F16, then U8 by name; 435 bytes of
  // JSON padded to 440.
  const std::string header = R"({"__metadata__":{"format":"pt","z":"last"},)"
                             R"("u64":{"dtype":"U64","shape":[1],"data_offsets":[0,8]},)"
                             R"("i64":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                             R"("f64":{"dtype":"F64","shape":[1],"data_offsets":[16,24]},)"
                             R"("bf16":{"dtype":"BF16","shape":[1],"data_offsets":[24,26]},)"
                             R"("f16":{"dtype":"F16","shape":[1],"data_offsets":[26,28]},)"
                             R"("a":{"dtype":"U8","shape":[1],"data_offsets":[28,29]},)"
                             R"("b":{"dtype":"U8","shape":[1],"data_offsets":[29,30]}})";
  ASSERT_EQ(header.size(), 435u);
  EXPECT_EQ(*out,
            FileBytes(440, header + "     ",
                      std::string(24, '\xAB') + std::string(4, '\xCD') + std::string(2, '\xEF')));
}

TEST(SafetensorsWriteTest, EqualsTheFixturesWrittenByTheReferenceLayout) {
  // make_fixtures.py lays files out as the reference writer does, independently of this code.
  const std::vector<uint8_t> scalar = LittleEndian<float>({1.5f});
  absl::StatusOr<std::string> out = SerializeSafetensors(
      {{"scalar", Dtype::kF32, {}, Span(scalar)}, {"empty", Dtype::kF32, {0, 3}, {}}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, ReadFile(DataPath("valid/scalar_and_empty.safetensors")));

  const std::vector<uint8_t> weight = LittleEndian<float>({1, 2, 3, 4});
  const std::vector<uint8_t> bf = LittleEndian<uint16_t>({0x3F80, 0xC000, 0x3F00});
  const std::vector<uint8_t> ids = LittleEndian<int64_t>({-1, int64_t{1} << 40});
  out = SerializeSafetensors({{"weight", Dtype::kF32, {2, 2}, Span(weight)},
                              {"bf", Dtype::kBF16, {3}, Span(bf)},
                              {"ids", Dtype::kI64, {2}, Span(ids)}},
                             {{"format", "pt"}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, ReadFile(DataPath("valid/mixed.safetensors")));
}

TEST(SafetensorsWriteTest, HeaderIsPaddedWithSpacesToEightBytes) {
  const std::vector<uint8_t> byte = {42};
  for (int length = 1; length <= 16; ++length) {
    const std::string name(static_cast<size_t>(length), 'n');
    absl::StatusOr<std::string> out = SerializeSafetensors({{name, Dtype::kU8, {1}, Span(byte)}});
    ASSERT_TRUE(out.ok());
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::FromBytes(*out, "p");
    ASSERT_TRUE(file.ok()) << file.status();
    const uint64_t n = (*file)->header_size();
    EXPECT_EQ(n % 8, 0u) << name;
    const std::string header = out->substr(8, n);
    const size_t close = header.rfind('}');
    EXPECT_LT(n - 1 - close, 8u);
    EXPECT_EQ(header.substr(close + 1), std::string(n - 1 - close, ' '));
  }
}

TEST(SafetensorsWriteTest, RoundTripsEveryDtypeBitExact) {
  // Per dtype: a [2, 3] tensor of varied bytes, a scalar and an empty [3, 0] tensor.
  std::vector<std::vector<uint8_t>> storage;
  std::vector<TensorToWrite> tensors;
  storage.reserve(std::size(kAllDtypes) * 2);
  for (Dtype dtype : kAllDtypes) {
    const std::string name(DtypeName(dtype));
    const size_t size = DtypeSize(dtype);
    std::vector<uint8_t>& matrix = storage.emplace_back(6 * size);
    for (size_t i = 0; i < matrix.size(); ++i) {
      matrix[i] = static_cast<uint8_t>(i * 37 + static_cast<size_t>(dtype) * 11 + 1);
    }
    std::vector<uint8_t>& scalar = storage.emplace_back(size, static_cast<uint8_t>(0xF0 + size));
    tensors.push_back({"matrix." + name, dtype, {2, 3}, Span(matrix)});
    tensors.push_back({"scalar." + name, dtype, {}, Span(scalar)});
    tensors.push_back({"empty." + name, dtype, {3, 0}, {}});
  }
  TempDir dir;
  const std::string path = dir.File("all.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}}).ok());
  absl::StatusOr<std::string> in_memory = SerializeSafetensors(tensors, {{"format", "pt"}});
  ASSERT_TRUE(in_memory.ok());
  EXPECT_EQ(ReadFile(path), *in_memory);

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), tensors.size());
  for (const TensorToWrite& want : tensors) {
    SCOPED_TRACE(want.name);
    const SafetensorsFile::TensorView* got = (*file)->Find(want.name);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->dtype, want.dtype);
    EXPECT_EQ(got->shape, want.shape);
    EXPECT_EQ(Bytes(*got), std::vector<uint8_t>(want.data.begin(), want.data.end()));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got->data) % DtypeSize(got->dtype), 0u);
  }
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  // Only the file: no temporary left behind.
  EXPECT_THAT(dir.List(), ElementsAre("all.safetensors"));
}

TEST(SafetensorsWriteTest, ReplacesAnExistingFileAtomically) {
  TempDir dir;
  const std::string path = dir.File("w.safetensors");
  const std::vector<uint8_t> first = {1}, second = {2, 3};
  ASSERT_TRUE(WriteSafetensors(path, {{"w", Dtype::kU8, {1}, Span(first)}}).ok());
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> old_file = SafetensorsFile::Open(path);
  ASSERT_TRUE(old_file.ok());
  ASSERT_TRUE(WriteSafetensors(path, {{"w", Dtype::kU8, {2}, Span(second)}}).ok());
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> new_file = SafetensorsFile::Open(path);
  ASSERT_TRUE(new_file.ok());
  // The old mapping still reads the old inode; the path now reads the new one.
  EXPECT_EQ(Bytes(*(*old_file)->Find("w")), first);
  EXPECT_EQ(Bytes(*(*new_file)->Find("w")), second);
  EXPECT_THAT(dir.List(), ElementsAre("w.safetensors"));

  const std::string nowhere = dir.File("no/such/dir/w.safetensors");
  const absl::Status status = WriteSafetensors(nowhere, {{"w", Dtype::kU8, {1}, Span(first)}});
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("cannot create " + dir.File("no/such/dir/.w")));
}

TEST(SafetensorsWriteTest, RefusesBadInputByTensor) {
  const std::vector<uint8_t> four(4), three(3);
  struct Case {
    std::vector<TensorToWrite> tensors;
    std::string message;
  } cases[] = {
      {{{"w", Dtype::kF32, {2}, Span(four)}},
       "out.safetensors: tensor 'w': data is 4 bytes, but shape [2] of F32 needs 8"},
      {{{"w", Dtype::kU8, {4}, Span(four)}, {"w", Dtype::kU8, {3}, Span(three)}},
       "out.safetensors: tensor 'w': the name is given twice"},
      {{{"", Dtype::kU8, {4}, Span(four)}}, "out.safetensors: a tensor has an empty name"},
      {{{"__metadata__", Dtype::kU8, {4}, Span(four)}},
       "out.safetensors: tensor '__metadata__': the name is reserved for the metadata map"},
      {{{"w", Dtype::kU8, {2, -2}, Span(four)}},
       "out.safetensors: tensor 'w': shape[1] is negative (-2)"},
      {{{"w\xFF", Dtype::kU8, {4}, Span(four)}},
       "out.safetensors: tensor name 'w\xFF' is not valid UTF-8"},
      {{{"w", static_cast<Dtype>(99), {4}, Span(four)}},
       "out.safetensors: tensor 'w': invalid dtype value 99"},
      {{{"w", Dtype::kU8, {int64_t{1} << 62, 8}, Span(four)}},
       "out.safetensors: tensor 'w': the byte count of shape [4611686018427387904, 8] "
       "overflows 64 bits"},
  };
  TempDir dir;
  const std::string path = dir.File("out.safetensors");
  for (const Case& c : cases) {
    const absl::Status status = WriteSafetensors(path, c.tensors);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(status.message(), dir.path() + "/" + c.message);
    const absl::Status in_memory = SerializeSafetensors(c.tensors).status();
    EXPECT_EQ(in_memory.message(),
              "SerializeSafetensors: " + c.message.substr(std::string("out.safetensors: ").size()));
  }
  EXPECT_TRUE(dir.List().empty());  // nothing written

  const absl::Status bad_metadata =
      SerializeSafetensors({}, {{"format", "p\xC3"}}).status();  // a cut 2-byte sequence
  EXPECT_EQ(bad_metadata.message(),
            "SerializeSafetensors: metadata entry 'format' is not valid UTF-8");
}

TEST(SafetensorsWriteTest, EscapesNamesAsJson) {
  const std::vector<uint8_t> byte = {5};
  const std::string name = "quote\" back\\ tab\t \xC3\xA9";
  absl::StatusOr<std::string> out = SerializeSafetensors({{name, Dtype::kU8, {1}, Span(byte)}});
  ASSERT_TRUE(out.ok());
  EXPECT_THAT(*out, HasSubstr(R"("quote\" back\\ tab\t )"
                              "\xC3\xA9\":"));
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::FromBytes(*out, "e");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_NE((*file)->Find(name), nullptr);
}

}  // namespace
}  // namespace deepsearch
