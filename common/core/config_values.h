// How the config binder (config.h) reads values from YAML and writes them back: the scalar
// decoders, the words that name each type in an error message, and the YAML text of a value
// in document mode. Not a public header: only config.cc includes it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace deepsearch::config_internal {

// `text` in single quotes, cut after 60 characters.
std::string Quote(std::string_view text);
// What a YAML node is, in the words of an error message.
std::string Describe(const YAML::Node& node);

// The scalar decoders: true on success. A bool is true/yes/on or false/no/off; a double is
// finite; a string may be null (empty); a duration is "0" or absl's form (30s, 1.5m, 250ms).
bool Decode(const YAML::Node& node, bool& out);
bool Decode(const YAML::Node& node, int64_t& out);
bool Decode(const YAML::Node& node, uint64_t& out);
bool Decode(const YAML::Node& node, double& out);
bool Decode(const YAML::Node& node, std::string& out);
bool Decode(const YAML::Node& node, absl::Duration& out);

template <typename T>
const char* NounOf() {
  if constexpr (std::is_same_v<T, bool>) {
    return "a boolean (true or false)";
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return "an integer";
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return "a non-negative integer";
  } else if constexpr (std::is_same_v<T, double>) {
    return "a finite number";
  } else if constexpr (std::is_same_v<T, std::string>) {
    return "a string";
  } else if constexpr (std::is_same_v<T, absl::Duration>) {
    return "a duration such as 30s, 1.5m or 250ms";
  } else {
    static_assert(sizeof(T) == 0, "unsupported config field type");
  }
}

template <typename T>
const char* ListNounOf() {
  if constexpr (std::is_same_v<T, int64_t>) {
    return "a list of integers";
  } else if constexpr (std::is_same_v<T, double>) {
    return "a list of numbers";
  } else {
    return "a list of strings";
  }
}

// A value as YAML text, for document mode.
std::string Render(bool v);
std::string Render(int64_t v);
std::string Render(uint64_t v);
std::string Render(double v);
std::string Render(absl::Duration v);
std::string Render(const std::string& v);
template <typename T>
std::string Render(const std::vector<T>& v) {
  std::vector<std::string> items;
  items.reserve(v.size());
  for (const T& x : v) items.push_back(Render(x));
  return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
}

}  // namespace deepsearch::config_internal
