// Running the `deepsearch` binary from tests, as a user would (DEEPSEARCH_CLI_PATH is set by
// CMake for the cli_test binary).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/wait.h>

namespace deepsearch::testing {

struct CliRun {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A file of the source tree (tests run from it, or DEEPSEARCH_SOURCE_DIR names it).
inline std::string SourcePath(const std::string& relative) {
  const char* root = std::getenv("DEEPSEARCH_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/" + relative;
}

// Runs `deepsearch ARGS` with `input` on stdin, keeping stdout and stderr apart.
inline CliRun RunDeepsearch(const std::string& args, const std::string& input = "") {
  static int counter = 0;
  const std::string base = ::testing::TempDir() + "/deepsearch_cli_" + std::to_string(::getpid()) +
                           "_" + std::to_string(counter++) + "_";
  const std::string in_path = base + "stdin", out_path = base + "stdout",
                    err_path = base + "stderr";
  {
    std::ofstream in(in_path, std::ios::binary);
    in << input;
  }
  const std::string command = std::string(DEEPSEARCH_CLI_PATH) + " " + args + " < " + in_path +
                              " > " + out_path + " 2> " + err_path;
  const int status = std::system(command.c_str());
  CliRun run{WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out_path), ReadFile(err_path)};
  std::remove(in_path.c_str());
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return run;
}

// Starts `deepsearch ARGS...` with stdout and stderr into `log`; returns its pid.
inline pid_t StartDeepsearch(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), DEEPSEARCH_CLI_PATH);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(DEEPSEARCH_CLI_PATH, argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits until `log` contains `text` (at most `seconds`); returns the log.
inline std::string WaitForLog(const std::string& log, const std::string& text, int seconds = 30) {
  std::string content;
  for (int i = 0; i < seconds * 20 && content.find(text) == std::string::npos; ++i) {
    ::usleep(50'000);
    content = ReadFile(log);
  }
  return content;
}

inline int ExitCode(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace deepsearch::testing
