#include "learner/job_store.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "common/core/config.h"
#include "common/core/files.h"
#include "common/core/status.h"
#include "common/tasks/dataset.h"

namespace deepsearch {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr char kJobFile[] = "job.json";
constexpr char kProblemsFile[] = "problems.jsonl";

const char* KindName(JobKind kind) { return kind == JobKind::kTrain ? "train" : "solve"; }

std::optional<JobState> ParseState(std::string_view name) {
  for (JobState s : {JobState::kPending, JobState::kRunning, JobState::kSucceeded,
                     JobState::kFailed, JobState::kCancelled}) {
    if (JobStateName(s) == name) return s;
  }
  return std::nullopt;
}

Json SummaryToJson(const SolveSummary& s) {
  Json pass = Json::object();
  for (const auto& [k, v] : s.pass_at_k) pass[std::to_string(k)] = v;
  return {{"answer", s.answer},
          {"selection", s.selection},
          {"correct", s.correct},
          {"samples", s.samples},
          {"correct_samples", s.correct_samples},
          {"pass_at_k", pass}};
}

SolveSummary SummaryFromJson(const Json& j) {
  SolveSummary s;
  s.answer = j.at("answer").get<std::string>();
  s.selection = j.at("selection").get<std::string>();
  s.correct = j.at("correct").get<bool>();
  s.samples = j.at("samples").get<int32_t>();
  s.correct_samples = j.at("correct_samples").get<int32_t>();
  for (const auto& [k, v] : j.at("pass_at_k").items()) s.pass_at_k[std::stoi(k)] = v.get<double>();
  return s;
}

Json JobToJson(const Job& job) {
  Json j;
  j["id"] = job.id;
  j["kind"] = KindName(job.kind);
  j["state"] = std::string(JobStateName(job.state));
  j["name"] = job.name;
  j["client_request_id"] = job.client_request_id;
  j["create_time_ns"] = absl::ToUnixNanos(job.create_time);
  j["update_time_ns"] = absl::ToUnixNanos(job.update_time);
  Json o;
  o["algorithm"] = job.options.algorithm ? std::string(AlgorithmName(*job.options.algorithm)) : "";
  // Search parameters and sampling are stored as the config text of their sections, so
  // every field round-trips through the same binder that reads config files.
  if (job.options.search) o["search"] = DocumentConfig(*job.options.search);
  if (job.options.sampling) o["sampling"] = DocumentConfig(*job.options.sampling);
  o["samples_per_problem"] = job.options.samples_per_problem;
  o["max_steps"] = job.options.max_steps;
  o["solve_mode"] = SolveModeName(job.options.solve_mode);
  j["options"] = o;
  const JobProgress& p = job.progress;
  j["progress"] = {{"problems_total", p.problems_total},
                   {"problems_done", p.problems_done},
                   {"problems_solved", p.problems_solved},
                   {"trajectories", p.trajectories},
                   {"generated_tokens", p.generated_tokens},
                   {"screening_tokens", p.screening_tokens},
                   {"trained_tokens", p.trained_tokens},
                   {"training_steps", p.training_steps},
                   {"weight_version", p.weight_version},
                   {"accuracy", p.accuracy},
                   {"phase", p.phase}};
  j["error"] = job.error;
  Json results = Json::array();
  for (const ProblemResult& r : job.results) {
    results.push_back({{"problem_id", r.problem_id}, {"summary", SummaryToJson(r.summary)}});
  }
  j["results"] = results;
  j["version"] = job.version;
  return j;
}

absl::StatusOr<Job> JobFromJson(const Json& j) {
  try {
    Job job;
    job.id = j.at("id").get<std::string>();
    job.kind = j.at("kind").get<std::string>() == "train" ? JobKind::kTrain : JobKind::kSolve;
    const std::optional<JobState> state = ParseState(j.at("state").get<std::string>());
    if (!state) return absl::DataLossError(absl::StrCat("unknown state ", j.at("state").dump()));
    job.state = *state;
    job.name = j.at("name").get<std::string>();
    job.client_request_id = j.at("client_request_id").get<std::string>();
    job.create_time = absl::FromUnixNanos(j.at("create_time_ns").get<int64_t>());
    job.update_time = absl::FromUnixNanos(j.at("update_time_ns").get<int64_t>());
    const Json& o = j.at("options");
    if (const std::string name = o.at("algorithm").get<std::string>(); !name.empty()) {
      job.options.algorithm = ParseAlgorithm(name);
      if (!job.options.algorithm.has_value())
        return absl::DataLossError(absl::StrCat("unknown algorithm '", name, "'"));
    }
    if (o.contains("search")) {
      DS_ASSIGN_OR_RETURN(
          job.options.search,
          ParseConfigText<SearchParams>(o.at("search").get<std::string>(), "options.search", {}));
    }
    if (o.contains("sampling")) {
      DS_ASSIGN_OR_RETURN(job.options.sampling,
                          ParseConfigText<SamplingConfig>(o.at("sampling").get<std::string>(),
                                                          "options.sampling", {}));
    }
    job.options.samples_per_problem = o.at("samples_per_problem").get<int32_t>();
    job.options.max_steps = o.at("max_steps").get<int32_t>();
    // Jobs stored before solve_mode existed searched.
    job.options.solve_mode = ParseSolveMode(o.value("solve_mode", std::string("search")))
                                 .value_or(JobOptions::SolveMode::kSearch);
    const Json& p = j.at("progress");
    job.progress.problems_total = p.at("problems_total").get<int32_t>();
    job.progress.problems_done = p.at("problems_done").get<int32_t>();
    job.progress.problems_solved = p.at("problems_solved").get<int32_t>();
    job.progress.trajectories = p.at("trajectories").get<int64_t>();
    job.progress.generated_tokens = p.at("generated_tokens").get<int64_t>();
    job.progress.screening_tokens = p.value("screening_tokens", int64_t{0});
    job.progress.trained_tokens = p.value("trained_tokens", int64_t{0});
    job.progress.training_steps = p.at("training_steps").get<int64_t>();
    job.progress.weight_version = p.at("weight_version").get<int64_t>();
    job.progress.accuracy = p.at("accuracy").get<double>();
    job.progress.phase = p.at("phase").get<std::string>();
    job.error = j.at("error").get<std::string>();
    for (const Json& r : j.at("results")) {
      job.results.push_back(
          ProblemResult{r.at("problem_id").get<std::string>(), SummaryFromJson(r.at("summary"))});
    }
    job.version = j.at("version").get<int64_t>();
    return job;
  } catch (const Json::exception& e) {
    return absl::DataLossError(e.what());
  }
}

}  // namespace

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kPending:
      return "pending";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::string_view SolveModeName(JobOptions::SolveMode mode) {
  return mode == JobOptions::SolveMode::kRollout ? "rollout" : "search";
}

