#include "trainer/sft.h"

#include <algorithm>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "trainer/trainer.h"

#include "common/core/files.h"
#include "common/core/logging.h"
#include "common/core/progress.h"
#include "common/core/rng.h"
#include "common/core/status.h"
#include "common/model/generator.h"
#include "common/model/model_dir.h"

namespace deepsearch {
namespace {

// Draws n problems from `rng`, skipping those in `exclude` and, when `distinct`, repeats.
// Gives up (naming the task) when the family keeps producing problems it must skip: its
// problem space is too small for the request.
absl::StatusOr<std::vector<Problem>> DrawProblems(const TaskFamily& family, Rng& rng, int32_t n,
                                                  const absl::flat_hash_set<std::string>& exclude,
                                                  bool distinct) {
  std::vector<Problem> out;
  absl::flat_hash_set<std::string> drawn;
  int64_t misses = 0;
  while (static_cast<int32_t>(out.size()) < n) {
    Problem p = family.Generate(rng);
    if (exclude.contains(p.id) || (distinct && !drawn.insert(p.id).second)) {
      if (++misses > 1000 + 100 * static_cast<int64_t>(n)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "task ", family.spec(), " has too few distinct problems: ",
            distinct ? absl::StrCat("cannot draw ", n, " distinct held-out problems")
                     : absl::StrCat("the ", exclude.size(),
                                    " held-out problems leave almost none to train on"),
            " (lower the number of evaluation problems)"));
      }
      continue;
    }
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<std::vector<Problem>> HeldOut(const TaskFamily& family, const SftConfig& config) {
  Rng eval_rng(DeriveSeed(config.seed, "sft.eval"));
  return DrawProblems(family, eval_rng, config.eval_problems, {}, /*distinct=*/true);
}

}  // namespace

absl::StatusOr<std::vector<TrainSequence>> MakeSftSequences(const TaskFamily& family,
                                                            const Tokenizer& tokenizer,
                                                            const PromptFormat& format, int32_t eos,
                                                            const std::vector<Problem>& problems) {
  std::vector<TrainSequence> out;
  out.reserve(problems.size());
  for (const Problem& p : problems) {
    const std::optional<std::string> solution = family.Solve(p);
    if (!solution) {
      return absl::InvalidArgumentError(
          absl::StrCat("problem ", p.id, " (", family.spec(), "): no worked solution"));
    }
    TrainSequence s;
    s.group_id = p.id;
    absl::StatusOr<std::vector<int32_t>> prompt = format.Encode(tokenizer, p.prompt);
    if (!prompt.ok()) return Annotate(prompt.status(), absl::StrCat("problem ", p.id));
    absl::StatusOr<std::vector<int32_t>> response =
        tokenizer.Encode(*solution, /*allow_special=*/false);
    if (!response.ok())
      return Annotate(response.status(), absl::StrCat("problem ", p.id, " worked solution"));
    s.prompt_tokens = *std::move(prompt);
    s.response_tokens = *std::move(response);
    s.response_tokens.push_back(eos);
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<SftEval> EvaluateGreedy(const Qwen2Model& model, const Tokenizer& tokenizer,
                                       const std::vector<int32_t>& eos_ids,
                                       const PromptFormat& format, const TaskFamily& family,
                                       const std::vector<Problem>& problems,
                                       int32_t max_new_tokens) {
  SftEval eval;
  if (problems.empty()) return eval;
  std::vector<GenerationRequest> requests;
  requests.reserve(problems.size());
  for (const Problem& p : problems) {
    GenerationRequest r;
    absl::StatusOr<std::vector<int32_t>> prompt = format.Encode(tokenizer, p.prompt);
    if (!prompt.ok()) return Annotate(prompt.status(), absl::StrCat("problem ", p.id));
    r.prompt = *std::move(prompt);
    r.sampling.top_k = 1;
    r.sampling.max_new_tokens = max_new_tokens;
    requests.push_back(std::move(r));
  }
  Generator generator(model, {.eos_token_ids = eos_ids,
                              .vocab_limit = tokenizer.vocab_size(),
                              .token_bytes = nullptr,
                              .max_batch = 256});
  DS_ASSIGN_OR_RETURN(const std::vector<std::vector<GeneratedSample>> out,
                      generator.Generate(requests));
  for (size_t i = 0; i < problems.size(); ++i) {
    const std::string text = tokenizer.Decode(out[i][0].tokens, /*skip_special=*/true);
    ++eval.problems;
    if (family.Verify(problems[i], text).correct) ++eval.correct;
  }
  return eval;
}

TrainerConfig SftTrainerConfig(const SftConfig& config, int64_t vocab_limit) {
  TrainerConfig c;
  c.lr = config.lr;
  c.warmup_steps = config.warmup_steps;
  c.weight_decay = config.weight_decay;
  c.grad_clip = config.grad_clip;
  c.mini_batches = 1;
  c.micro_batch_tokens = config.micro_batch_tokens;
  c.vocab_limit = vocab_limit;
  return c;
}

// config.steps supervised steps on fresh batches of the family's worked solutions (never a
// held-out problem); fills result's losses, token counts and time.
absl::Status TrainSteps(Trainer& trainer, const TaskFamily& family, const Tokenizer& tokenizer,
                        const PromptFormat& format, int32_t eos,
                        const absl::flat_hash_set<std::string>& held_out_ids, Rng& train_rng,
                        const SftConfig& config, SftResult& result) {
  ProgressReporter::Options progress_options;
  progress_options.label = "sft";
  progress_options.total = config.steps;
  progress_options.unit = "step";
  std::ostringstream sink;
  if (!config.show_progress) progress_options.out = &sink;
  ProgressReporter progress(progress_options);
  std::vector<double> losses;
  for (int32_t step = 0; step < config.steps; ++step) {
    DS_ASSIGN_OR_RETURN(
        const std::vector<Problem> problems,
        DrawProblems(family, train_rng, config.batch, held_out_ids, /*distinct=*/false));
    DS_ASSIGN_OR_RETURN(const std::vector<TrainSequence> batch,
                        MakeSftSequences(family, tokenizer, format, eos, problems));
    DS_ASSIGN_OR_RETURN(const TrainStepStats stats, trainer.SupervisedStep(batch));
    if (step == 0) result.first_loss = stats.loss;
    losses.push_back(stats.loss);
    result.tokens += stats.tokens;
    result.forward_tokens += stats.forward_tokens;
    result.train_seconds += stats.seconds;
    progress.Add(1);
    progress.SetStatus(absl::StrFormat(
        "loss=%.4f lr=%.2g %.0f tok/s", stats.loss, stats.lr,
        static_cast<double>(result.forward_tokens) / std::max(result.train_seconds, 1e-9)));
  }
  progress.Finish();
  result.steps = config.steps;
  if (!losses.empty()) {
    const size_t tail = std::min<size_t>(10, losses.size());
    double sum = 0;
    for (size_t i = losses.size() - tail; i < losses.size(); ++i) sum += losses[i];
    result.last_loss = sum / static_cast<double>(tail);
  }
  return absl::OkStatus();
}

absl::StatusOr<SftResult> RunSft(const std::string& model_dir, const std::string& out_dir,
                                 const SftConfig& config) {
  if (config.steps < 0) return absl::InvalidArgumentError("steps must be >= 0");
  if (config.batch < 1) return absl::InvalidArgumentError("batch must be >= 1");
  if (config.eval_problems < 0) return absl::InvalidArgumentError("eval problems must be >= 0");
  DS_ASSIGN_OR_RETURN(std::unique_ptr<TaskFamily> family, MakeTaskFamily(config.task));
  if (!family->generates()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", family->spec(), " generates no problems to train on"));
  }
  DS_ASSIGN_OR_RETURN(const PromptFormat format, PromptFormat::Parse(config.prompt_template));
  DS_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModelDirectory(model_dir, ModelOptions{}));
  DS_ASSIGN_OR_RETURN(const std::string tokenizer_json,
                      ReadFileToString(model_dir + "/tokenizer.json"));
  const Tokenizer& tokenizer = *loaded.tokenizer;
  const std::vector<int32_t> eos_ids = loaded.generation.eos_token_ids;
  if (eos_ids.empty())
    return absl::InvalidArgumentError(absl::StrCat(model_dir, ": the model has no EOS token id"));

  // Held-out problems first (their own seed stream), then the training stream avoids them.
  Rng train_rng(DeriveSeed(config.seed, "sft.train"));
  DS_ASSIGN_OR_RETURN(const std::vector<Problem> held_out, HeldOut(*family, config));
  absl::flat_hash_set<std::string> held_out_ids;
  for (const Problem& p : held_out) held_out_ids.insert(p.id);
  DS_ASSIGN_OR_RETURN(const std::vector<TrainSequence> eval_sequences,
                      MakeSftSequences(*family, tokenizer, format, eos_ids[0], held_out));
  int32_t max_new_tokens = config.max_new_tokens;
  if (max_new_tokens <= 0) {
    size_t longest = 0;
    for (const TrainSequence& s : eval_sequences)
      longest = std::max(longest, s.response_tokens.size());
    max_new_tokens = static_cast<int32_t>(2 * longest + 16);
  }

  DS_ASSIGN_OR_RETURN(
      std::unique_ptr<Trainer> trainer,
      Trainer::Create(std::move(loaded.model), SftTrainerConfig(config, tokenizer.vocab_size())));

  SftResult result;
  auto evaluate = [&](std::string_view when) -> absl::StatusOr<SftEval> {
    DS_ASSIGN_OR_RETURN(SftEval e, EvaluateGreedy(trainer->model(), tokenizer, eos_ids, format,
                                                  *family, held_out, max_new_tokens));
    if (e.problems > 0) {
      log::Info("sft: greedy accuracy {}: {}/{} = {:.1f}% of held-out {} problems",
                std::string(when), e.correct, e.problems, 100.0 * e.accuracy(), family->spec());
    }
    return e;
  };
  DS_ASSIGN_OR_RETURN(result.before, evaluate("before training"));

  DS_RETURN_IF_ERROR(TrainSteps(*trainer, *family, tokenizer, format, eos_ids[0], held_out_ids,
                                train_rng, config, result));
  DS_ASSIGN_OR_RETURN(result.after, evaluate("after training"));
  DS_RETURN_IF_ERROR(
      SaveModelDirectory(out_dir, trainer->model(), tokenizer_json, loaded.generation));
  return result;
}

absl::StatusOr<std::vector<Problem>> SftHeldOutProblems(const SftConfig& config) {
  DS_ASSIGN_OR_RETURN(std::unique_ptr<TaskFamily> family, MakeTaskFamily(config.task));
  return HeldOut(*family, config);
}

}  // namespace deepsearch
