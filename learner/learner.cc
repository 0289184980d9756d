#include "learner/learner.h"

#include <filesystem>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "common/core/files.h"
#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/model/model_dir.h"
#include "common/model/weight_export.h"
#include "common/tasks/task.h"
#include "common/tokenizer/tokenizer.h"
#include "learner/learner_impl.h"

namespace deepsearch {

namespace fs = std::filesystem;
using Json = nlohmann::json;

absl::Status ExportCheckpoint(const std::string& checkpoint_dir, const std::string& out_dir,
                              const std::string& dtype) {
  const std::string model_dir = CheckpointStore::ModelDir(checkpoint_dir);
  DS_ASSIGN_OR_RETURN(const Dtype weight_dtype, WeightDtype(dtype));
  DS_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModelDirectory(model_dir, ModelOptions{}));
  DS_ASSIGN_OR_RETURN(const std::string tokenizer_json,
                      ReadFileToString((fs::path(model_dir) / "tokenizer.json").string()));
  // Through a weight set, so that the written config.json names the exported dtype.
  DS_ASSIGN_OR_RETURN(const WeightSet set, ExportWeights(*loaded.model, 0, weight_dtype));
  ModelOptions options;
  DS_ASSIGN_OR_RETURN(options.dtype, TorchDtype(weight_dtype, "weights"));
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Qwen2Model> model, ImportWeights(set, options));
  return SaveModelDirectory(out_dir, *model, tokenizer_json, loaded.generation);
}

// ---------------------------------------------------------------------------------------------

Learner::Learner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Learner::~Learner() {
  if (!impl_->shut_down) {
    absl::Status s = Shutdown();
    if (!s.ok()) log::Error("learner: shutdown: {}", s.message());
  }
}

absl::StatusOr<std::unique_ptr<Trainer>> Learner::Impl::LoadTrainer(const LearnerOptions& options,
                                                                    int64_t* version) {
  const std::string checkpoint = checkpoints->Latest();
  const std::string model_dir =
      checkpoint.empty() ? options.model : CheckpointStore::ModelDir(checkpoint);
  if (model_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no checkpoint in ", options.state_dir,
                                                   " and no model directory (learner.model)"));
  }
  DS_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModelDirectory(model_dir, ModelOptions{}));
  DS_ASSIGN_OR_RETURN(tokenizer_json,
                      ReadFileToString((fs::path(model_dir) / "tokenizer.json").string()));
  generation = loaded.generation;
  TrainerConfig train_config = options.train;
  train_config.decoupled = options.mode == LearnerMode::kAsync;
  train_config.reducer = reducer;
  if (train_config.vocab_limit == 0) {
    // Log-probs over the ids the actors sample from: the tokenizer's (a model's embedding
    // often has spare rows).
    DS_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                        ParseTokenizerJson(tokenizer_json, model_dir + "/tokenizer.json"));
    train_config.vocab_limit = tokenizer->vocab_size();
  }
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer,
                      Trainer::Create(std::move(loaded.model), train_config));
  if (checkpoint.empty()) return trainer;
  DS_RETURN_IF_ERROR(trainer->Load(model_dir));
  DS_ASSIGN_OR_RETURN(RunState state, checkpoints->ReadState(checkpoint));
  *version = state.weight_version;
  if (state.train.has_value()) {
    absl::MutexLock lock(&drive_mu);
    restored_train = std::move(state.train);
  }
  log::Info("learner: resumed from {} (step {}, weight version {})", checkpoint, trainer->step(),
            *version);
  return trainer;
}

