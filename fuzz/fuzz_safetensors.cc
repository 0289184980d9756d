// Bytes as a .safetensors file: the header's JSON, dtypes, shapes, offsets and metadata.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/weights/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = deepsearch::SafetensorsFile::FromBytes(
      std::string(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
  if (!file.ok()) return 0;
  // A file that opens must hold what it says: every view inside the buffer.
  for (const auto& t : (*file)->tensors()) {
    if (t.size > 0) {
      volatile uint8_t first = t.data[0];
      volatile uint8_t last = t.data[t.size - 1];
      (void)first;
      (void)last;
    }
  }
  return 0;
}
