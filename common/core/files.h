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
// Readers see the old file or the new one, never a part. Blocks on disk I/O. sync=false skips
// both fsyncs: readers still see all or nothing, but a machine crash may lose or tear the
// file (SyncFile makes it durable later). reuse: an existing file nobody reads any more, to
// overwrite in place instead of creating a new one (it is claimed by renaming it to the
// temporary name and locked exclusively (flock); when either fails, because another writer
// claimed it first or a reader still holds a shared lock on it, a new file is created): its
// page-cache pages are written over rather than allocated anew, which is most
// of the cost of writing a large file to a fresh one on some machines (docs/BENCHMARKS.md).
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::vector<std::string_view>& pieces, bool sync = true,
                                 const std::string& reuse = "");
absl::Status WriteFileAtomically(const std::string& path, std::string_view content);

// fsyncs a directory, so that the entries created or renamed in it are durable.
absl::Status SyncDirectory(const std::string& dir);
// fsyncs a file's data and metadata (not its directory entry).
absl::Status SyncFile(const std::string& path);

// Puts the complete directory `temp` in place of `target` (which may not exist): syncs
// `temp`, moves the old `target` aside, renames `temp` to `target`, removes the old one and
// syncs the parent. A crash leaves the old directory, the new one, or the old one under its
// ".old.<pid>" name next to the new temp; never a mix at `target`. `temp` must be on the same
// file system (next to `target`).
absl::Status ReplaceDirectory(const std::string& temp, const std::string& target);
// An empty directory next to `target` ("<target>.tmp.<pid>", emptied if it was left by an
// earlier process of this pid), to fill and hand to ReplaceDirectory.
absl::StatusOr<std::string> MakeScratchDirectory(const std::string& target);

// The whole file; NotFound (or the errno's code) naming the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// "<what> <path>: <strerror>" with the absl code that matches `error_number`.
absl::Status ErrnoError(int error_number, std::string_view what, const std::string& path);

}  // namespace deepsearch
