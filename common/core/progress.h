// Progress reporting for long work: count, percentage, rate, ETA and a free-form status.
//
//   ProgressReporter progress({.label = "sft", .total = 2000, .unit = "step"});
//   for (...) { ...; progress.Add(1); progress.SetStatus(fmt::format("loss={:.3f}", loss)); }
//   progress.Finish();
//
// On a terminal it redraws one line in place with a bar, at most every `interval`:
//   [sft] 1234/2000  61.7% [############.......] 52.3 step/s ETA 15s | loss=0.312
// Elsewhere (CI logs, files) it prints a new line every `interval` (default 10 s) and one at
// Finish, with the elapsed time and the average rate.
//
// The rate is measured over the last `rate_window` (default 30 s), so the ETA follows
// speed changes; before the window fills it is the average since the start.
//
// Threading: every method is thread-safe (one internal mutex); Add is cheap when no line is
// due. Output goes to `out` (default std::cerr).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace deepsearch {

// "1h02m", "3m07s", "12s", "0.4s".
std::string FormatDurationShort(absl::Duration d);

class ProgressReporter {
 public:
  struct Options {
    std::string label;
    int64_t total = 0;  // 0: unknown (no percentage, bar or ETA)
    std::string unit = "it";
    // Between lines; unset: 0.5 s on a terminal, 10 s elsewhere.
    std::optional<absl::Duration> interval;
    absl::Duration rate_window = absl::Seconds(30);
    std::ostream* out = nullptr;        // default std::cerr
    std::optional<bool> tty;            // default: whether stderr is a terminal
    std::function<absl::Time()> clock;  // default absl::Now; tests inject a fake
  };

  explicit ProgressReporter(Options options);
  ~ProgressReporter();  // calls Finish() if it has not been called
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // Adds `n` units of work done; prints if a line is due.
  void Add(int64_t n = 1);
  // Sets the absolute amount done.
  void Update(int64_t done);
  void SetTotal(int64_t total);
  // Free text after the numbers ("loss=0.31 acc=42%").
  void SetStatus(std::string status);
  // Prints the final line (elapsed time, average rate) once.
  void Finish();

  // The line as it would be printed now, without the terminal control characters.
  std::string Line() const;
  int64_t done() const;

 private:
  std::string LineLocked(absl::Time now, bool final) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybePrintLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PrintLocked(absl::Time now, bool final) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  double RateLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time Now() const { return clock_(); }

  const std::string label_;
  const std::string unit_;
  const bool tty_;
  const absl::Duration interval_;
  const absl::Duration rate_window_;
  std::ostream* const out_;
  const std::function<absl::Time()> clock_;
  const absl::Time start_;

  mutable absl::Mutex mu_;
  int64_t total_ ABSL_GUARDED_BY(mu_);
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  std::string status_ ABSL_GUARDED_BY(mu_);
  absl::Time last_print_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // (time, done) samples, oldest first, spanning at most rate_window_.
  std::deque<std::pair<absl::Time, int64_t>> samples_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deepsearch
