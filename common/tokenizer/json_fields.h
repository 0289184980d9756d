// Reading tokenizer.json: typed access to fields with errors that name the file and the key.
//
// Every error is InvalidArgument and reads "<source>: <key>: <problem>", for example
// "tokenizer.json: model.merges[12]: expected two tokens separated by one space, got 'ab'".
// Keys are written as paths from the root ("pre_tokenizer.pretokenizers[0].type").
//
// Not thread-safe by itself; each reader is used by one thread while loading.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace deepsearch {

// A short description of a JSON value for messages: its type and, for scalars, its value
// ("a string 'Metaspace'", "null", "an array of 3").
std::string DescribeJson(const nlohmann::json& value);

class JsonFields {
 public:
  explicit JsonFields(std::string_view source) : source_(source) {}

  const std::string& source() const { return source_; }

  // "<source>: <key>: <problem>".
  absl::Status Error(std::string_view key, std::string_view problem) const;

  // "<parent>.<key>", or "<key>" at the root (parent "").
  static std::string Path(std::string_view parent, std::string_view key);
  static std::string Index(std::string_view parent, size_t index);

  // The member `key` of `object` (which lives at `parent`): an error when missing or null.
  absl::StatusOr<const nlohmann::json*> Required(const nlohmann::json& object,
                                                 std::string_view parent,
                                                 std::string_view key) const;
  // The member `key`, or nullptr when it is missing or null.
  static const nlohmann::json* Optional(const nlohmann::json& object, std::string_view key);

  absl::StatusOr<std::string> RequiredString(const nlohmann::json& object, std::string_view parent,
                                             std::string_view key) const;
  // A string member; `fallback` when missing or null.
  absl::StatusOr<std::string> OptionalString(const nlohmann::json& object, std::string_view parent,
                                             std::string_view key, std::string_view fallback) const;
  absl::StatusOr<bool> OptionalBool(const nlohmann::json& object, std::string_view parent,
                                    std::string_view key, bool fallback) const;
  // The "type" member of a component object, or an error naming `parent`.
  absl::StatusOr<std::string> Type(const nlohmann::json& component, std::string_view parent) const;

 private:
  std::string source_;
};

}  // namespace deepsearch
