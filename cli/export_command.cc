// deepsearch export --checkpoint DIR|--state-dir DIR --out DIR [--dtype D]: writes a learner
// checkpoint's model as a Hugging Face model directory (config.json, model.safetensors,
// tokenizer.json, generation_config.json), loadable by `deepsearch solve`, actors and
// transformers.
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "learner/learner.h"

namespace deepsearch::cli {
namespace {

struct ExportArgs {
  std::string checkpoint;
  std::string state_dir;
  std::string out;
  std::string dtype = "bfloat16";
};

int RunExport(const ExportArgs& args) {
  std::string checkpoint = args.checkpoint;
  if (checkpoint.empty()) {
    checkpoint = LatestCheckpoint(args.state_dir);
    if (checkpoint.empty()) {
      std::cerr << "deepsearch export: no checkpoint in " << args.state_dir << "\n";
      return kExitFailure;
    }
  }
  if (absl::Status s = ExportCheckpoint(checkpoint, args.out, args.dtype); !s.ok()) {
    std::cerr << "deepsearch export: " << s.message() << "\n";
    return kExitFailure;
  }
  std::cout << "exported " << checkpoint << " to " << args.out << " (" << args.dtype << ")\n";
  return kExitOk;
}

}  // namespace

void AddExportCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd =
      app.add_subcommand("export", "Write a learner checkpoint as a Hugging Face model directory");
  auto* checkpoint =
      cmd->add_option("--checkpoint", args->checkpoint, "A checkpoint directory (step-N)");
  cmd->add_option("--state-dir", args->state_dir,
                  "The learner's state directory: export its latest checkpoint")
      ->excludes(checkpoint);
  cmd->add_option("--out", args->out, "Output model directory (replaced)")->required();
  cmd->add_option("--dtype", args->dtype, "float32, bfloat16 or float16")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}))
      ->capture_default_str();
  cmd->callback([args, &exit_code] {
    if (args->checkpoint.empty() && args->state_dir.empty()) {
      std::cerr << "deepsearch export: give --checkpoint or --state-dir\n";
      exit_code = kExitUsage;
      return;
    }
    exit_code = RunExport(*args);
  });
}

}  // namespace deepsearch::cli
