#include "learner/rank_channel.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "trainer/trainer.h"

#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/model/qwen2_model.h"
#include "learner/learner.h"

namespace deepsearch {

using Json = nlohmann::json;

namespace {

std::string_view CommandName(RankCommand command) {
  switch (command) {
    case RankCommand::kStart:
      return "start";
    case RankCommand::kStep:
      return "step";
    case RankCommand::kHeartbeat:
      return "heartbeat";
    case RankCommand::kStop:
      return "stop";
  }
  return "unknown";
}

absl::Status SendCommand(GradientReducer& reducer, RankCommand command,
                         const std::string& payload) {
  std::vector<at::Tensor> header = {
      at::tensor({static_cast<int64_t>(command), static_cast<int64_t>(payload.size())}, at::kLong)};
  DS_RETURN_IF_ERROR(reducer.Broadcast(header));
  if (payload.empty()) return absl::OkStatus();
  std::vector<at::Tensor> body = {at::from_blob(const_cast<char*>(payload.data()),
                                                {static_cast<int64_t>(payload.size())}, at::kByte)
                                      .clone()};
  return reducer.Broadcast(body);
}

absl::StatusOr<std::pair<RankCommand, std::string>> ReceiveCommand(GradientReducer& reducer) {
  std::vector<at::Tensor> header = {at::zeros({2}, at::kLong)};
  DS_RETURN_IF_ERROR(reducer.Broadcast(header));
  const int64_t command = header[0][0].item<int64_t>(), bytes = header[0][1].item<int64_t>();
  if (command < static_cast<int64_t>(RankCommand::kStart) ||
      command > static_cast<int64_t>(RankCommand::kStop) || bytes < 0) {
    return absl::DataLossError(absl::StrCat("data parallel rank ", reducer.rank(),
                                            ": rank 0 sent an unknown command ", command, " (",
                                            bytes, " bytes)"));
  }
  std::string payload;
  if (bytes > 0) {
    std::vector<at::Tensor> body = {at::zeros({bytes}, at::kByte)};
    DS_RETURN_IF_ERROR(reducer.Broadcast(body));
    payload.assign(reinterpret_cast<const char*>(body[0].data_ptr<uint8_t>()),
                   static_cast<size_t>(bytes));
  }
  return std::make_pair(static_cast<RankCommand>(command), std::move(payload));
}

}  // namespace

RankChannel::RankChannel(GradientReducer& reducer, absl::Duration timeout,
                         std::function<void(const absl::Status&)> on_failure)
    : reducer_(reducer),
      interval_(std::min(absl::Seconds(30), timeout / 4)),
      on_failure_(std::move(on_failure)),
      last_command_(absl::Now()) {}

RankChannel::~RankChannel() { Close(); }

absl::Status RankChannel::Run(RankCommand command, const std::string& payload,
                              const std::function<void()>& work) {
  absl::MutexLock lock(&mu_);
  absl::Status status = SendCommand(reducer_, command, payload);
  if (status.ok() && work) work();
  last_command_ = absl::Now();
  if (!status.ok()) on_failure_(status);
  return status;
}

void RankChannel::StartHeartbeat() {
  if (!heartbeat_.joinable()) heartbeat_ = std::thread([this] { HeartbeatLoop(); });
}

void RankChannel::StopHeartbeat() {
  absl::MutexLock lock(&stop_mu_);
  stop_ = true;
  stop_cv_.Signal();
}

void RankChannel::Close() {
  StopHeartbeat();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void RankChannel::HeartbeatLoop() {
  while (true) {
    {
      absl::MutexLock lock(&stop_mu_);
      if (!stop_) stop_cv_.WaitWithTimeout(&stop_mu_, interval_ / 4);
      if (stop_) return;
    }
    absl::MutexLock lock(&mu_);
    if (absl::Now() - last_command_ < interval_) continue;
    absl::Status status = SendCommand(reducer_, RankCommand::kHeartbeat, "");
    last_command_ = absl::Now();
    if (!status.ok()) {
      on_failure_(status);
      return;
    }
  }
}

absl::Status RunTrainingWorker(const LearnerOptions& options, GradientReducer& reducer) {
  const int rank = reducer.rank();
  if (rank == 0 || reducer.world_size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat("RunTrainingWorker: rank ", rank, " of ",
                                                   reducer.world_size(),
                                                   " (rank 0 runs the learner itself)"));
  }
  const std::string where = absl::StrCat("data parallel rank ", rank);
  DS_ASSIGN_OR_RETURN(auto start, ReceiveCommand(reducer));
  if (start.first != RankCommand::kStart) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": expected rank 0's start, got ",
                                                      std::string(CommandName(start.first))));
  }
  const Json payload = Json::parse(start.second, nullptr, /*allow_exceptions=*/false);
  if (!payload.is_object() || !payload.contains("model_config") ||
      !payload["model_config"].is_string() || !payload.contains("vocab_limit") ||
      !payload["vocab_limit"].is_number_integer()) {
    return absl::DataLossError(absl::StrCat(where, ": rank 0's start does not parse"));
  }
  DS_ASSIGN_OR_RETURN(
      const Qwen2Config model_config,
      Qwen2Config::FromJson(payload["model_config"].get<std::string>(), "rank 0's model config"));
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Qwen2Model> model,
                      Qwen2Model::Create(model_config, ModelOptions{}));
  TrainerConfig train_config = options.train;
  train_config.decoupled = options.mode == LearnerMode::kAsync;
  train_config.reducer = &reducer;
  // Rank 0 chose it from its tokenizer when the config leaves it to the model (0).
  if (train_config.vocab_limit == 0)
    train_config.vocab_limit = payload["vocab_limit"].get<int64_t>();
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer,
                      Trainer::Create(std::move(model), train_config));
  DS_RETURN_IF_ERROR(trainer->SyncWithRankZero());
  log::Info("learner: {} of {} ready at training step {}", where, reducer.world_size(),
            trainer->step());
  while (true) {
    DS_ASSIGN_OR_RETURN(auto command, ReceiveCommand(reducer));
    switch (command.first) {
      case RankCommand::kHeartbeat:
        break;
      case RankCommand::kStop:
        log::Info("learner: {}: rank 0 stopped the run after {} training steps", where,
                  trainer->step());
        return absl::OkStatus();
      case RankCommand::kStep: {
        DS_ASSIGN_OR_RETURN(const std::vector<TrainSequence> batch,
                            DecodeTrainSequences(command.second));
        absl::StatusOr<TrainStepStats> s = trainer->Step(batch);
        if (absl::IsInvalidArgument(s.status())) {
          // Rank 0 refused the same batch the same way and goes on.
          log::Warning("learner: {}: step refused: {}", where, s.status().message());
          break;
        }
        if (!s.ok()) return s.status();
        log::Info("learner: {}: step {}: {} of {} sequences, {} tokens, loss {:.4f}, {:.1f} s",
                  where, s->step, s->sequences, batch.size(), s->tokens, s->loss, s->seconds);
        break;
      }
      case RankCommand::kStart:
        return absl::FailedPreconditionError(
            absl::StrCat(where, ": rank 0 started again without a new process group"));
    }
  }
}

}  // namespace deepsearch
