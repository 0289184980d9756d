// The weight store: monotonic versions, the newest K kept on disk, full and delta publishes
// decoded bit-exact, corrupted input refused with nothing visible, encodings shared, a
// restart that continues from the kept files, and waiting for a newer version.
#include "cache_service/weight_store.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"

#include "common/core/hash.h"
#include "common/weights/weight_file.h"
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
    // The store's files, and anything left in its import directory as "incoming/<name>".
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      if (e.path().filename() != "incoming") names.push_back(e.path().filename().string());
    }
    // Spares are named ".spare-<pid>.<n>": listed as "incoming/.spare".
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/incoming")) {
      const std::string name = e.path().filename().string();
      names.push_back("incoming/" + (name.starts_with(".spare-") ? ".spare" : name));
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
  // Version 1's file was retired as a spare for the next write to reuse.
  EXPECT_THAT(Files(), ElementsAre("incoming/.spare", "weights-000000000002.safetensors",
                                   "weights-000000000005.safetensors"));
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

TEST_F(WeightStoreTest, ATornNewestFileIsSetAsideAndTheStoreContinuesBeforeIt) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Publish(EncodeFull(MakeSet(1))).ok());
    ASSERT_TRUE(store->Publish(EncodeFull(MakeSet(2))).ok());
  }
  // Version 2 as a machine crash before its fsync could leave it: one byte of data differs.
  const std::string path = dir_ + "/weights-000000000002.safetensors";
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-10, std::ios::end);
    const char c = static_cast<char>(f.get());
    f.seekp(-10, std::ios::end);
    f.put(static_cast<char>(c ^ 0x10));
  }
  auto store = Open();
  EXPECT_EQ(store->latest_version(), 1);
  EXPECT_THAT(store->versions(), ElementsAre(1));
  EXPECT_THAT(Files(), ElementsAre("weights-000000000001.safetensors",
                                   "weights-000000000002.safetensors.corrupt"));
  auto one = store->Get(1);
  ASSERT_TRUE(one.ok()) << one.status();
  ExpectSameSet(**one, MakeSet(1));
  // The version can be published again (the learner republishes what was not acknowledged).
  EXPECT_TRUE(store->Publish(EncodeFull(MakeSet(2))).ok());
  EXPECT_EQ(store->latest_version(), 2);
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
  auto read = ReadWeightFile(path, {.version = 1});
  ASSERT_FALSE(read.ok());
  EXPECT_TRUE(absl::IsDataLoss(read.status())) << read.status();
  EXPECT_THAT(read.status().message(), HasSubstr(path));
  EXPECT_THAT(read.status().message(), HasSubstr("tensor 'model.norm.weight' has checksum"));
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

namespace deepsearch {
namespace {

// A version as the learner's publisher hands it over on the same host: a weight file written
// into the import directory, named by reference.
EncodedWeights WrittenForImport(const WeightStore& store, const WeightSet& set,
                                const std::string& name = "") {
  EncodedWeights e = FileReference(
      set, store.import_dir() + "/" +
               (name.empty() ? absl::StrCat("v", set.version, ".safetensors") : name));
  EXPECT_TRUE(WriteWeightFile(set, e.file_path, /*sync=*/false).ok());
  return e;
}

class WeightImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(absl::StrCat(::testing::TempDir(), "/weight_import_", ::getpid()))
               .lexically_normal()
               .string();
    std::filesystem::remove_all(dir_);
    store_ = *WeightStore::Open({.dir = dir_ + "/store", .keep_versions = 2});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<std::string> Incoming() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(store_->import_dir())) {
      const std::string name = e.path().filename().string();
      names.push_back(name.starts_with(".spare-") ? ".spare" : name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
  std::unique_ptr<WeightStore> store_;
};

TEST_F(WeightImportTest, AFileInTheImportDirectoryIsMovedInAndServedByReference) {
  EXPECT_EQ(store_->import_dir(), dir_ + "/store/incoming");
  ASSERT_TRUE(store_->Publish(WrittenForImport(*store_, MakeSet(1))).ok());
  EXPECT_EQ(store_->latest_version(), 1);
  EXPECT_TRUE(Incoming().empty());  // moved, not copied
  auto got = store_->Get(1);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameSet(**got, MakeSet(1));
  EXPECT_NE((*got)->mapping, nullptr);  // the store views its file
  auto reference = store_->FileReference(1);
  ASSERT_TRUE(reference.ok()) << reference.status();
  EXPECT_EQ((*reference)->encoding, WeightEncoding::kFile);
  EXPECT_EQ((*reference)->file_path, dir_ + "/store/weights-000000000001.safetensors");
  // What a subscriber on this host does with the reference: map the file, check it.
  auto decoded = DecodeWeights(**reference, nullptr);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameSet(*decoded, MakeSet(1));
  // A restart reads the moved file back.
  store_.reset();
  store_ = *WeightStore::Open({.dir = dir_ + "/store", .keep_versions = 2});
  ExpectSameSet(**store_->Get(1), MakeSet(1));
  EXPECT_TRUE(absl::IsNotFound(store_->FileReference(7).status()));
}

TEST_F(WeightImportTest, FilesOutsideTheImportDirectoryAreRefusedAndLeftAlone) {
  const WeightSet set = MakeSet(1);
  EncodedWeights e = WrittenForImport(*store_, set);
  const std::string outside = dir_ + "/elsewhere.safetensors";
  std::filesystem::rename(e.file_path, outside);
  for (const std::string& path : {outside, std::string("relative.safetensors"),
                                  store_->import_dir() + "/../weights-000000000001.safetensors"}) {
    e.file_path = path;
    const absl::Status s = store_->Publish(e);
    EXPECT_FALSE(s.ok()) << path;
    EXPECT_THAT(s.message(), HasSubstr(path));
  }
  EXPECT_TRUE(std::filesystem::exists(outside));
  // A symbolic link in the import directory is not a regular file.
  e.file_path = store_->import_dir() + "/link.safetensors";
  std::filesystem::create_symlink(outside, e.file_path);
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Publish(e)));
  EXPECT_EQ(store_->latest_version(), 0);
  EXPECT_EQ(store_->stats().publish_rejected, 4);
}

