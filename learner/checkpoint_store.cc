#include "learner/checkpoint_store.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

#include "common/core/files.h"
#include "common/core/status.h"

namespace deepsearch {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr char kLatestFile[] = "LATEST";
constexpr char kStateFile[] = "learner.json";
constexpr int kStateFormat = 1;

std::string CheckpointName(int64_t step) {
  std::string digits = std::to_string(step);
  if (digits.size() < 8) digits.insert(0, 8 - digits.size(), '0');
  return absl::StrCat("step-", digits);
}

Json TrainToJson(const RunState::Train& run) {
  Json t;
  t["job_id"] = run.job_id;
  t["program"] = run.program;
  t["solved"] = std::vector<std::string>(run.solved.begin(), run.solved.end());
  t["trajectories"] = run.trajectories;
  t["generated_tokens"] = run.generated_tokens;
  t["screening_tokens"] = run.screening_tokens;
  t["trained_tokens"] = run.trained_tokens;
  t["last_accuracy"] = run.last_accuracy;
  if (run.collecting.has_value()) {
    Json problems = Json::array();
    for (const TrainProgram::StepProblem& p : run.collecting->problems)
      problems.push_back({{"id", p.problem_id}, {"use_cache", p.use_solution_cache}});
    t["collecting"] = {{"step", run.collecting->step}, {"problems", problems}};
  }
  return t;
}

// Throws Json::exception on a missing or mistyped field.
RunState::Train TrainFromJson(const Json& r) {
  RunState::Train run;
  run.job_id = r.at("job_id").get<std::string>();
  run.program = r.at("program").get<std::string>();
  for (const Json& id : r.at("solved")) run.solved.insert(id.get<std::string>());
  run.trajectories = r.at("trajectories").get<int64_t>();
  run.generated_tokens = r.at("generated_tokens").get<int64_t>();
  run.screening_tokens = r.value("screening_tokens", int64_t{0});
  run.trained_tokens = r.value("trained_tokens", int64_t{0});
  run.last_accuracy = r.at("last_accuracy").get<double>();
  if (r.contains("collecting")) {
    RunState::Train::Collecting c;
    c.step = r.at("collecting").at("step").get<int64_t>();
    for (const Json& p : r.at("collecting").at("problems")) {
      c.problems.push_back(
          TrainProgram::StepProblem{p.at("id").get<std::string>(), p.at("use_cache").get<bool>()});
    }
    run.collecting = std::move(c);
  }
  return run;
}

}  // namespace

std::string EncodeRunState(const RunState& state) {
  Json j;
  j["format"] = kStateFormat;
  j["weight_version"] = state.weight_version;
  j["training_steps"] = state.training_steps;
  if (state.train.has_value()) j["train"] = TrainToJson(*state.train);
  return j.dump(2) + "\n";
}

absl::StatusOr<RunState> DecodeRunState(const std::string& text, const std::string& where) {
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("weight_version")) {
    return absl::DataLossError(absl::StrCat(where, ": not a learner state"));
  }
  try {
    if (j.at("format").get<int>() != kStateFormat)
      return absl::DataLossError(absl::StrCat(where, ": unknown format"));
    RunState state;
    state.weight_version = j.at("weight_version").get<int64_t>();
    state.training_steps = j.value("training_steps", int64_t{0});
    if (j.contains("train")) state.train = TrainFromJson(j.at("train"));
    return state;
  } catch (const Json::exception& e) {
    return absl::DataLossError(absl::StrCat(where, ": ", e.what()));
  }
}

CheckpointStore::CheckpointStore(std::string state_dir, int32_t keep)
    : root_((fs::path(state_dir) / "checkpoints").string()), keep_(std::max(1, keep)) {}

absl::Status CheckpointStore::Init() const {
  std::error_code error;
  fs::create_directories(root_, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create the checkpoint directory ", root_, ": ", error.message()));
  }
  return absl::OkStatus();
}

std::string CheckpointStore::Latest() const {
  const fs::path dir(root_);
  absl::StatusOr<std::string> latest = ReadFileToString((dir / kLatestFile).string());
  if (!latest.ok()) return "";
  std::string name(*latest);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  const fs::path path = dir / name;
  if (name.empty() || !fs::is_directory(path)) return "";
  return path.string();
}

absl::StatusOr<RunState> CheckpointStore::ReadState(const std::string& checkpoint) const {
  const std::string where = (fs::path(checkpoint) / kStateFile).string();
  DS_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(where));
  return DecodeRunState(text, where);
}

std::string CheckpointStore::ModelDir(const std::string& checkpoint) {
  return (fs::path(checkpoint) / "model").string();
}

absl::StatusOr<std::string> CheckpointStore::Write(int64_t step, const RunState& state,
                                                   const ModelWriter& write_model) const {
  const fs::path root(root_);
  const fs::path target = root / CheckpointName(step);
  const fs::path temp = root / absl::StrCat(".", CheckpointName(step), ".tmp");
  std::error_code error;
  fs::remove_all(temp, error);
  fs::create_directories(temp, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create ", temp.string(), ": ", error.message()));
  }
  DS_RETURN_IF_ERROR(write_model((temp / "model").string()));
  DS_RETURN_IF_ERROR(WriteFileAtomically((temp / kStateFile).string(), EncodeRunState(state)));
  DS_RETURN_IF_ERROR(ReplaceDirectory(temp.string(), target.string()));
  DS_RETURN_IF_ERROR(
      WriteFileAtomically((root / kLatestFile).string(), target.filename().string() + "\n"));
  Prune(target.filename().string());
  return target.string();
}

void CheckpointStore::Prune(const std::string& keep_name) const {
  std::error_code error;
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(root_, error)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("step-", 0) == 0) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (size_t i = 0; i + static_cast<size_t>(keep_) < names.size(); ++i) {
    if (names[i] == keep_name) continue;
    fs::remove_all(fs::path(root_) / names[i], error);
  }
}

std::string LatestCheckpoint(const std::string& state_dir) {
  return CheckpointStore(state_dir, 1).Latest();
}

}  // namespace deepsearch
