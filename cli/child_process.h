// Child processes of `deepsearch run`: the cache service, the learner, the actors and the
// warm start, each a `deepsearch` subcommand started from this same executable.
//
// A child runs in its own process group with SIGINT and SIGTERM unblocked, so a Ctrl-C at
// the terminal reaches only the parent, which then stops the children in order. Its stdout
// and stderr go to a log file (appended) or stay on the parent's.
//
// Thread-compatible; the destructor kills (SIGKILL) and reaps a child still running.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace deepsearch::cli {

class ChildProcess {
 public:
  // Starts `executable` with `args` (argv[1...]); log_path empty: the parent's stdout and
  // stderr. Errors: the log cannot be opened, fork fails.
  static absl::StatusOr<ChildProcess> Start(std::string name, const std::string& executable,
                                            const std::vector<std::string>& args,
                                            const std::string& log_path);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // The exit status once it has ended without waiting: the exit code, or 128 + the signal
  // number; nullopt while it runs.
  std::optional<int> Poll();
  // Sends `signal` (a no-op once it has ended).
  void Signal(int signal);
  // Waits up to `timeout` for it to end; nullopt if it still runs.
  std::optional<int> Wait(absl::Duration timeout);
  // SIGTERM, up to `grace` for it to end, then SIGKILL. Returns the exit status.
  int Stop(absl::Duration grace);

  // The last `lines` lines of its log ("" without one), for error messages.
  std::string LogTail(int lines = 20) const;

 private:
  ChildProcess(std::string name, pid_t pid, std::string log_path)
      : name_(std::move(name)), pid_(pid), log_path_(std::move(log_path)) {}

  std::string name_;
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> status_;
};

// The path of the running executable (/proc/self/exe resolved), to start children from.
absl::StatusOr<std::string> SelfExecutable();

// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice).
absl::StatusOr<int> FreeLoopbackPort();

}  // namespace deepsearch::cli
