// Typed, validated configuration from YAML (or JSON, which is YAML) files.
//
// A config struct describes itself once, in a Bind method; the same description parses a
// file, validates it, prints the effective values and documents every key:
//
//   struct ServerConfig {
//     std::string listen = "127.0.0.1:50051";
//     int64_t max_message_bytes = 64 << 20;
//     absl::Duration lease_timeout = absl::Seconds(60);
//     void Bind(ConfigBinder& b) {
//       b.Field("listen", listen, "host:port to listen on").NonEmpty();
//       b.Field("max_message_bytes", max_message_bytes, "largest message").Range(1024, 1 << 30);
//       b.Field("lease_timeout", lease_timeout, "lease deadline").Positive();
//     }
//   };
//   absl::StatusOr<ServerConfig> c = LoadConfigFile<ServerConfig>("server.yaml", overrides);
//
// Every error names the full key, what was expected and what was found, with the line
// ("server.max_message_bytes (line 4): expected an integer in [1024, 1073741824], got -5").
// All errors of a file are reported at once; unknown keys are errors (with a suggestion),
// so a typo never silently keeps a default. Keys absent from the file keep the struct's
// defaults.
//
// Supported field types: bool, int32_t, int64_t, uint64_t, float, double, std::string,
// absl::Duration ("30s", "1.5m", "250ms"), std::vector of int64_t / double / std::string,
// enums (through Enum with a name table) and nested sections (any type with Bind).
//
// Not thread-safe: a binder is used by one thread for one pass.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace deepsearch {

class ConfigBinder;

template <typename T>
absl::StatusOr<T> ParseConfigText(std::string_view text, std::string_view source,
                                  const std::vector<std::string>& overrides = {});
template <typename T>
std::string DocumentConfig(const T& config);

// Fluent checks on one field, run right after it is bound: `b.Field(...).Range(0, 1)`.
// In parse mode a failed check records an error; in document mode the check is described.
template <typename T>
class FieldChecks {
 public:
  FieldChecks(ConfigBinder* binder, T* value) : binder_(binder), value_(value) {}

  // Inclusive range [lo, hi].
  FieldChecks& Range(T lo, T hi);
  FieldChecks& Min(T lo);
  FieldChecks& Max(T hi);
  // > 0 (zero duration / zero number refused).
  FieldChecks& Positive();
  // Strings and lists: at least one character / element.
  FieldChecks& NonEmpty();

 private:
  ConfigBinder* binder_;
  T* value_;
};

class ConfigBinder {
 public:
  enum class Mode {
    kParse,     // read values from a YAML tree into the struct, recording errors
    kDocument,  // render the struct's current values as commented YAML
  };

  ~ConfigBinder();
  ConfigBinder(const ConfigBinder&) = delete;
  ConfigBinder& operator=(const ConfigBinder&) = delete;

  Mode mode() const { return mode_; }

  FieldChecks<bool> Field(std::string_view key, bool& value, std::string_view help);
  FieldChecks<int32_t> Field(std::string_view key, int32_t& value, std::string_view help);
  FieldChecks<int64_t> Field(std::string_view key, int64_t& value, std::string_view help);
  FieldChecks<uint64_t> Field(std::string_view key, uint64_t& value, std::string_view help);
  FieldChecks<float> Field(std::string_view key, float& value, std::string_view help);
  FieldChecks<double> Field(std::string_view key, double& value, std::string_view help);
  FieldChecks<std::string> Field(std::string_view key, std::string& value, std::string_view help);
  FieldChecks<absl::Duration> Field(std::string_view key, absl::Duration& value,
                                    std::string_view help);
  FieldChecks<std::vector<int64_t>> Field(std::string_view key, std::vector<int64_t>& value,
                                          std::string_view help);
  FieldChecks<std::vector<double>> Field(std::string_view key, std::vector<double>& value,
                                         std::string_view help);
  FieldChecks<std::vector<std::string>> Field(std::string_view key, std::vector<std::string>& value,
                                              std::string_view help);

