// Weight sets as chunk streams: chunking and reassembly, and every refusal of the assembler.
#include "common/rpc/weight_stream.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "common/core/hash.h"
#include "common/core/rng.h"

namespace deepsearch::rpc {
namespace {

using ::testing::HasSubstr;

std::string RandomBytes(size_t n, Rng& rng) {
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(rng.UniformInt(0, 255));
  return bytes;
}

WeightSet MakeSet(int64_t version, uint64_t seed) {
  Rng rng(seed);
  WeightSet set;
  set.version = version;
  set.model_config_json = R"({"model_type": "qwen2", "hidden_size": 8})";
  EXPECT_TRUE(
      set.Add("model.embed_tokens.weight", Dtype::kBF16, {16, 8}, RandomBytes(256, rng)).ok());
  EXPECT_TRUE(set.Add("model.norm.weight", Dtype::kF32, {8}, RandomBytes(32, rng)).ok());
  EXPECT_TRUE(set.Add("scale", Dtype::kF16, {}, RandomBytes(2, rng)).ok());
  return set;
}

// A delta, so that base_version and the encoding travel too.
EncodedWeights SampleWeights() {
  absl::StatusOr<EncodedWeights> delta = EncodeDelta(MakeSet(8, 1), MakeSet(7, 2));
  EXPECT_TRUE(delta.ok()) << delta.status();
  return *std::move(delta);
}

void ExpectSameWeights(const EncodedWeights& a, const EncodedWeights& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.encoding, b.encoding);
  EXPECT_EQ(a.base_version, b.base_version);
  EXPECT_EQ(a.model_config_json, b.model_config_json);
  EXPECT_EQ(a.tensors, b.tensors);
  EXPECT_EQ(a.total_bytes, b.total_bytes);
  EXPECT_TRUE(a.data == b.data) << "data differs";
  EXPECT_EQ(a.data_checksum, b.data_checksum);
}

std::vector<v1::WeightChunk> Chunks(const EncodedWeights& weights, size_t chunk_bytes) {
  std::vector<v1::WeightChunk> chunks;
  EXPECT_TRUE(WriteWeightChunks(weights, chunk_bytes, [&](const v1::WeightChunk& c) {
    chunks.push_back(c);
    return true;
  }));
  return chunks;
}

v1::WeightChunk DataChunk(std::string data, uint64_t offset) {
  v1::WeightChunk chunk;
  chunk.set_data(std::move(data));
  chunk.set_offset(offset);
  return chunk;
}

v1::WeightChunk TrailerChunk(uint64_t checksum) {
  v1::WeightChunk chunk;
  chunk.mutable_trailer()->set_encoded_checksum(checksum);
  return chunk;
}

TEST(WeightStreamTest, ChunksReassembleExactly) {
  const EncodedWeights weights = SampleWeights();
  ASSERT_GT(weights.data.size(), 100u);
  for (const size_t chunk_bytes : {size_t{1}, size_t{7}, weights.data.size() + 10}) {
    SCOPED_TRACE(chunk_bytes);
    const std::vector<v1::WeightChunk> chunks = Chunks(weights, chunk_bytes);
    const size_t data_chunks = (weights.data.size() + chunk_bytes - 1) / chunk_bytes;
    ASSERT_EQ(chunks.size(), data_chunks + 2);
    EXPECT_TRUE(chunks.front().has_header());
    EXPECT_EQ(chunks.front().header().encoded_bytes(), weights.data.size());
    EXPECT_EQ(chunks.front().header().encoding(), v1::WEIGHT_ENCODING_DELTA);
    EXPECT_EQ(chunks.front().header().tensors(0).dtype(), v1::TENSOR_DTYPE_BF16);
    EXPECT_TRUE(chunks.back().has_trailer());
    EXPECT_EQ(chunks.back().trailer().encoded_checksum(), Hash64(weights.data));
    uint64_t offset = 0;
    for (size_t i = 1; i + 1 < chunks.size(); ++i) {
      ASSERT_EQ(chunks[i].part_case(), v1::WeightChunk::kData);
      EXPECT_EQ(chunks[i].offset(), offset);
      EXPECT_LE(chunks[i].data().size(), chunk_bytes);
      offset += chunks[i].data().size();
    }
    EXPECT_EQ(offset, weights.data.size());

    WeightChunkAssembler assembler(1 << 20);
    for (size_t i = 0; i < chunks.size(); ++i) {
      EXPECT_FALSE(assembler.complete());
      ASSERT_TRUE(assembler.Add(chunks[i]).ok()) << i;
      EXPECT_EQ(assembler.in_progress(), i + 1 < chunks.size());
    }
    ASSERT_TRUE(assembler.complete());
    const EncodedWeights received = assembler.Take();
    ExpectSameWeights(received, weights);
    EXPECT_FALSE(assembler.complete());
    EXPECT_FALSE(assembler.in_progress());

    // And it decodes against its base.
    const WeightSet base = MakeSet(7, 2);
    absl::StatusOr<WeightSet> decoded = DecodeWeights(received, &base);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->payload, MakeSet(8, 1).payload);
  }
}

