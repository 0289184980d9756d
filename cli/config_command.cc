// deepsearch config validate FILE | config show [FILE]: check and print configuration files.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/deepsearch_config.h"

namespace deepsearch::cli {
namespace {

struct ConfigArgs {
  std::string file;
  std::vector<std::string> overrides;
};

absl::StatusOr<DeepSearchConfig> Load(const ConfigArgs& args) {
  return LoadDeepSearchConfig(args.file, args.overrides);
}

}  // namespace

void AddConfigCommand(CLI::App& app, int& exit_code) {
  CLI::App* config =
      app.add_subcommand("config", "Validate and print configuration files (YAML or JSON)");
  config->require_subcommand(1);

  auto validate_args = std::make_shared<ConfigArgs>();
  CLI::App* validate = config->add_subcommand(
      "validate", "Check a config file: every key known, every value of the right type and range");
  validate->add_option("file", validate_args->file, "The config file")->required();
  validate->add_option("--set", validate_args->overrides,
                       "Override a key first: KEY=VALUE (repeatable)");
  validate->callback([validate_args, &exit_code] {
    absl::StatusOr<DeepSearchConfig> config = Load(*validate_args);
    if (!config.ok()) {
      std::cerr << config.status().message() << "\n";
      exit_code = kExitFailure;
      return;
    }
    std::cout << validate_args->file << ": OK\n";
    exit_code = kExitOk;
  });

  auto show_args = std::make_shared<ConfigArgs>();
  CLI::App* show = config->add_subcommand(
      "show", "Print the effective configuration with every key, its value and its help text");
  show->add_option("file", show_args->file, "A config file (default: the built-in defaults)");
  show->add_option("--set", show_args->overrides, "Override a key first: KEY=VALUE (repeatable)");
  show->callback([show_args, &exit_code] {
    absl::StatusOr<DeepSearchConfig> config = Load(*show_args);
    if (!config.ok()) {
      std::cerr << config.status().message() << "\n";
      exit_code = kExitFailure;
      return;
    }
    std::cout << DocumentConfig(*config);
    exit_code = kExitOk;
  });
}

}  // namespace deepsearch::cli
