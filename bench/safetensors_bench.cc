// Loading a checkpoint through the safetensors reader, against memcpy measured in the same run:
//   build/bench/safetensors_bench
// Writes a 256 MiB single-file checkpoint (64 F32 tensors of 4 MiB) to a temporary directory,
// then per iteration:
//   OpenAndTouch: opens it (mmap + header validation), reads every byte of every tensor and
//                 closes it (munmap). GB/s counts the file's bytes; the file was just written,
//                 so it comes from the page cache: the cost is the mapping, the page faults and
//                 the reads, next to memcpy's GB/s ("memcpy_GB/s", "of_memcpy").
//   OpenOnly:     opens and closes it without touching the data: the header's cost.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "absl/strings/str_cat.h"

#include "bench/roofline.h"
#include "common/weights/safetensors.h"

namespace deepsearch::bench {
namespace {

constexpr int kTensors = 64;
constexpr size_t kTensorBytes = size_t{4} << 20;

// The checkpoint, written once for all benchmarks and removed at exit.
struct Checkpoint {
  std::string dir;
  std::string path;
  uint64_t file_bytes = 0;
};

Checkpoint* checkpoint = nullptr;

bool WriteCheckpoint() {
  std::string pattern = (std::filesystem::temp_directory_path() / "safetensors_bench.XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) return false;
  checkpoint = new Checkpoint{pattern, pattern + "/model.safetensors"};
  std::vector<std::vector<uint8_t>> storage(kTensors, std::vector<uint8_t>(kTensorBytes));
  std::vector<TensorToWrite> tensors;
  for (int i = 0; i < kTensors; ++i) {
    for (size_t k = 0; k < kTensorBytes; ++k) storage[i][k] = static_cast<uint8_t>(k * 31 + i);
    tensors.push_back({absl::StrCat("model.layers.", i, ".weight"),
                       Dtype::kF32,
                       {1024, 1024},
                       absl::MakeConstSpan(storage[i])});
  }
  if (!WriteSafetensors(checkpoint->path, tensors, {{"format", "pt"}}).ok()) return false;
  checkpoint->file_bytes = std::filesystem::file_size(checkpoint->path);
  return true;
}

// Reads every byte of `view`, 8 at a time.
uint64_t Touch(const SafetensorsFile::TensorView& view) {
  uint64_t sum = 0;
  size_t i = 0;
  for (; i + 8 <= view.size; i += 8) {
    uint64_t word;
    std::memcpy(&word, view.data + i, 8);
    sum += word;
  }
  for (; i < view.size; ++i) sum += view.data[i];
  return sum;
}

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void BM_OpenAndTouch(benchmark::State& state) {
  const double memcpy_gbps = MeasureMemcpyGBps();
  double seconds = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto file = SafetensorsFile::Open(checkpoint->path);
    if (!file.ok()) {
      state.SkipWithError(std::string(file.status().message()).c_str());
      return;
    }
    uint64_t sum = 0;
    for (const auto& tensor : (*file)->tensors()) sum += Touch(tensor);
    benchmark::DoNotOptimize(sum);
    file->reset();  // munmap is part of a load
    seconds += Seconds(start, std::chrono::steady_clock::now());
  }
  const double gbps = static_cast<double>(checkpoint->file_bytes) *
                      static_cast<double>(state.iterations()) / seconds / 1e9;
  state.counters["GB/s"] = gbps;
  state.counters["memcpy_GB/s"] = memcpy_gbps;
  state.counters["of_memcpy"] = gbps / memcpy_gbps;
}
BENCHMARK(BM_OpenAndTouch)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_OpenOnly(benchmark::State& state) {
  for (auto _ : state) {
    auto file = SafetensorsFile::Open(checkpoint->path);
    if (!file.ok()) {
      state.SkipWithError(std::string(file.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize((*file)->tensors().data());
  }
}
BENCHMARK(BM_OpenOnly)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace deepsearch::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!deepsearch::bench::WriteCheckpoint()) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ignored;
  std::filesystem::remove_all(deepsearch::bench::checkpoint->dir, ignored);
  delete deepsearch::bench::checkpoint;
  return 0;
}