std::optional<JobOptions::SolveMode> ParseSolveMode(std::string_view name) {
  if (name == "search") return JobOptions::SolveMode::kSearch;
  if (name == "rollout") return JobOptions::SolveMode::kRollout;
  return std::nullopt;
}

bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create job directory ", dir, ": ", ec.message()));
  std::unique_ptr<JobStore> store(new JobStore(dir));
  absl::MutexLock lock(&store->mu_);
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory()) continue;
    const std::string path = (entry.path() / kJobFile).string();
    absl::StatusOr<std::string> text = ReadFileToString(path);
    if (!text.ok()) {
      store->load_errors_.push_back(absl::StrCat(path, ": ", text.status().message()));
      continue;
    }
    Json j = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
    absl::StatusOr<Job> job =
        j.is_discarded() ? absl::StatusOr<Job>(absl::DataLossError("not JSON")) : JobFromJson(j);
    if (!job.ok()) {
      store->load_errors_.push_back(absl::StrCat(path, ": ", job.status().message()));
      continue;
    }
    int64_t n = 0;
    if (job->id.size() > 4 && absl::SimpleAtoi(job->id.substr(4), &n))
      store->next_id_ = std::max(store->next_id_, n + 1);
    if (!job->client_request_id.empty()) store->by_request_[job->client_request_id] = job->id;
    store->jobs_[job->id] = *std::move(job);
  }
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  return store;
}

absl::Status JobStore::PersistLocked(const Job& job) const {
  return WriteFileAtomically((fs::path(dir_) / job.id / kJobFile).string(), JobToJson(job).dump(1));
}