absl::Status Learner::Impl::StartDataParallel(Trainer& trainer, const LearnerOptions& options) {
  // The other ranks build the same model and take this rank's state.
  channel = std::make_unique<RankChannel>(*reducer, options.data_parallel.timeout,
                                          [this](const absl::Status& s) { Fail(s); });
  const Json start = {{"model_config", trainer.model().config().ToJson()},
                      {"vocab_limit", trainer.config().vocab_limit}};
  absl::Status synced;
  DS_RETURN_IF_ERROR(channel->Run(RankCommand::kStart, start.dump(),
                                  [&] { synced = trainer.SyncWithRankZero(); }));
  DS_RETURN_IF_ERROR(synced);
  log::Info("learner: data parallel over {} ranks: rank 0 serves, every rank trains",
            reducer->world_size());
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Learner>> Learner::Create(LearnerOptions options, WeightSink* sink,
                                                         GradientReducer* reducer) {
  if (reducer != nullptr && reducer->rank() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Learner::Create on data parallel rank ", reducer->rank(),
                     ": only rank 0 runs the learner; the other ranks run RunTrainingWorker"));
  }
  auto impl = std::make_unique<Impl>();
  impl->sink = sink;
  impl->reducer = reducer;
  impl->checkpoints =
      std::make_unique<CheckpointStore>(options.state_dir, options.keep_checkpoints);
  DS_RETURN_IF_ERROR(impl->checkpoints->Init());
  DS_ASSIGN_OR_RETURN(impl->jobs, JobStore::Open((fs::path(options.state_dir) / "jobs").string()));
  for (const std::string& e : impl->jobs->load_errors()) log::Warning("learner: {}", e);
  impl->leases = std::make_unique<LeaseManager>(LeaseManagerOptions{
      .lease_duration = options.lease_duration, .max_attempts = options.max_attempts});

  int64_t version = 1;  // the initial weights
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, impl->LoadTrainer(options, &version));
  if (impl->DataParallel()) DS_RETURN_IF_ERROR(impl->StartDataParallel(*trainer, options));
  {
    absl::MutexLock lock(&impl->mu);
    impl->weight_version = version;
    impl->stats.weight_version = version;
    impl->stats.training_steps = trainer->step();
  }
  impl->options = std::move(options);
  {
    absl::MutexLock lock(&impl->drive_mu);
    impl->trainer = std::move(trainer);
    impl->unpublished_version = version;
  }
  {
    // The cache service may come up after the learner: the driver keeps trying (PollOnce),
    // and nothing is leased before the version is out.
    absl::MutexLock poll(&impl->poll_mu);
    if (absl::Status s = impl->PublishPending(); !s.ok())
      log::Warning("learner: {}; retrying until the cache service takes it", s.message());
  }
  if (impl->channel != nullptr) impl->channel->StartHeartbeat();
  return std::unique_ptr<Learner>(new Learner(std::move(impl)));
}

void Learner::Start() {
  if (impl_->driver.joinable()) return;
  impl_->driver = std::thread([this] { impl_->DriverLoop(); });
}

absl::Status Learner::Shutdown() {
  if (impl_->shut_down) return absl::OkStatus();
  impl_->shut_down = true;
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->stop = true;
    impl_->wake.Signal();
  }
  if (impl_->driver.joinable()) impl_->driver.join();
  if (impl_->channel != nullptr) impl_->channel->Close();
  const absl::Status failure = this->failure();
  if (!failure.ok()) return failure;  // the ranks may be mid-step: keep the last checkpoint
  absl::MutexLock lock(&impl_->drive_mu);
  absl::Status status = absl::OkStatus();
  if (impl_->train.has_value()) status = impl_->CheckpointLocked();
  if (impl_->DataParallel()) {
    absl::Status stopped = impl_->channel->Run(RankCommand::kStop, "");
    if (status.ok()) status = stopped;
  }
  return status;
}

absl::Status Learner::failure() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->failure;
}

LeaseWorkResult Learner::LeaseWork(const std::string& actor_id, int32_t max_leases,
                                   absl::Time now) {
  LeaseWorkResult result;
  result.leases = impl_->leases->Issue(actor_id, std::max(0, max_leases), now);
  result.latest_weight_version = impl_->Version();
  result.retry_after = impl_->options.retry_after;
  return result;
}

