#include "common/core/config_values.h"

#include <cmath>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace deepsearch::config_internal {

std::string Quote(std::string_view text) {
  constexpr size_t kMax = 60;
  if (text.size() > kMax) return absl::StrCat("'", std::string(text.substr(0, kMax)), "...'");
  return absl::StrCat("'", std::string(text), "'");
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

bool Decode(const YAML::Node& node, bool& out) {
  if (!node.IsScalar()) return false;
  const std::string s = absl::AsciiStrToLower(node.Scalar());
  if (s == "true" || s == "yes" || s == "on") {
    out = true;
    return true;
  }
  if (s == "false" || s == "no" || s == "off") {
    out = false;
    return true;
  }
  return false;
}

bool Decode(const YAML::Node& node, int64_t& out) {
  return node.IsScalar() && absl::SimpleAtoi(node.Scalar(), &out);
}

bool Decode(const YAML::Node& node, uint64_t& out) {
  if (!node.IsScalar()) return false;
  const std::string& s = node.Scalar();
  if (!s.empty() && s.front() == '-') return false;
  return absl::SimpleAtoi(s, &out);
}

bool Decode(const YAML::Node& node, double& out) {
  return node.IsScalar() && absl::SimpleAtod(node.Scalar(), &out) && std::isfinite(out);
}

bool Decode(const YAML::Node& node, std::string& out) {
  if (node.IsNull()) {
    out.clear();
    return true;
  }
  if (!node.IsScalar()) return false;
  out = node.Scalar();
  return true;
}

bool Decode(const YAML::Node& node, absl::Duration& out) {
  if (!node.IsScalar()) return false;
  const std::string& s = node.Scalar();
  if (s == "0") {
    out = absl::ZeroDuration();
    return true;
  }
  return absl::ParseDuration(s, &out) && out != absl::InfiniteDuration() &&
         out != -absl::InfiniteDuration();
}

std::string Render(bool v) { return v ? "true" : "false"; }
std::string Render(int64_t v) { return absl::StrCat(v); }
std::string Render(uint64_t v) { return absl::StrCat(v); }
std::string Render(double v) { return fmt::format("{}", v); }
std::string Render(absl::Duration v) { return absl::FormatDuration(v); }
std::string Render(const std::string& v) {
  YAML::Emitter out;
  out << YAML::DoubleQuoted << v;
  return out.c_str();
}
}  // namespace deepsearch::config_internal
