// Weight sets: the manifest checks of Add and Validate, and the full and delta encodings:
// bit-exact round trips in every weight dtype, the size of a delta, and every refusal of a
// corrupted, truncated or misapplied encoding.
#include "common/weights/weight_set.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/core/hash.h"
#include "common/core/rng.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

uint16_t Bf16Bits(float value) {  // round to nearest even, as torch does (no NaNs here)
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

uint16_t F16Bits(float value) {  // normal range only, truncating: enough for test data
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint32_t sign = (bits >> 16) & 0x8000;
  const int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127 + 15;
  if (exponent <= 0) return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exponent) << 10) |
                               ((bits >> 13) & 0x3FF));
}

// The bytes of `values` stored as `dtype` (kF32, kBF16 or kF16).
std::string Encode(const std::vector<float>& values, Dtype dtype) {
  std::string out;
  for (const float v : values) {
    if (dtype == Dtype::kF32) {
      out.append(reinterpret_cast<const char*>(&v), 4);
    } else {
      const uint16_t h = dtype == Dtype::kBF16 ? Bf16Bits(v) : F16Bits(v);
      out.append(reinterpret_cast<const char*>(&h), 2);
    }
  }
  return out;
}

std::vector<float> Normal(int64_t n, Rng& rng, double scale = 0.02) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(scale * rng.Normal());
  return v;
}

// Each value moved by a relative ~1e-3 with a random sign: a small optimizer step.
std::vector<float> Step(std::vector<float> v, Rng& rng) {
  for (float& x : v) x *= static_cast<float>(1.0 + (rng.Bernoulli(0.5) ? 1e-3 : -1e-3));
  return v;
}

struct Layout {
  std::string name;
  std::vector<int64_t> shape;
};

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

// A matrix, a vector, a scalar, an empty tensor, and one long enough that the codec walks it
// in several pieces.
const std::vector<Layout>& TestLayout() {
  static const auto* layout = new std::vector<Layout>{
      {"model.embed_tokens.weight", {67, 48}},
      {"model.norm.weight", {48}},
      {"scale", {}},
      {"empty", {0, 48}},
      {"long", {300000}},
  };
  return *layout;
}

WeightSet MakeSet(const std::vector<std::vector<float>>& values, Dtype dtype, int64_t version) {
  WeightSet set;
  set.version = version;
  set.model_config_json = R"({"model_type": "qwen2"})";
  for (size_t i = 0; i < TestLayout().size(); ++i) {
    const Layout& l = TestLayout()[i];
    EXPECT_TRUE(set.Add(l.name, dtype, l.shape, Encode(values[i], dtype)).ok());
  }
  return set;
}

std::vector<std::vector<float>> RandomValues(Rng& rng) {
  std::vector<std::vector<float>> values;
  for (const Layout& l : TestLayout()) values.push_back(Normal(Elements(l.shape), rng));
  return values;
}

void ExpectSameSet(const WeightSet& a, const WeightSet& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.model_config_json, b.model_config_json);
  EXPECT_EQ(a.tensors, b.tensors);
  EXPECT_TRUE(a.payload == b.payload) << "payloads differ";
}

TEST(WeightSetTest, AddFillsTheManifest) {
  WeightSet set;
  const std::string a = Encode({1.0f, -2.0f, 3.5f, 0.25f, 8.0f, -0.5f}, Dtype::kF32);
  const std::string b = Encode({1.0f, 2.0f}, Dtype::kBF16);
  ASSERT_TRUE(set.Add("a", Dtype::kF32, {2, 3}, a).ok());
  ASSERT_TRUE(set.Add("b", Dtype::kBF16, {2}, b).ok());
  ASSERT_TRUE(set.Add("s", Dtype::kF16, {}, Encode({1.5f}, Dtype::kF16)).ok());
  ASSERT_EQ(set.tensors.size(), 3u);
  EXPECT_EQ(set.tensors[0].offset, 0u);
  EXPECT_EQ(set.tensors[0].size, 24u);
  EXPECT_EQ(set.tensors[0].checksum, Hash64(a));
  EXPECT_EQ(set.tensors[1].offset, 24u);
  EXPECT_EQ(set.tensors[1].size, 4u);
  EXPECT_EQ(set.tensors[2].offset, 28u);
  EXPECT_EQ(set.tensors[2].size, 2u);
  EXPECT_EQ(set.payload.size(), 30u);
  // bf16 1.0 and 2.0: 0x3F80, 0x4000, little-endian.
  EXPECT_EQ(set.Bytes(set.tensors[1]), std::string("\x80\x3F\x00\x40", 4));
  ASSERT_NE(set.Find("b"), nullptr);
  EXPECT_EQ(set.Find("b")->dtype, Dtype::kBF16);
  EXPECT_EQ(set.Find("c"), nullptr);
  EXPECT_TRUE(set.Validate().ok());
}

