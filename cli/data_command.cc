// deepsearch data gen --task SPEC --n N --seed S --out FILE [--solutions]: generate problems
// of a task family as JSON Lines.
// deepsearch data check FILE: re-verify the worked solutions stored in a JSON Lines file.
//
// gen writes one problem per line ({"id", "prompt", "answer", "task"} and, with --solutions,
// "solution": the family's worked solution). Problem i comes from the sub-stream
// Rng(seed).Fork(i), so the same seed gives a byte-identical file and a shorter run's file
// is a prefix of a longer one's. A problem equal to an earlier one (same id) is skipped and
// the next sub-stream is drawn; a task with fewer distinct problems than --n is an error. The
// file is written beside its final name and renamed into place when complete.
//
// check reads every line, verifies each "solution" with the verifier of the line's "task",
// and reports the counts and the first failures with their line numbers; a failed solution or
// a malformed line makes the exit code 1.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "cli/commands.h"
#include "common/core/progress.h"
#include "common/core/rng.h"
#include "common/tasks/dataset.h"
#include "common/tasks/task.h"

namespace deepsearch::cli {
namespace {

struct GenArgs {
  std::string task;
  int64_t n = 0;
  uint64_t seed = 0;
  std::string out;
  bool solutions = false;
};

// Progress lines for runs at least this long.
constexpr int64_t kProgressFrom = 10000;
// Failures listed by `check`.
constexpr size_t kFailuresShown = 10;

int Fail(std::string_view command, std::string_view message) {
  std::cerr << "deepsearch data " << command << ": " << message << "\n";
  return kExitFailure;
}

int RunGen(const GenArgs& args) {
  absl::StatusOr<std::unique_ptr<TaskFamily>> family = MakeTaskFamily(args.task);
  if (!family.ok()) return Fail("gen", std::string(family.status().message()));
  if (!(*family)->generates()) {
    return Fail("gen", absl::StrCat("task ", (*family)->name(), " does not generate problems"));
  }
  const std::string partial = args.out + ".partial";
  std::ofstream out(partial, std::ios::trunc | std::ios::binary);
  if (!out) return Fail("gen", absl::StrCat(args.out, ": cannot open for writing"));
  auto abandon = [&](const std::string& message) {
    out.close();
    std::error_code ignored;
    std::filesystem::remove(partial, ignored);
    return Fail("gen", message);
  };

  std::optional<ProgressReporter> progress;
  if (args.n >= kProgressFrom) {
    ProgressReporter::Options options;
    options.label = "data gen";
    options.total = args.n;
    options.unit = "problem";
    progress.emplace(std::move(options));
  }
  const Rng root(args.seed);
  // Enough draws for any task whose problem space is much larger than n.
  const int64_t max_draws = 20 * args.n + 1000;
  std::set<std::string> ids;
  int64_t written = 0, draws = 0;
  while (written < args.n) {
    if (draws == max_draws) {
      return abandon(absl::StrCat("only ", written, " distinct problems in ", draws, " draws from ",
                                  (*family)->spec(), "; --n ", args.n,
                                  " needs a larger problem space"));
    }
    Rng rng = root.Fork(static_cast<uint64_t>(draws++));
    Problem p = (*family)->Generate(rng);
    if (!ids.insert(p.id).second) continue;
    if (args.solutions) {
      std::optional<std::string> solution = (*family)->Solve(p);
      if (!solution) {
        return abandon(absl::StrCat("problem ", p.id, ": the solver found no solution"));
      }
      p.metadata["solution"] = std::move(*solution);
    }
    WriteProblemJsonl(p, out);
    ++written;
    if (progress) progress->Add(1);
  }
  if (progress) progress->Finish();
  out.close();
  if (!out) return abandon(absl::StrCat(args.out, ": write failed"));
  std::error_code error;
  std::filesystem::rename(partial, args.out, error);
  if (error) return abandon(absl::StrCat(args.out, ": cannot write: ", error.message()));
  std::cout << "wrote " << written << " problems (" << (*family)->spec() << ", seed " << args.seed
            << ") to " << args.out;
  if (draws > written) std::cout << "; skipped " << draws - written << " duplicates";
  std::cout << "\n";
  return kExitOk;
}

int RunCheck(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail("check", absl::StrCat(path, ": cannot open"));
  std::map<std::string, std::unique_ptr<TaskFamily>> families;  // by task spec
  std::set<std::string> ids;
  std::vector<std::string> failures;
  int64_t problems = 0, correct = 0, failed = 0, malformed = 0, unchecked = 0, number = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++number;
    std::istringstream one(line);
    ProblemSet set = ReadProblemsJsonl(one);
    auto report = [&](const std::string& message) {
      failures.push_back(absl::StrCat("line ", number, ": ", message));
    };
    if (!set.errors.empty()) {
      ++malformed;
      report(set.errors[0].message);
      continue;
    }
    if (set.problems.empty()) continue;  // a blank line
    Problem& p = set.problems[0];
    if (!ids.insert(p.id).second) {
      ++malformed;
      report(absl::StrCat("duplicate id '", p.id, "'"));
      continue;
    }
    ++problems;
    const auto solution = p.metadata.find("solution");
    if (solution == p.metadata.end()) {
      ++unchecked;
      continue;
    }
    auto it = families.find(p.task);
    if (it == families.end()) {
      absl::StatusOr<std::unique_ptr<TaskFamily>> family = MakeTaskFamily(p.task);
      if (!family.ok()) {
        ++failed;
        report(std::string(family.status().message()));
        continue;
      }
      it = families.emplace(p.task, std::move(*family)).first;
    }
    const Verdict verdict = it->second->Verify(p, solution->second);
    if (verdict.correct) {
      ++correct;
    } else {
      ++failed;
      report(absl::StrCat("problem ", p.id, ": ", verdict.reason));
    }
  }
  std::cout << path << ": " << problems << " problems; " << correct + failed
            << " solutions checked: " << correct << " correct, " << failed << " failed; "
            << unchecked << " without a solution; " << malformed << " malformed lines\n";
  for (size_t i = 0; i < failures.size() && i < kFailuresShown; ++i) {
    std::cout << "  " << failures[i] << "\n";
  }
  if (failures.size() > kFailuresShown) {
    std::cout << "  and " << failures.size() - kFailuresShown << " more\n";
  }
  return failures.empty() ? kExitOk : kExitFailure;
}

}  // namespace

