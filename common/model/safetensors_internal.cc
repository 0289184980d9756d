#include "common/model/safetensors_internal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"

namespace deepsearch::safetensors_internal {
namespace {

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

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

size_t FindInvalidUtf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Length of the sequence and the allowed range of its second byte (RFC 3629, as
    // Rust's core::str::from_utf8 checks it).
    size_t length = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c == 0xE0) {
      length = 3, lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      length = 3;
    } else if (c == 0xED) {
      length = 3, hi = 0x9F;  // no UTF-16 surrogates
    } else if (c == 0xF0) {
      length = 4, lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      length = 4;
    } else if (c == 0xF4) {
      length = 4, hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return i;
    }
    if (i + length > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < length; ++k) {
      if (!IsContinuation(s[i + k])) return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

std::string JsonTypeName(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a fractional number";
    default:
      return "a binary value";
  }
}

absl::StatusOr<nlohmann::json> ParseStrictJson(std::string_view text, std::string_view what) {
  const std::string what_text(what);
  // nlohmann skips a UTF-8 byte-order mark; serde_json refuses it as an unexpected character.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    return absl::InvalidArgumentError(
        absl::StrCat(what_text, " is not valid JSON: it starts with a UTF-8 byte-order mark"));
  }

  // One frame per open container: objects remember their keys to catch repeats.
  struct Frame {
    bool is_object = false;
    std::string name;  // the key this object sits under, when its parent is an object
    std::set<std::string> keys;
  };
  std::vector<Frame> stack;
  std::string last_key;
  size_t max_nesting = 0;
  std::string duplicate_key, duplicate_parent;
  bool duplicate_at_top = false;
  bool found_duplicate = false;

  const nlohmann::json::parser_callback_t callback =
      [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using Event = nlohmann::json::parse_event_t;
        switch (event) {
          case Event::object_start:
          case Event::array_start: {
            Frame frame;
            frame.is_object = event == Event::object_start;
            if (!stack.empty() && stack.back().is_object) frame.name = last_key;
            stack.push_back(std::move(frame));
            max_nesting = std::max(max_nesting, stack.size());
            break;
          }
          case Event::object_end:
          case Event::array_end:
            if (!stack.empty()) stack.pop_back();
            break;
          case Event::key:
            last_key = parsed.get<std::string>();
            if (!stack.empty() && !stack.back().keys.insert(last_key).second && !found_duplicate) {
              found_duplicate = true;
              duplicate_key = last_key;
              duplicate_parent = stack.back().name;
              duplicate_at_top = stack.size() == 1;
            }
            break;
          case Event::value:
            break;
        }
        return true;
      };

  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::parse_error& e) {
    // Drop the "[json.exception.parse_error.101] " prefix: the rest says where and why.
    std::string message = e.what();
    if (const size_t close = message.find("] ");
        message.rfind("[json.exception", 0) == 0 && close != std::string::npos) {
      message.erase(0, close + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat(what_text, " is not valid JSON: ", message));
  }
  if (max_nesting > static_cast<size_t>(kMaxJsonNesting)) {
    return absl::InvalidArgumentError(absl::StrCat(what_text, " nests arrays and objects ",
                                                   max_nesting, " deep; the limit is ",
                                                   kMaxJsonNesting));
  }
  if (found_duplicate) {
    if (duplicate_at_top) {
      return absl::InvalidArgumentError(
          absl::StrCat("key '", duplicate_key, "' appears twice in ", what_text));
    }
    return absl::InvalidArgumentError(absl::StrCat("key '", duplicate_key, "' appears twice in ",
                                                   what_text, " entry '", duplicate_parent, "'"));
  }
  return value;
}

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

}  // namespace deepsearch::safetensors_internal
