// The `deepsearch` subcommands. Each Add*Command registers its subcommand(s) on `app`; the
// callbacks run after parsing and store the process exit code in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace deepsearch::cli {

// Exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed (bad input, I/O)
inline constexpr int kExitUsage = 2;    // the command line itself was wrong

void AddVersionCommand(CLI::App& app, int& exit_code);
void AddConfigCommand(CLI::App& app, int& exit_code);
// `model init` and `generate`.
void AddModelCommand(CLI::App& app, int& exit_code);
void AddTokenizeCommand(CLI::App& app, int& exit_code);
// `data gen` and `data check`.
void AddDataCommand(CLI::App& app, int& exit_code);
// `grade`: JSON Lines of responses and ground truths through the math grader.
void AddGradeCommand(CLI::App& app, int& exit_code);
// `solve`: inference-time search over a problem file.
void AddSolveCommand(CLI::App& app, int& exit_code);
// `export`: a learner checkpoint as a Hugging Face model directory.
void AddExportCommand(CLI::App& app, int& exit_code);
// `sft`: the supervised warm start on a task family's worked solutions.
void AddSftCommand(CLI::App& app, int& exit_code);
#ifdef DEEPSEARCH_WITH_GRPC
// `actor`: the search actor process.
void AddActorCommand(CLI::App& app, int& exit_code);
// `learner`: the learner process (LearnerService and ProblemService).
void AddLearnerCommand(CLI::App& app, int& exit_code);
// `cache`: the cache service (CacheService: solutions and weight distribution).
void AddCacheCommand(CLI::App& app, int& exit_code);
// `submit`, `status` and `watch`: the ProblemService client.
void AddClientCommands(CLI::App& app, int& exit_code);
// `run`: warm start, cache service, learner and actors as processes on this machine.
void AddRunCommand(CLI::App& app, int& exit_code);
#endif

}  // namespace deepsearch::cli
