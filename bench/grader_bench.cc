// The math grader's throughput on the golden set, next to memcpy measured in the same run:
//   build/bench/grader_bench [--golden=FILE]
// Loads tests/data/grader/strict_golden.jsonl (1,617 responses and ground truths: short boxed
// answers, 300-code-point window corners, long responses of up to 20k characters, random
// adversarial strings) and, per iteration, grades every record once:
//   Strict:     GradeMode::kStrict, DeepSearch's reward.
//   Equivalent: GradeMode::kEquivalent (the strict comparison, then the value comparison
//               wherever the strings differ).
// "grades/s" counts records graded per second; "bytes/s" the response and ground-truth bytes.
// String code has no natural roofline; memcpy GB/s ("memcpy_GB/s") is only context for how
// fast the machine moves bytes during the run.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "bench/roofline.h"
#include "common/tasks/math_grader.h"

namespace deepsearch::bench {
namespace {

struct Record {
  std::string response;
  std::string answer;
};

std::vector<Record>* records = nullptr;
int64_t record_bytes = 0;
double memcpy_gbps = 0;

bool LoadGolden(const std::string& path) {
  std::ifstream in(path);
  if (!in) return false;
  records = new std::vector<Record>();
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    records->push_back({j.at("response").get<std::string>(), j.at("answer").get<std::string>()});
    record_bytes +=
        static_cast<int64_t>(records->back().response.size() + records->back().answer.size());
  }
  return !records->empty();
}

void GradeAll(benchmark::State& state, GradeMode mode) {
  int64_t correct = 0;
  for (auto _ : state) {
    for (const Record& r : *records) {
      const Verdict v = GradeMathResponse(r.response, r.answer, mode);
      correct += v.correct;
      benchmark::DoNotOptimize(v);
    }
  }
  const int64_t graded = state.iterations() * static_cast<int64_t>(records->size());
  state.SetItemsProcessed(graded);
  state.SetBytesProcessed(state.iterations() * record_bytes);
  state.counters["grades/s"] =
      benchmark::Counter(static_cast<double>(graded), benchmark::Counter::kIsRate);
  state.counters["records"] = static_cast<double>(records->size());
  state.counters["correct"] = static_cast<double>(correct / state.iterations());
  state.counters["memcpy_GB/s"] = memcpy_gbps;
}

void BM_GradeStrict(benchmark::State& state) { GradeAll(state, GradeMode::kStrict); }
void BM_GradeEquivalent(benchmark::State& state) { GradeAll(state, GradeMode::kEquivalent); }

BENCHMARK(BM_GradeStrict)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GradeEquivalent)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace deepsearch::bench

int main(int argc, char** argv) {
  std::string golden = "tests/data/grader/strict_golden.jsonl";
  if (const char* root = std::getenv("DEEPSEARCH_SOURCE_DIR")) {
    golden = std::string(root) + "/" + golden;
  }
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--golden=", 0) == 0) {
      golden = arg.substr(9);
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 2;
  if (!deepsearch::bench::LoadGolden(golden)) {
    std::cerr << "cannot read " << golden
              << " (run from the repository root or pass --golden=FILE)\n";
    return 1;
  }
  deepsearch::bench::memcpy_gbps = deepsearch::bench::MeasureMemcpyGBps();
  std::cerr << "memcpy " << deepsearch::bench::memcpy_gbps << " GB/s; "
            << deepsearch::bench::records->size() << " records, " << deepsearch::bench::record_bytes
            << " bytes\n";
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
