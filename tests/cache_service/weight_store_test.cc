// The weight store: monotonic versions, the newest K kept on disk, full and delta publishes
// decoded bit-exact, corrupted input refused with nothing visible, encodings shared, a
// restart that continues from the kept files, and waiting for a newer version.
#include "cache_service/weight_store.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "tests/cache_service/weight_testing.h"

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class WeightStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/weight_store_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<WeightStore> Open(int keep = 3) {
    auto store = WeightStore::Open({.dir = dir_, .keep_versions = keep});
    EXPECT_TRUE(store.ok()) << store.status();
    return *std::move(store);
  }
  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
};

TEST_F(WeightStoreTest, KeepsTheNewestVersionsInOrder) {
  auto store = Open(/*keep=*/2);
  EXPECT_EQ(store->latest_version(), 0);
  for (int64_t v : {1, 2, 5}) ASSERT_TRUE(store->Publish(EncodeFull(MakeSet(v))).ok());
  EXPECT_EQ(store->latest_version(), 5);
  EXPECT_THAT(store->versions(), ElementsAre(2, 5));
  EXPECT_THAT(Files(),
              ElementsAre("weights-000000000002.safetensors", "weights-000000000005.safetensors"));
  ExpectSameSet(**store->Get(2), MakeSet(2));
  ExpectSameSet(**store->Get(5), MakeSet(5));
  auto gone = store->Get(1);
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(absl::IsNotFound(gone.status()));
  EXPECT_THAT(gone.status().message(), HasSubstr("version 1 is not kept (kept: 2, 5)"));
  EXPECT_EQ(store->stats().published, 3);
  EXPECT_EQ(store->stats().versions_kept, 2);
}

TEST_F(WeightStoreTest, VersionsOnlyIncreaseAndARepublishIsAlreadyExists) {
  auto store = Open(/*keep=*/2);
  for (int64_t v : {1, 2, 4}) ASSERT_TRUE(store->Publish(EncodeFull(MakeSet(v))).ok());
  // A resumed learner republishing what it published: the same weights, or a version older
  // than every kept one.
  absl::Status s = store->Publish(EncodeFull(MakeSet(4)));
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  s = store->Publish(EncodeFull(MakeSet(1)));
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("older than every kept version (oldest 2)"));
  // Other weights under a kept version, or a version between kept ones, are refused.
  WeightSet other = MakeSet(5);
  other.version = 4;
  s = store->Publish(EncodeFull(other));
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("version 4 is stored with other weights (the newest is 4)"));
  s = store->Publish(EncodeFull(MakeSet(3)));
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("not newer than the newest stored version 4"));
  EXPECT_TRUE(absl::IsInvalidArgument(store->Publish(EncodeFull(MakeSet(0)))));
  EXPECT_EQ(store->stats().publish_rejected, 3);
  EXPECT_THAT(store->versions(), ElementsAre(2, 4));
  ExpectSameSet(**store->Get(4), MakeSet(4));
}

TEST_F(WeightStoreTest, ADeltaIsAppliedToItsKeptBaseBitExact) {
  auto store = Open();
  ASSERT_TRUE(store->Publish(EncodeFull(MakeSet(1))).ok());
  absl::StatusOr<EncodedWeights> delta = EncodeDelta(MakeSet(2), MakeSet(1));
  ASSERT_TRUE(delta.ok()) << delta.status();
  ASSERT_TRUE(store->Publish(*std::move(delta)).ok());
  ExpectSameSet(**store->Get(2), MakeSet(2));

  // A delta against a version the store does not hold is refused.
  absl::StatusOr<EncodedWeights> orphan = EncodeDelta(MakeSet(9), MakeSet(8));
  const absl::Status s = store->Publish(*std::move(orphan));
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("delta against version 8"));
  EXPECT_EQ(store->latest_version(), 2);
}

TEST_F(WeightStoreTest, CorruptedInputIsRefusedAndNothingBecomesVisible) {
  auto store = Open();
  EncodedWeights bad = EncodeFull(MakeSet(1));
  bad.data[100] ^= 0x40;  // the data no longer match the checksums
  const absl::Status s = store->Publish(std::move(bad));
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("weight version 1"));
  EXPECT_EQ(store->latest_version(), 0);
  EXPECT_TRUE(Files().empty());
  // The store goes on: the intact version is accepted.
  EXPECT_TRUE(store->Publish(EncodeFull(MakeSet(1))).ok());
}

