#include "common/core/progress.h"

#include <unistd.h>

#include <cmath>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace deepsearch {

std::string FormatDurationShort(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  const double seconds = absl::ToDoubleSeconds(d);
  if (seconds < 10) return absl::StrFormat("%.1fs", seconds);
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return absl::StrFormat("%ds", s);
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

namespace {

std::string FormatRate(double rate) {
  if (rate >= 100) return absl::StrFormat("%.0f", rate);
  if (rate >= 10) return absl::StrFormat("%.1f", rate);
  return absl::StrFormat("%.2f", rate);
}

}  // namespace

ProgressReporter::ProgressReporter(Options options)
    : label_(std::move(options.label)),
      unit_(std::move(options.unit)),
      tty_(options.tty.value_or(::isatty(STDERR_FILENO) == 1)),
      interval_(options.interval.value_or(tty_ ? absl::Milliseconds(500) : absl::Seconds(10))),
      rate_window_(options.rate_window),
      out_(options.out != nullptr ? options.out : &std::cerr),
      clock_(options.clock ? std::move(options.clock)
                           : std::function<absl::Time()>([] { return absl::Now(); })),
      start_(clock_()),
      total_(options.total),
      last_print_(start_) {
  absl::MutexLock lock(&mu_);
  samples_.emplace_back(start_, 0);
}

ProgressReporter::~ProgressReporter() { Finish(); }

void ProgressReporter::Add(int64_t n) {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  done_ += n;
  MaybePrintLocked(now);
}

void ProgressReporter::Update(int64_t done) {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  done_ = done;
  MaybePrintLocked(now);
}

void ProgressReporter::SetTotal(int64_t total) {
  absl::MutexLock lock(&mu_);
  total_ = total;
}

void ProgressReporter::SetStatus(std::string status) {
  absl::MutexLock lock(&mu_);
  status_ = std::move(status);
}

void ProgressReporter::Finish() {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  PrintLocked(now, /*final=*/true);
}

std::string ProgressReporter::Line() const {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  return LineLocked(now, finished_);
}

int64_t ProgressReporter::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

double ProgressReporter::RateLocked(absl::Time now) const {
  // Rate over the sample window: from the oldest kept sample to now.
  const auto& [then, done_then] = samples_.front();
  const double seconds = absl::ToDoubleSeconds(now - then);
  if (seconds <= 0) return 0.0;
  return static_cast<double>(done_ - done_then) / seconds;
}

void ProgressReporter::MaybePrintLocked(absl::Time now) {
  if (finished_ || now - last_print_ < interval_) return;
  PrintLocked(now, /*final=*/false);
}

void ProgressReporter::PrintLocked(absl::Time now, bool final) {
  const std::string line = LineLocked(now, final);
  if (tty_) {
    // Return to the line start, draw, clear the rest of the old line.
    *out_ << "\r" << line << "\x1b[K";
    if (final) *out_ << "\n";
  } else {
    *out_ << line << "\n";
  }
  out_->flush();
  last_print_ = now;
  samples_.emplace_back(now, done_);
  while (samples_.size() > 2 && now - samples_[1].first >= rate_window_) samples_.pop_front();
}

std::string ProgressReporter::LineLocked(absl::Time now, bool final) const {
  std::string line = absl::StrCat("[", label_, "] ", done_);
  if (total_ > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    absl::StrAppend(&line, "/", total_, absl::StrFormat(" %5.1f%%", 100.0 * fraction));
    if (tty_) {
      constexpr int kWidth = 20;
      const int filled = static_cast<int>(fraction * kWidth);
      absl::StrAppend(&line, " [", std::string(static_cast<size_t>(filled), '#'),
                      std::string(static_cast<size_t>(kWidth - filled), '.'), "]");
    }
  } else {
    absl::StrAppend(&line, " ", unit_);
  }
  const absl::Duration elapsed = now - start_;
  if (final) {
    const double seconds = absl::ToDoubleSeconds(elapsed);
    const double average = seconds > 0 ? static_cast<double>(done_) / seconds : 0.0;
    absl::StrAppend(&line, " ", FormatRate(average), " ", unit_, "/s, done in ",
                    FormatDurationShort(elapsed));
  } else {
    const double rate = RateLocked(now);
    absl::StrAppend(&line, " ", FormatRate(rate), " ", unit_, "/s");
    if (total_ > 0 && rate > 0 && done_ < total_) {
      const double eta = static_cast<double>(total_ - done_) / rate;
      absl::StrAppend(&line, " ETA ", FormatDurationShort(absl::Seconds(eta)));
    }
    absl::StrAppend(&line, " elapsed ", FormatDurationShort(elapsed));
  }
  if (!status_.empty()) absl::StrAppend(&line, " | ", status_);
  return line;
}

}  // namespace deepsearch