TEST_F(WeightImportTest, ACorruptOrMismatchedFileIsRefusedDeletedAndNothingBecomesVisible) {
  {  // One byte of data differs from what the header's manifest says.
    EncodedWeights e = WrittenForImport(*store_, MakeSet(1));
    std::fstream f(e.file_path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
    f.close();
    const absl::Status s = store_->Publish(e);
    EXPECT_TRUE(absl::IsDataLoss(s)) << s;
    EXPECT_THAT(s.message(), HasSubstr("tensor 'model.norm.weight' has checksum"));
  }
  {  // The file holds another version than the header names.
    EncodedWeights e = WrittenForImport(*store_, MakeSet(2));
    e.version = 3;
    const absl::Status s = store_->Publish(e);
    EXPECT_TRUE(absl::IsDataLoss(s)) << s;
    EXPECT_THAT(s.message(), HasSubstr("holds version 2, expected 3"));
  }
  {  // The header's manifest is another set's.
    EncodedWeights e = WrittenForImport(*store_, MakeSet(4));
    e.tensors = MakeSet(5).tensors;
    const absl::Status s = store_->Publish(e);
    EXPECT_TRUE(absl::IsDataLoss(s)) << s;
    EXPECT_THAT(s.message(), HasSubstr("expected 'model.embed_tokens.weight'"));
  }
  EXPECT_EQ(store_->latest_version(), 0);
  EXPECT_TRUE(Incoming().empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/store/weights-000000000003.safetensors"));
}

TEST_F(WeightImportTest, PrunedFilesBecomeSparesUnlessMappedAndWritesReuseThem) {
  for (int64_t v = 1; v <= 2; ++v)
    ASSERT_TRUE(store_->Publish(WrittenForImport(*store_, MakeSet(v))).ok());
  // A reader maps version 1 (as a subscriber on this host does), then version 3 prunes it.
  auto reader = ReadWeightFile(dir_ + "/store/weights-000000000001.safetensors", {.version = 1});
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE(store_->Publish(WrittenForImport(*store_, MakeSet(3))).ok());
  EXPECT_TRUE(Incoming().empty());  // deleted, not retired: the reader's mapping holds it
  ExpectSameSet(*reader, MakeSet(1));
  reader = absl::UnknownError("released");
  // Nobody maps version 2: pruned by version 4, it becomes a spare...
  ASSERT_TRUE(store_->Publish(EncodeFull(MakeSet(4))).ok());
  EXPECT_THAT(Incoming(), ElementsAre(".spare"));
  // ...that the next write overwrites in place (the same inode, its pages reused).
  const std::string spare = SpareWeightFile(store_->import_dir());
  ASSERT_FALSE(spare.empty());
  const auto inode = [](const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_ino;
  };
  const ino_t spare_inode = inode(spare);
  ASSERT_TRUE(store_->Publish(EncodeFull(MakeSet(5))).ok());  // prunes 3 (spare), uses 2's
  EXPECT_EQ(inode(dir_ + "/store/weights-000000000005.safetensors"), spare_inode);
  ExpectSameSet(**store_->Get(5), MakeSet(5));
  store_.reset();
  store_ = *WeightStore::Open({.dir = dir_ + "/store", .keep_versions = 2});
  ExpectSameSet(**store_->Get(5), MakeSet(5));
  ExpectSameSet(**store_->Get(4), MakeSet(4));
}

TEST_F(WeightImportTest, AWriterNeverOverwritesASpareThatIsStillMapped) {
  const std::string dir = store_->import_dir();
  WeightSet one = MakeSet(1);
  ASSERT_TRUE(WriteWeightFile(one, dir + "/a.safetensors", false).ok());
  ASSERT_TRUE(RetireWeightFile(dir + "/a.safetensors", dir, 2).ok());
  const std::string spare = SpareWeightFile(dir);
  ASSERT_FALSE(spare.empty());
  auto reader = ReadWeightFile(spare, {.version = 1});  // maps it: shared lock
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE(WriteWeightFile(MakeSet(2), dir + "/b.safetensors", false, spare).ok());
  ExpectSameSet(*reader, one);  // untouched: b went to a new file
  auto b = ReadWeightFile(dir + "/b.safetensors", {.version = 2});
  ASSERT_TRUE(b.ok()) << b.status();
  ExpectSameSet(*b, MakeSet(2));
  // A file a reader maps is deleted rather than retired.
  ASSERT_TRUE(RetireWeightFile(dir + "/b.safetensors", dir, 2).ok());
  EXPECT_TRUE(SpareWeightFile(dir).empty());
  ExpectSameSet(*b, MakeSet(2));
}

}  // namespace
}  // namespace deepsearch
