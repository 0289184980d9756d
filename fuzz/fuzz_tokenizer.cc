// Bytes as a tokenizer.json; a tokenizer that parses then encodes and decodes the same bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto tokenizer = deepsearch::ParseTokenizerJson(bytes, "fuzz/tokenizer.json");
  if (!tokenizer.ok()) return 0;
  auto ids = (*tokenizer)->Encode(bytes.substr(0, 256));
  if (ids.ok()) (void)(*tokenizer)->Decode(*ids, /*skip_special=*/false);
  return 0;
}
