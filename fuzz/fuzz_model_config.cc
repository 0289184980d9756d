// Bytes as a model's config.json.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/model/qwen2_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto config = deepsearch::Qwen2Config::FromJson(json, "fuzz/config.json");
  if (!config.ok()) return 0;
  // What parses writes back out and parses again to the same architecture.
  auto again = deepsearch::Qwen2Config::FromJson(config->ToJson(), "fuzz/again.json");
  if (!again.ok() || !config->CheckSameArchitecture(*again).ok()) __builtin_trap();
  (void)config->NumParameters();
  return 0;
}
