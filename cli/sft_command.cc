// deepsearch sft --model DIR --task SPEC --steps N --out DIR [--batch B] [--lr LR] [--seed S]
// [--eval N]: the supervised warm start (trainer/sft.h).
//
// Trains the model of DIR on the task family's worked solutions (fresh generated problems
// every step), shows a progress line with rate, ETA and loss, reports greedy accuracy on
// held-out problems before and after, and writes the trained model directory to --out.
// Exit codes: 0 done, 1 the run failed (bad model directory, task spec, I/O), 2 usage.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "trainer/sft.h"

#include "cli/commands.h"
#include "common/model/torch_runtime.h"

namespace deepsearch::cli {
namespace {

struct SftArgs {
  std::string model;
  std::string out;
  bool if_missing = false;
  SftConfig config;
};

int RunSftCommand(const SftArgs& args) {
  auto fail = [](const absl::Status& s) {
    std::cerr << "deepsearch sft: " << s.message() << "\n";
    return kExitFailure;
  };
  if (args.if_missing && std::filesystem::exists(std::filesystem::path(args.out) / "config.json")) {
    std::cout << args.out << " already holds a model; left as it is\n";
    return kExitOk;
  }
  if (absl::Status s = ConfigureTorchRuntime(RuntimeConfig{}); !s.ok()) return fail(s);
  absl::StatusOr<SftResult> r = RunSft(args.model, args.out, args.config);
  if (!r.ok()) return fail(r.status());
  std::cout << absl::StrFormat(
      "trained %d steps (%d response tokens, %.0f tokens/s); loss %.4f -> %.4f\n", r->steps,
      r->tokens, static_cast<double>(r->forward_tokens) / std::max(r->train_seconds, 1e-9),
      r->first_loss, r->last_loss);
  if (r->after.problems > 0) {
    std::cout << absl::StrFormat(
        "greedy accuracy on %d held-out problems: %.1f%% before, %.1f%% after (%d/%d)\n",
        r->after.problems, 100.0 * r->before.accuracy(), 100.0 * r->after.accuracy(),
        r->after.correct, r->after.problems);
  }
  std::cout << "wrote " << args.out << "\n";
  return kExitOk;
}

}  // namespace

void AddSftCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<SftArgs>();
  SftConfig& c = args->config;
  CLI::App* sft = app.add_subcommand(
      "sft",
      "Supervised warm start: train a model on a task family's worked solutions and report "
      "greedy accuracy on held-out problems");
  sft->add_option("--model", args->model, "Model directory to start from")->required();
  sft->add_option("--task", c.task, "Task spec (addition:digits=2, countdown:n=4, ...)")
      ->required();
  sft->add_option("--out", args->out, "Model directory to write")->required();
  sft->add_option("--steps", c.steps, "Optimizer steps")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  sft->add_option("--batch", c.batch, "Sequences per step")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  sft->add_option("--lr", c.lr, "Peak learning rate (AdamW)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sft->add_option("--warmup", c.warmup_steps, "Linear warm-up steps (from LR 0)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  sft->add_option("--weight-decay", c.weight_decay, "AdamW's decoupled weight decay")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sft->add_option("--micro-batch-tokens", c.micro_batch_tokens,
                  "Most prompt + response tokens per forward/backward pass")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  sft->add_option("--seed", c.seed, "Seed of the training and held-out problem streams")
      ->capture_default_str();
  sft->add_option("--eval", c.eval_problems, "Held-out problems for greedy accuracy (0: none)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  sft->add_option("--max-new-tokens", c.max_new_tokens,
                  "Evaluation: most generated tokens (0: twice the longest worked solution)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  sft->add_flag("--no-progress{false}", c.show_progress, "No progress line on stderr");
  sft->add_flag("--if-missing", args->if_missing,
                "Do nothing when --out already holds a model (config.json): for init containers "
                "and scripts that run on every start");
  sft->callback([args, &exit_code] { exit_code = RunSftCommand(*args); });
}

}  // namespace deepsearch::cli
