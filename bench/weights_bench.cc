// Weight sets on their way from the learner to the actors, against memcpy measured in the
// same run:
//
//   build/bench/weights_bench [--mib 256] [--repeats 3] [--chunk-kib 1024] [--zstd-level 3]
//                             [--step 1e-3]
//
// The set is bf16 in the shapes of a Qwen2.5-0.5B checkpoint (vocabulary 151,936, hidden 896,
// intermediate 4,864, 14 query / 2 KV heads of 64, tied embeddings: 988 MB at 24 layers),
// scaled to --mib by dropping layers and embedding rows; values ~N(0, 0.02), norms ~1. The two
// versions are the bf16 exports of f32 master weights before and after a simulated optimizer
// step that moves every weight by a relative --step with a random sign: the bf16 bits change
// where the step crosses a rounding boundary. Timed, best of --repeats, GB/s of the decoded
// payload:
//   new buffer          chunk appends into a new buffer of the set's size: the page faults
//                       any receiver pays before doing anything else
//   EncodeFull          the payload moved into an EncodedWeights and checksummed
//   stream round trip   WriteWeightChunks of the full encoding into a WeightChunkAssembler
//                       (chunk copies, incremental checksum, reassembly; no network)
//   DecodeWeights full  checksums of the data and of every tensor
//   EncodeDelta         XOR planes + zstd against the previous version
//   DecodeWeights delta zstd + XOR planes + checksums
// each with its ratio to memcpy GB/s, and the delta's size as a fraction of the full set.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/qwen_weight_sets.h"
#include "bench/roofline.h"
#include "common/core/hash.h"
#include "common/rpc/weight_stream.h"
#include "common/weights/weight_set.h"

namespace deepsearch::bench {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best of `repeats` timings of `run(prepare())`; neither preparing the input nor freeing the
// output is timed.
template <typename Prepare, typename Run>
double Best(int repeats, Prepare prepare, Run run) {
  double best = 1e300;
  for (int i = 0; i < repeats; ++i) {
    auto input = prepare();
    const double start = Now();
    [[maybe_unused]] auto output = run(std::move(input));
    best = std::min(best, Now() - start);
  }
  return best;
}

bool Check(const absl::Status& status, const char* what) {
  if (status.ok()) return true;
  std::fprintf(stderr, "%s: %s\n", what, std::string(status.message()).c_str());
  return false;
}

}  // namespace
}  // namespace deepsearch::bench

int main(int argc, char** argv) {
  using namespace deepsearch;
  using namespace deepsearch::bench;
  CLI::App app{"Weight set encodings and the chunk stream against memcpy"};
  int64_t mib = 256, chunk_kib = 1024;
  int repeats = 3, level = 3;
  double step = 1e-3;
  app.add_option("--mib", mib, "Size of the bf16 weight set, MiB (the 0.5B model: 942)")
      ->capture_default_str();
  app.add_option("--repeats", repeats, "Timings per figure (the best is kept)")
      ->capture_default_str();
  app.add_option("--chunk-kib", chunk_kib, "Data chunk size of the stream, KiB")
      ->capture_default_str();
  app.add_option("--zstd-level", level, "zstd level of the delta")->capture_default_str();
  app.add_option("--step", step, "Relative size of the simulated optimizer step")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::vector<QwenShape> shapes = ScaledQwenShapes(static_cast<uint64_t>(mib) << 20);
  const auto [base, target] = MakeQwenWeightSets(shapes, step);
  const double gb = static_cast<double>(base.payload.size()) / 1e9;
  size_t changed = 0;
  for (size_t i = 0; i < base.payload.size(); i += 2)
    changed += std::memcmp(&base.payload[i], &target.payload[i], 2) != 0;
  std::printf("weight set: %zu bf16 tensors, %.1f MB (%.0fM parameters); the step changed %.1f%%\n",
              base.tensors.size(), gb * 1e3, gb * 1e3 / 2,
              100.0 * static_cast<double>(changed) / static_cast<double>(base.payload.size() / 2));
  const double memcpy_gbps = MeasureMemcpyGBps(base.payload.size(), std::max(repeats, 3));
  std::printf("memcpy: %.2f GB/s (%.1f MB)\n\n", memcpy_gbps, gb * 1e3);

  std::printf("| operation | time | GB/s | of memcpy |\n|---|---|---|---|\n");
  auto row = [&](const char* what, double seconds) {
    std::printf("| %s | %.1f ms | %.2f | %.2fx |\n", what, seconds * 1e3, gb / seconds,
                gb / seconds / memcpy_gbps);
    std::fflush(stdout);
  };
  bool ok = true;
  // What any receiver pays before doing anything: a new buffer of the set's size, filled in
  // chunks; the kernel faults in and zeroes every page on first touch.
  const uint64_t chunk_bytes = static_cast<uint64_t>(chunk_kib) << 10;
  row("new buffer filled by chunk appends (first touch)",
      Best(
          repeats, [] { return 0; },
          [&](int) {
            std::string buffer;
            buffer.reserve(target.payload.size());
            for (size_t offset = 0; offset < target.payload.size(); offset += chunk_bytes)
              buffer.append(target.payload, offset, chunk_bytes);
            return buffer;
          }));
  row("EncodeFull", Best(
                        repeats, [&] { return target; },
                        [&](WeightSet set) { return EncodeFull(std::move(set)); }));
  const EncodedWeights full = EncodeFull(target);
  row("stream round trip (WriteWeightChunks -> assembler)",
      Best(
          repeats, [] { return 0; },
          [&](int) {
            rpc::WeightChunkAssembler assembler(full.data.size());
            absl::Status status;
            rpc::WriteWeightChunks(full, chunk_bytes, [&](const v1::WeightChunk& chunk) {
              status = assembler.Add(chunk);
              return status.ok();
            });
            ok = ok && Check(status, "stream") && assembler.complete();
            return assembler.complete() ? assembler.Take() : EncodedWeights();
          }));
  row("DecodeWeights (full)",
      Best(
          repeats, [&] { return full; },
          [&](EncodedWeights e) { return DecodeWeights(std::move(e), nullptr); }));
  absl::StatusOr<EncodedWeights> delta;
  row("EncodeDelta", Best(
                         repeats, [] { return 0; },
                         [&](int) {
                           delta = EncodeDelta(target, base, level);
                           return 0;
                         }));
  if (!Check(delta.status(), "delta")) return 1;
  row("DecodeWeights (delta)",
      Best(
          repeats, [&] { return *delta; },
          [&](EncodedWeights e) { return DecodeWeights(std::move(e), &base); }));
  // The results, checked outside the timings.
  absl::StatusOr<WeightSet> decoded = DecodeWeights(full, nullptr);
  ok = ok && Check(decoded.status(), "decode full") && decoded->payload == target.payload;
  decoded = DecodeWeights(*delta, &base);
  ok = ok && Check(decoded.status(), "decode delta") && decoded->payload == target.payload;
  std::printf(
      "\ndelta: %.1f MB, %.1f%% of the full set (zstd level %d)\n",
      static_cast<double>(delta->data.size()) / 1e6,
      100.0 * static_cast<double>(delta->data.size()) / static_cast<double>(target.payload.size()),
      level);
  if (!ok) std::fprintf(stderr, "a round trip did not reproduce the set\n");
  return ok ? 0 : 1;
}
