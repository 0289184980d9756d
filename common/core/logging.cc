#include "common/core/logging.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace deepsearch {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarning:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> MakeLogger(std::string_view component) {
  auto logger = std::make_shared<spdlog::logger>(std::string(component),
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  // 2026-11-25 14:30:01.123 I learner] message
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %L %n] %v");
  logger->set_level(spdlog::level::trace);  // filtering happens in GetLogLevel()
  logger->flush_on(spdlog::level::trace);
  return logger;
}

// The process-wide logger; InitLogging replaces it. Readers copy the pointer under the lock
// and log outside it (the sink has its own lock).
ABSL_CONST_INIT absl::Mutex g_logger_mu(absl::kConstInit);
std::shared_ptr<spdlog::logger>& LoggerSlot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_logger_mu) {
  static auto* logger = new std::shared_ptr<spdlog::logger>(MakeLogger("deepsearch"));
  return *logger;
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(std::string(name));
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  if (lower == "off") return LogLevel::kOff;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level '", std::string(name), "' (expected debug, info, warning, error or off)"));
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
    case LogLevel::kOff:
      return "off";
  }
  return "info";
}

void InitLogging(std::string_view component, LogLevel level) {
  if (const char* env = std::getenv("DEEPSEARCH_LOG_LEVEL"); env != nullptr && *env != '\0') {
    if (auto parsed = ParseLogLevel(env); parsed.ok()) level = *parsed;
  }
  auto logger = MakeLogger(component);
  {
    absl::MutexLock lock(&g_logger_mu);
    LoggerSlot() = std::move(logger);
  }
  g_level.store(level);
}

void SetLogLevel(LogLevel level) { g_level.store(level); }
LogLevel GetLogLevel() { return g_level.load(std::memory_order_relaxed); }

namespace log_internal {

void Emit(LogLevel level, const std::string& message) {
  std::shared_ptr<spdlog::logger> logger;
  {
    absl::MutexLock lock(&g_logger_mu);
    logger = LoggerSlot();
  }
  logger->log(ToSpdlog(level), message);
}

CheckFailure::CheckFailure(const char* file, int line, const char* condition) {
  stream_ << "Check failed at " << file << ":" << line << ": " << condition << " ";
}

CheckFailure::~CheckFailure() {
  Emit(LogLevel::kError, stream_.str());
  std::abort();
}

}  // namespace log_internal
}  // namespace deepsearch
