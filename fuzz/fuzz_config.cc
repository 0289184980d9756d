// Bytes as the YAML configuration of every process; the first line, when it holds '=', is
// a --set override as well.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cli/deepsearch_config.h"
#include "common/core/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> overrides;
  const size_t newline = bytes.find('\n');
  const std::string_view first = bytes.substr(0, newline);
  if (first.find('=') != std::string_view::npos) overrides.emplace_back(first);
  auto config =
      deepsearch::ParseConfigText<deepsearch::DeepSearchConfig>(bytes, "fuzz.yaml", overrides);
  if (!config.ok()) return 0;
  // A configuration that parses documents itself, and its document parses to it again.
  const std::string text = deepsearch::DocumentConfig(*config);
  auto again = deepsearch::ParseConfigText<deepsearch::DeepSearchConfig>(text, "fuzz-again.yaml");
  if (!again.ok() || deepsearch::DocumentConfig(*again) != text) __builtin_trap();
  return 0;
}
