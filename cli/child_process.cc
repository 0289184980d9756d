#include "cli/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <utility>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace deepsearch::cli {

absl::StatusOr<ChildProcess> ChildProcess::Start(std::string name, const std::string& executable,
                                                 const std::vector<std::string>& args,
                                                 const std::string& log_path) {
  // Everything the child needs is prepared before fork: after it, only async-signal-safe
  // calls until exec.
  std::vector<std::string> all = {executable};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = -1;
  if (!log_path.empty()) {
    log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return absl::InternalError(
          absl::StrCat("cannot open the log ", log_path, ": ", std::strerror(errno)));
    }
  }
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGINT);
  sigaddset(&unblock, SIGTERM);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    if (log_fd >= 0) ::close(log_fd);
    return absl::InternalError(absl::StrCat("cannot start ", name, ": ", std::strerror(error)));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    ::execv(executable.c_str(), argv.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  return ChildProcess(std::move(name), pid, log_path);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : name_(std::move(other.name_)),
      pid_(std::exchange(other.pid_, -1)),
      log_path_(std::move(other.log_path_)),
      status_(other.status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) Stop(absl::ZeroDuration());
    name_ = std::move(other.name_);
    pid_ = std::exchange(other.pid_, -1);
    log_path_ = std::move(other.log_path_);
    status_ = other.status_;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) Stop(absl::ZeroDuration());
}

std::optional<int> ChildProcess::Poll() {
  if (status_ || pid_ <= 0) return status_;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  } else if (r < 0 && errno == ECHILD) {
    status_ = 255;  // reaped elsewhere: it is gone
  }
  return status_;
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0 && !Poll()) ::kill(pid_, signal);
}

std::optional<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!Poll()) {
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return status_;
}

int ChildProcess::Stop(absl::Duration grace) {
  if (Poll()) return *status_;
  Signal(SIGTERM);
  if (std::optional<int> status = Wait(grace)) return *status;
  Signal(SIGKILL);
  return Wait(absl::InfiniteDuration()).value_or(137);
}

std::string ChildProcess::LogTail(int lines) const {
  if (log_path_.empty()) return "";
  std::ifstream in(log_path_);
  std::deque<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(line);
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  return absl::StrJoin(tail, "\n");
}

absl::StatusOr<std::string> SelfExecutable() {
  std::error_code error;
  const std::filesystem::path path = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot resolve /proc/self/exe: ", error.message()));
  }
  return path.string();
}

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int error = errno;
  ::close(fd);
  if (!ok) {
    return absl::InternalError(
        absl::StrCat("cannot find a free port on 127.0.0.1: ", std::strerror(error)));
  }
  return ntohs(addr.sin_port);
}

}  // namespace deepsearch::cli
