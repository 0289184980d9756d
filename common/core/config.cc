// The config binder (config.h): parse, override and document modes over one binding.
#include "common/core/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "common/core/config_values.h"
#include "common/core/logging.h"

namespace deepsearch {
namespace {

using config_internal::Decode;
using config_internal::Describe;
using config_internal::ListNounOf;
using config_internal::NounOf;
using config_internal::Quote;
using config_internal::Render;

// Levenshtein distance, for "did you mean" suggestions.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// One rendered key in document mode.
struct DocEntry {
  std::string key;
  std::string value;  // empty for a section
  std::string help;
  std::vector<std::string> constraints;
  std::vector<DocEntry> children;
  bool is_section = false;
};

void RenderEntries(const std::vector<DocEntry>& entries, int indent, std::string& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (const DocEntry& e : entries) {
    std::string comment = e.help;
    if (!e.constraints.empty()) {
      absl::StrAppend(&comment, " (", absl::StrJoin(e.constraints, "; "), ")");
    }
    if (!comment.empty()) absl::StrAppend(&out, pad, "# ", comment, "\n");
    if (e.is_section) {
      absl::StrAppend(&out, pad, e.key, ":\n");
      RenderEntries(e.children, indent + 2, out);
    } else {
      absl::StrAppend(&out, pad, e.key, ": ", e.value, "\n");
    }
  }
}

}  // namespace

struct ConfigBinder::Impl {
  struct Frame {
    YAML::Node node;  // the map being read (parse mode); may be undefined or null
    std::string prefix;
    std::vector<std::string> known_keys;
    std::vector<DocEntry> entries;  // document mode
  };
  std::string source;
  std::vector<Frame> frames;
  // Values that came from --set overrides rather than the file: they have no line.
  std::vector<YAML::Node> override_values;
  std::vector<std::string> errors;
  FieldState field;

  std::string PathOf(std::string_view key) const {
    const std::string& prefix = frames.back().prefix;
    return prefix.empty() ? std::string(key) : absl::StrCat(prefix, ".", std::string(key));
  }

  static bool Within(const YAML::Node& root, const YAML::Node& node) {
    if (root.is(node)) return true;
    if (root.IsSequence()) {
      for (const YAML::Node& child : root) {
        if (Within(child, node)) return true;
      }
    } else if (root.IsMap()) {
      for (const auto& item : root) {
        if (Within(item.second, node)) return true;
      }
    }
    return false;
  }

  // 1-based line of `node` in the file; kFromOverride for a --set value; -1 if unknown.
  static constexpr int kFromOverride = -2;
  int LineOf(const YAML::Node& node) const {
    for (const YAML::Node& value : override_values) {
      if (Within(value, node)) return kFromOverride;
    }
    const YAML::Mark mark = node.Mark();
    return mark.line >= 0 ? mark.line + 1 : -1;
  }

  static std::string Where(const std::string& path, int line) {
    if (line == kFromOverride) return absl::StrCat(path, " (--set)");
    return line > 0 ? absl::StrCat(path, " (line ", line, ")") : path;
  }

  void AddError(const std::string& path, int line, std::string_view message) {
    errors.push_back(absl::StrCat(Where(path, line), ": ", std::string(message)));
  }

  // The child node for `key` in the current frame, or an undefined node. Never inserts.
  YAML::Node Child(std::string_view key) {
    Frame& frame = frames.back();
    frame.known_keys.emplace_back(key);
    if (!frame.node.IsDefined() || !frame.node.IsMap())
      return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& map = frame.node;
    for (const auto& item : map) {
      if (item.first.IsScalar() && item.first.Scalar() == key) return item.second;
    }
    return YAML::Node(YAML::NodeType::Undefined);
  }

