// Helpers shared by the safetensors and checkpoint-directory tests.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/types/span.h"

#include "common/weights/safetensors.h"

namespace deepsearch::testing_safetensors {

// A file under tests/data/safetensors/.
inline std::string DataPath(const std::string& relative) {
  const char* root = std::getenv("DEEPSEARCH_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/data/safetensors/" + relative;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

inline void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// The bytes of a tensor view, as a vector, for EXPECT_EQ.
inline std::vector<uint8_t> Bytes(const SafetensorsFile::TensorView& view) {
  return std::vector<uint8_t>(view.data, view.data + view.size);
}

// The little-endian bytes of `values`.
template <typename T>
std::vector<uint8_t> LittleEndian(std::initializer_list<T> values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  std::memcpy(out.data(), values.begin(), out.size());  // the tests run on little-endian hosts
  return out;
}

inline absl::Span<const uint8_t> Span(const std::vector<uint8_t>& bytes) {
  return absl::MakeConstSpan(bytes);
}

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "safetensors_test.XXXXXX");
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // The names of the entries in the directory, sorted.
  std::vector<std::string> List() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

}  // namespace deepsearch::testing_safetensors