  // An enum stored as one of the given names.
  template <typename E>
  void Enum(std::string_view key, E& value,
            std::initializer_list<std::pair<std::string_view, E>> names, std::string_view help) {
    std::vector<std::string> all;
    std::string current;
    for (const auto& [name, e] : names) {
      all.emplace_back(name);
      if (e == value) current = std::string(name);
    }
    int index = BindChoice(key, current, all, help);
    if (index >= 0) value = (names.begin() + index)->second;
  }

  // A nested section: T::Bind(ConfigBinder&) is called with the binder scoped to `key`.
  template <typename T>
  void Section(std::string_view key, T& value, std::string_view help) {
    if (EnterSection(key, help)) {
      value.Bind(*this);
      LeaveSection();
    }
  }

  // A check across fields: records "<section>.<key>: <message>" when `ok` is false.
  void Require(bool ok, std::string_view key, std::string_view message);

  // Implementation hooks for FieldChecks; not for direct use.
  struct FieldState;
  FieldState* last_field() { return last_field_; }
  void FailCheck(std::string_view expectation, const std::string& got);
  void DescribeCheck(std::string constraint);

 private:
  template <typename T>
  friend absl::StatusOr<T> ParseConfigText(std::string_view, std::string_view,
                                           const std::vector<std::string>&);
  template <typename T>
  friend std::string DocumentConfig(const T&);
  friend class ConfigBinderTestPeer;
  struct Impl;

  explicit ConfigBinder(Mode mode);
  // Parses YAML text and applies "a.b=value" overrides; parse mode only.
  absl::Status Load(std::string_view text, std::string_view source,
                    const std::vector<std::string>& overrides);
  // Unknown keys at the root, then every error as one InvalidArgument status.
  absl::Status Finish();
  std::string Rendered() const;

  bool EnterSection(std::string_view key, std::string_view help);
  void LeaveSection();
  int BindChoice(std::string_view key, const std::string& current,
                 const std::vector<std::string>& names, std::string_view help);
  template <typename T>
  FieldChecks<T> BindScalar(std::string_view key, T& value, std::string_view help);
  template <typename T>
  FieldChecks<std::vector<T>> BindList(std::string_view key, std::vector<T>& value,
                                       std::string_view help);

  Mode mode_;
  std::unique_ptr<Impl> impl_;
  FieldState* last_field_ = nullptr;
};

// The state FieldChecks reads: whether the field was checked, its full path and line.
struct ConfigBinder::FieldState {
  bool check = false;  // parse mode: the value came from the file and parsed
  std::string path;    // "server.max_message_bytes"
  int line = -1;       // 1-based, -1 when unknown
};

// Parses `text` (YAML or JSON) into T, applying overrides ("search.max_depth=16", the value
// parsed as YAML) first. `source` names the input in errors (a file path, "<stdin>").
template <typename T>
absl::StatusOr<T> ParseConfigText(std::string_view text, std::string_view source,
                                  const std::vector<std::string>& overrides) {
  ConfigBinder binder(ConfigBinder::Mode::kParse);
  if (absl::Status s = binder.Load(text, source, overrides); !s.ok()) return s;
  T config;
  config.Bind(binder);
  if (absl::Status s = binder.Finish(); !s.ok()) return s;
  return config;
}

// Reads a file and parses it with ParseConfigText. NotFound when the file cannot be read.
absl::StatusOr<std::string> ReadConfigFile(std::string_view path);

template <typename T>
absl::StatusOr<T> LoadConfigFile(std::string_view path,
                                 const std::vector<std::string>& overrides = {}) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return ParseConfigText<T>(*text, path, overrides);
}