  void ReportUnknownKeys() {
    Frame& frame = frames.back();
    if (!frame.node.IsDefined() || !frame.node.IsMap()) return;
    for (const auto& item : frame.node) {
      const std::string key =
          item.first.IsScalar() ? item.first.Scalar() : std::string("<non-scalar key>");
      if (std::find(frame.known_keys.begin(), frame.known_keys.end(), key) !=
          frame.known_keys.end()) {
        continue;
      }
      std::string best;
      size_t best_distance = std::numeric_limits<size_t>::max();
      for (const std::string& known : frame.known_keys) {
        size_t d = EditDistance(absl::AsciiStrToLower(key), absl::AsciiStrToLower(known));
        if (d < best_distance) {
          best_distance = d;
          best = known;
        }
      }
      std::string message = "unknown key";
      if (!best.empty() && best_distance <= std::max<size_t>(2, best.size() / 3)) {
        absl::StrAppend(&message, " (did you mean '", best, "'?)");
      } else if (!frame.known_keys.empty()) {
        absl::StrAppend(&message, " (known keys: ", absl::StrJoin(frame.known_keys, ", "), ")");
      }
      AddError(PathOf(key), LineOf(item.first), message);
    }
  }

  DocEntry& AddDoc(std::string_view key, std::string value, std::string_view help) {
    DocEntry& e = frames.back().entries.emplace_back();
    e.key = std::string(key);
    e.value = std::move(value);
    e.help = std::string(help);
    return e;
  }
};

ConfigBinder::ConfigBinder(Mode mode) : mode_(mode), impl_(std::make_unique<Impl>()) {
  impl_->frames.emplace_back();
}

ConfigBinder::~ConfigBinder() = default;

absl::Status ConfigBinder::Load(std::string_view text, std::string_view source,
                                const std::vector<std::string>& overrides) {
  impl_->source = std::string(source);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(absl::StrCat("config ", impl_->source,
                                                   ": YAML syntax error at line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  }
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config ", impl_->source, ": the top level must be a map of keys, got ", Describe(root)));
  }
  for (const std::string& override_text : overrides) {
    const size_t eq = override_text.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "override '", override_text, "': expected KEY=VALUE, e.g. search.max_depth=16"));
    }
    const std::vector<std::string> parts = absl::StrSplit(override_text.substr(0, eq), '.');
    YAML::Node value;
    try {
      value = YAML::Load(override_text.substr(eq + 1));
    } catch (const YAML::ParserException& e) {
      return absl::InvalidArgumentError(absl::StrCat("override '", override_text, "': ", e.msg));
    }
    YAML::Node node = root;  // YAML::Node is a handle: assignment below rebinds `node`
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (parts[i].empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("override '", override_text, "': empty key segment"));
      }
      YAML::Node next = node[parts[i]];
      if (!next.IsDefined() || next.IsNull()) {
        node[parts[i]] = YAML::Node(YAML::NodeType::Map);
        next.reset(node[parts[i]]);
      } else if (!next.IsMap()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "override '", override_text, "': '",
            absl::StrJoin(parts.begin(), parts.begin() + i + 1, "."), "' is not a section"));
      }
      node.reset(next);
    }
    if (parts.back().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("override '", override_text, "': empty key segment"));
    }
    node[parts.back()] = value;
    impl_->override_values.push_back(value);
  }
  impl_->frames.back().node = root;
  return absl::OkStatus();
}

absl::Status ConfigBinder::Finish() {
  impl_->ReportUnknownKeys();
  if (impl_->errors.empty()) return absl::OkStatus();
  const size_t n = impl_->errors.size();
  return absl::InvalidArgumentError(absl::StrCat("config ", impl_->source, ": ", n,
                                                 n == 1 ? " error" : " errors", "\n  ",
                                                 absl::StrJoin(impl_->errors, "\n  ")));
}

std::string ConfigBinder::Rendered() const {
  std::string out;
  RenderEntries(impl_->frames.front().entries, 0, out);
  return out;
}

template <typename T>
FieldChecks<T> ConfigBinder::BindScalar(std::string_view key, T& value, std::string_view help) {
  Impl& impl = *impl_;
  impl.field = FieldState{};
  impl.field.path = impl.PathOf(key);
  last_field_ = &impl.field;
  if (mode_ == Mode::kDocument) {
    impl.AddDoc(key, Render(value), help);
    return FieldChecks<T>(this, &value);
  }
  YAML::Node child = impl.Child(key);
  if (!child.IsDefined()) return FieldChecks<T>(this, &value);
  impl.field.line = impl.LineOf(child);
  T parsed{};
  if (Decode(child, parsed)) {
    value = std::move(parsed);
    impl.field.check = true;
  } else {
    impl.AddError(impl.field.path, impl.field.line,
                  absl::StrCat("expected ", NounOf<T>(), ", got ", Describe(child)));
  }
  return FieldChecks<T>(this, &value);
}

