#include <algorithm>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"

#include "common/core/logging.h"
#include "common/tasks/families.h"
#include "common/tasks/task.h"

namespace deepsearch {
namespace {

struct Registry {
  absl::Mutex mu;
  std::map<std::string, TaskFactory, std::less<>> factories ABSL_GUARDED_BY(mu);
};

// The registry with the built-in families, made on first use (explicit, so no linker can
// drop a family the way it drops unreferenced static registrars in static libraries).
Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry();
    absl::MutexLock lock(&r->mu);
    for (const auto& [name, factory] : BuiltinTaskFamilies()) r->factories.emplace(name, factory);
    return r;
  }();
  return *registry;
}

}  // namespace

absl::StatusOr<TaskOptions> TaskOptions::Parse(std::string_view spec) {
  TaskOptions options;
  const std::string text(absl::StripAsciiWhitespace(absl::string_view(spec.data(), spec.size())));
  const size_t colon = text.find(':');
  options.name_ = text.substr(0, colon);
  if (options.name_.empty())
    return absl::InvalidArgumentError(absl::StrCat("task spec '", text, "': no task name"));
  if (colon == std::string::npos) return options;
  const std::string rest = text.substr(colon + 1);
  for (absl::string_view part : absl::StrSplit(rest, ',', absl::SkipEmpty())) {
    const size_t eq = part.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("task spec '", text, "': expected key=value, got '", part, "'"));
    }
    const std::string key(absl::StripAsciiWhitespace(part.substr(0, eq)));
    const std::string value(absl::StripAsciiWhitespace(part.substr(eq + 1)));
    if (!options.values_.emplace(key, value).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("task spec '", text, "': key '", key, "' given twice"));
    }
  }
  return options;
}

absl::StatusOr<int64_t> TaskOptions::Int(std::string_view key, int64_t fallback, int64_t min,
                                         int64_t max) {
  known_.emplace_back(key);
  const auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  int64_t value = 0;
  if (!absl::SimpleAtoi(it->second, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat("task ", name_, ": ", std::string(key),
                                                   " must be an integer in [", min, ", ", max,
                                                   "], got '", it->second, "'"));
  }
  return value;
}

absl::StatusOr<bool> TaskOptions::Bool(std::string_view key, bool fallback) {
  known_.emplace_back(key);
  const auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  const std::string v = absl::AsciiStrToLower(it->second);
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  return absl::InvalidArgumentError(absl::StrCat("task ", name_, ": ", std::string(key),
                                                 " must be true or false, got '", it->second, "'"));
}

absl::StatusOr<std::string> TaskOptions::String(std::string_view key, std::string fallback) {
  known_.emplace_back(key);
  const auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  return it->second;
}

absl::Status TaskOptions::Finish() const {
  std::vector<std::string> unknown;
  for (const auto& [key, value] : values_) {
    if (std::find(known_.begin(), known_.end(), key) == known_.end()) unknown.push_back(key);
  }
  if (unknown.empty()) return absl::OkStatus();
  std::vector<std::string> known = known_;
  std::sort(known.begin(), known.end());
  return absl::InvalidArgumentError(
      absl::StrCat("task ", name_, ": unknown option", unknown.size() > 1 ? "s " : " ",
                   absl::StrJoin(unknown, ", "), " (known: ", absl::StrJoin(known, ", "), ")"));
}

void RegisterTaskFamily(std::string name, TaskFactory factory) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  const bool added = r.factories.emplace(name, std::move(factory)).second;
  DS_CHECK(added) << "task family '" << name << "' registered twice";
}

std::vector<std::string> TaskFamilyNames() {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

absl::StatusOr<std::unique_ptr<TaskFamily>> MakeTaskFamily(std::string_view spec) {
  const std::string_view effective = spec.empty() ? std::string_view("math") : spec;
  absl::StatusOr<TaskOptions> options = TaskOptions::Parse(effective);
  if (!options.ok()) return options.status();
  TaskFactory factory;
  {
    Registry& r = GetRegistry();
    absl::MutexLock lock(&r.mu);
    const auto it = r.factories.find(options->name());
    if (it == r.factories.end()) {
      std::vector<std::string> names;
      for (const auto& [name, f] : r.factories) names.push_back(name);
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown task '", options->name(), "' (known: ", absl::StrJoin(names, ", "), ")"));
    }
    factory = it->second;
  }
  absl::StatusOr<std::unique_ptr<TaskFamily>> family = factory(*options);
  if (!family.ok()) return family.status();
  if (absl::Status s = options->Finish(); !s.ok()) return s;
  return family;
}

}  // namespace deepsearch
