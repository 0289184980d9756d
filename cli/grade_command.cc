// deepsearch grade [FILE] [--mode strict|equivalent]: grades responses against ground truths
// with the math grader (common/tasks/math_grader.h), one JSON line at a time.
//
// Input, from FILE or stdin ("-" or no FILE): JSON Lines, each an object with the response
// under "response" (or "solution", "output") and the ground truth under "answer" (or
// "ground_truth", "final_answer"; a string or a number, numbers as JSON writes them). The first
// name present is used. Blank lines are skipped.
//
// Output, on stdout, one line per input line, in order: the input object (its fields in their
// order) with "correct", "reward", "pred" (the normalised prediction), "gt" (the normalised
// ground truth) and "reason" (empty when correct) set, replacing input fields of those names.
// A malformed line (not JSON, not an object, no response or answer of the right type) is
// reported on stderr as "line N: why", `{"line": N, "error": "why"}` takes its place on stdout,
// and the remaining lines are still graded. At the end stderr gets
// "graded N: C correct, W wrong, E errors".
//
// Exit code: 0, or 1 when any line was malformed (or the input could not be read); 2 for a
// wrong command line (an unknown mode, a file that does not exist).
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include "cli/commands.h"
#include "common/tasks/math_grader.h"

namespace deepsearch::cli {
namespace {

using Json = nlohmann::ordered_json;

struct GradeArgs {
  std::string file = "-";
  std::string mode = "strict";
};

struct Counts {
  int64_t correct = 0;
  int64_t wrong = 0;
  int64_t errors = 0;
};

// The string under the first of `names` that is present; an error when none is, or when the
// first present one has the wrong type.
absl::StatusOr<std::string> Field(const Json& record, std::initializer_list<const char*> names,
                                  bool numbers_allowed, const char* what) {
  std::string expected;  // "\"a\", \"b\" or \"c\""
  size_t i = 0;
  for (const char* name : names) {
    if (i > 0) expected += i + 1 == names.size() ? " or " : ", ";
    absl::StrAppend(&expected, "\"", name, "\"");
    ++i;
  }
  const std::string types = numbers_allowed ? "a string or a number" : "a string";
  for (const char* name : names) {
    const auto it = record.find(name);
    if (it == record.end()) continue;
    if (it->is_string()) return it->get<std::string>();
    if (numbers_allowed && it->is_number()) return it->dump();
    return absl::InvalidArgumentError(
        absl::StrCat("\"", name, "\" is ", it->type_name(), ", expected ", types));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no ", what, " (expected ", expected, " as ", types, ")"));
}

// Grades one line; the output object, or the reason the line is malformed.
absl::StatusOr<Json> GradeLine(const std::string& line, GradeMode mode) {
  Json record;
  try {
    record = Json::parse(line);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range (1e999)
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", e.what()));
  }
  if (!record.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a JSON object, got ", record.type_name()));
  }
  absl::StatusOr<std::string> response =
      Field(record, {"response", "solution", "output"}, /*numbers_allowed=*/false, "response");
  if (!response.ok()) return response.status();
  absl::StatusOr<std::string> answer = Field(record, {"answer", "ground_truth", "final_answer"},
                                             /*numbers_allowed=*/true, "answer");
  if (!answer.ok()) return answer.status();
  Verdict verdict = GradeMathResponse(*response, *answer, mode);
  record["correct"] = verdict.correct;
  record["reward"] = verdict.reward;
  record["pred"] = std::move(verdict.predicted);
  record["gt"] = std::move(verdict.expected);
  record["reason"] = std::move(verdict.reason);
  return record;
}

int Run(const GradeArgs& args) {
  const GradeMode mode = args.mode == "equivalent" ? GradeMode::kEquivalent : GradeMode::kStrict;
  std::ifstream file;
  if (args.file != "-") {
    file.open(args.file, std::ios::binary);
    if (!file) {
      std::cerr << "cannot open " << args.file << "\n";
      return kExitFailure;
    }
  }
  std::istream& in = args.file == "-" ? std::cin : file;
  Counts counts;
  int64_t number = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    absl::StatusOr<Json> graded = GradeLine(line, mode);
    if (graded.ok()) {
      ((*graded)["correct"].get<bool>() ? counts.correct : counts.wrong) += 1;
      std::cout << graded->dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    } else {
      ++counts.errors;
      const std::string message(graded.status().message());
      std::cerr << "line " << number << ": " << message << "\n";
      std::cout << Json{{"line", number}, {"error", message}}.dump(-1, ' ', false,
                                                                   Json::error_handler_t::replace)
                << "\n";
    }
  }
  std::cout.flush();
  const bool read_error = in.bad();
  if (read_error) std::cerr << "error reading " << (args.file == "-" ? "stdin" : args.file) << "\n";
  std::cerr << "graded " << counts.correct + counts.wrong + counts.errors << ": " << counts.correct
            << " correct, " << counts.wrong << " wrong, " << counts.errors << " errors\n";
  return counts.errors > 0 || read_error ? kExitFailure : kExitOk;
}

}  // namespace

void AddGradeCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<GradeArgs>();
  CLI::App* grade = app.add_subcommand(
      "grade",
      "Grade JSON Lines of {\"response\", \"answer\"} with the math grader: each line comes back "
      "with correct, reward, pred, gt and reason");
  grade
      ->add_option("file", args->file,
                   "JSON Lines to grade; '-' or nothing reads stdin. Responses under "
                   "response/solution/output, ground truths under answer/ground_truth/final_answer")
      ->check(CLI::ExistingFile | CLI::IsMember({"-"}));
  grade
      ->add_option("--mode", args->mode,
                   "strict: DeepSearch's reward (normalised strings equal); equivalent: also "
                   "equal exact values (0.5 = \\frac{1}{2})")
      ->check(CLI::IsMember({"strict", "equivalent"}))
      ->capture_default_str();
  grade->callback([args, &exit_code] { exit_code = Run(*args); });
}

}  // namespace deepsearch::cli
