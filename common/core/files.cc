#include "common/core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace deepsearch {
namespace {

// Closes a file descriptor on scope exit unless released.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  // Closes now and reports the result (close can report a deferred write error).
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

absl::Status WriteAll(int fd, std::string_view bytes, const std::string& temp_path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "cannot write", temp_path);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status FsyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot open directory", dir);
  FdCloser closer(fd);
  if (::fsync(fd) != 0) return ErrnoError(errno, "cannot fsync directory", dir);
  return absl::OkStatus();
}

}  // namespace

absl::Status ErrnoError(int error_number, std::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(error_number, absl::StrCat(std::string(what), " ", path));
}

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::vector<std::string_view>& pieces) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  if (!target.has_filename()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write ", path, ": not a file path"));
  }
  // A name no other writer in this process or another one uses at the same time.
  static std::atomic<uint64_t> counter{0};
  const std::string temp_path =
      (fs::path(dir) / absl::StrCat(".", target.filename().string(), ".tmp.", ::getpid(), ".",
                                    counter.fetch_add(1)))
          .string();
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) return ErrnoError(errno, "cannot create", temp_path);
  FdCloser closer(fd);

  absl::Status status = absl::OkStatus();
  for (std::string_view piece : pieces) {
    status = WriteAll(fd, piece, temp_path);
    if (!status.ok()) break;
  }
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError(errno, "cannot fsync", temp_path);
  if (status.ok() && closer.Close() != 0) status = ErrnoError(errno, "cannot close", temp_path);
  if (status.ok() && ::rename(temp_path.c_str(), path.c_str()) != 0) {
    status = ErrnoError(errno, absl::StrCat("cannot rename ", temp_path, " to"), path);
  }
  if (!status.ok()) {
    ::unlink(temp_path.c_str());
    return status;
  }
  return FsyncDirectory(dir);
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view content) {
  return WriteFileAtomically(path, std::vector<std::string_view>{content});
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError(errno, "cannot open", path);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return ErrnoError(errno, "cannot read", path);
  return s.str();
}

}  // namespace deepsearch