template <typename T>
FieldChecks<std::vector<T>> ConfigBinder::BindList(std::string_view key, std::vector<T>& value,
                                                   std::string_view help) {
  Impl& impl = *impl_;
  impl.field = FieldState{};
  impl.field.path = impl.PathOf(key);
  last_field_ = &impl.field;
  if (mode_ == Mode::kDocument) {
    impl.AddDoc(key, Render(value), help);
    return FieldChecks<std::vector<T>>(this, &value);
  }
  YAML::Node child = impl.Child(key);
  if (!child.IsDefined()) return FieldChecks<std::vector<T>>(this, &value);
  impl.field.line = impl.LineOf(child);
  if (child.IsNull()) {
    value.clear();
    impl.field.check = true;
  } else if (!child.IsSequence()) {
    impl.AddError(impl.field.path, impl.field.line,
                  absl::StrCat("expected ", ListNounOf<T>(), ", got ", Describe(child)));
  } else {
    std::vector<T> parsed;
    bool ok = true;
    for (size_t i = 0; i < child.size(); ++i) {
      T item{};
      if (Decode(child[i], item)) {
        parsed.push_back(std::move(item));
        continue;
      }
      impl.AddError(absl::StrCat(impl.field.path, "[", i, "]"), impl.LineOf(child[i]),
                    absl::StrCat("expected ", NounOf<T>(), ", got ", Describe(child[i])));
      ok = false;
    }
    if (ok) {
      value = std::move(parsed);
      impl.field.check = true;
    }
  }
  return FieldChecks<std::vector<T>>(this, &value);
}

FieldChecks<bool> ConfigBinder::Field(std::string_view key, bool& value, std::string_view help) {
  return BindScalar(key, value, help);
}

FieldChecks<int32_t> ConfigBinder::Field(std::string_view key, int32_t& value,
                                         std::string_view help) {
  int64_t wide = value;
  FieldChecks<int64_t> checks = BindScalar(key, wide, help);
  (void)checks;
  if (mode_ == Mode::kParse && impl_->field.check) {
    if (wide < std::numeric_limits<int32_t>::min() || wide > std::numeric_limits<int32_t>::max()) {
      impl_->AddError(impl_->field.path, impl_->field.line,
                      absl::StrCat("expected an integer in [", std::numeric_limits<int32_t>::min(),
                                   ", ", std::numeric_limits<int32_t>::max(), "], got ", wide));
      impl_->field.check = false;
    } else {
      value = static_cast<int32_t>(wide);
    }
  }
  return FieldChecks<int32_t>(this, &value);
}

FieldChecks<int64_t> ConfigBinder::Field(std::string_view key, int64_t& value,
                                         std::string_view help) {
  return BindScalar(key, value, help);
}

FieldChecks<uint64_t> ConfigBinder::Field(std::string_view key, uint64_t& value,
                                          std::string_view help) {
  return BindScalar(key, value, help);
}

FieldChecks<float> ConfigBinder::Field(std::string_view key, float& value, std::string_view help) {
  double wide = value;
  BindScalar(key, wide, help);
  if (mode_ == Mode::kParse && impl_->field.check) {
    if (std::fabs(wide) > std::numeric_limits<float>::max()) {
      impl_->AddError(
          impl_->field.path, impl_->field.line,
          absl::StrCat("expected a number within float range, got ", fmt::format("{}", wide)));
      impl_->field.check = false;
    } else {
      value = static_cast<float>(wide);
    }
  }
  return FieldChecks<float>(this, &value);
}

FieldChecks<double> ConfigBinder::Field(std::string_view key, double& value,
                                        std::string_view help) {
  return BindScalar(key, value, help);
}

FieldChecks<std::string> ConfigBinder::Field(std::string_view key, std::string& value,
                                             std::string_view help) {
  return BindScalar(key, value, help);
}

FieldChecks<absl::Duration> ConfigBinder::Field(std::string_view key, absl::Duration& value,
                                                std::string_view help) {
  return BindScalar(key, value, help);
}

FieldChecks<std::vector<int64_t>> ConfigBinder::Field(std::string_view key,
                                                      std::vector<int64_t>& value,
                                                      std::string_view help) {
  return BindList(key, value, help);
}

