// The supervised warm start (MODELS_AND_TASKS §2.2 (4)): a model trained from scratch learns
// a task family's format and step skill from the family's worked solutions, so that the RL
// stage (DEEPSEARCH_SPEC §1.2) starts from a policy whose pass@k is above zero.
//
// Data: fresh problems from the family's generator every step (seeded), each turned into a
// TrainSequence whose prompt is the problem through the prompt template and whose response is
// the worked solution (TaskFamily::Solve) followed by EOS. Held-out evaluation problems come
// from a separate seed stream and are never trained on (training draws that collide with one
// are skipped).
//
// Training: Trainer::SupervisedStep (token-mean NLL of the response tokens, AdamW, linear
// warm-up then constant LR), `steps` steps of `batch` sequences.
//
// Evaluation: greedy decoding (top_k = 1) of every held-out problem with the model's KV-cache
// generator, graded by the family's verifier; reported before and after training.
//
// Not supported: families that only verify (the "math" family generates no problems),
// training on a fixed problem file, sampling-based evaluation (pass@k; `deepsearch solve`
// does that).
//
// Torch stays out of this header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "search/prompt_format.h"
#include "trainer/train_batch.h"
#include "trainer/trainer_config.h"

#include "common/tasks/problem.h"
#include "common/tasks/task.h"
#include "common/tokenizer/tokenizer.h"

namespace deepsearch {

class Qwen2Model;

struct SftConfig {
  std::string task = "addition:digits=2";
  int32_t steps = 300;
  int32_t batch = 64;  // sequences per step
  // From-scratch defaults: a high LR with a short warm-up; the RL trainer's defaults
  // (1e-6, 10 steps) are for fine-tuning a pretrained model.
  double lr = 1e-3;
  int32_t warmup_steps = 20;
  double weight_decay = 0.01;
  double grad_clip = 1.0;
  int64_t micro_batch_tokens = 8192;
  uint64_t seed = 0;
  int32_t eval_problems = 200;  // 0: no evaluation
  int32_t max_new_tokens = 0;   // evaluation; 0: twice the longest held-out solution + 16
  std::string prompt_template = std::string(PromptFormat::kTaskDefault);
  bool show_progress = true;  // a progress line on stderr
};

struct SftEval {
  int32_t problems = 0;
  int32_t correct = 0;
  double accuracy() const { return problems > 0 ? static_cast<double>(correct) / problems : 0.0; }
};

struct SftResult {
  SftEval before;
  SftEval after;
  double first_loss = 0.0;  // mean NLL per response token, first step
  double last_loss = 0.0;   // and mean of the last 10 steps
  int64_t steps = 0;
  int64_t tokens = 0;          // response tokens trained on
  int64_t forward_tokens = 0;  // prompt + response tokens
  double train_seconds = 0.0;
};

// One sequence per problem: prompt = the problem through `format`, response = the family's
// worked solution + `eos`. group_id is the problem id; scores are left empty. Errors name
// the problem (no worked solution, text the tokenizer cannot encode).
absl::StatusOr<std::vector<TrainSequence>> MakeSftSequences(const TaskFamily& family,
                                                            const Tokenizer& tokenizer,
                                                            const PromptFormat& format, int32_t eos,
                                                            const std::vector<Problem>& problems);

// Greedy accuracy of `model` on `problems`, graded by `family`. Blocks; the model must not
// change meanwhile.
absl::StatusOr<SftEval> EvaluateGreedy(const Qwen2Model& model, const Tokenizer& tokenizer,
                                       const std::vector<int32_t>& eos_ids,
                                       const PromptFormat& format, const TaskFamily& family,
                                       const std::vector<Problem>& problems,
                                       int32_t max_new_tokens);

// The trainer settings of the warm start: `config`'s optimizer settings, one optimizer step
// per training step, logits over the first `vocab_limit` ids (the tokenizer's).
TrainerConfig SftTrainerConfig(const SftConfig& config, int64_t vocab_limit);

// The held-out problems RunSft evaluates on (config.eval_problems of them, from their own
// seed stream, config.seed): never trained on by the warm start, so a later stage can keep
// evaluating on them. Errors: an unknown task spec, a family too small for the request.
absl::StatusOr<std::vector<Problem>> SftHeldOutProblems(const SftConfig& config);

// The whole warm start: loads `model_dir` (float32 master weights on the CPU), evaluates,
// trains, evaluates again and writes the trained model to `out_dir` (SaveModelDirectory,
// replacing it). Blocks for the whole run.
absl::StatusOr<SftResult> RunSft(const std::string& model_dir, const std::string& out_dir,
                                 const SftConfig& config);

}  // namespace deepsearch
