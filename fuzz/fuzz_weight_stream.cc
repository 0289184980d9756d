// Bytes as a weight stream: a sequence of WeightChunk messages, each a 2-byte little-endian
// length and that many bytes of its wire encoding, fed to the assembler (a 1 MiB limit); a
// version that assembles is decoded as a receiver would.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "deepsearch/v1/cache_service.pb.h"

#include "common/rpc/weight_stream.h"
#include "common/weights/weight_set.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  deepsearch::rpc::WeightChunkAssembler assembler(1 << 20);
  std::optional<deepsearch::WeightSet> held;
  size_t at = 0;
  while (at + 2 <= size) {
    const size_t length = data[at] | (static_cast<size_t>(data[at + 1]) << 8);
    at += 2;
    if (length > size - at) break;
    deepsearch::v1::WeightChunk chunk;
    const bool parsed = chunk.ParseFromArray(data + at, static_cast<int>(length));
    at += length;
    if (!parsed) continue;
    if (!assembler.Add(chunk).ok()) {
      assembler.Reset();
      continue;
    }
    if (!assembler.complete()) continue;
    deepsearch::EncodedWeights encoded = assembler.Take();
    if (encoded.encoding == deepsearch::WeightEncoding::kFile) continue;  // names a path
    auto set = deepsearch::DecodeWeights(std::move(encoded), held ? &*held : nullptr);
    if (set.ok()) held = *std::move(set);
  }
  return 0;
}