FieldChecks<std::vector<double>> ConfigBinder::Field(std::string_view key,
                                                     std::vector<double>& value,
                                                     std::string_view help) {
  return BindList(key, value, help);
}

FieldChecks<std::vector<std::string>> ConfigBinder::Field(std::string_view key,
                                                          std::vector<std::string>& value,
                                                          std::string_view help) {
  return BindList(key, value, help);
}

int ConfigBinder::BindChoice(std::string_view key, const std::string& current,
                             const std::vector<std::string>& names, std::string_view help) {
  Impl& impl = *impl_;
  impl.field = FieldState{};
  impl.field.path = impl.PathOf(key);
  last_field_ = &impl.field;
  if (mode_ == Mode::kDocument) {
    DocEntry& e = impl.AddDoc(key, current, help);
    e.constraints.push_back(absl::StrCat("one of: ", absl::StrJoin(names, ", ")));
    return -1;
  }
  YAML::Node child = impl.Child(key);
  if (!child.IsDefined()) return -1;
  impl.field.line = impl.LineOf(child);
  if (child.IsScalar()) {
    const std::string lower = absl::AsciiStrToLower(child.Scalar());
    for (size_t i = 0; i < names.size(); ++i) {
      if (absl::AsciiStrToLower(names[i]) == lower) {
        impl.field.check = true;
        return static_cast<int>(i);
      }
    }
  }
  impl.AddError(
      impl.field.path, impl.field.line,
      absl::StrCat("expected one of {", absl::StrJoin(names, ", "), "}, got ", Describe(child)));
  return -1;
}

bool ConfigBinder::EnterSection(std::string_view key, std::string_view help) {
  Impl& impl = *impl_;
  const std::string path = impl.PathOf(key);
  if (mode_ == Mode::kDocument) {
    DocEntry& e = impl.AddDoc(key, "", help);
    e.is_section = true;
    Impl::Frame frame;
    frame.prefix = path;
    impl.frames.push_back(std::move(frame));
    return true;
  }
  YAML::Node child = impl.Child(key);
  if (child.IsDefined() && !child.IsNull() && !child.IsMap()) {
    impl.AddError(path, impl.LineOf(child),
                  absl::StrCat("expected a section (a map of keys), got ", Describe(child)));
    return false;
  }
  Impl::Frame frame;
  frame.node = child;
  frame.prefix = path;
  impl.frames.push_back(std::move(frame));
  return true;
}

void ConfigBinder::LeaveSection() {
  Impl& impl = *impl_;
  DS_CHECK(impl.frames.size() > 1) << "LeaveSection without EnterSection";
  if (mode_ == Mode::kDocument) {
    std::vector<DocEntry> entries = std::move(impl.frames.back().entries);
    impl.frames.pop_back();
    impl.frames.back().entries.back().children = std::move(entries);
    return;
  }
  impl.ReportUnknownKeys();
  impl.frames.pop_back();
}

void ConfigBinder::Require(bool ok, std::string_view key, std::string_view message) {
  if (mode_ != Mode::kParse || ok) return;
  impl_->AddError(impl_->PathOf(key), -1, message);
}

void ConfigBinder::FailCheck(std::string_view expectation, const std::string& got) {
  impl_->AddError(impl_->field.path, impl_->field.line,
                  absl::StrCat("expected ", std::string(expectation), ", got ", got));
}

void ConfigBinder::DescribeCheck(std::string constraint) {
  std::vector<DocEntry>& entries = impl_->frames.back().entries;
  if (!entries.empty()) entries.back().constraints.push_back(std::move(constraint));
}

absl::StatusOr<std::string> ReadConfigFile(std::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("config file ", std::string(path), ": cannot open for reading"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

namespace config_internal {
std::string Show(bool v) { return v ? "true" : "false"; }
std::string Show(int64_t v) { return absl::StrCat(v); }
std::string Show(uint64_t v) { return absl::StrCat(v); }
std::string Show(double v) { return fmt::format("{}", v); }
std::string Show(const std::string& v) { return Quote(v); }
std::string Show(absl::Duration v) { return absl::FormatDuration(v); }
}  // namespace config_internal

}  // namespace deepsearch