TEST(WeightStreamTest, EmptyPayloadIsHeaderAndTrailer) {
  WeightSet empty;
  empty.version = 3;
  const EncodedWeights weights = EncodeFull(empty);
  const std::vector<v1::WeightChunk> chunks = Chunks(weights, 16);
  ASSERT_EQ(chunks.size(), 2u);
  WeightChunkAssembler assembler(0);
  ASSERT_TRUE(assembler.Add(chunks[0]).ok());
  ASSERT_TRUE(assembler.Add(chunks[1]).ok());
  ASSERT_TRUE(assembler.complete());
  ExpectSameWeights(assembler.Take(), weights);
}

TEST(WeightStreamTest, WritingStopsAtABrokenStream) {
  const EncodedWeights weights = SampleWeights();
  int calls = 0;
  EXPECT_FALSE(WriteWeightChunks(weights, 7, [&](const v1::WeightChunk&) { return ++calls < 3; }));
  EXPECT_EQ(calls, 3);
}

TEST(WeightStreamTest, DtypesMapToTheWireAndBack) {
  for (const Dtype dtype : {Dtype::kF32, Dtype::kBF16, Dtype::kF16}) {
    absl::StatusOr<v1::TensorDtype> wire = ToWireDtype(dtype);
    ASSERT_TRUE(wire.ok());
    EXPECT_EQ(FromWireDtype(*wire).value_or(Dtype::kU8), dtype);
  }
  EXPECT_EQ(*ToWireDtype(Dtype::kBF16), v1::TENSOR_DTYPE_BF16);
  absl::StatusOr<v1::TensorDtype> refused = ToWireDtype(Dtype::kI64);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("dtype I64 cannot be sent"));
  EXPECT_THAT(FromWireDtype(v1::TENSOR_DTYPE_UNSPECIFIED).status().message(),
              HasSubstr("unknown tensor dtype 0"));
  EXPECT_FALSE(FromWireDtype(static_cast<v1::TensorDtype>(9)).ok());
}

// Feeds `chunks` and returns the first error (OK if none).
absl::Status Feed(WeightChunkAssembler& assembler, const std::vector<v1::WeightChunk>& chunks) {
  for (const v1::WeightChunk& chunk : chunks) {
    if (absl::Status s = assembler.Add(chunk); !s.ok()) return s;
  }
  return absl::OkStatus();
}

class AssemblerRefusalTest : public ::testing::Test {
 protected:
  const EncodedWeights weights_ = SampleWeights();
  const std::vector<v1::WeightChunk> chunks_ = Chunks(weights_, 64);  // header, data..., trailer
  const v1::WeightChunk& header() const { return chunks_.front(); }
  WeightChunkAssembler assembler_{1 << 20};

  void ExpectRefused(const std::vector<v1::WeightChunk>& chunks, absl::StatusCode code,
                     const std::string& message) {
    const absl::Status s = Feed(assembler_, chunks);
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_THAT(s.message(), HasSubstr(message));
    EXPECT_FALSE(assembler_.complete());
    EXPECT_FALSE(assembler_.in_progress());
    // Refused until Reset, then a whole stream goes through.
    EXPECT_THAT(assembler_.Add(header()).message(), HasSubstr("Reset() it first"));
    assembler_.Reset();
    ASSERT_TRUE(Feed(assembler_, chunks_).ok());
    ASSERT_TRUE(assembler_.complete());
    ExpectSameWeights(assembler_.Take(), weights_);
  }
};