TEST(WeightSetTest, AddRefusesBadTensors) {
  WeightSet set;
  ASSERT_TRUE(set.Add("w", Dtype::kF32, {2}, std::string(8, '\0')).ok());
  absl::Status s = set.Add("w", Dtype::kF32, {2}, std::string(8, '\0'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'w': repeated name"));
  s = set.Add("", Dtype::kF32, {2}, std::string(8, '\0'));
  EXPECT_THAT(s.message(), HasSubstr("empty name"));
  s = set.Add("v", Dtype::kBF16, {3, 2}, std::string(8, '\0'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'v': 8 bytes, but BF16 [3, 2] takes 12"));
  s = set.Add("n", Dtype::kF32, {2, -1}, "");
  EXPECT_THAT(s.message(), HasSubstr("tensor 'n': negative dimension in shape [2, -1]"));
  s = set.Add("huge", Dtype::kF32, {int64_t{1} << 40, int64_t{1} << 40}, "");
  EXPECT_THAT(s.message(), HasSubstr("tensor 'huge': shape"));
  EXPECT_THAT(s.message(), HasSubstr("overflows"));
  // Nothing of the refused tensors was kept.
  EXPECT_EQ(set.tensors.size(), 1u);
  EXPECT_EQ(set.payload.size(), 8u);
}

TEST(WeightSetTest, ValidateNamesTheFirstBadTensor) {
  Rng rng(1);
  const WeightSet good = MakeSet(RandomValues(rng), Dtype::kBF16, 1);
  ASSERT_TRUE(good.Validate().ok());

  WeightSet set = good;
  set.tensors[1].offset += 2;
  absl::Status s = set.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'model.norm.weight': offset 6434, expected 6432"));

  set = good;
  set.tensors[0].shape = {67, 47};
  s = set.Validate();
  EXPECT_THAT(s.message(),
              HasSubstr("tensor 'model.embed_tokens.weight': size 6432 bytes, but BF16 [67, 47]"));

  set = good;
  set.tensors[2].name = "model.norm.weight";
  EXPECT_THAT(set.Validate().message(), HasSubstr("tensor 'model.norm.weight': repeated name"));

  set = good;
  set.payload.push_back('x');
  EXPECT_THAT(set.Validate().message(), HasSubstr("cover 606530 bytes of a payload of 606531"));

  set = good;
  set.payload.pop_back();
  EXPECT_THAT(set.Validate().message(), HasSubstr("tensor 'long': bytes [6530, 606530) run past"));

  set = good;
  set.payload[6432 + 5] ^= 0x01;  // inside model.norm.weight
  s = set.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'model.norm.weight': checksum"));
  EXPECT_TRUE(set.Validate(/*verify_checksums=*/false).ok());
}

TEST(WeightSetTest, SameLayoutComparesNamesDtypesAndShapes) {
  Rng rng(2);
  const auto values = RandomValues(rng);
  const WeightSet a = MakeSet(values, Dtype::kBF16, 1);
  EXPECT_TRUE(a.SameLayout(MakeSet(RandomValues(rng), Dtype::kBF16, 2)));
  EXPECT_FALSE(a.SameLayout(MakeSet(values, Dtype::kF16, 1)));
  WeightSet b = a;
  b.tensors[0].shape = {48, 67};
  EXPECT_FALSE(a.SameLayout(b));
  b = a;
  b.tensors.pop_back();
  EXPECT_FALSE(a.SameLayout(b));
}

TEST(WeightSetTest, FullEncodingRoundTrips) {
  Rng rng(3);
  const WeightSet set = MakeSet(RandomValues(rng), Dtype::kF32, 5);
  const EncodedWeights encoded = EncodeFull(set);
  EXPECT_EQ(encoded.version, 5);
  EXPECT_EQ(encoded.encoding, WeightEncoding::kFull);
  EXPECT_EQ(encoded.total_bytes, set.payload.size());
  EXPECT_TRUE(encoded.data == set.payload);
  EXPECT_EQ(encoded.data_checksum, Hash64(set.payload));
  absl::StatusOr<WeightSet> decoded = DecodeWeights(encoded, nullptr);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameSet(*decoded, set);
}

class DeltaTest : public ::testing::TestWithParam<Dtype> {};

TEST_P(DeltaTest, RoundTripIsBitExact) {
  const Dtype dtype = GetParam();
  Rng rng(4);
  const auto old_values = RandomValues(rng);
  std::vector<std::vector<float>> new_values;
  for (const auto& v : old_values) new_values.push_back(Step(v, rng));
  const WeightSet base = MakeSet(old_values, dtype, 10);
  const WeightSet target = MakeSet(new_values, dtype, 11);
  ASSERT_NE(base.payload, target.payload);

  absl::StatusOr<EncodedWeights> delta = EncodeDelta(target, base);
  ASSERT_TRUE(delta.ok()) << delta.status();
  EXPECT_EQ(delta->encoding, WeightEncoding::kDelta);
  EXPECT_EQ(delta->version, 11);
  EXPECT_EQ(delta->base_version, 10);
  EXPECT_EQ(delta->tensors, target.tensors);
  EXPECT_EQ(delta->total_bytes, target.payload.size());
  EXPECT_EQ(delta->data_checksum, Hash64(delta->data));
  // A small step leaves the sign and exponent bytes alone: the delta is well below full size.
  EXPECT_LT(delta->data.size(), target.payload.size() * 3 / 4) << DtypeName(dtype);

  absl::StatusOr<WeightSet> decoded = DecodeWeights(*std::move(delta), &base);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameSet(*decoded, target);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, DeltaTest,
                         ::testing::Values(Dtype::kF32, Dtype::kBF16, Dtype::kF16),
                         [](const auto& info) { return std::string(DtypeName(info.param)); });

TEST(WeightSetTest, DeltaOfMixedDtypesRoundTrips) {
  Rng rng(5);
  auto make = [&](int64_t version) {
    WeightSet set;
    set.version = version;
    EXPECT_TRUE(set.Add("f32", Dtype::kF32, {7}, Encode(Normal(7, rng), Dtype::kF32)).ok());
    EXPECT_TRUE(set.Add("bf16", Dtype::kBF16, {3}, Encode(Normal(3, rng), Dtype::kBF16)).ok());
    EXPECT_TRUE(set.Add("u8", Dtype::kU8, {5}, "abcde").ok());
    EXPECT_TRUE(set.Add("i64", Dtype::kI64, {2}, std::string(16, static_cast<char>(version))).ok());
    return set;
  };
  const WeightSet base = make(1), target = make(2);
  absl::StatusOr<EncodedWeights> delta = EncodeDelta(target, base);
  ASSERT_TRUE(delta.ok()) << delta.status();
  absl::StatusOr<WeightSet> decoded = DecodeWeights(*std::move(delta), &base);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameSet(*decoded, target);
}

// A tensor over the codec's 16 MiB whole-tensor limit goes plane by plane in pieces; the
// small tensor beside it still goes whole.
TEST(WeightSetTest, DeltaOfATensorLargerThanTheScratchRoundTrips) {
  Rng rng(9);
  const size_t n = (size_t{17} << 20) / 4 + 3;
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(i % 1000) * 0.001f;
  WeightSet base;
  base.version = 1;
  ASSERT_TRUE(base.Add("small", Dtype::kBF16, {5}, Encode(Normal(5, rng), Dtype::kBF16)).ok());
  ASSERT_TRUE(
      base.Add("big", Dtype::kF32, {static_cast<int64_t>(n)}, Encode(values, Dtype::kF32)).ok());
  for (size_t i = 0; i < n; i += 4099) values[i] += 1.0f;
  WeightSet target;
  target.version = 2;
  ASSERT_TRUE(target.Add("small", Dtype::kBF16, {5}, Encode(Normal(5, rng), Dtype::kBF16)).ok());
  ASSERT_TRUE(
      target.Add("big", Dtype::kF32, {static_cast<int64_t>(n)}, Encode(values, Dtype::kF32)).ok());
  absl::StatusOr<EncodedWeights> delta = EncodeDelta(target, base);
  ASSERT_TRUE(delta.ok()) << delta.status();
  EXPECT_LT(delta->data.size(), target.payload.size() / 100);
  absl::StatusOr<WeightSet> decoded = DecodeWeights(*std::move(delta), &base);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->payload == target.payload);
}

TEST(WeightSetTest, DeltaOfIdenticalSetsIsTiny) {
  Rng rng(6);
  WeightSet base = MakeSet(RandomValues(rng), Dtype::kBF16, 1);
  WeightSet target = base;
  target.version = 2;
  absl::StatusOr<EncodedWeights> delta = EncodeDelta(target, base);
  ASSERT_TRUE(delta.ok()) << delta.status();
  EXPECT_LT(delta->data.size(), 100u) << "of " << target.payload.size();
  absl::StatusOr<WeightSet> decoded = DecodeWeights(*std::move(delta), &base);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameSet(*decoded, target);
}

TEST(WeightSetTest, DeltaOfEmptySetsRoundTrips) {
  WeightSet base, target;
  base.version = 1;
  target.version = 2;
  absl::StatusOr<EncodedWeights> delta = EncodeDelta(target, base);
  ASSERT_TRUE(delta.ok()) << delta.status();
  absl::StatusOr<WeightSet> decoded = DecodeWeights(*std::move(delta), &base);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->payload.empty());
  EXPECT_EQ(decoded->version, 2);
}

TEST(WeightSetTest, DeltaRefusesDifferentLayouts) {
  Rng rng(7);
  const auto values = RandomValues(rng);
  const WeightSet base = MakeSet(values, Dtype::kBF16, 1);

  absl::StatusOr<EncodedWeights> delta = EncodeDelta(MakeSet(values, Dtype::kF16, 2), base);
  EXPECT_EQ(delta.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(delta.status().message(),
              HasSubstr("tensor 'model.embed_tokens.weight': dtype F16 in the target (version 2) "
                        "but BF16 in the base (version 1)"));

  WeightSet reshaped;
  reshaped.version = 2;
  for (const WeightTensor& t : base.tensors) {
    std::vector<int64_t> shape = t.shape;
    if (t.name == "model.embed_tokens.weight") shape = {48, 67};
    ASSERT_TRUE(reshaped.Add(t.name, t.dtype, shape, base.Bytes(t)).ok());
  }
  delta = EncodeDelta(reshaped, base);
  EXPECT_THAT(delta.status().message(),
              HasSubstr("tensor 'model.embed_tokens.weight': shape [48, 67] in the target"));

  WeightSet longer = base;
  longer.version = 2;
  ASSERT_TRUE(longer.Add("lm_head.weight", Dtype::kBF16, {1}, "ab").ok());
  delta = EncodeDelta(longer, base);
  EXPECT_THAT(delta.status().message(), HasSubstr("tensor 'lm_head.weight' is only in the target"));

  WeightSet renamed = base;
  renamed.tensors[2].name = "bias";
  delta = EncodeDelta(renamed, base);
  EXPECT_THAT(delta.status().message(), HasSubstr("tensor #2 is 'bias' in the target"));
}

// A base and a delta against it, for the refusal tests.
struct DeltaFixture {
  WeightSet base;
  WeightSet target;
  EncodedWeights delta;
};

DeltaFixture MakeDelta() {
  Rng rng(8);
  const auto values = RandomValues(rng);
  std::vector<std::vector<float>> stepped;
  for (const auto& v : values) stepped.push_back(Step(v, rng));
  DeltaFixture f{MakeSet(values, Dtype::kBF16, 3), MakeSet(stepped, Dtype::kBF16, 4), {}};
  absl::StatusOr<EncodedWeights> delta = EncodeDelta(f.target, f.base);
  EXPECT_TRUE(delta.ok()) << delta.status();
  f.delta = *std::move(delta);
  return f;
}

TEST(WeightSetTest, DecodeRefusesAMissingOrWrongBase) {
  const DeltaFixture f = MakeDelta();
  absl::StatusOr<WeightSet> decoded = DecodeWeights(f.delta, nullptr);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr("weight set version 4: delta against version 3, but no base was given"));

  WeightSet other = f.base;
  other.version = 2;
  decoded = DecodeWeights(f.delta, &other);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(decoded.status().message(), HasSubstr("but the base given is version 2"));

  WeightSet reshaped;
  reshaped.version = 3;
  for (const WeightTensor& t : f.base.tensors) {
    ASSERT_TRUE(
        reshaped.Add(t.name, Dtype::kU8, {static_cast<int64_t>(t.size)}, f.base.Bytes(t)).ok());
  }
  decoded = DecodeWeights(f.delta, &reshaped);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr("tensor 'model.embed_tokens.weight': dtype BF16 in the delta but U8"));

  // The right version and layout but other bytes: the tensors' checksums catch it.
  WeightSet altered = f.base;
  altered.payload[6432 + 3] ^= 0x40;
  decoded = DecodeWeights(f.delta, &altered);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr("delta against version 3: tensor 'model.norm.weight': checksum"));

  // The full encoding needs no base, and ignores one.
  decoded = DecodeWeights(EncodeFull(f.target), &other);
  EXPECT_TRUE(decoded.ok()) << decoded.status();
}