void AddDataCommand(CLI::App& app, int& exit_code) {
  CLI::App* data =
      app.add_subcommand("data", "Generate problem sets from task families and check them");
  data->require_subcommand(1);

  auto gen = std::make_shared<GenArgs>();
  CLI::App* gen_cmd = data->add_subcommand(
      "gen", "Write N generated problems as JSON Lines (problem i from Rng(seed).Fork(i))");
  gen_cmd
      ->add_option(
          "--task", gen->task,
          "Task spec, e.g. countdown:n=4,max=25 (addition, countdown, modular, path, word)")
      ->required();
  gen_cmd->add_option("--n", gen->n, "How many problems")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->required();
  gen_cmd->add_option("--seed", gen->seed, "Seed")->capture_default_str();
  gen_cmd->add_option("--out", gen->out, "The JSON Lines file to write")->required();
  gen_cmd->add_flag("--solutions", gen->solutions,
                    "Add each problem's worked solution as \"solution\"");
  gen_cmd->callback([gen, &exit_code] { exit_code = RunGen(*gen); });

  auto file = std::make_shared<std::string>();
  CLI::App* check = data->add_subcommand(
      "check", "Verify every \"solution\" in a JSON Lines file with its task's verifier");
  check->add_option("FILE", *file, "A JSON Lines problem file")->required();
  check->callback([file, &exit_code] { exit_code = RunCheck(*file); });
}

}  // namespace deepsearch::cli
