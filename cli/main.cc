// deepsearch: the command-line entry point. `deepsearch --help` lists the subcommands.
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "common/core/logging.h"

namespace {

int Main(int argc, char** argv) {
  namespace cli = deepsearch::cli;
  CLI::App app{
      "DeepSearch: Monte Carlo Tree Search inside reinforcement learning with verifiable rewards\n"
      "(arXiv 2509.25454), as a distributed actor-learner system.",
      "deepsearch"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warning, error or off")
      ->check(CLI::IsMember({"debug", "info", "warning", "warn", "error", "off"}))
      ->capture_default_str();
  app.parse_complete_callback([&log_level] {
    deepsearch::InitLogging("deepsearch", deepsearch::ParseLogLevel(log_level).value());
  });

  int exit_code = cli::kExitOk;
  cli::AddVersionCommand(app, exit_code);
  cli::AddConfigCommand(app, exit_code);
  cli::AddTokenizeCommand(app, exit_code);
  cli::AddModelCommand(app, exit_code);
  cli::AddDataCommand(app, exit_code);
  cli::AddGradeCommand(app, exit_code);
  cli::AddSolveCommand(app, exit_code);
  cli::AddExportCommand(app, exit_code);
  cli::AddSftCommand(app, exit_code);
#ifdef DEEPSEARCH_WITH_GRPC
  cli::AddActorCommand(app, exit_code);
  cli::AddLearnerCommand(app, exit_code);
  cli::AddCacheCommand(app, exit_code);
  cli::AddClientCommands(app, exit_code);
  cli::AddRunCommand(app, exit_code);
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, or the error with a hint
    return rc == 0 ? cli::kExitOk : cli::kExitUsage;
  }
  return exit_code;
}

}  // namespace

// Commands report failures as statuses; anything thrown past them is a bug, but the user
// still gets a message and a failing exit code rather than an abort.
int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "deepsearch: unexpected error: " << e.what() << "\n";
    return deepsearch::cli::kExitFailure;
  }
}
