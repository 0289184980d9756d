#include "common/tokenizer/json_fields.h"

#include "absl/strings/str_cat.h"

namespace deepsearch {

std::string DescribeJson(const nlohmann::json& value) {
  constexpr size_t kMaxShown = 40;
  auto shorten = [](std::string s) {
    if (s.size() > kMaxShown) s = s.substr(0, kMaxShown) + "...";
    return s;
  };
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return absl::StrCat("a boolean ", value.get<bool>() ? "true" : "false");
    case nlohmann::json::value_t::string:
      return absl::StrCat("a string '", shorten(value.get<std::string>()), "'");
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return absl::StrCat("a number ", value.dump());
    case nlohmann::json::value_t::array:
      return absl::StrCat("an array of ", value.size());
    case nlohmann::json::value_t::object:
      return absl::StrCat("an object of ", value.size(), " keys");
    default:
      return "an unsupported JSON value";
  }
}

absl::Status JsonFields::Error(std::string_view key, std::string_view problem) const {
  return absl::InvalidArgumentError(
      absl::StrCat(source_, ": ", std::string(key), ": ", std::string(problem)));
}

std::string JsonFields::Path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return absl::StrCat(std::string(parent), ".", std::string(key));
}

std::string JsonFields::Index(std::string_view parent, size_t index) {
  return absl::StrCat(std::string(parent), "[", index, "]");
}

absl::StatusOr<const nlohmann::json*> JsonFields::Required(const nlohmann::json& object,
                                                           std::string_view parent,
                                                           std::string_view key) const {
  const nlohmann::json* value = Optional(object, key);
  if (value == nullptr) return Error(Path(parent, key), "missing");
  return value;
}

const nlohmann::json* JsonFields::Optional(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::string> JsonFields::RequiredString(const nlohmann::json& object,
                                                       std::string_view parent,
                                                       std::string_view key) const {
  absl::StatusOr<const nlohmann::json*> value = Required(object, parent, key);
  if (!value.ok()) return value.status();
  if (!(*value)->is_string()) {
    return Error(Path(parent, key), absl::StrCat("expected a string, got ", DescribeJson(**value)));
  }
  return (*value)->get<std::string>();
}

absl::StatusOr<std::string> JsonFields::OptionalString(const nlohmann::json& object,
                                                       std::string_view parent,
                                                       std::string_view key,
                                                       std::string_view fallback) const {
  const nlohmann::json* value = Optional(object, key);
  if (value == nullptr) return std::string(fallback);
  if (!value->is_string()) {
    return Error(Path(parent, key), absl::StrCat("expected a string, got ", DescribeJson(*value)));
  }
  return value->get<std::string>();
}

absl::StatusOr<bool> JsonFields::OptionalBool(const nlohmann::json& object, std::string_view parent,
                                              std::string_view key, bool fallback) const {
  const nlohmann::json* value = Optional(object, key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) {
    return Error(Path(parent, key),
                 absl::StrCat("expected true or false, got ", DescribeJson(*value)));
  }
  return value->get<bool>();
}

absl::StatusOr<std::string> JsonFields::Type(const nlohmann::json& component,
                                             std::string_view parent) const {
  if (!component.is_object()) {
    return Error(parent, absl::StrCat("expected an object, got ", DescribeJson(component)));
  }
  return RequiredString(component, parent, "type");
}

}  // namespace deepsearch
