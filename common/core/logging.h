// Logging and invariant checks.
//
// Logging: fmt-style, compile-time checked format strings, to stderr through spdlog:
//
//   log::Info("lease {} expired after {:.1f}s", id, seconds);
//
// Lines look like "2026-11-25 14:30:01.123 I learner] lease 7 expired after 30.0s".
// Thread-safe: any thread may log at any time. spdlog stays out of this header; only
// fmt's core is included.
//
// Checks: DS_CHECK(cond) << "context"; crashes at once with file, line, the condition and
// the streamed context. For broken invariants only, never for bad input (which gets an
// absl::Status). Active in every build type.
#pragma once

#include <algorithm>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/core.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#if !defined(ABSL_USES_STD_STRING_VIEW)
// Debian's Abseil has its own string_view; let log lines format it (status.message()).
// No format specs: "{}" only.
template <>
struct fmt::formatter<absl::string_view> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <typename FormatContext>
  auto format(absl::string_view s, FormatContext& ctx) const {
    return std::copy(s.begin(), s.end(), ctx.out());
  }
};
#endif

namespace deepsearch {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

// Parses "debug", "info", "warning" (or "warn"), "error", "off".
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);
std::string_view LogLevelName(LogLevel level);

// Sets the component name shown in every line and the minimum level. Call once at start-up
// (before other threads log); the DEEPSEARCH_LOG_LEVEL environment variable, when set,
// overrides `level`. Safe to call again (tests do).
void InitLogging(std::string_view component, LogLevel level);
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

namespace log_internal {
void Emit(LogLevel level, const std::string& message);
}  // namespace log_internal

namespace log {
template <typename... Args>
void Debug(fmt::format_string<Args...> format, Args&&... args) {
  if (GetLogLevel() > LogLevel::kDebug) return;
  log_internal::Emit(LogLevel::kDebug, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void Info(fmt::format_string<Args...> format, Args&&... args) {
  if (GetLogLevel() > LogLevel::kInfo) return;
  log_internal::Emit(LogLevel::kInfo, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void Warning(fmt::format_string<Args...> format, Args&&... args) {
  if (GetLogLevel() > LogLevel::kWarning) return;
  log_internal::Emit(LogLevel::kWarning, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void Error(fmt::format_string<Args...> format, Args&&... args) {
  if (GetLogLevel() > LogLevel::kError) return;
  log_internal::Emit(LogLevel::kError, fmt::format(format, std::forward<Args>(args)...));
}
}  // namespace log

namespace log_internal {
// Collects the streamed context of a failed check, then aborts in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};
// Turns the stream expression into void so both branches of ?: agree.
struct Voidify {
  void operator&(std::ostream&) {}
};
}  // namespace log_internal

}  // namespace deepsearch

// NOLINTBEGIN(bugprone-macro-parentheses): the macros end in a stream the caller appends to.
#define DS_CHECK(condition)                     \
  (condition)                                   \
      ? static_cast<void>(0)                    \
      : ::deepsearch::log_internal::Voidify() & \
            ::deepsearch::log_internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define DS_CHECK_OK(expr)                                                               \
  for (::absl::Status ds_check_status_ = (expr); !ds_check_status_.ok();)               \
  ::deepsearch::log_internal::CheckFailure(__FILE__, __LINE__, #expr " is OK").stream() \
      << ds_check_status_ << " "
// NOLINTEND(bugprone-macro-parentheses)
