#include "common/tasks/dataset.h"

#include <fstream>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/tasks/task.h"

namespace deepsearch {
namespace {

using Json = nlohmann::json;

// A JSON scalar as text: strings as they are, numbers and booleans as JSON writes them.
std::optional<std::string> ScalarText(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return std::nullopt;
}

// The first of `names` present in `object`, as text; `found` names the field used.
std::optional<std::string> Field(const Json& object, std::initializer_list<const char*> names,
                                 std::string& found) {
  for (const char* name : names) {
    const auto it = object.find(name);
    if (it == object.end() || it->is_null()) continue;
    found = name;
    return ScalarText(*it);
  }
  return std::nullopt;
}

}  // namespace

std::string ProblemSet::ErrorSummary(size_t max_errors) const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < errors.size() && i < max_errors; ++i) {
    parts.push_back(absl::StrCat("line ", errors[i].line, ": ", errors[i].message));
  }
  std::string summary = absl::StrJoin(parts, "; ");
  if (errors.size() > max_errors)
    absl::StrAppend(&summary, "; and ", errors.size() - max_errors, " more");
  return summary;
}

ProblemSet ReadProblemsJsonl(std::istream& in) {
  ProblemSet set;
  std::set<std::string> ids;
  std::map<std::string, std::string> task_errors;  // by task spec: why it is refused ("": fine)
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    auto error = [&](std::string message) { set.errors.push_back({number, std::move(message)}); };
    const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      error("not valid JSON");
      continue;
    }
    if (!j.is_object()) {
      error("expected a JSON object");
      continue;
    }
    Problem p;
    std::string prompt_field, answer_field, unused;
    const std::optional<std::string> prompt =
        Field(j, {"question", "problem", "prompt"}, prompt_field);
    if (!prompt || prompt->empty()) {
      error(
          "no problem statement (expected \"question\", \"problem\" or \"prompt\" as a non-empty "
          "string)");
      continue;
    }
    const std::optional<std::string> answer = Field(j, {"final_answer", "answer"}, answer_field);
    if (!answer) {
      error("no answer (expected \"final_answer\" or \"answer\" as a string or number)");
      continue;
    }
    p.prompt = *prompt;
    p.answer = *answer;
    if (const auto task = Field(j, {"task"}, unused)) p.task = *task;
    if (auto [known, fresh] = task_errors.try_emplace(p.task); fresh) {
      absl::StatusOr<std::unique_ptr<TaskFamily>> family = MakeTaskFamily(p.task);
      if (!family.ok()) {
        const std::string message(family.status().message());
        known->second = absl::StrContains(message, absl::StrCat("'", p.task, "'"))
                            ? message
                            : absl::StrCat("task '", p.task, "': ", message);
      }
    }
    if (const std::string& bad = task_errors.at(p.task); !bad.empty()) {
      error(bad);
      continue;
    }
    if (const auto id = Field(j, {"id"}, unused); id && !id->empty()) {
      p.id = *id;
    } else {
      p.id = StableProblemId(p.prompt, p.answer);
    }
    if (!ids.insert(p.id).second) {
      error(absl::StrCat("duplicate id '", p.id, "'"));
      continue;
    }
    for (const auto& [key, value] : j.items()) {
      if (key == "id" || key == "task" || key == prompt_field || key == answer_field) continue;
      if (const auto text = ScalarText(value)) p.metadata[key] = *text;
    }
    set.problems.push_back(std::move(p));
  }
  return set;
}

absl::StatusOr<ProblemSet> ReadProblemsJsonlFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  return ReadProblemsJsonl(in);
}

void WriteProblemJsonl(const Problem& problem, std::ostream& out) {
  Json j;
  j["id"] = problem.id;
  j["prompt"] = problem.prompt;
  j["answer"] = problem.answer;
  if (!problem.task.empty()) j["task"] = problem.task;
  for (const auto& [key, value] : problem.metadata) {
    if (!j.contains(key)) j[key] = value;
  }
  out << j.dump() << "\n";
}

absl::Status WriteProblemsJsonlFile(const std::string& path, const std::vector<Problem>& problems) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot open for writing"));
  for (const Problem& p : problems) WriteProblemJsonl(p, out);
  out.flush();
  if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace deepsearch