TEST_F(AssemblerRefusalTest, DataBeforeHeader) {
  ExpectRefused({chunks_[1]}, absl::StatusCode::kInvalidArgument,
                "weight stream: a data chunk before the header");
}

TEST_F(AssemblerRefusalTest, TrailerBeforeHeader) {
  ExpectRefused({chunks_.back()}, absl::StatusCode::kInvalidArgument,
                "a trailer before the header");
}

TEST_F(AssemblerRefusalTest, SecondHeader) {
  v1::WeightChunk second = header();
  second.mutable_header()->set_version(9);
  ExpectRefused({header(), chunks_[1], second}, absl::StatusCode::kInvalidArgument,
                "a second header (version 9) while version 8 is in progress");
}

TEST_F(AssemblerRefusalTest, OutOfOrderOffset) {
  ExpectRefused({header(), chunks_[2]}, absl::StatusCode::kInvalidArgument,
                "version 8: a data chunk at offset 64, expected 0");
}

TEST_F(AssemblerRefusalTest, RepeatedChunk) {
  ExpectRefused({header(), chunks_[1], chunks_[1]}, absl::StatusCode::kInvalidArgument,
                "a data chunk at offset 0, expected 64");
}

TEST_F(AssemblerRefusalTest, MoreDataThanAnnounced) {
  std::vector<v1::WeightChunk> chunks(chunks_.begin(), chunks_.end() - 1);
  chunks.push_back(DataChunk("x", weights_.data.size()));
  ExpectRefused(chunks, absl::StatusCode::kInvalidArgument,
                absl::StrCat(weights_.data.size() + 1, " bytes of data, more than the ",
                             weights_.data.size(), " the header announced"));
}

TEST_F(AssemblerRefusalTest, OverMaxBytes) {
  const uint64_t size = weights_.data.size();
  WeightChunkAssembler small(size - 1);
  const absl::Status s = Feed(small, chunks_);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("version 8 has ", size,
                                     " encoded bytes, more than the limit of ", size - 1)));
  EXPECT_FALSE(small.in_progress());
  // The limit is inclusive.
  WeightChunkAssembler exact(size);
  ASSERT_TRUE(Feed(exact, chunks_).ok());
  EXPECT_TRUE(exact.complete());
}

TEST_F(AssemblerRefusalTest, TrailerBeforeAllData) {
  ExpectRefused(
      {header(), chunks_[1], chunks_.back()}, absl::StatusCode::kInvalidArgument,
      absl::StrCat("version 8: the trailer after 64 of ", weights_.data.size(), " bytes"));
}

TEST_F(AssemblerRefusalTest, BadTrailerChecksum) {
  std::vector<v1::WeightChunk> chunks(chunks_.begin(), chunks_.end() - 1);
  chunks.push_back(TrailerChunk(weights_.data_checksum ^ 1));
  ExpectRefused(chunks, absl::StatusCode::kDataLoss,
                "version 8: the trailer's checksum " + HashHex64(weights_.data_checksum ^ 1) +
                    " does not match the received bytes' " + HashHex64(weights_.data_checksum));
}

TEST_F(AssemblerRefusalTest, CorruptedData) {
  std::vector<v1::WeightChunk> chunks = chunks_;
  (*chunks[1].mutable_data())[3] ^= 0x20;
  ExpectRefused(chunks, absl::StatusCode::kDataLoss, "does not match the received bytes");
}

TEST_F(AssemblerRefusalTest, UnknownDtype) {
  v1::WeightChunk bad = header();
  bad.mutable_header()->mutable_tensors(1)->set_dtype(v1::TENSOR_DTYPE_UNSPECIFIED);
  ExpectRefused({bad}, absl::StatusCode::kInvalidArgument,
                "version 8: tensor 'model.norm.weight': unknown tensor dtype 0");
}

