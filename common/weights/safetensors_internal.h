// Pieces shared by the safetensors reader, writer and checkpoint-directory code: UTF-8 and
// strict JSON checks that match the reference parser (serde_json as huggingface/safetensors
// uses it), and atomic file replacement. Internal to the safetensors files of deepsearch_weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "common/core/files.h"
#include "common/weights/safetensors.h"

namespace deepsearch::safetensors_internal {

// The reference reader's MAX_HEADER_SIZE.
inline constexpr uint64_t kMaxHeaderSize = 100'000'000;

// serde_json's default recursion limit: 128 nested arrays/objects are refused, 127 pass.
inline constexpr int kMaxJsonNesting = 127;

// The offset of the first byte that breaks UTF-8 (as Rust's str::from_utf8 defines it:
// no overlong forms, no surrogates, nothing above U+10FFFF), or npos when `text` is valid.
size_t FindInvalidUtf8(std::string_view text);

// Parses `text` as one JSON value the way serde_json would accept it, and additionally
// refuses a key repeated within one object (nlohmann and serde_json both keep one silently).
// `what` names the document in messages ("the header", "the index"). Messages carry no file name:
// callers prefix it.
absl::StatusOr<nlohmann::json> ParseStrictJson(std::string_view text, std::string_view what);

// "a string", "an array", ...: the JSON type of `value`, with its article, for messages.
std::string JsonTypeName(const nlohmann::json& value);

using ::deepsearch::WriteFileAtomically;

// Checks what the writer needs before it writes anything: names non-empty, unique, valid
// UTF-8 and not "__metadata__"; dimensions non-negative; each span exactly
// prod(shape) * dtype size bytes; metadata keys and values valid UTF-8. Messages start with
// `target` (the file being written) and name the tensor.
absl::Status ValidateTensorsToWrite(const std::vector<TensorToWrite>& tensors,
                                    const std::map<std::string, std::string>& metadata,
                                    std::string_view target);

using ::deepsearch::ErrnoError;

}  // namespace deepsearch::safetensors_internal