TEST_F(WeightStoreTest, EncodingsAreMadeOnceAndDecodeToThePublishedSet) {
  auto store = Open();
  for (int64_t v : {1, 2, 3}) ASSERT_TRUE(store->Publish(EncodeFull(MakeSet(v))).ok());
  auto delta = store->Encoded(3, 2);
  ASSERT_TRUE(delta.ok()) << delta.status();
  EXPECT_EQ((*delta)->encoding, WeightEncoding::kDelta);
  EXPECT_EQ((*delta)->base_version, 2);
  EXPECT_LT((*delta)->data.size(), MakeSet(3).payload.size() / 2);
  EXPECT_EQ(store->Encoded(3, 2)->get(), delta->get());  // shared, not made again
  const WeightSet base = MakeSet(2);
  ExpectSameSet(*DecodeWeights(**delta, &base), MakeSet(3));

  auto full = store->Encoded(3, 0);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ((*full)->encoding, WeightEncoding::kFull);
  ExpectSameSet(*DecodeWeights(**full, nullptr), MakeSet(3));
  // A base the store does not keep (or a newer one) gets the shared full copy.
  EXPECT_EQ(store->Encoded(3, 99)->get(), full->get());
  EXPECT_EQ(store->Encoded(3, 17)->get(), full->get());
  EXPECT_EQ(store->stats().encodings_made, 2);
  EXPECT_EQ(store->stats().deltas_made, 1);
  EXPECT_TRUE(absl::IsNotFound(store->Encoded(4, 0).status()));
}

TEST_F(WeightStoreTest, ARestartContinuesFromTheKeptFiles) {
  {
    auto store = Open();
    for (int64_t v : {1, 2}) ASSERT_TRUE(store->Publish(EncodeFull(MakeSet(v))).ok());
  }
  // The temporary file of a publish killed before its rename is removed, never loaded.
  std::ofstream(dir_ + "/.weights-000000000003.safetensors.tmp.123.0") << "partial";
  auto store = Open();
  EXPECT_EQ(store->latest_version(), 2);
  EXPECT_THAT(store->versions(), ElementsAre(1, 2));
  ExpectSameSet(**store->Get(1), MakeSet(1));
  ExpectSameSet(**store->Get(2), MakeSet(2));
  EXPECT_THAT(Files(),
              ElementsAre("weights-000000000001.safetensors", "weights-000000000002.safetensors"));
  EXPECT_TRUE(absl::IsAlreadyExists(store->Publish(EncodeFull(MakeSet(2)))));
  EXPECT_TRUE(absl::IsFailedPrecondition(store->Publish(EncodeFull(MakeSet(1, 64)))));
}

TEST_F(WeightStoreTest, ACorruptedFileIsReportedByName) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Publish(EncodeFull(MakeSet(1))).ok());
  }
  const std::string path = dir_ + "/weights-000000000001.safetensors";
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-10, std::ios::end);
    const char c = static_cast<char>(f.get());
    f.seekp(-10, std::ios::end);
    f.put(static_cast<char>(c ^ 0x10));
  }
  auto store = WeightStore::Open({.dir = dir_});
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr(path));
  EXPECT_THAT(store.status().message(), HasSubstr("checksum"));
}

TEST_F(WeightStoreTest, WaitNewerWakesOnPublishTimeoutAndClose) {
  auto store = Open();
  EXPECT_EQ(store->WaitNewer(0, absl::Now() + absl::Milliseconds(20)), 0);  // timeout
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_TRUE(store->Publish(EncodeFull(MakeSet(1))).ok());
  });
  EXPECT_EQ(store->WaitNewer(0, absl::Now() + absl::Seconds(60)), 1);
  publisher.join();
  std::thread closer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    store->Close();
  });
  const absl::Time start = absl::Now();
  EXPECT_EQ(store->WaitNewer(1, absl::Now() + absl::Seconds(60)), 1);
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  EXPECT_TRUE(store->closed());
  closer.join();
}

}  // namespace
}  // namespace deepsearch
