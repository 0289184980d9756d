// The learner's checkpoints on disk: their layout, the run state they carry (both ways),
// pruning and the latest one. Torch-free: the model files are written by the caller's
// callback into the directory the store hands it.
//
//   state_dir/checkpoints/
//     step-00000012/          one checkpoint, named by its training step
//       model/                the trainer's files (weights, AdamW moments, config.json,
//                             generation_config.json, tokenizer.json): the callback's
//       learner.json          the RunState below (format 1)
//     LATEST                  the name of the newest whole checkpoint
//
// Write stages a checkpoint under a temporary name (.step-N.tmp), renames it into place and
// then replaces LATEST atomically, so a crash at any point leaves the previous checkpoint
// whole and named by LATEST. After a write the store keeps the newest `keep` checkpoints.
//
// Thread-compatible: the learner's driver is its one writer.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "learner/train_program.h"

namespace deepsearch {

// What a checkpoint holds beside the model: the weight version, and the running TRAIN job's
// place (its program, counters and the step being collected, whose leases are issued again).
struct RunState {
  struct Train {
    std::string job_id;
    std::string program;  // TrainProgram::ToJson
    std::set<std::string> solved;
    int64_t trajectories = 0;
    int64_t generated_tokens = 0;
    int64_t screening_tokens = 0;
    int64_t trained_tokens = 0;
    double last_accuracy = 0.0;
    struct Collecting {
      int64_t step = 0;
      std::vector<TrainProgram::StepProblem> problems;
    };
    std::optional<Collecting> collecting;
  };
  int64_t weight_version = 0;
  int64_t training_steps = 0;
  std::optional<Train> train;
};

// learner.json, both ways. Decode names `where` in its errors (DataLoss).
std::string EncodeRunState(const RunState& state);
absl::StatusOr<RunState> DecodeRunState(const std::string& text, const std::string& where);

class CheckpointStore {
 public:
  // Writes the model files of a checkpoint into `model_dir`.
  using ModelWriter = std::function<absl::Status(const std::string& model_dir)>;

  CheckpointStore(std::string state_dir, int32_t keep);

  // Creates state_dir/checkpoints (Internal naming the directory when it cannot).
  absl::Status Init() const;
  // The newest whole checkpoint's directory; "" when there is none.
  std::string Latest() const;
  // The run state of `checkpoint` (a directory Latest or Write returned).
  absl::StatusOr<RunState> ReadState(const std::string& checkpoint) const;
  // Writes the checkpoint of `step` (see the header comment); returns its directory.
  absl::StatusOr<std::string> Write(int64_t step, const RunState& state,
                                    const ModelWriter& write_model) const;

  static std::string ModelDir(const std::string& checkpoint);
  const std::string& root() const { return root_; }

 private:
  void Prune(const std::string& keep_name) const;

  std::string root_;
  int32_t keep_;
};

// The newest checkpoint of a learner's state_dir; "" when there is none.
std::string LatestCheckpoint(const std::string& state_dir);

}  // namespace deepsearch