TEST_F(AssemblerRefusalTest, UnsendableDtypeIsRefusedByTheReceiver) {
  EncodedWeights weights = weights_;
  weights.tensors[2].dtype = Dtype::kI16;
  ExpectRefused({WeightHeaderChunk(weights)}, absl::StatusCode::kInvalidArgument,
                "tensor 'scale': unknown tensor dtype 0");
}

TEST_F(AssemblerRefusalTest, UnknownEncoding) {
  v1::WeightChunk bad = header();
  bad.mutable_header()->set_encoding(v1::WEIGHT_ENCODING_UNSPECIFIED);
  ExpectRefused({bad}, absl::StatusCode::kInvalidArgument, "version 8: unknown weight encoding 0");
}

TEST_F(AssemblerRefusalTest, EmptyChunk) {
  ExpectRefused({header(), v1::WeightChunk()}, absl::StatusCode::kInvalidArgument,
                "version 8: an empty chunk");
}

TEST(WeightStreamTest, ChunkAfterTrailerWaitsForTake) {
  const EncodedWeights weights = SampleWeights();
  const std::vector<v1::WeightChunk> chunks = Chunks(weights, 1000);
  WeightChunkAssembler assembler(1 << 20);
  ASSERT_TRUE(Feed(assembler, chunks).ok());
  const absl::Status s = assembler.Add(chunks.front());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("a chunk after the trailer of version 8; Take() it first"));
  ASSERT_TRUE(assembler.complete());
  ExpectSameWeights(assembler.Take(), weights);
  // The next version streams into the same assembler.
  ASSERT_TRUE(Feed(assembler, chunks).ok());
  EXPECT_TRUE(assembler.complete());
}

// A FILE-encoded version: header, one file chunk, trailer; no data bytes.
EncodedWeights FileReference() {
  EncodedWeights w = SampleWeights();
  w.encoding = WeightEncoding::kFile;
  w.data.clear();
  w.data_checksum = Hash64(std::string_view());
  w.file_path = "/store/weights-000000000008.safetensors";
  return w;
}

TEST(WeightStreamTest, AFileReferenceTravelsAsHeaderFileAndTrailer) {
  const EncodedWeights reference = FileReference();
  const std::vector<v1::WeightChunk> chunks = Chunks(reference, 64);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].header().encoding(), v1::WEIGHT_ENCODING_FILE);
  EXPECT_EQ(chunks[0].header().encoded_bytes(), 0u);
  EXPECT_EQ(chunks[1].file().path(), reference.file_path);
  WeightChunkAssembler assembler(1 << 20);
  ASSERT_TRUE(Feed(assembler, chunks).ok());
  ASSERT_TRUE(assembler.complete());
  const EncodedWeights received = assembler.Take();
  EXPECT_EQ(received.encoding, WeightEncoding::kFile);
  EXPECT_EQ(received.file_path, reference.file_path);
  EXPECT_EQ(received.tensors, reference.tensors);
  EXPECT_TRUE(received.data.empty());
}

TEST(WeightStreamTest, MalformedFileReferencesAreRefused) {
  const std::vector<v1::WeightChunk> file = Chunks(FileReference(), 64);
  const std::vector<v1::WeightChunk> full = Chunks(SampleWeights(), 64);
  v1::WeightChunk announced = file[0];
  announced.mutable_header()->set_encoded_bytes(10);
  v1::WeightChunk no_path = file[1];
  no_path.mutable_file()->clear_path();
  const struct {
    std::vector<v1::WeightChunk> chunks;
    std::string message;
  } cases[] = {
      {{file[1]}, "a file chunk before the header"},
      {{full[0], file[1]}, "a file chunk in a stream that is not FILE-encoded"},
      {{announced}, "FILE-encoded, yet 10 encoded bytes announced"},
      {{file[0], file[1], file[1]}, "a second file chunk"},
      {{file[0], no_path}, "a file chunk without a path"},
      {{file[0], file[2]}, "the trailer of a FILE-encoded stream before its file chunk"},
      {{file[0], full[1]}, "bytes of data, more than the 0 the header announced"},
  };
  for (const auto& c : cases) {
    WeightChunkAssembler assembler(1 << 20);
    const absl::Status s = Feed(assembler, c.chunks);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
    EXPECT_FALSE(assembler.complete());
  }
}

}  // namespace
}  // namespace deepsearch::rpc