std::vector<LeaseRenewal> Learner::Renew(const std::string& actor_id,
                                         const std::vector<std::string>& lease_ids,
                                         absl::Time now) {
  return impl_->leases->Renew(actor_id, lease_ids, now);
}

std::vector<IngestResult> Learner::Ingest(IngestRequest request) {
  std::vector<int64_t> tokens;
  tokens.reserve(request.trajectories.size());
  for (const TrajectoryRecord& r : request.trajectories) {
    tokens.push_back(r.tree_generated_tokens);
  }
  std::vector<IngestResult> results = impl_->leases->Ingest(std::move(request.trajectories));
  for (const std::string& id : request.completed_lease_ids)
    impl_->leases->Complete(request.actor_id, id);
  for (const auto& [id, reason] : request.failed_leases)
    impl_->leases->Fail(request.actor_id, id, reason);
  {
    absl::MutexLock lock(&impl_->mu);
    for (size_t i = 0; i < results.size(); ++i) {
      switch (results[i].outcome) {
        case IngestOutcome::kAccepted:
          ++impl_->stats.trajectories;
          impl_->stats.generated_tokens += tokens[i];
          break;
        case IngestOutcome::kDuplicate:
          ++impl_->stats.duplicates;
          break;
        case IngestOutcome::kRejected:
          ++impl_->stats.rejected;
          break;
      }
    }
  }
  impl_->Wake();
  return results;
}

absl::StatusOr<Job> Learner::Submit(JobKind kind, std::string name, std::vector<Problem> problems,
                                    JobOptions options, std::string client_request_id) {
  if (options.samples_per_problem < 0 || options.max_steps < 0) {
    return absl::InvalidArgumentError(
        "options.samples_per_problem and options.max_steps must not be negative");
  }
  std::set<std::string> tasks;
  for (const Problem& p : problems) {
    if (p.id.empty()) return absl::InvalidArgumentError("a problem has no id");
    if (!tasks.insert(p.task).second) continue;
    if (absl::StatusOr<std::unique_ptr<TaskFamily>> family = MakeTaskFamily(p.task); !family.ok())
      return Annotate(family.status(), absl::StrCat("problem ", p.id, ": task '", p.task, "'"));
  }
  DS_ASSIGN_OR_RETURN(
      Job job, impl_->jobs->Submit(kind, std::move(name), std::move(problems), std::move(options),
                                   std::move(client_request_id)));
  impl_->Wake();
  return job;
}

absl::StatusOr<Job> Learner::Cancel(const std::string& job_id) {
  DS_ASSIGN_OR_RETURN(Job job, impl_->jobs->Cancel(job_id));
  const int64_t dropped = impl_->leases->CancelJob(job_id);
  log::Info("learner: job {} cancelled ({} leases dropped)", job_id, dropped);
  impl_->Wake();
  return job;
}

JobStore& Learner::jobs() { return *impl_->jobs; }

absl::Status Learner::Poll() { return impl_->PollOnce(); }

absl::Status Learner::Checkpoint() {
  absl::MutexLock lock(&impl_->drive_mu);
  return impl_->CheckpointLocked();
}

int64_t Learner::weight_version() const { return impl_->Version(); }

LearnerStats Learner::stats() const {
  LearnerStats s;
  {
    absl::MutexLock lock(&impl_->mu);
    s = impl_->stats;
  }
  s.leases = impl_->leases->counts();
  s.stalled_seconds =
      absl::ToDoubleSeconds(StalledFor(s.leases, impl_->options.stall_after, absl::Now()));
  return s;
}

const LearnerOptions& Learner::options() const { return impl_->options; }

absl::StatusOr<WeightSet> Learner::CurrentWeights() const {
  absl::MutexLock lock(&impl_->drive_mu);
  return ExportWeights(impl_->trainer->model(), impl_->Version(), Dtype::kF32);
}

}  // namespace deepsearch