TEST(WeightSetTest, DecodeRefusesCorruptedData) {
  const DeltaFixture f = MakeDelta();
  for (const size_t position : {size_t{0}, f.delta.data.size() / 2, f.delta.data.size() - 1}) {
    EncodedWeights bad = f.delta;
    bad.data[position] ^= 0x10;
    absl::StatusOr<WeightSet> decoded = DecodeWeights(bad, &f.base);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << position;
    EXPECT_THAT(decoded.status().message(),
                HasSubstr("weight set version 4: encoded data checksum"));
    // With the checksum made to match, zstd or the tensors' checksums still catch it.
    bad.data_checksum = Hash64(bad.data);
    decoded = DecodeWeights(bad, &f.base);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss)
        << position << ": " << decoded.status();
  }
  EncodedWeights full = EncodeFull(f.target);
  full.data[100] ^= 0x01;
  full.data_checksum = Hash64(full.data);
  absl::StatusOr<WeightSet> decoded = DecodeWeights(full, nullptr);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr("tensor 'model.embed_tokens.weight': checksum"));
}

TEST(WeightSetTest, DecodeRefusesTruncatedOrExtendedData) {
  const DeltaFixture f = MakeDelta();
  for (const size_t keep :
       {size_t{0}, size_t{5}, f.delta.data.size() / 2, f.delta.data.size() - 1}) {
    EncodedWeights bad = f.delta;
    bad.data.resize(keep);
    absl::StatusOr<WeightSet> decoded = DecodeWeights(bad, &f.base);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << keep;
    bad.data_checksum = Hash64(bad.data);
    decoded = DecodeWeights(bad, &f.base);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss)
        << keep << ": " << decoded.status();
  }
  EncodedWeights extended = f.delta;
  extended.data += "garbage";
  extended.data_checksum = Hash64(extended.data);
  absl::StatusOr<WeightSet> decoded = DecodeWeights(extended, &f.base);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(), HasSubstr("does not end with the payload"));

  EncodedWeights full = EncodeFull(f.target);
  full.data.pop_back();
  full.data_checksum = Hash64(full.data);
  decoded = DecodeWeights(full, nullptr);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(), HasSubstr("full payload of 606529 bytes"));
}

TEST(WeightSetTest, DecodeRefusesAMalformedManifest) {
  const DeltaFixture f = MakeDelta();
  EncodedWeights bad = f.delta;
  bad.tensors[3].offset = 0;
  absl::StatusOr<WeightSet> decoded = DecodeWeights(bad, &f.base);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(decoded.status().message(), HasSubstr("version 4: tensor 'empty': offset 0"));

  bad = f.delta;
  bad.total_bytes += 2;
  decoded = DecodeWeights(bad, &f.base);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);

  bad = f.delta;
  bad.encoding = static_cast<WeightEncoding>(7);
  decoded = DecodeWeights(bad, &f.base);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(decoded.status().message(), HasSubstr("unknown encoding 7"));
}

}  // namespace
}  // namespace deepsearch
