// Files written so that a crash never leaves a half-written one, and read whole.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace deepsearch {

// Writes the concatenation of `pieces` to `path` atomically: a temporary file in the same
// directory is written, fsync'ed and renamed over `path`, then the directory is fsync'ed.
// Readers see the old file or the new one, never a part. Blocks on disk I/O.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::vector<std::string_view>& pieces);
absl::Status WriteFileAtomically(const std::string& path, std::string_view content);

// The whole file; NotFound (or the errno's code) naming the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// "<what> <path>: <strerror>" with the absl code that matches `error_number`.
absl::Status ErrnoError(int error_number, std::string_view what, const std::string& path);

}  // namespace deepsearch