absl::StatusOr<Job> JobStore::Submit(JobKind kind, std::string name, std::vector<Problem> problems,
                                     JobOptions options, std::string client_request_id) {
  absl::MutexLock lock(&mu_);
  if (!client_request_id.empty()) {
    auto it = by_request_.find(client_request_id);
    if (it != by_request_.end()) return jobs_.at(it->second);
  }
  if (problems.empty())
    return absl::InvalidArgumentError("a problem set needs at least one problem");
  std::set<std::string> ids;
  for (size_t i = 0; i < problems.size(); ++i) {
    Problem& p = problems[i];
    if (p.prompt.empty())
      return absl::InvalidArgumentError(absl::StrCat("problem ", i, " has an empty prompt"));
    if (p.id.empty()) p.id = StableProblemId(p.prompt, p.answer);
    if (!ids.insert(p.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("problem id '", p.id, "' appears twice (problem ", i, ")"));
    }
  }
  Job job;
  job.id = absl::StrFormat("job-%06d", next_id_);
  job.kind = kind;
  job.state = JobState::kPending;
  job.name = std::move(name);
  job.client_request_id = std::move(client_request_id);
  job.create_time = job.update_time = absl::Now();
  job.options = std::move(options);
  job.progress.problems_total = static_cast<int32_t>(problems.size());
  job.progress.phase = "pending";
  job.version = 1;
  std::error_code ec;
  fs::create_directories(fs::path(dir_) / job.id, ec);
  if (ec)
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", dir_, "/", job.id, ": ", ec.message()));
  std::ostringstream lines;
  for (const Problem& p : problems) WriteProblemJsonl(p, lines);
  DS_RETURN_IF_ERROR(
      WriteFileAtomically((fs::path(dir_) / job.id / kProblemsFile).string(), lines.str()));
  DS_RETURN_IF_ERROR(PersistLocked(job));
  ++next_id_;
  if (!job.client_request_id.empty()) by_request_[job.client_request_id] = job.id;
  jobs_[job.id] = job;
  changed_.SignalAll();
  return job;
}

absl::StatusOr<Job> JobStore::Get(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  return it->second;
}

absl::StatusOr<std::vector<Problem>> JobStore::Problems(const std::string& job_id) const {
  {
    absl::MutexLock lock(&mu_);
    if (jobs_.count(job_id) == 0) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  }
  const std::string path = (fs::path(dir_) / job_id / kProblemsFile).string();
  DS_ASSIGN_OR_RETURN(ProblemSet set, ReadProblemsJsonlFile(path));
  if (!set.errors.empty()) return absl::DataLossError(absl::StrCat(path, ": ", set.ErrorSummary()));
  return std::move(set.problems);
}

absl::StatusOr<JobListPage> JobStore::List(int32_t page_size, const std::string& page_token,
                                           std::optional<JobState> filter) const {
  if (page_size <= 0) page_size = 50;
  page_size = std::min(page_size, 1000);
  size_t offset = 0;
  if (!page_token.empty() && !absl::SimpleAtoi(page_token, &offset)) {
    return absl::InvalidArgumentError(absl::StrCat("malformed page token '", page_token, "'"));
  }
  absl::MutexLock lock(&mu_);
  std::vector<const Job*> all;
  for (const auto& [id, job] : jobs_) {
    if (!filter || job.state == *filter) all.push_back(&job);
  }
  std::sort(all.begin(), all.end(), [](const Job* a, const Job* b) {
    return a->create_time != b->create_time ? a->create_time > b->create_time : a->id > b->id;
  });
  JobListPage page;
  for (size_t i = offset; i < all.size() && page.jobs.size() < static_cast<size_t>(page_size);
       ++i) {
    page.jobs.push_back(*all[i]);
  }
  if (offset + page.jobs.size() < all.size())
    page.next_page_token = absl::StrCat(offset + page.jobs.size());
  return page;
}

absl::StatusOr<Job> JobStore::Update(const std::string& job_id,
                                     const std::function<void(Job&)>& change) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  Job updated = it->second;
  change(updated);
  updated.update_time = absl::Now();
  updated.version = it->second.version + 1;
  DS_RETURN_IF_ERROR(PersistLocked(updated));
  it->second = updated;
  changed_.SignalAll();
  return updated;
}

absl::StatusOr<Job> JobStore::Cancel(const std::string& job_id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
    if (IsTerminal(it->second.state)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job '", job_id, "' already ended (", std::string(JobStateName(it->second.state)), ")"));
    }
  }
  return Update(job_id, [](Job& j) {
    j.state = JobState::kCancelled;
    j.progress.phase = "cancelled";
  });
}

absl::StatusOr<Job> JobStore::WaitForChange(const std::string& job_id, int64_t seen_version,
                                            absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  while (true) {
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
    if (it->second.version > seen_version || changed_.WaitWithDeadline(&mu_, deadline))
      return it->second;
  }
}

std::vector<Job> JobStore::Active() const {
  absl::MutexLock lock(&mu_);
  std::vector<Job> out;
  for (const auto& [id, job] : jobs_) {
    if (!IsTerminal(job.state)) out.push_back(job);
  }
  std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) { return a.id < b.id; });
  return out;
}

}  // namespace deepsearch
