#include "common/core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/file.h>

#include "absl/strings/str_cat.h"

#include "common/core/status.h"

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

// Writes `bytes` at the end of what `*written` counts, in blocks; after each block it starts the
// disk write of the one before (sync_file_range, which does not wait for it), so that a large
// file is mostly on disk by the time anyone fsyncs it, at little cost to the writer.
absl::Status WriteAll(int fd, std::string_view bytes, const std::string& temp_path,
                      uint64_t* written) {
  constexpr size_t kBlock = size_t{16} << 20;
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), std::min(bytes.size(), kBlock));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "cannot write", temp_path);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    const uint64_t before = *written / kBlock * kBlock;  // the block boundary before this write
    *written += static_cast<uint64_t>(n);
    if (before >= kBlock && *written / kBlock * kBlock > before) {
      ::sync_file_range(fd, static_cast<off_t>(before - kBlock), kBlock, SYNC_FILE_RANGE_WRITE);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot open directory", dir);
  FdCloser closer(fd);
  if (::fsync(fd) != 0) return ErrnoError(errno, "cannot fsync directory", dir);
  return absl::OkStatus();
}

absl::Status ReplaceDirectory(const std::string& temp, const std::string& target) {
  namespace fs = std::filesystem;
  DS_RETURN_IF_ERROR(SyncDirectory(temp));
  const fs::path target_path = fs::absolute(fs::path(target)).lexically_normal();
  const fs::path old = fs::path(absl::StrCat(target_path.string(), ".old.", ::getpid()));
  std::error_code error;
  fs::remove_all(old, error);
  if (fs::exists(target_path)) {
    fs::rename(target_path, old, error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("cannot move ", target_path.string(), " aside: ", error.message()));
    }
  }
  fs::rename(temp, target_path, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot rename ", temp, " to ", target_path.string(), ": ", error.message()));
  }
  fs::remove_all(old, error);
  return SyncDirectory(target_path.parent_path().string());
}

absl::StatusOr<std::string> MakeScratchDirectory(const std::string& target) {
  namespace fs = std::filesystem;
  const fs::path path = fs::absolute(fs::path(target)).lexically_normal();
  const std::string temp = absl::StrCat(path.string(), ".tmp.", ::getpid());
  std::error_code error;
  fs::remove_all(temp, error);
  fs::create_directories(temp, error);
  if (error)
    return absl::InternalError(absl::StrCat("cannot create ", temp, ": ", error.message()));
  return temp;
}

absl::Status ErrnoError(int error_number, std::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(error_number, absl::StrCat(std::string(what), " ", path));
}

absl::Status SyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot open", path);
  FdCloser closer(fd);
  if (::fsync(fd) != 0) return ErrnoError(errno, "cannot fsync", path);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::vector<std::string_view>& pieces, bool sync,
                                 const std::string& reuse) {
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
  int fd = -1;
  if (!reuse.empty() && ::rename(reuse.c_str(), temp_path.c_str()) == 0) {
    // Overwritten only under an exclusive flock: a reader that still maps it holds a shared one.
    fd = ::open(temp_path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      fd = -1;
    }
    if (fd < 0) ::unlink(temp_path.c_str());
  }
  if (fd < 0) fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) return ErrnoError(errno, "cannot create", temp_path);
  FdCloser closer(fd);

  absl::Status status = absl::OkStatus();
  uint64_t written = 0;
  for (std::string_view piece : pieces) {
    status = WriteAll(fd, piece, temp_path, &written);
    if (!status.ok()) break;
  }
  // A reused file may have been longer.
  if (status.ok() && ::ftruncate(fd, static_cast<off_t>(written)) != 0) {
    status = ErrnoError(errno, "cannot truncate", temp_path);
  }
  if (status.ok() && sync && ::fsync(fd) != 0)
    status = ErrnoError(errno, "cannot fsync", temp_path);
  if (status.ok() && closer.Close() != 0) status = ErrnoError(errno, "cannot close", temp_path);
  if (status.ok() && ::rename(temp_path.c_str(), path.c_str()) != 0) {
    status = ErrnoError(errno, absl::StrCat("cannot rename ", temp_path, " to"), path);
  }
  if (!status.ok()) {
    ::unlink(temp_path.c_str());
    return status;
  }
  return sync ? SyncDirectory(dir) : absl::OkStatus();
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