// Renders `config` as YAML with every key, its current value and a comment giving its help
// text and constraints. Parsing the result gives back an equal config.
template <typename T>
std::string DocumentConfig(const T& config) {
  ConfigBinder binder(ConfigBinder::Mode::kDocument);
  T copy = config;
  copy.Bind(binder);
  return binder.Rendered();
}

// ---- FieldChecks implementation -------------------------------------------------------

namespace config_internal {
std::string Show(bool v);
std::string Show(int64_t v);
std::string Show(uint64_t v);
std::string Show(double v);
std::string Show(const std::string& v);
std::string Show(absl::Duration v);
template <typename T>
std::string Show(const std::vector<T>& v) {
  return absl::StrCat("a list of ", v.size());
}
inline std::string Show(int32_t v) { return Show(static_cast<int64_t>(v)); }
inline std::string Show(float v) { return Show(static_cast<double>(v)); }

template <typename T>
constexpr const char* Noun() {
  if constexpr (std::is_same_v<T, absl::Duration>) {
    return "a duration";
  } else if constexpr (std::is_integral_v<T>) {
    return "an integer";
  } else {
    return "a number";
  }
}
template <typename T>
bool IsPositive(const T& v) {
  if constexpr (std::is_same_v<T, absl::Duration>) {
    return v > absl::ZeroDuration();
  } else {
    return v > T{0};
  }
}
}  // namespace config_internal

template <typename T>
FieldChecks<T>& FieldChecks<T>::Range(T lo, T hi) {
  using config_internal::Show;
  std::string expectation =
      absl::StrCat(config_internal::Noun<T>(), " in [", Show(lo), ", ", Show(hi), "]");
  if (binder_->mode() == ConfigBinder::Mode::kDocument) {
    binder_->DescribeCheck(absl::StrCat("range [", Show(lo), ", ", Show(hi), "]"));
  } else if (binder_->last_field()->check && (*value_ < lo || *value_ > hi)) {
    binder_->FailCheck(expectation, Show(*value_));
  }
  return *this;
}

template <typename T>
FieldChecks<T>& FieldChecks<T>::Min(T lo) {
  using config_internal::Show;
  if (binder_->mode() == ConfigBinder::Mode::kDocument) {
    binder_->DescribeCheck(absl::StrCat(">= ", Show(lo)));
  } else if (binder_->last_field()->check && *value_ < lo) {
    binder_->FailCheck(absl::StrCat(config_internal::Noun<T>(), " >= ", Show(lo)), Show(*value_));
  }
  return *this;
}

template <typename T>
FieldChecks<T>& FieldChecks<T>::Max(T hi) {
  using config_internal::Show;
  if (binder_->mode() == ConfigBinder::Mode::kDocument) {
    binder_->DescribeCheck(absl::StrCat("<= ", Show(hi)));
  } else if (binder_->last_field()->check && *value_ > hi) {
    binder_->FailCheck(absl::StrCat(config_internal::Noun<T>(), " <= ", Show(hi)), Show(*value_));
  }
  return *this;
}

template <typename T>
FieldChecks<T>& FieldChecks<T>::Positive() {
  if (binder_->mode() == ConfigBinder::Mode::kDocument) {
    binder_->DescribeCheck("> 0");
  } else if (binder_->last_field()->check && !config_internal::IsPositive(*value_)) {
    binder_->FailCheck(absl::StrCat(config_internal::Noun<T>(), " > 0"),
                       config_internal::Show(*value_));
  }
  return *this;
}

template <typename T>
FieldChecks<T>& FieldChecks<T>::NonEmpty() {
  if (binder_->mode() == ConfigBinder::Mode::kDocument) {
    binder_->DescribeCheck("non-empty");
  } else if (binder_->last_field()->check && value_->empty()) {
    if constexpr (std::is_same_v<T, std::string>) {
      binder_->FailCheck("a non-empty string", "an empty string");
    } else {
      binder_->FailCheck("a non-empty list", "an empty list");
    }
  }
  return *this;
}

}  // namespace deepsearch
